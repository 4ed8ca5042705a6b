"""Time and peak memory of one fine-tuning step of musicnn, per recipe, side by side in one run.

    python bench/finetune_step.py [--model MTT_musicnn] [--batch 16] [--seconds 6] [--device cpu]

Each recipe runs in a fresh process (so its peak is its own): the pipeline ``experiment=finetune``
builds (log-mel front end, network inside the model, linear head), one warm-up step, then ``--repeats``
AdamW steps on random audio. Reported per recipe: the median seconds of a step (front end, forward,
backward, optimizer) and the peak memory the steps added over the built pipeline: on CPU the growth of
the process's peak resident set (``ru_maxrss``), on CUDA ``torch.cuda.max_memory_allocated``.

Recipes: the head epochs (network frozen, no gradients), fine-tuning every block up to the layer,
the same with the first two blocks frozen (input, frontend), and with batch-norm statistics updated.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch

RECIPES = {
    "head epochs (network frozen)": {"frozen": True},
    "fine-tune all blocks": {},
    "fine-tune, freeze_blocks=2": {"freeze_blocks": 2},
    "fine-tune, batch_norm=update": {"batch_norm": "update"},
}


def measure(recipe: dict, args: argparse.Namespace) -> dict[str, float]:
    """One recipe's median step seconds and peak added memory (MiB), in this process."""
    from genre.experiment.pipeline import assemble
    from genre.features import FeatureExtractor, Musicnn
    from genre.models import LinearBaseline
    from genre.training.param_groups import optimizer_groups

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    options = {key: value for key, value in recipe.items() if key != "frozen"}
    transform = Musicnn(sample_rate=22050, model=args.model, trainable=True, **options)
    pipeline = assemble(FeatureExtractor(transform, log="none"), LinearBaseline(transform.n_bands, 10)).to(device)
    audio = 0.1 * torch.randn(args.batch, int(args.seconds * 22050), device=device)
    targets = torch.randint(0, 10, (args.batch,), device=device)
    model = pipeline.model
    model.fit_normalization([pipeline.features(audio)])
    model.freeze_backbone(bool(recipe.get("frozen")))
    model.train()
    optimizer = torch.optim.AdamW(optimizer_groups(model, 1e-4), lr=1e-3)

    def step() -> None:
        with torch.no_grad():
            inputs = pipeline.features(audio)
        loss = torch.nn.functional.cross_entropy(model(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    step()
    times = []
    for _ in range(args.repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - started)
    if device.type == "cuda":
        peak = (torch.cuda.max_memory_allocated(device) - before) / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - baseline
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"seconds": statistics.median(times), "peak_mib": peak, "trainable": trainable}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="MTT_musicnn")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=6.0, help="crop length (experiment=finetune: 6 s)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--recipe", help=argparse.SUPPRESS)  # a child process measuring one recipe
    args = parser.parse_args()
    if args.recipe:
        print(json.dumps(measure(RECIPES[args.recipe], args)))
        return
    passed = sys.argv[1:]
    print(
        f"{args.model}, batch {args.batch} x {args.seconds:g} s at 22050 Hz, {args.device}, "
        f"{args.threads} thread(s), median of {args.repeats} steps"
    )
    print(f"{'recipe':32s} {'trainable':>10s} {'s/step':>8s} {'peak MiB':>9s}")
    for name in RECIPES:
        child = subprocess.run(
            [sys.executable, __file__, *passed, "--recipe", name], capture_output=True, text=True, check=True
        )
        row = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"{name:32s} {row['trainable']:>10d} {row['seconds']:>8.3f} {row['peak_mib']:>9.0f}")


if __name__ == "__main__":
    main()

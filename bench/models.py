"""Training-step time of each model config on this machine's CPU, side by side in one run.

    python bench/models.py [--threads 1] [--bands 128] [--frames 216] [--batch 16]

Prints, per model config in conf/model/ (plus the pre-slimming CNN/CRNN widths for comparison),
the median forward+backward+step time of one batch and the parameter count.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from genre import CONFIG_DIR

# The widths the defaults had before the first blocks were narrowed.
WIDE = {"cnn (wide 32-64-128-128)": ("cnn", [32, 64, 128, 128]), "crnn (wide 32-64-64-64)": ("crnn", [32, 64, 64, 64])}


def step_seconds(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, repeats: int) -> float:
    """Median seconds of one AdamW training step after a warm-up step."""
    optimizer = torch.optim.AdamW(model.parameters())
    times = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--bands", type=int, default=128)
    parser.add_argument("--frames", type=int, default=216, help="216 frames = a 5-s crop at hop 512, 22050 Hz")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(args.batch, args.bands, args.frames)
    y = torch.randint(0, 6, (args.batch,))
    rows = []
    for path in sorted((CONFIG_DIR / "model").glob("*.yaml")):
        model = instantiate(OmegaConf.load(path), n_bands=args.bands, n_classes=6)
        rows.append((path.stem, model.n_parameters, step_seconds(model, x, y, args.repeats)))
    for label, (name, channels) in WIDE.items():
        cfg = OmegaConf.load(CONFIG_DIR / "model" / f"{name}.yaml")
        cfg.channels = channels
        model = instantiate(cfg, n_bands=args.bands, n_classes=6)
        rows.append((label, model.n_parameters, step_seconds(model, x, y, args.repeats)))
    print(f"batch ({args.batch}, {args.bands}, {args.frames}), {args.threads} thread(s), median of {args.repeats}")
    print(f"{'model':28s} {'params':>10s} {'s/step':>8s}")
    for name, params, seconds in rows:
        print(f"{name:28s} {params:10d} {seconds:8.3f}")
    by_name = {name: seconds for name, _, seconds in rows}
    for name, wide in (("cnn", "cnn (wide 32-64-128-128)"), ("crnn", "crnn (wide 32-64-64-64)")):
        print(f"speed-up of default {name} over its wide variant: {by_name[wide] / by_name[name]:.2f}x")


if __name__ == "__main__":
    main()

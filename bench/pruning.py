"""Pruning benchmark: the same seeded TPE search on the demo corpus, without and with the median pruner.

Both searches run ``--trials`` trials of the small CNN on mel features over the learning rate, weight
decay, dropout and batch size, each trial ``--epochs`` epochs at most, seeded alike (``seed``), each in
a fresh study; one after the other, after a warm-up run has generated the corpus and its audio cache.
For each it prints the epochs trained (every epoch a trial reported to its study), the wall time, the
trials pruned and the best validation accuracy.

    python bench/pruning.py                       # 16 trials x 6 epochs, demo corpus of 24 clips x 3 s
    python bench/pruning.py --trials 8 -- dataset.source.clips_per_genre=20   # extra overrides after --
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweep import run

# Short clips and coarse frames keep 16 trials within minutes on 2 CPU cores.
CORPUS = [
    "dataset.source.clips_per_genre=24",
    "dataset.source.clip_seconds=3.0",
    "dataset.clip_seconds=3.0",
    "trainer.segment_seconds=1.5",
    "model=cnn",
    "feature=mel",
    "feature.transform.hop_length=1024",
    "model.channels=[8,16]",
    "trainer.progress=false",
]
SPACE = [
    "hydra.sweeper.params=null",
    "optimizer.lr=tag(log,interval(1e-4,3e-1))",
    "optimizer.weight_decay=tag(log,interval(1e-5,1e-1))",
    "model.dropout=interval(0.0,0.5)",
    "trainer.batch_size=choice(8,16,32)",
]
# The median pruner after 4 unpruned trials, from epoch 2 on (genre/conf/hydra/sweeper/pruner/median.yaml).
PRUNER = [
    "hydra/sweeper/pruner=median",
    "hydra.sweeper.pruner.n_startup_trials=4",
    "hydra.sweeper.pruner.n_warmup_steps=2",
]


def search(name: str, extra: list[str], common: list[str], work: Path) -> dict[str, float]:
    """Run one search in its own study; return its epochs, wall time, pruned trials and best value."""
    storage = f"sqlite:///{work / 'optuna' / name}.db"
    seconds = run(
        [
            "-m",
            "hparams_search=optuna",
            *common,
            *extra,
            f"hydra.sweeper.study_name={name}",
            f"hydra.sweeper.storage={storage}",
            f"hydra.sweep.dir={work / name}",
        ],
        work,
    )
    trials = optuna.load_study(study_name=name, storage=storage).trials
    states = [trial.state for trial in trials]
    if states.count(TrialState.FAIL) or len(trials) == 0:
        raise SystemExit(f"{name}: failed trials: {states}")
    return {
        "epochs": sum(len(trial.intermediate_values) for trial in trials),
        "seconds": seconds,
        "pruned": states.count(TrialState.PRUNED),
        "trials": len(trials),
        "best": max(trial.value for trial in trials if trial.state == TrialState.COMPLETE),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16, help="trials per search (default 16)")
    parser.add_argument("--epochs", type=int, default=6, help="trainer.epochs of each trial (default 6)")
    parser.add_argument("--work", type=Path, default=None, help="where the searches are written (default: a temp dir)")
    parser.add_argument("overrides", nargs="*", help="extra run.py overrides for every trial (after --)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="genre-bench-pruning-"))
    work.mkdir(parents=True, exist_ok=True)
    common = [
        *CORPUS,
        *SPACE,
        f"trainer.epochs={args.epochs}",
        f"hydra.sweeper.n_trials={args.trials}",
        *args.overrides,
    ]
    warmup = run([*CORPUS, "trainer.epochs=1", *args.overrides, f"hydra.run.dir={work / 'warmup'}"], work)
    print(f"warm-up run (demo corpus and audio cache, if not there yet): {warmup:.1f} s")
    started = time.strftime("%Y-%m-%d %H:%M")
    results = {
        "no pruner": search("no-pruner", [], common, work),
        "median pruner": search("median", PRUNER, common, work),
    }
    print(
        f"{args.trials}-trial TPE search x {args.epochs} epochs ({' '.join(common)}), started {started}, "
        f"outputs in {work}"
    )
    print(f"{'':16} {'epochs':>7} {'wall s':>8} {'pruned':>7} {'best val/acc':>13}")
    for label, result in results.items():
        print(f"{label:16} {result['epochs']:7d} {result['seconds']:8.1f} {result['pruned']:7d} {result['best']:13.4f}")
    plain, pruned = results["no pruner"], results["median pruner"]
    print(
        f"epochs saved: {1 - pruned['epochs'] / plain['epochs']:.0%}, wall time saved: "
        f"{1 - pruned['seconds'] / plain['seconds']:.0%}, best val/acc difference: "
        f"{100 * (pruned['best'] - plain['best']):+.1f} points"
    )


if __name__ == "__main__":
    main()

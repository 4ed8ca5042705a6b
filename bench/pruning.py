"""Pruning benchmark: the same seeded TPE search on the demo corpus, without and with the median pruner.

Both searches run ``--trials`` trials of the small CNN on mel features over the learning rate, weight
decay, dropout and batch size, each trial ``--epochs`` epochs at most, seeded alike (``seed``), each in
a fresh study; one after the other, after a warm-up run has generated the corpus and its audio cache.
The pair is repeated for every seed of ``--seeds``: one search's best value is the maximum of 16 noisy
validation scores, so a single pair says little about what pruning costs in quality. For each search
it prints the epochs trained (every epoch a trial reported to its study), the wall time, the trials
pruned and the best validation accuracy; then the totals over all seeds and the mean change of the best.

    python bench/pruning.py                       # 16 trials x 12 epochs, seeds 42 43 44
    python bench/pruning.py --seeds $(seq 42 51)  # ten pairs
    python bench/pruning.py --seeds 42 --trials 8 -- dataset.source.clips_per_genre=20   # overrides after --
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweep import run

# Short clips and coarse frames keep 16 trials within minutes on 2 CPU cores. A validation split of 72
# clips (30 %) makes one clip 1.4 points of val/acc, finer than the 2-point target it is judged by.
CORPUS = [
    "dataset.source.clips_per_genre=40",
    "dataset.split.val=0.3",
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


def compare(seed: int, common: list[str], work: Path) -> dict[str, dict[str, float]]:
    """Both searches for one seed (``seed`` seeds the sampler and the training), each in its own study."""
    seeded = [*common, f"seed={seed}"]
    return {
        "no pruner": search(f"no-pruner-seed{seed}", [], seeded, work),
        "median pruner": search(f"median-seed{seed}", PRUNER, seeded, work),
    }


def report(results: dict[int, dict[str, dict[str, float]]]) -> None:
    """Print every search, the totals over seeds and the changes the target is judged by."""
    print(f"{'seed':>5} {'':14} {'epochs':>7} {'wall s':>8} {'pruned':>7} {'best val/acc':>13}")
    for seed, pair in results.items():
        for label, result in pair.items():
            print(
                f"{seed:5d} {label:14} {result['epochs']:7.0f} {result['seconds']:8.1f} "
                f"{result['pruned']:7.0f} {result['best']:13.4f}"
            )
    totals = {
        label: {key: sum(pair[label][key] for pair in results.values()) for key in ("epochs", "seconds", "pruned")}
        for label in ("no pruner", "median pruner")
    }
    for label, total in totals.items():
        print(f"{'all':>5} {label:14} {total['epochs']:7.0f} {total['seconds']:8.1f} {total['pruned']:7.0f}")
    changes = [100 * (pair["median pruner"]["best"] - pair["no pruner"]["best"]) for pair in results.values()]
    plain, pruned = totals["no pruner"], totals["median pruner"]
    print(
        f"epochs saved: {1 - pruned['epochs'] / plain['epochs']:.0%}, wall time saved: "
        f"{1 - pruned['seconds'] / plain['seconds']:.0%}, best val/acc change per seed: "
        f"{', '.join(f'{change:+.1f}' for change in changes)} points"
    )
    if len(changes) > 1:
        mean = float(np.mean(changes))
        low, high = stats.t.interval(0.95, len(changes) - 1, loc=mean, scale=stats.sem(changes))
        print(
            f"best val/acc change, mean over {len(changes)} seeds: {mean:+.1f} points "
            f"(95 % t-interval {low:+.1f} to {high:+.1f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16, help="trials per search (default 16)")
    # 12, not the run default of 30, to keep 10 pairs of searches within an hour on 2 cores.
    parser.add_argument("--epochs", type=int, default=12, help="trainer.epochs of each trial (default 12)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44], help="one pair of searches per seed")
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
    results = {seed: compare(seed, common, work) for seed in args.seeds}
    print(
        f"{args.trials}-trial TPE search x {args.epochs} epochs ({' '.join(common)}), started {started}, "
        f"outputs in {work}"
    )
    report(results)


if __name__ == "__main__":
    main()

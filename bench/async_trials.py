"""Parallel-trials benchmark: the same 8 trials of unequal length on 2 joblib workers, batch vs asynchronous.

Each of two Optuna sweeps (``hydra.sweeper.schedule=batch``, then ``async``) runs 8 trials queued in
its own study in the same order, ``trainer.epochs`` 8 or 1 (``--epochs``), the small CNN on mel
features of a short demo corpus (4 crops per clip and epoch), with ``hydra/launcher=joblib hydra.launcher.n_jobs=2
hydra.sweeper.n_jobs=2``. Batch: 2 trials at a time, the next 2 after the slower of them. Async: a
new trial as soon as either worker is free. For each: the sweep's wall time and the workers' idle
seconds, 2 x (last job end - first job start) - the sum of the jobs' own wall times (status.json).

    python bench/async_trials.py
    python bench/async_trials.py --epochs 4 1 1 4 1 1 1 4 -- dataset.source.clips_per_genre=10
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import optuna
from optuna.trial import TrialState

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweep import run

# bench/pruning.py's corpus and model: short clips and coarse frames, for minutes on 2 CPU cores.
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
    # 4 crops of each clip per epoch: epochs long enough that a long trial outlasts a 1-epoch one
    # by more than a job's start-up.
    "trainer.crops_per_clip=4",
]
WORKERS = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweeper.n_jobs=2"]
EPOCHS = [8, 1, 1, 8, 1, 1, 1, 8]


def sweep(schedule: str, epochs: list[int], common: list[str], work: Path) -> dict[str, float]:
    """Run the queued trials with one schedule; return wall time, idle worker-seconds and the jobs' seconds."""
    name = f"async-bench-{schedule}"
    storage = f"sqlite:///{work / 'optuna' / name}.db"
    (work / "optuna").mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    for count in epochs:
        study.enqueue_trial({"trainer.epochs": count})
    seconds = run(
        [
            "-m",
            "hparams_search=optuna",
            "hydra.sweeper.params=null",
            f"trainer.epochs=choice({','.join(map(str, sorted(set(epochs))))})",
            *common,
            *WORKERS,
            f"hydra.sweeper.schedule={schedule}",
            f"hydra.sweeper.n_trials={len(epochs)}",
            f"hydra.sweeper.study_name={name}",
            f"hydra.sweeper.storage={storage}",
            f"hydra.sweep.dir={work / name}",
        ],
        work,
    )
    trials = optuna.load_study(study_name=name, storage=storage).trials
    if [t.state for t in trials] != [TrialState.COMPLETE] * len(epochs):
        raise SystemExit(f"{schedule}: not every trial completed: {[t.state for t in trials]}")
    spans = []
    for status in sorted((work / name).glob("*/status.json")):
        record = json.loads(status.read_text())
        spans.append((datetime.fromisoformat(record["started"]), datetime.fromisoformat(record["ended"])))
    busy = sum((end - start).total_seconds() for start, end in spans)
    span = (max(end for _, end in spans) - min(start for start, _ in spans)).total_seconds()
    return {"seconds": seconds, "span": span, "busy": busy, "idle": 2 * span - busy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, nargs="+", default=EPOCHS, help="each queued trial's trainer.epochs")
    parser.add_argument("--work", type=Path, default=None, help="where the sweeps are written (default: a temp dir)")
    parser.add_argument("overrides", nargs="*", help="extra run.py overrides for every trial (after --)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="genre-bench-async-"))
    work.mkdir(parents=True, exist_ok=True)
    common = [*CORPUS, *args.overrides]
    warmup = run([*common, "trainer.epochs=1", f"hydra.run.dir={work / 'warmup'}"], work)
    print(f"warm-up run (demo corpus and audio cache, if not there yet): {warmup:.1f} s")
    results = {schedule: sweep(schedule, args.epochs, common, work) for schedule in ("batch", "async")}
    print(
        f"{len(args.epochs)} trials, epochs {args.epochs}, on 2 joblib workers ({' '.join(common)}); outputs in {work}"
    )
    print(f"{'schedule':10} {'wall s':>8} {'jobs span s':>12} {'job-seconds':>12} {'idle worker-s':>14}")
    for schedule, result in results.items():
        print(
            f"{schedule:10} {result['seconds']:8.1f} {result['span']:12.1f} {result['busy']:12.1f} "
            f"{result['idle']:14.1f}"
        )
    batch, concurrent = results["batch"], results["async"]
    print(
        f"async vs batch: wall time {concurrent['seconds'] / batch['seconds'] - 1:+.0%}, idle worker-seconds "
        f"{concurrent['idle'] - batch['idle']:+.1f}"
    )


if __name__ == "__main__":
    main()

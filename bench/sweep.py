"""Sweep benchmark: one 4-job sweep on the demo corpus, sequential vs ``hydra/launcher=joblib`` (2 workers).

Both sweeps run the same jobs (``feature=mel,mfcc model=cnn,crnn`` by default) in one invocation of
this script, one after the other, after a warm-up run has generated the demo corpus and built its
audio cache, so neither pays for that. Sequential: Hydra's basic launcher, jobs one after another in
one process, torch using every core. Parallel: joblib, 2 worker processes, torch limited to
``cores // 2`` threads each by joblib. Each sweep must end with 4 completed jobs in its summary.csv.

    python bench/sweep.py                      # demo corpus (40 clips x 30 s per genre), 2 epochs per job
    python bench/sweep.py --epochs 1 -- dataset.source.clips_per_genre=10   # smaller; extra overrides after --
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

# run.py is a script beside the package (not in it): the benchmark starts it by its path in this checkout.
RUN_PY = Path(__file__).resolve().parents[1] / "run.py"
GRID = ["feature=mel,mfcc", "model=cnn,crnn"]


def run(args: list[str], cwd: Path) -> float:
    """Run ``python run.py ARGS`` in ``cwd``; return its wall time in seconds (raise if it fails)."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, str(RUN_PY), *args], cwd=cwd, text=True, capture_output=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"run.py {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return seconds


def sweep(name: str, launcher: list[str], common: list[str], work: Path) -> float:
    """Time one 4-job sweep and check that all of its jobs completed."""
    sweep_dir = work / name
    seconds = run(["-m", *GRID, *common, *launcher, f"hydra.sweep.dir={sweep_dir}"], work)
    summary = pd.read_csv(sweep_dir / "summary.csv")
    if len(summary) != 4 or set(summary["status"]) != {"completed"}:
        raise SystemExit(f"{name}: expected 4 completed jobs, got\n{summary[['job', 'status']]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2, help="trainer.epochs of each job (default 2)")
    parser.add_argument("--work", type=Path, default=None, help="where the sweeps are written (default: a temp dir)")
    parser.add_argument("overrides", nargs="*", help="extra run.py overrides for every job (after --)")
    args = parser.parse_args()
    common = [f"trainer.epochs={args.epochs}", "trainer.progress=false", *args.overrides]
    work = args.work or Path(tempfile.mkdtemp(prefix="genre-bench-sweep-"))
    work.mkdir(parents=True, exist_ok=True)
    cores = len(os.sched_getaffinity(0))

    warmup = run(
        ["model=cnn", "feature=mel", "trainer.epochs=1", *common[1:], f"hydra.run.dir={work / 'warmup'}"], work
    )
    print(f"warm-up run (demo corpus and audio cache, if not there yet): {warmup:.1f} s")
    sequential = sweep("sequential", [], common, work)
    parallel = sweep("joblib", ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], common, work)
    print(f"4-job sweep ({' '.join(GRID)}; {' '.join(common)}) on {cores} CPU cores, outputs in {work}")
    print(f"sequential (basic launcher):  {sequential:7.1f} s")
    print(f"joblib, 2 workers:            {parallel:7.1f} s")
    print(f"speed-up: {sequential / parallel:.2f}x")


if __name__ == "__main__":
    main()

"""Embedding-cache benchmark: a 4-job probe sweep on musicnn activations, cached vs recomputed in every job.

Both sweeps run the same jobs (``feature=musicnn model=linear,mlp optimizer.lr=1e-3,3e-3`` by
default) on the same demo corpus, after a warm-up run has generated the corpus and built its audio
cache (so neither pays for that). Cached: ``feature.transform.cache=true`` (the default), into a
fresh cache folder, so job 0 computes the activations and jobs 1-3 read them. Recomputed:
``feature.transform.cache=false``, every job runs the backbone over every clip itself. Both train on
the same patch-grid activations, so their results must be identical (checked). A job's wall time is
the span of its run.log (first to last line).

    python bench/embeddings.py                                   # 60 clips x 15 s, 3 epochs per job
    python bench/embeddings.py -- dataset.source.clips_per_genre=40   # extra overrides after --
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
GRID = ["feature=musicnn", "model=linear,mlp", "optimizer.lr=1e-3,3e-3"]
STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")


def run(args: list[str], cwd: Path, cache: Path) -> float:
    """Run ``python run.py ARGS`` with ``GENRE_CACHE=cache``; return its wall time (raise if it fails)."""
    started = time.perf_counter()
    env = {**os.environ, "GENRE_CACHE": str(cache)}
    result = subprocess.run(
        [sys.executable, str(REPO / "run.py"), *args], cwd=cwd, text=True, capture_output=True, env=env, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"run.py {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return time.perf_counter() - started


def job_seconds(run_log: Path) -> float:
    """The span of a job's log: from its first line to its last."""
    # Local wall-clock stamps of one process: only their differences matter.
    stamps = [
        dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=dt.UTC)
        for line in run_log.read_text().splitlines()
        if (m := STAMP.match(line))
    ]
    return (stamps[-1] - stamps[0]).total_seconds()


def sweep(name: str, cache_flag: str, common: list[str], work: Path, cache: Path) -> pd.DataFrame:
    """One 4-job sweep; its summary with each job's wall time."""
    sweep_dir = work / name
    total = run(["-m", *GRID, *common, cache_flag, f"hydra.sweep.dir={sweep_dir}"], work, cache)
    summary = pd.read_csv(sweep_dir / "summary.csv").sort_values("job").reset_index(drop=True)
    if len(summary) != 4 or set(summary["status"]) != {"completed"}:
        raise SystemExit(f"{name}: expected 4 completed jobs, got\n{summary}")
    summary["seconds"] = [job_seconds(sweep_dir / str(job) / "run.log") for job in summary["job"]]
    summary.attrs["total"] = total
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--clips-per-genre", type=int, default=10)
    parser.add_argument("--clip-seconds", type=float, default=15.0)
    parser.add_argument("overrides", nargs="*", help="extra run.py overrides (after --)")
    args = parser.parse_args()
    common = [
        f"dataset.source.clips_per_genre={args.clips_per_genre}",
        f"dataset.source.clip_seconds={args.clip_seconds}",
        f"dataset.clip_seconds={args.clip_seconds}",
        f"trainer.epochs={args.epochs}",
        "trainer.segment_seconds=3.0",
        "trainer.progress=false",
        *args.overrides,
    ]
    with tempfile.TemporaryDirectory(prefix="genre-bench-embeddings-") as tmp:
        work, cache = Path(tmp), Path(tmp) / "cache"
        # Warm-up: the demo corpus and its audio cache (a mel run: no embeddings yet).
        run(
            [*common, "feature=mel", "model=linear", "trainer.epochs=1", f"hydra.run.dir={work / 'warmup'}"],
            work,
            cache,
        )
        recomputed = sweep("recomputed", "feature.transform.cache=false", common, work, cache)
        shutil.rmtree(cache / "embeddings", ignore_errors=True)
        cached = sweep("cached", "feature.transform.cache=true", common, work, cache)
    columns = ["job", "test/acc", "val/acc"]
    if not cached[columns].equals(recomputed[columns]):
        raise SystemExit(f"results differ:\ncached\n{cached[columns]}\nrecomputed\n{recomputed[columns]}")
    table = pd.DataFrame(
        {
            "job": cached["job"],
            "recomputed s": recomputed["seconds"].round(1),
            "cached s": cached["seconds"].round(1),
            "ratio": (recomputed["seconds"] / cached["seconds"]).round(1),
            "test/acc": cached["test/acc"],
        }
    )
    print(table.to_markdown(index=False))
    later = recomputed["seconds"][1:].mean() / cached["seconds"][1:].mean()
    print(
        f"\nsweep wall time: recomputed {recomputed.attrs['total']:.1f} s, cached {cached.attrs['total']:.1f} s "
        f"({recomputed.attrs['total'] / cached.attrs['total']:.1f}x); later jobs {later:.1f}x faster with the cache"
    )


if __name__ == "__main__":
    main()

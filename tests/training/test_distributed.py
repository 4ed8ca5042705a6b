"""Data-parallel training on CPU with gloo: two processes, one run directory, identical replicas."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from genre.training.distributed import state_fingerprint
from helpers import RUN_PY, TINY_RUN, run_cli

pytestmark = pytest.mark.slow  # every test here trains a model or spawns a process

ARGS = [*TINY_RUN, "model=cnn", "trainer.batch_size=4", "trainer.device=cpu"]


def _only_run_dir(cwd: Path) -> Path:
    runs = [p for p in (cwd / "outputs").glob("*/*") if p.is_dir()]
    assert len(runs) == 1, f"expected one output dir, got {runs}"
    return runs[0]


def _check_one_run_with_identical_replicas(run_dir: Path) -> None:
    events = list((run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    assert len(events) == 1 and events[0].parent == run_dir / "tensorboard", events
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["epochs_run"] == 1
    per_rank = metrics["final_state_sha256_per_rank"]
    # Each rank hashed its own final weights; rank 0's are also the ones saved in last.pt.
    assert len(per_rank) == 2 and per_rank[0] == per_rank[1]
    assert per_rank[0] == state_fingerprint(torch.load(run_dir / "last.pt", weights_only=True)["model"])


@pytest.mark.slow
def test_two_gloo_processes_train_one_run(tmp_path: Path, cache_dir: Path) -> None:
    result = run_cli([*ARGS, "trainer.devices=2"], tmp_path, cache_dir)
    assert result.stdout.count("test accuracy:") == 1
    run_dir = _only_run_dir(tmp_path)
    _check_one_run_with_identical_replicas(run_dir)
    log = (run_dir / "run.log").read_text()
    assert "Spawning 2 training processes" in log and "backend gloo" in log


@pytest.mark.slow
def test_torchrun_launch_trains_one_run(tmp_path: Path, cache_dir: Path) -> None:
    env = {**os.environ, "GENRE_CACHE": str(cache_dir), "HYDRA_FULL_ERROR": "0", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(RUN_PY), *ARGS]
    result = subprocess.run(command, cwd=tmp_path, env=env, text=True, capture_output=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    run_dir = _only_run_dir(tmp_path)
    _check_one_run_with_identical_replicas(run_dir)
    assert not list(tmp_path.glob(".hydra")) and not list(tmp_path.glob("*.log")), "rank 1 wrote nothing of its own"

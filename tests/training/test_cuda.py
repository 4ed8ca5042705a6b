"""The CUDA paths: mixed precision, and NCCL data-parallel training over two GPUs. Skipped without CUDA."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from genre.experiment import run_experiment
from helpers import TINY_RUN, compose_run, run_cli
from helpers.cuda import needs_gpus

pytestmark = pytest.mark.slow  # every test here trains a model or spawns a process


@needs_gpus()
@pytest.mark.parametrize("precision", ["auto", "16", "32"])
def test_mixed_precision_training_on_cuda(precision: str, tmp_path: Path, cache_dir: Path) -> None:
    cfg = compose_run(
        [
            *TINY_RUN,
            "model=cnn",
            "trainer.epochs=2",
            "trainer.device=cuda",
            f"trainer.precision={precision}",
            "augment=[gain,specaugment,mixup]",
        ],
        tmp_path,
        cache_dir,
    )
    value = run_experiment(cfg)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert value == metrics["val/acc"] and math.isfinite(metrics["test/loss"]) and math.isfinite(metrics["train/loss"])


@needs_gpus(2)
@pytest.mark.slow
def test_nccl_two_gpus_train_one_run_with_identical_replicas(tmp_path: Path, cache_dir: Path) -> None:
    run_cli(
        [*TINY_RUN, "model=cnn", "trainer.batch_size=4", "trainer.device=cuda", "trainer.devices=2"],
        tmp_path,
        cache_dir,
    )
    runs = [p for p in (tmp_path / "outputs").glob("*/*") if p.is_dir()]
    assert len(runs) == 1
    metrics = json.loads((runs[0] / "metrics.json").read_text())
    hashes = metrics["final_state_sha256_per_rank"]
    assert metrics["world_size"] == 2 and len(hashes) == 2 and hashes[0] == hashes[1]
    assert "backend nccl" in (runs[0] / "run.log").read_text()

"""Interrupting a run with SIGTERM mid-epoch and resuming it ends exactly like the uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from genre.run_files import Provenance
from helpers import REPO, TINY_DEMO, run_cli, run_script
from helpers.waiting import SAFETY_TIMEOUT, wait_for

# Dropout, SpecAugment, mixup and random gain all draw random numbers: the resumed run only matches
# if every generator state, the data order and the crops are restored. 4 crops per clip in batches
# of 4 give 12 steps per epoch, so a signal lands inside an epoch.
ARGS = [
    *TINY_DEMO,
    "feature=mel",
    "model=cnn",
    "model.channels=[8,16]",
    "trainer.segment_seconds=1.0",
    "trainer.crops_per_clip=4",
    "trainer.batch_size=4",
    "trainer.epochs=2",
    "trainer.progress=false",
    "augment=[gain,specaugment,mixup]",
    "seed=5",
]
COMPARED = (
    "val/acc",
    "val/loss",
    "val/segment_acc",
    "val/segment_loss",
    "test/acc",
    "test/loss",
    "test/segment_acc",
    "test/segment_loss",
    "train/loss",
    "train/acc",
)


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.mark.slow
def test_sigterm_mid_epoch_then_resume_matches_uninterrupted_run(tmp_path: Path, cache_dir: Path) -> None:
    reference = tmp_path / "reference"
    run_cli([*ARGS, f"hydra.run.dir={reference}"], tmp_path, cache_dir)

    interrupted = tmp_path / "interrupted"
    env = {**os.environ, "GENRE_CACHE": str(cache_dir), "HYDRA_FULL_ERROR": "0"}
    process = subprocess.Popen(
        [sys.executable, str(REPO / "run.py"), *ARGS, f"hydra.run.dir={interrupted}"],
        cwd=tmp_path,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    # last.pt first appears at the end of epoch 1; epoch 2's twelve steps start right after it.
    wait_for((interrupted / "last.pt").exists, "epoch 1 finished", process)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=SAFETY_TIMEOUT)
    assert process.returncode == 128 + signal.SIGTERM, stdout + stderr
    assert "Traceback" not in stderr and f"resume={interrupted}" in stderr
    assert not (interrupted / "metrics.json").exists()
    saved = torch.load(interrupted / "last.pt", weights_only=True)
    assert saved["position"]["epoch"] == 2 and 0 < saved["position"]["batch"] < 12, saved["position"]

    resumed = run_cli([f"resume={interrupted}"], tmp_path, cache_dir)
    assert "test accuracy:" in resumed.stdout
    assert not (tmp_path / "outputs").exists(), "the resumed run writes into its own directory only"
    expected, actual = _metrics(reference), _metrics(interrupted)
    assert actual["resumed"] and actual["best_epoch"] == expected["best_epoch"]
    for key in COMPARED:
        assert actual[key] == pytest.approx(expected[key], abs=1e-6), key
    # The original composed config and overrides are kept; the log continues in the same file.
    assert "resume=" not in (interrupted / ".hydra" / "overrides.yaml").read_text()
    assert (interrupted / "run.log").read_text().count("Run dir") == 2
    # provenance.json: the resumed launch, with the interrupted one kept before it.
    provenance = Provenance.read(interrupted, strict=True)
    assert provenance is not None and Path(str(provenance.resumed_from)) == interrupted / "last.pt"
    assert f"resume={interrupted}" in provenance.command and len(provenance.earlier) == 1
    assert f"hydra.run.dir={interrupted}" in provenance.earlier[0]["command"]
    # TensorBoard: one curve per tag with each epoch once, as in the uninterrupted run.
    curves = EventAccumulator(str(interrupted / "tensorboard"), size_guidance={"scalars": 0})
    curves.Reload()
    reference_curves = EventAccumulator(str(reference / "tensorboard"), size_guidance={"scalars": 0})
    reference_curves.Reload()
    for tag in ("train/loss", "val/acc", "val/segment_acc"):
        steps = [(e.step, e.value) for e in curves.Scalars(tag)]
        assert [s for s, _ in steps] == [1, 2], tag
        assert [v for _, v in steps] == pytest.approx([e.value for e in reference_curves.Scalars(tag)], abs=1e-6)


@pytest.mark.slow
def test_resume_refuses_a_directory_without_checkpoint_and_config_changes(tmp_path: Path, cache_dir: Path) -> None:
    # The script in process (no torch import): resuming through a real child process is the test above.
    result = run_script([f"resume={tmp_path / 'nothing'}"], tmp_path, cache_dir)
    assert result.returncode == 2 and "resume: " in result.stderr and "holds no last.pt" in result.stderr
    assert "Traceback" not in result.stderr

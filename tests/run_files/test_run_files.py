"""The typed run files: checkpoints load with weights_only (a crafted pickle is refused by predict and
resume, running nothing), metrics.json round-trips, and damaged or foreign files give one line."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from genre.cli.predict import main as predict_main
from genre.run_files import (
    CHECKPOINT_VERSION,
    METRICS_FILE,
    Checkpoint,
    CheckpointError,
    Position,
    RunMetrics,
)
from helpers import run_script
from helpers.records import make_metrics


class _Payload:
    """Unpickling this creates ``marker``: what a malicious checkpoint could do with any code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _crafted(path: Path, marker: Path) -> Path:
    torch.save({"version": CHECKPOINT_VERSION, "config": {}, "labels": ["a"], "model": _Payload(marker)}, path)
    assert not marker.exists()
    return path


def _checkpoint() -> Checkpoint:
    return Checkpoint(
        config={"model": {"_target_": "genre.models.CNN"}, "seed": 1},
        labels=["blues", "rock"],
        audio_cache="abc",
        model={"w": torch.randn(3, 2)},
        features={"mean": torch.zeros(4, 1)},
        optimizer={"state": {}, "param_groups": [{"lr": 0.1, "params": [0]}]},
        schedule={"steps": 3},
        scaler={},
        step=7,
        position=Position(epoch=2, batch=1, loss_sum=0.5, correct=3, seen=4),
        early_stopping={"best": 0.5},
        history=[{"epoch": 1, "val/acc": 0.5}],
        rng=[{"torch": torch.get_rng_state(), "python": (3, (1, 2), None)}],
        train_seconds=1.5,
        world_size=1,
        epoch=1,
        metrics={"val/acc": 0.5},
    )


def test_checkpoint_round_trips_through_weights_only_load(tmp_path: Path) -> None:
    original = _checkpoint()
    original.save(tmp_path / "c.pt")
    loaded = Checkpoint.load(tmp_path / "c.pt")
    assert loaded.position == original.position and loaded.labels == original.labels
    assert torch.equal(loaded.model["w"], original.model["w"]) and loaded.rng[0]["python"] == (3, (1, 2), None)
    assert loaded.history == original.history and loaded.config == original.config
    # What is on disk is plain data: a bare weights_only load reads it.
    assert torch.load(tmp_path / "c.pt", weights_only=True)["position"]["epoch"] == 2
    assert not list(tmp_path.glob(".*tmp*")), "no temporary file left behind"


def test_crafted_checkpoint_is_refused_without_running_its_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(CheckpointError, match="refused to load"):
        Checkpoint.load(_crafted(tmp_path / "best.pt", marker))
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"\x00" * 10, b"PK\x03\x04 truncated zip", b"not a checkpoint at all"])
def test_damaged_checkpoint_is_one_line(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "last.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as error:
        Checkpoint.load(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_random_bytes_are_one_line_whatever_the_unpickler_trips_on(tmp_path: Path) -> None:
    # Random bytes fail in many places of the unpickler (IndexError, KeyError, UnpicklingError...).
    for seed in range(40):
        path = tmp_path / f"random{seed}.pt"
        path.write_bytes(random.Random(seed).randbytes(4096))
        with pytest.raises(CheckpointError) as error:
            Checkpoint.load(path)
        assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_checkpoint_of_another_version_or_shape_is_refused(tmp_path: Path) -> None:
    torch.save({"version": CHECKPOINT_VERSION - 1, "model": {}}, tmp_path / "old.pt")
    with pytest.raises(CheckpointError, match="version"):
        Checkpoint.load(tmp_path / "old.pt")
    torch.save({"version": CHECKPOINT_VERSION, "model": {}}, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match="missing"):
        Checkpoint.load(tmp_path / "partial.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="not a genre checkpoint"):
        Checkpoint.load(tmp_path / "list.pt")


def test_predict_refuses_a_crafted_checkpoint_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "pwned"
    run_dir = tmp_path / "sent-to-me"
    run_dir.mkdir()
    _crafted(run_dir / "best.pt", marker)
    audio = tmp_path / "song.wav"
    audio.write_bytes(b"RIFF")
    assert predict_main([str(run_dir), str(audio)]) == 2
    err = capsys.readouterr().err
    assert "refused to load" in err and err.count("\n") == 1 and "Traceback" not in err
    assert not marker.exists()


@pytest.mark.slow
def test_resume_refuses_a_crafted_checkpoint_in_one_line(tmp_path: Path, cache_dir: Path) -> None:
    marker = tmp_path / "pwned"
    run_dir = tmp_path / "interrupted"
    run_dir.mkdir()
    _crafted(run_dir / "last.pt", marker)
    result = run_script([f"resume={run_dir}"], tmp_path, cache_dir)  # run.py in process: no torch import
    assert result.returncode == 2, result.stderr
    assert "refused to load" in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists()


def _metrics() -> RunMetrics:
    return make_metrics(
        scores={"val/acc": 0.5, "val/loss": 1.25, "test/acc": 0.75},
        objective="val/loss",
        objective_mode="min",
        best_epoch=3,
        epochs=4,
        epochs_run=4,
        n_parameters=10,
        train_seconds=2.0,
        n_clips={"train": 4, "val": 2, "test": 2},
        perf={"perf/clips_per_second": 100.0, "perf/data_wait_fraction": 0.25},
    )


def test_run_metrics_round_trip_and_objective(tmp_path: Path) -> None:
    metrics = _metrics()
    path = metrics.write(tmp_path)
    on_disk = json.loads(path.read_text())
    assert on_disk["val/loss"] == 1.25 and on_disk["perf/data_wait_fraction"] == 0.25 and on_disk["best_epoch"] == 3
    read = RunMetrics.read(tmp_path)
    assert read == metrics and read.objective_value == 1.25


def test_run_metrics_read_ignores_missing_half_written_and_incomplete_files(tmp_path: Path) -> None:
    assert RunMetrics.read(tmp_path) is None
    (tmp_path / METRICS_FILE).write_text('{"val/acc": 0.5, "best_ep')
    assert RunMetrics.read(tmp_path) is None
    (tmp_path / METRICS_FILE).write_text(json.dumps({"val/acc": 0.5}))
    assert RunMetrics.read(tmp_path) is None

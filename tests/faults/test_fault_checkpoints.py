"""Damaged checkpoints (truncated, empty, random bytes) and bad command lines: one line and exit status 2
from predict and from resume, never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from genre.cli.predict import main as predict_main
from genre.experiment.resume import resume_config
from genre.run_files import LAST_CHECKPOINT, CheckpointError
from helpers import TINY_RUN, run_cli, run_script

DAMAGE = {
    "empty": lambda good: b"",
    "truncated": lambda good: good[: len(good) // 2],
    "random": lambda good: os.urandom(4096),
}


@pytest.fixture(scope="module")
def good_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bytes of a valid torch zip file (what a truncated checkpoint starts with)."""
    path = tmp_path_factory.mktemp("good") / "x.pt"
    torch.save({"model": {"w": torch.zeros(1000)}, "version": 2}, path)
    return path.read_bytes()


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_predict_with_a_damaged_checkpoint_is_one_line(
    damage: str, good_bytes: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "best.pt").write_bytes(DAMAGE[damage](good_bytes))
    assert predict_main([str(tmp_path), str(tmp_path / "song.wav")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {tmp_path / 'best.pt'}: ")


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_resume_from_a_damaged_checkpoint_is_one_line(damage: str, good_bytes: bytes, tmp_path: Path) -> None:
    (tmp_path / LAST_CHECKPOINT).write_bytes(DAMAGE[damage](good_bytes))
    from omegaconf import OmegaConf

    with pytest.raises(CheckpointError, match=rf"^{tmp_path / LAST_CHECKPOINT}: ") as caught:
        resume_config(OmegaConf.create({"resume": str(tmp_path)}))
    assert "\n" not in str(caught.value)


@pytest.mark.slow
def test_the_command_line_gives_one_line_for_bad_values_damaged_checkpoints_and_unwritable_dirs(
    tmp_path: Path, cache_dir: Path, good_bytes: bytes
) -> None:
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / LAST_CHECKPOINT).write_bytes(good_bytes[:100])
    for args, start in (
        (["trainer.epochs=abc"], "error: trainer.epochs: 'abc' is not a whole number"),
        ([f"resume={damaged}"], f"error: {damaged / LAST_CHECKPOINT}: not a readable checkpoint"),
        (["hydra.run.dir=/proc/genre-run"], "error: hydra.run.dir: cannot create '/proc/genre-run'"),
    ):
        # The first in a real child process; the others run the same script in process (no torch import each).
        if args == ["trainer.epochs=abc"]:
            result = run_cli([*TINY_RUN, *args], tmp_path, cache_dir, check=False)
        else:
            result = run_script([*TINY_RUN, *args], tmp_path, cache_dir)
        assert result.returncode == 2, result.stderr[-2000:]
        assert result.stderr.strip().splitlines()[-1].startswith(start), result.stderr[-2000:]
        assert "Traceback" not in result.stderr

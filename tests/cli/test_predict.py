"""``python -m genre.cli.predict`` on a trained tiny demo run: the run's own held-back test clips get the
run's test accuracy, a corrupt file is reported and skipped, and every output format is well-formed."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from genre.cli.predict import main
from genre.data.prepare import prepare_data
from genre.experiment import run_experiment
from helpers import REPO, TINY_RUN, compose_run
from helpers.waiting import SAFETY_TIMEOUT

pytestmark = pytest.mark.slow  # every test here trains a model or spawns a process


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    run_dir = tmp_path_factory.mktemp("predict-run")
    run_experiment(compose_run([*TINY_RUN, "feature=mfcc", "model=cnn", "trainer.epochs=3"], run_dir, cache_dir))
    return run_dir


def _test_clips(run_dir: Path, cache_dir: Path) -> list[Path]:
    """The run's held-back test clips, recomputed from its stored config (the split is seeded)."""
    config = OmegaConf.create(torch.load(run_dir / "best.pt", weights_only=True)["config"])
    return [Path(p) for p in prepare_data(config.dataset, cache_dir, progress=False).splits["test"].paths]


def test_predicts_held_back_clips_with_the_runs_test_accuracy(
    trained_run: Path, cache_dir: Path, tmp_path: Path
) -> None:
    clips = _test_clips(trained_run, cache_dir)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt this is not audio")
    env = {**os.environ, "GENRE_CACHE": str(cache_dir)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "genre.cli.predict",
            str(trained_run),
            *map(str, clips),
            str(broken),
            "--format",
            "json",
            "--top-k",
            "2",
        ],
        cwd=REPO,
        env=env,
        text=True,
        capture_output=True,
        timeout=SAFETY_TIMEOUT,
    )
    assert result.returncode == 1, result.stderr  # some files skipped, the rest predicted
    assert f"skipped {broken}" in result.stderr and "Traceback" not in result.stderr
    predictions = json.loads(result.stdout)
    assert [p["file"] for p in predictions] == [str(c) for c in clips]
    correct = [p["predictions"][0]["genre"] == Path(p["file"]).parent.name for p in predictions]
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert sum(correct) / len(correct) == pytest.approx(metrics["test/acc"], abs=0.02)
    for p in predictions:
        probabilities = [g["probability"] for g in p["predictions"]]
        assert len(probabilities) == 2 and probabilities[0] >= probabilities[1] > 0 and sum(probabilities) <= 1 + 1e-6


def test_csv_table_folders_and_segments(
    trained_run: Path, cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clips = _test_clips(trained_run, cache_dir)[:2]
    folder = tmp_path / "music" / "nested"
    folder.mkdir(parents=True)
    for clip in clips:
        (folder / clip.name).symlink_to(clip)
    (folder / "notes.txt").write_text("not audio: ignored in folders")
    assert main([str(trained_run / "best.pt"), str(tmp_path / "music"), "--format", "csv", "--top-k", "3"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 2 * 3 and {Path(r["file"]).name for r in rows} == {c.name for c in clips}
    assert [r["rank"] for r in rows[:3]] == ["1", "2", "3"]
    assert main([str(trained_run), str(clips[0]), "--aggregate", "none", "--top-k", "1"]) == 0
    table = capsys.readouterr().out.splitlines()
    # 4-s clips in 2-s segments: a header and one row per segment, with its time span.
    assert table[0].split()[:2] == ["file", "#1"] and len(table) == 3 and "[2-4 s]" in table[2]
    assert main([str(tmp_path / "no-run"), str(clips[0])]) == 2
    assert "no checkpoint" in capsys.readouterr().err

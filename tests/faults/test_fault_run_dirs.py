"""One run per run dir: two runs never share a directory, whether chosen by the user or the default
timestamped one that two runs started in the same second get."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import read_write

from genre.core.errors import ConfigError
from genre.run_files.directory import claim
from genre.sweeps.jobs.callbacks import RunDirectoryGuard
from genre.sweeps.jobs.status import JobStatus
from helpers import REPO, TINY_RUN, compose_run, run_cli, run_script
from helpers.waiting import wait_for


def test_a_held_or_used_directory_is_refused_and_a_default_one_gets_a_suffix(tmp_path: Path) -> None:
    first = claim(tmp_path / "run", key="hydra.run.dir")
    with pytest.raises(ConfigError, match=r"^hydra.run.dir: .* in use by another run"):
        claim(tmp_path / "run", key="hydra.run.dir")  # held (the lock is per open file, so this process works)
    assert claim(tmp_path / "run", key="hydra.run.dir", default=True).directory == tmp_path / "run-1"
    (tmp_path / "run" / "metrics.json").write_text("{}")
    first.release()
    with pytest.raises(ConfigError, match=r"holds another run.*resume="):
        claim(tmp_path / "run", key="hydra.run.dir")
    assert claim(tmp_path / "run", key="hydra.run.dir", resuming=True).directory == tmp_path / "run"


def test_two_runs_composed_in_the_same_second_get_two_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    guard = RunDirectoryGuard()
    cfg = compose_run(TINY_RUN, tmp_path / "unused", tmp_path / "cache")
    default = str(cfg.hydra.run.dir)  # outputs/<date>/<time>, this second's
    guard.on_run_start(cfg)
    assert cfg.hydra.run.dir == default
    (Path(default) / "status.json").write_text("{}")  # the first run has started
    second = compose_run(TINY_RUN, tmp_path / "unused", tmp_path / "cache")
    with read_write(second.hydra.run):
        second.hydra.run.dir = default  # composed in the same second
    RunDirectoryGuard().on_run_start(second)
    assert second.hydra.run.dir == f"{default}-1"


@pytest.mark.slow
def test_a_second_run_into_a_run_dir_is_refused_and_leaves_the_first_run_intact(
    tmp_path: Path, cache_dir: Path
) -> None:
    # A finished run's dir (as a run leaves it; writing it by hand saves training one).
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    first = {
        ".hydra/config.yaml": "model: cnn\n",
        ".hydra/overrides.yaml": "- model=cnn\n",
        "metrics.json": "{}",
        "status.json": json.dumps({"status": "completed"}),
        "run.log": "first run\n",
    }
    for name, text in first.items():
        (run_dir / name).write_text(text)
    second = run_script(  # run.py in process: no torch import (a real child process refuses below)
        [*TINY_RUN, "model=fcn", f"hydra.run.dir={run_dir}"], tmp_path, cache_dir
    )
    assert second.returncode == 2
    assert second.stderr.strip().splitlines()[-1].startswith(f"error: hydra.run.dir: '{run_dir}' holds another run")
    assert {name: (run_dir / name).read_text() for name in first} == first  # not a byte changed


@pytest.mark.slow
def test_a_run_dir_in_use_by_a_live_run_is_refused(tmp_path: Path, cache_dir: Path) -> None:
    run_dir = tmp_path / "run"
    env = {**os.environ, "GENRE_CACHE": str(cache_dir), "HYDRA_FULL_ERROR": "0"}
    first = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "run.py"),
            *TINY_RUN,
            "model=cnn",
            "trainer.epochs=300",
            f"hydra.run.dir={run_dir}",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for((run_dir / "status.json").exists, "the first run wrote its status", first)
        # run.py in process (no torch import) beside the live child process that holds the dir.
        second = run_script([*TINY_RUN, f"hydra.run.dir={run_dir}", f"resume={run_dir}"], tmp_path, cache_dir)
        assert second.returncode == 2 and "in use by another run that is still going" in second.stderr
    finally:
        first.kill()
        first.wait()


def _failed_run_dir(run_dir: Path) -> None:
    """The dir of a run refused at set-up, as run.py leaves it: its config, log and a failed status."""
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text("model: cnn\n")
    (run_dir / "run.log").write_text("refused\n")
    status = JobStatus.start()
    status.finish(ConfigError("dataset.split.folds", "too few clips"))
    status.write(run_dir)


def test_a_run_refused_before_training_leaves_its_dir_free_but_one_with_results_keeps_it(tmp_path: Path) -> None:
    refused = tmp_path / "refused"
    _failed_run_dir(refused)
    (refused / "fold0").mkdir()  # a cross-validation fold that never trained
    claim(refused, key="hydra.run.dir").release()
    trained = tmp_path / "trained"
    _failed_run_dir(trained)
    (trained / "fold0").mkdir()
    (trained / "fold0" / "metrics.json").write_text("{}")  # a fold that finished before a later one failed
    with pytest.raises(ConfigError, match="holds another run"):
        claim(trained, key="hydra.run.dir")


@pytest.mark.slow
def test_a_refused_cross_validation_job_is_recorded_failed_and_the_same_command_says_why_again(
    tmp_path: Path, cache_dir: Path
) -> None:
    run_dir = tmp_path / "cv"
    # TINY_RUN's demo corpus has 4 clips per genre: 5 folds are refused when the folds are set up.
    command = [*TINY_RUN, "cv.folds=5", f"hydra.run.dir={run_dir}"]
    first = run_cli(command, tmp_path, cache_dir, check=False)
    line = first.stderr.strip().splitlines()[-1]
    assert first.returncode == 2 and line.startswith("error: dataset.split.folds: "), first.stderr[-3000:]
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "failed" and status["error"] == line.removeprefix("error: ")
    again = run_script(command, tmp_path, cache_dir)  # the same script, in process: no second torch import
    assert again.returncode == 2 and again.stderr.strip().splitlines()[-1] == line, again.stderr[-3000:]

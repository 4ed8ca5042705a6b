"""Sweeps under faults: a joblib job SIGKILLed mid-run (as the OOM killer does) fails alone -- its sibling
completes, the summary is written with the killed job marked -- and a study URL's password never
reaches the sweep's output or its jobs' files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from helpers import REPO, TINY_RUN, run_cli
from helpers.waiting import SAFETY_TIMEOUT, wait_for

pytestmark = pytest.mark.slow


def _running_pid(run_dir: Path) -> int | None:
    try:
        status = json.loads((run_dir / "status.json").read_text())
    except (OSError, ValueError):
        return None
    return int(status["pid"]) if status["status"] == "running" else None


def _side_by_side(sweep: Path) -> bool:
    """Whether job 0 and job 1 both run, job 1 past its set-up; fails if job 0 ended first."""
    first = sweep / "0" / "status.json"
    assert _running_pid(sweep / "0") is not None or not first.exists(), "job 0 ended before job 1 got going"
    return (
        _running_pid(sweep / "0") is not None
        and _running_pid(sweep / "1") is not None
        and (sweep / "1" / "tensorboard").is_dir()
    )


def test_a_joblib_job_killed_mid_run_fails_alone_and_the_sweep_writes_its_summary(
    tmp_path: Path, cache_dir: Path
) -> None:
    sweep = tmp_path / "sweep"
    env = {**os.environ, "GENRE_CACHE": str(cache_dir), "HYDRA_FULL_ERROR": "0"}
    command = [
        sys.executable,
        str(REPO / "run.py"),
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        *TINY_RUN,
        "model=cnn",
        "trainer.epochs=2,300",
        f"hydra.sweep.dir={sweep}",
    ]
    with open(tmp_path / "out.txt", "w") as out:
        process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        # Kill the long job while both jobs are running.
        wait_for(
            lambda: _side_by_side(sweep),
            f"both jobs ran side by side (output: {tmp_path / 'out.txt'})",
            process,
        )
        os.kill(_running_pid(sweep / "1"), signal.SIGKILL)
        process.wait(timeout=SAFETY_TIMEOUT)
    finally:
        process.kill()
    output = (tmp_path / "out.txt").read_text()
    assert process.returncode == 0, output[-3000:]
    summary = pd.read_csv(sweep / "summary.csv").set_index("job")
    assert summary.loc[0, "status"] == "completed" and 0.0 <= summary.loc[0, "test/acc"] <= 1.0
    assert summary.loc[1, "status"] == "killed"
    assert "Job 1" in output and "was killed" in output


def test_a_study_url_password_is_masked_in_logs_and_job_files(tmp_path: Path, cache_dir: Path) -> None:
    from genre.sweeps.optuna.storage_url import mask_files, masked

    secret = "s3cret-Pa55"
    url = f"postgresql://genre:{secret}@127.0.0.1:1/genre"
    assert masked(url) == "postgresql://genre:***@127.0.0.1:1/genre"
    # Jobs copy their command line and configs into .hydra files (an Optuna sweep's storage among them);
    # none may keep the password. (Here a grid sweep, which has no storage: a URL in any key is masked.)
    sweep = tmp_path / "sweep"
    # The job fails its config check at once (no training needed): Hydra has written its files by then.
    run_cli(
        ["-m", *TINY_RUN, "trainer.epochs=abc", f"+study_url={url}", f"hydra.sweep.dir={sweep}"], tmp_path, cache_dir
    )
    written = [path for path in sweep.rglob("*.yaml")]
    assert any("***@127.0.0.1" in path.read_text() for path in written)
    assert not [path for path in written if secret in path.read_text()]
    mask_files(written)  # idempotent on masked files


def test_an_unreachable_study_database_is_one_line(tmp_path: Path, cache_dir: Path) -> None:
    result = run_cli(
        [
            "-m",
            "hparams_search=optuna",
            *TINY_RUN,
            "hydra.sweeper.n_trials=1",
            "hydra.sweeper.storage=postgresql://genre:hunter2@127.0.0.1:1/genre",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
        ],
        tmp_path,
        cache_dir,
        check=False,
    )
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "error: hydra.sweeper.storage: cannot reach the study database postgresql://genre:***@127.0.0.1:1/genre ("
    )
    assert "Traceback" not in result.stderr
    assert "hunter2" not in result.stdout + result.stderr

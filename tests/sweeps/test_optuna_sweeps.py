"""The Optuna sweeper end to end on the tiny demo corpus: pruning across joblib workers, a killed sweep's
trial recovered by the next run, a two-objective search, and the study in optuna-dashboard seen through
headless Chromium."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import optuna
import pandas as pd
import pytest
from omegaconf import OmegaConf
from optuna.trial import TrialState

from helpers import REPO, TINY_RUN, run_cli
from helpers.services import headless_chromium
from helpers.waiting import SAFETY_TIMEOUT, wait_for

pytestmark = pytest.mark.slow

STUDY = "genre-demo"
CHEAP = [*TINY_RUN, "model=cnn", "feature=mel"]


def _storage(cwd: Path, name: str = STUDY) -> str:
    return f"sqlite:///{cwd / 'optuna' / (name + '.db')}"


def _is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


@pytest.fixture(scope="module")
def pruned_search(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    """A 2-trial search on two joblib workers, both trials started at once: trial 0 trains 1 epoch, trial 1
    would train 3 but the threshold pruner (val/acc can never reach 2) stops it once it may, at epoch 2."""
    work = tmp_path_factory.mktemp("pruned")
    (work / "optuna").mkdir()
    study = optuna.create_study(study_name=STUDY, storage=_storage(work), direction="maximize")
    for epochs in (1, 3):
        study.enqueue_trial({"trainer.epochs": epochs})
    run_cli(
        [
            "-m",
            "hparams_search=optuna",
            "hydra.sweeper.params=null",
            *CHEAP,
            "trainer.epochs=choice(1,3)",
            "hydra.sweeper.n_trials=2",
            "hydra.sweeper.n_jobs=2",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
            "hydra/sweeper/pruner=threshold",
            "hydra.sweeper.pruner.lower=2.0",
            # A pruned trial is no failure: with no failure allowed the search must still succeed.
            "hydra.sweeper.max_failure_rate=0.0",
            f"hydra.sweep.dir={work / 'sweep'}",
        ],
        work,
        cache_dir,
    )
    return work


def test_a_pruned_trial_is_pruned_with_its_last_epoch_and_ends_cleanly(pruned_search: Path) -> None:
    trials = optuna.load_study(study_name=STUDY, storage=_storage(pruned_search)).trials
    assert [(t.params["trainer.epochs"], t.state) for t in trials] == [(1, TrialState.COMPLETE), (3, TrialState.PRUNED)]
    pruned = trials[1]
    assert pruned.last_step == 2 and sorted(pruned.intermediate_values) == [1, 2]
    assert sorted(trials[0].intermediate_values) == [1]
    sweep = pruned_search / "sweep"
    summary = pd.read_csv(sweep / "summary.csv").set_index("trial")
    job_dir = Path(summary.loc[1, "output_dir"])
    status = json.loads((job_dir / "status.json").read_text())
    assert status["status"] == "pruned" and status["pruned_epoch"] == 2
    assert status["detail"].startswith("pruned at epoch 2") and status["error"] is None
    # Its checkpoints are kept: last.pt is the pruned epoch's.
    assert (job_dir / "last.pt").is_file() and (job_dir / "best.pt").is_file()
    assert not (job_dir / "metrics.json").exists()
    assert summary.loc[1, "status"] == "pruned" and summary.loc[1, "epochs_done"] == 2
    assert summary.loc[1, "detail"].startswith("pruned at epoch 2")
    assert summary.loc[0, "status"] == "completed"
    markdown = (sweep / "summary.md").read_text()
    assert "pruned at epoch 2" in markdown and "## Failed jobs" not in markdown
    # Two joblib workers: each trial's job ran in its own process, on its half of the cores (asynchronous
    # trials launch one job at a time, yet two run at once).
    assert status["pid"] != json.loads((Path(summary.loc[0, "output_dir"]) / "status.json").read_text())["pid"]
    threads = max(1, len(os.sched_getaffinity(0)) // 2)
    for trial in (0, 1):
        log = (Path(summary.loc[trial, "output_dir"]) / "run.log").read_text()
        assert f"Job environment: torch threads {threads}\n" in log
    for name in ("optuna_history.png", "optuna_intermediate_values.png", "optuna_parallel_coordinate.png"):
        assert _is_png(sweep / name), name


def test_a_killed_sweeps_running_trial_is_failed_and_retried_by_the_next_run(tmp_path: Path, cache_dir: Path) -> None:
    heartbeats = ["hydra.sweeper.heartbeat_interval=1", "hydra.sweeper.grace_period=2"]
    first = tmp_path / "first"
    command = [
        sys.executable,
        str(REPO / "run.py"),
        "-m",
        "hparams_search=optuna",
        *CHEAP,
        "trainer.epochs=500",
        "hydra.sweeper.n_trials=1",
        *heartbeats,
        f"hydra.sweep.dir={first}",
    ]
    env = {**os.environ, "GENRE_CACHE": str(cache_dir), "HYDRA_FULL_ERROR": "0"}
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        # The trial is running and has trained an epoch.
        wait_for((first / "0" / "last.pt").exists, "the trial finished an epoch", process)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    study = optuna.load_study(study_name=STUDY, storage=_storage(tmp_path))
    assert [t.state for t in study.trials] == [TrialState.RUNNING]
    killed = study.trials[0]

    time.sleep(2)  # past the grace period
    result = run_cli(
        [
            "-m",
            "hparams_search=optuna",
            *CHEAP,
            "hydra.sweeper.n_trials=1",
            *heartbeats,
            "hydra.sweeper.retry_failed=1",
            # The killed trial ran with trainer.epochs=500: rerunning it with 1 is a change of setup, opted into.
            "hydra.sweeper.on_setup_change=continue",
            f"hydra.sweep.dir={tmp_path / 'second'}",
        ],
        tmp_path,
        cache_dir,
    )
    trials = optuna.load_study(study_name=STUDY, storage=_storage(tmp_path)).trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]
    assert trials[1].params == killed.params and trials[1].system_attrs["failed_trial"] == killed.number
    assert "marked FAIL" in result.stdout + result.stderr
    assert "override.trainer.epochs: 500 -> 1" in result.stdout + result.stderr  # the change is reported


def test_a_study_resumes_only_with_its_own_setup_and_its_trials_add_up(tmp_path: Path, cache_dir: Path) -> None:
    def search(sweep: str, *extra: str) -> subprocess.CompletedProcess:
        arguments = ["-m", "hparams_search=optuna", "hydra.sweeper.params=null", *CHEAP, *extra]
        arguments += ["optimizer.lr=tag(log,interval(1e-3,1e-2))", "hydra.sweeper.n_trials=2"]
        return run_cli([*arguments, f"hydra.sweep.dir={tmp_path / sweep}"], tmp_path, cache_dir, check=False)

    def study() -> optuna.Study:
        return optuna.load_study(study_name=STUDY, storage=_storage(tmp_path))

    assert search("first").returncode == 0
    refused = search("second", "trainer.epochs=2")  # the same study, with 2-epoch trials
    assert refused.returncode == 2, refused.stderr
    (line,) = refused.stderr.splitlines()
    assert line.startswith(f"error: hydra.sweeper.study_name: study {STUDY} was made with another setup")
    assert "override.trainer.epochs: 1 -> 2" in line and "hydra.sweeper.on_setup_change=continue" in line
    assert len(study().trials) == 2  # nothing was added
    resumed = search("third")  # the first command again: it resumes
    assert resumed.returncode == 0, resumed.stderr
    trials = study().trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert study().metric_names == ["val/acc"]
    for trial, sweep in zip(trials, ["first", "first", "third", "third"]):
        run_dir = Path(trial.user_attrs["run_dir"])
        assert run_dir.parent == tmp_path / sweep and (run_dir / "status.json").is_file()
    assert _is_png(tmp_path / "third" / "optuna_history.png")


def test_a_two_objective_search_marks_the_pareto_optimal_jobs(tmp_path: Path, cache_dir: Path) -> None:
    _ = run_cli(
        [
            "-m",
            "hparams_search=optuna_pareto",
            "hydra.sweeper.params=null",
            *TINY_RUN,
            "feature=mel",
            "model=choice(cnn,fcn)",
            "optimizer.lr=tag(log,interval(1e-3,1e-2))",
            "hydra.sweeper.n_trials=3",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
        ],
        tmp_path,
        cache_dir,
    )
    study = optuna.load_study(study_name="genre-demo-pareto", storage=_storage(tmp_path, "genre-demo-pareto"))
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3
    summary = pd.read_csv(tmp_path / "sweep" / "summary.csv").set_index("trial")
    for trial in study.trials:
        assert summary.loc[trial.number, "val/acc"] == pytest.approx(trial.values[0])
        assert summary.loc[trial.number, "n_parameters"] == trial.values[1]
    assert sorted(summary.index[summary["pareto"]]) == sorted(t.number for t in study.best_trials)
    results = OmegaConf.load(tmp_path / "sweep" / "optimization_results.yaml")
    assert sorted(s.trial for s in results.solutions) == sorted(t.number for t in study.best_trials)
    assert _is_png(tmp_path / "sweep" / "optuna_pareto_front.png")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    """Whether ``url`` answers (a server still starting refuses the connection)."""
    try:
        urllib.request.urlopen(url, timeout=60).read()
    except OSError:
        return False
    return True


@pytest.fixture
def dashboard(pruned_search: Path) -> Iterator[str]:
    """optuna-dashboard on loopback, serving the pruned search's study; yields its address."""
    executable = Path(sys.executable).with_name("optuna-dashboard")
    port = _free_port()
    server = subprocess.Popen(
        [str(executable), _storage(pruned_search), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(f"{url}/api/studies"), "optuna-dashboard answered", server)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=SAFETY_TIMEOUT)


def test_the_dashboard_shows_the_study_in_headless_chromium(dashboard: str, tmp_path: Path) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    with headless_chromium(1400, 1000) as driver:
        driver.get(f"{dashboard}/dashboard")
        # The study list is drawn by the page's JavaScript from the dashboard's API.
        WebDriverWait(driver, 60).until(lambda d: STUDY in d.find_element("tag name", "body").text)
        driver.get(f"{dashboard}/dashboard/studies/1/trials")
        WebDriverWait(driver, 60).until(lambda d: "Trial 1" in d.find_element("tag name", "body").text)
        text = driver.find_element("tag name", "body").text
        assert STUDY in text
        assert "Trial 0" in text and "Trial 1" in text and "Trial 2" not in text  # the study's 2 trials
        assert "PRUNED" in text.upper()
        driver.save_screenshot(str(tmp_path / "dashboard.png"))
        assert _is_png(tmp_path / "dashboard.png")

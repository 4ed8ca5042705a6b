"""Sweeps end to end on the tiny demo corpus: summaries, Optuna search and resume, failed trials,
parallel launchers, and several sweep processes sharing one PostgreSQL-backed study."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pandas as pd
import pytest
from omegaconf import OmegaConf
from optuna.trial import TrialState
from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
from tensorboard.plugins.hparams import metadata as hparams_metadata

from genre.cli.report import main as report_main
from helpers import REPO, TINY_RUN, run_cli
from helpers.services import postgres_server
from helpers.waiting import SAFETY_TIMEOUT, wait_for

pytestmark = pytest.mark.slow

STUDY = "genre-demo"  # the preset's study_name for dataset=demo
METRICS = ("val/acc", "val/loss", "test/acc", "test/loss")
# Cheap trials for Optuna tests: the small CNN on the two cheapest features.
CHEAP_SEARCH = [*TINY_RUN, "model=cnn", "feature=choice(mel,mfcc)"]


def _sweep(
    args: list[str],
    cwd: Path,
    cache: Path,
    name: str = "sweep",
    check: bool = True,
) -> tuple[subprocess.CompletedProcess, Path]:
    sweep_dir = cwd / name
    return run_cli(["-m", *args, f"hydra.sweep.dir={sweep_dir}"], cwd, cache, check=check), sweep_dir


def _env(cache: Path) -> dict[str, str]:
    return {**os.environ, "GENRE_CACHE": str(cache), "HYDRA_FULL_ERROR": "0"}


def _job_dirs(sweep_dir: Path) -> list[Path]:
    return sorted((p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))


def _overrides(run_dir: Path) -> dict[str, str]:
    pairs = (str(item).partition("=") for item in OmegaConf.load(run_dir / ".hydra" / "overrides.yaml"))
    return {key: value for key, _, value in pairs}


def _table_rows(stdout: str) -> list[str]:
    """The data rows of the jobs table printed at the end of a sweep (the first markdown table; the
    configurations table follows it)."""
    block: list[str] = []
    for line in stdout.splitlines():
        if line.startswith("|"):
            block.append(line)
        elif block:
            break
    return block[2:]  # header and separator


def _study(cwd: Path, name: str = STUDY) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{cwd / 'optuna' / (name + '.db')}")


def _is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_grid_sweep_ends_with_a_summary_of_the_jobs_own_metrics(
    tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    result, sweep = _sweep([*TINY_RUN, "feature=mel,chroma", "model=cnn,fcn"], tmp_path, cache_dir)
    jobs = _job_dirs(sweep)
    assert len(jobs) == 4
    summary = pd.read_csv(sweep / "summary.csv")
    assert len(summary) == 4 and set(summary["status"]) == {"completed"}
    seen = set()
    for row in summary.to_dict("records"):
        run_dir = Path(row["output_dir"])
        metrics = json.loads((run_dir / "metrics.json").read_text())
        overrides = _overrides(run_dir)
        assert (overrides["feature"], overrides["model"]) == (row["feature"], row["model"])
        seen.add((row["feature"], row["model"]))
        for key in METRICS:
            assert row[key] == pytest.approx(metrics[key]), key
        assert (row["n_parameters"], row["epochs"]) == (metrics["n_parameters"], metrics["epochs"])
        assert row["wall_seconds"] > 0 and row["job"] == int(run_dir.name)
    assert seen == {(f, m) for f in ("mel", "chroma") for m in ("cnn", "fcn")}
    # Best first, by the objective (val/acc).
    assert list(summary["val/acc"]) == sorted(summary["val/acc"], reverse=True)
    # The printed table and summary.md list the same jobs in the same order.
    printed = _table_rows(result.stdout)
    assert len(printed) == 4
    assert [int(line.split("|")[1]) for line in printed] == list(summary["job"])
    markdown = (sweep / "summary.md").read_text()
    assert _table_rows(markdown) == printed
    # The sweep's last printed line names the best configuration, the one configurations.csv ranks first.
    best = pd.read_csv(sweep / "configurations.csv").iloc[0]
    last = result.stdout.rstrip().splitlines()[-1]
    assert last.startswith(f"Best configuration, chosen on val/acc: feature={best['feature']}, model={best['model']} ")
    assert _is_png(sweep / "heatmap.png") and (sweep / "heatmap.pdf").read_bytes()[:5] == b"%PDF-"
    assert (sweep / "summary.tex").read_text().count(r"\midrule") == 1

    # `tensorboard --logdir <sweep dir>` finds every job in HPARAMS with its swept values (and seed: the
    # fixed overrides of TINY_RUN are no columns) and its scores as the metrics, logged once.
    mux = EventMultiplexer().AddRunsFromDirectory(str(sweep))
    mux.Reload()
    sessions = {
        run: tags
        for run, tags in mux.PluginRunToTagToContent("hparams").items()
        if "_hparams_/session_start_info" in tags
    }
    assert len(sessions) == 4
    for run, tags in sessions.items():
        run_dir = sweep / Path(run).parts[0]
        info = hparams_metadata.parse_session_start_info_plugin_data(tags["_hparams_/session_start_info"])
        overrides = _overrides(run_dir)
        assert set(info.hparams) == {"feature", "model", "seed"}
        assert info.hparams["feature"].string_value == overrides["feature"]
        assert info.hparams["model"].string_value == overrides["model"]
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert mux.Scalars(run, "test/acc")[-1].value == pytest.approx(metrics["test/acc"])
        assert not [tag for tag in mux.Runs()[run]["scalars"] if tag.startswith("hparams/")]

    # The report rebuilds the same summary from the run folders alone.
    before = summary.copy()
    for name in ("summary.csv", "summary.md", "heatmap.png"):
        (sweep / name).unlink()
    assert report_main([str(sweep)]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(sweep / "summary.csv"), before)
    assert _table_rows(capsys.readouterr().out) == printed and _is_png(sweep / "heatmap.png")


def test_report_marks_a_job_killed_midway(tmp_path: Path, cache_dir: Path) -> None:
    sweep = tmp_path / "sweep"
    command = [
        sys.executable,
        str(REPO / "run.py"),
        "-m",
        *TINY_RUN,
        "model=cnn",
        "trainer.epochs=1,500",
        f"hydra.sweep.dir={sweep}",
    ]
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=_env(cache_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        # Kill the sweep once its second (long) job has finished an epoch.
        wait_for((sweep / "1" / "last.pt").exists, "the second job finished an epoch", process)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    report = subprocess.run(
        [sys.executable, "-m", "genre.cli.report", str(sweep)],
        cwd=REPO,
        text=True,
        capture_output=True,
        timeout=SAFETY_TIMEOUT,
    )
    assert report.returncode == 0, report.stderr
    summary = pd.read_csv(sweep / "summary.csv").set_index("job")
    assert summary.loc[0, "status"] == "completed"
    metrics = json.loads((sweep / "0" / "metrics.json").read_text())
    assert summary.loc[0, "test/acc"] == pytest.approx(metrics["test/acc"])
    assert summary.loc[1, "status"] == "killed"
    assert summary.loc[1, "epochs_done"] >= 1 and pd.isna(summary.loc[1, "test/acc"])
    assert "killed after" in (sweep / "summary.md").read_text()


def test_grid_sweep_goes_on_past_failed_jobs_and_records_why(tmp_path: Path, cache_dir: Path) -> None:
    # Jobs 0 and 1 raise while building the model (dropout 2.0), job 2's loss becomes NaN in epoch 2
    # (lr 1e30), job 3 trains.
    result, sweep = _sweep(
        [*TINY_RUN, "model=cnn", "trainer.epochs=2", "model.dropout=2.0,0.3", "optimizer.lr=1e30,1e-3"],
        tmp_path,
        cache_dir,
    )
    summary = pd.read_csv(sweep / "summary.csv").set_index("job")
    assert list(summary.loc[[0, 1, 2, 3], "status"]) == ["failed", "failed", "failed", "completed"]
    assert summary.loc[0, "error"].startswith("model.dropout: 2.0 is outside")  # one line naming the config key
    assert summary.loc[2, "error"].startswith("NonFiniteLossError") and "nan" in summary.loc[2, "error"]
    assert pd.isna(summary.loc[3, "error"]) and 0.0 <= summary.loc[3, "val/acc"] <= 1.0
    status = json.loads((sweep / "2" / "status.json").read_text())
    assert status["status"] == "failed" and "Traceback" in status["traceback"]
    assert "NonFiniteLossError" in status["traceback"]
    assert len(_table_rows(result.stdout)) == 4
    assert "## Failed jobs" in (sweep / "summary.md").read_text()


def test_optuna_search_writes_results_and_plots_and_resumes(tmp_path: Path, cache_dir: Path) -> None:
    args = ["hparams_search=optuna", "hydra.sweeper.n_trials=6", *CHEAP_SEARCH]
    _, first = _sweep(args, tmp_path, cache_dir, name="first")
    study = _study(tmp_path)
    assert len(study.trials) == 6
    results = OmegaConf.load(first / "optimization_results.yaml")
    assert results.best_value == pytest.approx(max(t.value for t in study.trials))
    assert results.best_params == study.best_params
    assert _is_png(first / "optuna_history.png") and _is_png(first / "optuna_importances.png")

    _, second = _sweep(args, tmp_path, cache_dir, name="second")
    study = _study(tmp_path)
    assert len(study.trials) == 12
    assert [t.number for t in study.trials] == list(range(12))
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    # The resumed search ran new configurations, not the first run's again.
    configurations = {tuple(sorted(t.params.items())) for t in study.trials}
    assert len(configurations) == 12
    # The second sweep dir holds the trials 6-11, each run's val/acc being its trial's value.
    summary = pd.read_csv(second / "summary.csv")
    assert sorted(summary["val/acc"]) == pytest.approx(sorted(t.value for t in study.trials[6:]))


def test_optuna_records_a_nan_trial_as_failed_and_goes_on(tmp_path: Path, cache_dir: Path) -> None:
    # Two trials queued in the study before the search (as a user would queue known configurations):
    # after one step at lr 1e30 the validation loss is NaN; the second trial trains.
    (tmp_path / "optuna").mkdir()
    study = optuna.create_study(
        study_name=STUDY, storage=f"sqlite:///{tmp_path / 'optuna' / STUDY}.db", direction="maximize"
    )
    for lr in (1e30, 1e-3):
        study.enqueue_trial({"optimizer.lr": lr})
    result, sweep = _sweep(
        [
            "hparams_search=optuna",
            "hydra.sweeper.n_trials=2",
            "hydra.sweeper.params=null",
            *TINY_RUN,
            "model=cnn",
            "optimizer.lr=tag(log,interval(1e-4,1e31))",
        ],
        tmp_path,
        cache_dir,
    )
    trials = _study(tmp_path).trials
    assert [(t.params["optimizer.lr"], t.state) for t in trials] == [
        (1e30, TrialState.FAIL),
        (1e-3, TrialState.COMPLETE),
    ]
    summary = pd.read_csv(sweep / "summary.csv").set_index("job")
    assert summary.loc[0, "status"] == "failed"
    assert summary.loc[0, "error"].startswith("FloatingPointError: non-finite final metrics")
    assert "val/loss=nan" in summary.loc[0, "error"]
    assert summary.loc[1, "status"] == "completed"
    results = OmegaConf.load(sweep / "optimization_results.yaml")
    assert results.best_params == {"optimizer.lr": 1e-3}
    assert results.best_value == pytest.approx(summary.loc[1, "val/acc"]) == trials[1].value
    assert "Failed experiment" in result.stdout + result.stderr


def test_optuna_stops_once_more_than_max_failure_rate_of_trials_fail(tmp_path: Path, cache_dir: Path) -> None:
    # Every trial raises (dropout 2.0): with max_failure_rate=0.5 of 4 trials, the third failure stops it.
    result, _ = _sweep(
        ["hparams_search=optuna", "hydra.sweeper.n_trials=4", "model.dropout=2.0", *CHEAP_SEARCH],
        tmp_path,
        cache_dir,
        check=False,
    )
    assert result.returncode != 0
    assert "max_failure_rate=0.5" in result.stdout + result.stderr
    assert [t.state for t in _study(tmp_path).trials] == [TrialState.FAIL] * 3


@pytest.mark.parametrize(
    "launcher",
    [
        ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
        ["hydra/launcher=submitit_local", "hydra.launcher.cpus_per_task=1", "hydra.launcher.timeout_min=10"],
    ],
    ids=["joblib", "submitit_local"],
)
def test_parallel_launchers_leave_two_complete_runs(launcher: list[str], tmp_path: Path, cache_dir: Path) -> None:
    _, sweep = _sweep([*launcher, *TINY_RUN, "model=cnn", "feature=mel,mfcc"], tmp_path, cache_dir)
    jobs = _job_dirs(sweep)
    assert [job.name for job in jobs] == ["0", "1"]
    pids = set()
    for job in jobs:
        status = json.loads((job / "status.json").read_text())
        assert status["status"] == "completed"
        pids.add(status["pid"])
        metrics = json.loads((job / "metrics.json").read_text())
        assert 0.0 <= metrics["test/acc"] <= 1.0
        assert (job / "best.pt").is_file() and len(list((job / "tensorboard").glob("events.*"))) == 1
        # Two jobs on this machine's cores at once: one torch thread each, not all cores each.
        assert "Job environment: torch threads 1" in (job / "run.log").read_text()
    assert os.getpid() not in pids and len(pids) == 2  # each ran in its own process
    summary = pd.read_csv(sweep / "summary.csv")
    assert sorted(summary["feature"]) == ["mel", "mfcc"]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """``GENRE_TEST_POSTGRES_URL`` (``make test`` starts a server), else a server started here, else skip."""
    with postgres_server() as (url, pgpass):
        previous = os.environ.get("PGPASSFILE")
        if pgpass is not None:
            os.environ["PGPASSFILE"] = str(pgpass)  # for this process and the sweeps it starts
        try:
            yield url
        finally:
            if previous is None:
                os.environ.pop("PGPASSFILE", None)
            else:
                os.environ["PGPASSFILE"] = previous


def test_two_sweep_processes_share_one_postgres_study_without_running_a_trial_twice(
    postgres_url: str, tmp_path: Path, cache_dir: Path
) -> None:
    study_name = f"shared-{os.getpid()}-{time.time_ns()}"
    workers = []
    for index in range(2):
        command = [
            sys.executable,
            str(REPO / "run.py"),
            "-m",
            "hparams_search=optuna",
            *CHEAP_SEARCH,
            f"hydra.sweeper.storage={postgres_url}",
            f"hydra.sweeper.study_name={study_name}",
            "hydra.sweeper.n_trials=2",
            "hydra.sweeper.n_jobs=1",
            f"hydra.sweep.dir={tmp_path / f'worker{index}'}",
        ]
        workers.append(
            subprocess.Popen(
                command, cwd=tmp_path, env=_env(cache_dir), text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
        )
    for worker in workers:
        output, _ = worker.communicate(timeout=600)
        assert worker.returncode == 0, output[-3000:]
    trials = optuna.load_study(study_name=study_name, storage=postgres_url).trials
    assert len(trials) == 4
    assert sorted(t.number for t in trials) == list(range(4))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    # Each trial was run by exactly one job of one of the two sweeps, and no configuration twice.
    jobs = [_overrides(job) for index in range(2) for job in _job_dirs(tmp_path / f"worker{index}")]
    assert len(jobs) == 4
    names = sorted(trials[0].params)
    trial_keys = [tuple(str(t.params[name]) for name in names) for t in trials]
    job_keys = [tuple(job[name] for name in names) for job in jobs]
    assert len(set(trial_keys)) == 4
    assert sorted(job_keys) == sorted(trial_keys)

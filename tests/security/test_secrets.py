"""A study password never reaches a file: not the sweep dir, not a job's ``.hydra/``, checkpoints or
TensorBoard event files, not even when the sweep fails before its first job. The jobs get it through
their environment. With a real PostgreSQL server whose password is only in the URL given to the sweep."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from helpers import RUN_PY, TINY_RUN
from helpers.services import postgres_server

STUDY_PASSWORD_VARIABLES = ("PGPASSFILE", "PGPASSWORD", "GENRE_STUDY_PASSWORD")


def _sweep_env(cache: Path) -> dict[str, str]:
    """The environment of a sweep whose URL alone holds the password (no pgpass file, no variable)."""
    env = {key: value for key, value in os.environ.items() if key not in STUDY_PASSWORD_VARIABLES}
    return {**env, "GENRE_CACHE": str(cache), "HYDRA_FULL_ERROR": "0"}


def _password_from_pgpass(pgpass: Path, url: str) -> str:
    host_port = url.split("@", 1)[1].split("/", 1)[0]
    host, _, port = host_port.partition(":")
    for line in pgpass.read_text().splitlines():
        fields = line.split(":")
        if len(fields) == 5 and fields[0] in (host, "*") and fields[1] in (port, "*"):
            return fields[4]
    raise AssertionError(f"no password for {host_port} in {pgpass}")


@pytest.fixture(scope="module")
def postgres_url_with_password() -> Iterator[tuple[str, str]]:
    """A PostgreSQL URL that holds its password (``make test``'s server, else one started here), and the password."""
    with postgres_server(password_file=True) as (url, pgpass):
        assert pgpass is not None
        password = _password_from_pgpass(pgpass, url)
        scheme, rest = url.split("://", 1)
        user, host = rest.split("@", 1)
        yield f"{scheme}://{user}:{password}@{host}", password


def _files_holding(root: Path, secret: str) -> list[Path]:
    """Every file under ``root`` whose bytes hold ``secret`` (``grep -r``, and the same in Python)."""
    grep = subprocess.run(["grep", "-r", "-l", "-F", "-a", secret, str(root)], capture_output=True, text=True)
    assert grep.returncode in (0, 1), grep.stderr
    found = {Path(line) for line in grep.stdout.splitlines()}
    found |= {path for path in root.rglob("*") if path.is_file() and secret.encode() in path.read_bytes()}
    return sorted(found)


def _optuna_sweep(tmp_path: Path, cache_dir: Path, storage: str, *overrides: str) -> subprocess.CompletedProcess:
    """``run.py -m hparams_search=optuna`` over two tiny configurations with ``storage``, into ``tmp_path/sweep``."""
    return subprocess.run(
        [
            sys.executable,
            str(RUN_PY),
            "-m",
            "hparams_search=optuna",
            "hydra.sweeper.params=null",
            *TINY_RUN,
            "model=cnn",
            "feature=choice(mel,mfcc)",
            f"hydra.sweeper.storage={storage}",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
            *overrides,
        ],
        cwd=tmp_path,
        env=_sweep_env(cache_dir),
        text=True,
        capture_output=True,
        timeout=900,
    )


@pytest.mark.slow  # a sweep of two trained trials against a database server
def test_a_sweep_with_a_password_in_its_postgres_url_writes_it_nowhere(
    postgres_url_with_password: tuple[str, str], tmp_path: Path, cache_dir: Path
) -> None:
    url, password = postgres_url_with_password
    study_name = f"secret-{os.getpid()}"
    sweep_dir = tmp_path / "sweep"
    result = _optuna_sweep(
        tmp_path,
        cache_dir,
        url,
        "trainer.epochs=2",
        f"hydra.sweeper.study_name={study_name}",
        "hydra.sweeper.n_trials=2",
        # Each job in a process of its own: the password must reach it through its environment.
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=1",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    jobs = sorted(path for path in sweep_dir.iterdir() if path.is_dir() and path.name.isdigit())
    assert len(jobs) == 2
    checkpoints = [job / name for job in jobs for name in ("best.pt", "last.pt")]
    events = [event for job in jobs for event in (job / "tensorboard").glob("events.*")]
    assert all(path.is_file() for path in checkpoints) and len(events) == 2
    assert (sweep_dir / "multirun.yaml").is_file() and all((job / ".hydra" / "hydra.yaml").is_file() for job in jobs)
    assert _files_holding(tmp_path, password) == []
    for checkpoint in checkpoints:
        stored = torch.load(checkpoint, map_location="cpu", weights_only=True)
        assert password not in repr(stored)
        # The job still knew its study: the URL it stored is the one without the password.
        assert stored["config"]["optuna_trial"]["storage"] == url.replace(f":{password}@", "@")
    # Each job reported its epochs to its trial through the database: it had the password, from its environment.
    storage = url.replace(f":{password}@", "@")
    os.environ["GENRE_STUDY_PASSWORD"] = password
    try:
        from genre.sweeps.optuna.storage_url import with_password_from_environment

        trials = optuna.load_study(study_name=study_name, storage=with_password_from_environment(storage)).trials
    finally:
        del os.environ["GENRE_STUDY_PASSWORD"]
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    assert all(sorted(t.intermediate_values) == [1, 2] for t in trials)
    # Only its user may enter the sweep dir.
    assert (sweep_dir.stat().st_mode & 0o777) == 0o700
    output = result.stdout + result.stderr
    assert password not in output
    assert "on this sweep's command line" in output  # told that `ps` shows what it typed


@pytest.mark.slow  # starts run.py
def test_a_sweep_that_fails_before_its_first_job_writes_no_password(tmp_path: Path, cache_dir: Path) -> None:
    # The directions contradict the objective: refused after multirun.yaml is written, before any database
    # is reached (so no server is needed), and before any job could mask a file.
    password = "n0t-in-any-file-7f3a"
    sweep_dir = tmp_path / "sweep"
    result = _optuna_sweep(
        tmp_path,
        cache_dir,
        f"postgresql://genre:{password}@127.0.0.1:1/optuna",
        "hydra.sweeper.direction=minimize",
    )
    assert result.returncode != 0 and "hydra.sweeper.direction" in result.stderr, result.stderr[-2000:]
    assert (sweep_dir / "multirun.yaml").is_file()
    assert _files_holding(tmp_path, password) == []
    assert password not in result.stdout + result.stderr


def test_a_run_stores_its_config_without_url_passwords() -> None:
    from omegaconf import OmegaConf

    from genre.experiment.outputs import stored_config

    cfg = OmegaConf.create(
        {"optuna_trial": {"storage": "postgresql://genre:s3cret@db.example/optuna"}, "x": ["mysql://a:s3cret@h/d"]}
    )
    stored = stored_config(cfg)
    assert "s3cret" not in repr(stored)
    assert stored["optuna_trial"]["storage"] == "postgresql://genre@db.example/optuna"


def test_tensorboard_text_and_hparams_hold_no_url_password(tmp_path: Path) -> None:
    from genre.tracking.tensorboard import RunLogger

    logger = RunLogger(tmp_path)
    logger.text("config", "optuna_trial:\n  storage: postgresql://genre:s3cret@db.example/optuna\n")
    logger.hparams_start({"optuna_trial.storage": "postgresql://genre:s3cret@db.example/optuna"}, ["val/acc"])
    logger.close()
    data = b"".join(path.read_bytes() for path in tmp_path.glob("events.*"))
    assert b"db.example" in data and b"s3cret" not in data

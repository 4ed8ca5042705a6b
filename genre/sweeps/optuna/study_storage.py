"""The study's storage: prepared once per sweep, opened with heartbeats by the sweeper and without
them by each job that reports its epochs.

- A SQLite study's folder is created (mode 0700), so ``sqlite:///optuna/<study>.db`` works on a fresh checkout,
  and a new database's tables are created with retries: sweep processes started together against one
  server race to create them.
- The sweeper records a heartbeat for every trial it has running; a trial whose heartbeats stopped
  (its sweep was killed) is failed by the next sweep on the study, and re-queued with the same
  parameters when ``retry_failed`` allows (Optuna's ``RetryHeartbeatStaleTrialCallback``).
"""

from __future__ import annotations

import logging
import random
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from genre.core.errors import ConfigError
from genre.sweeps.optuna.storage_url import masked

log = logging.getLogger(__name__)

# SQLite lets one writer in at a time; the sweeper's heartbeats and its jobs' reports wait for each other.
SQLITE_TIMEOUT_S = 60


def engine_kwargs(url: str) -> dict[str, Any]:
    """SQLAlchemy engine options for ``url``: a long lock timeout for SQLite files shared by processes."""
    if make_url(url).get_backend_name() == "sqlite":
        return {"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
    return {}


def check_storage_url(url: str, key: str = "hydra.sweeper.storage") -> None:
    """Raise :class:`ConfigError` (one line, password masked) when ``url`` is not a SQLAlchemy URL, or names
    a database or driver this environment cannot load -- before anything retries or connects with it."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            key,
            f"'{masked(url)}' is not a database URL",
            "Use e.g. sqlite:///optuna/study.db or postgresql://user@host/optuna (or null: in memory)",
        ) from None
    try:
        parsed.get_dialect().import_dbapi()
    except (ArgumentError, ImportError) as exc:
        # NoSuchModuleError: no such database or driver name; ImportError: its driver package is missing.
        missing = getattr(exc, "name", None)
        if missing:
            problem, fix = f"needs the Python package {missing}, not installed", "Install that database driver"
        else:
            problem, fix = f"names no database driver SQLAlchemy knows ({parsed.drivername})", "Check its scheme"
        raise ConfigError(
            key, f"'{masked(url)}' {problem}", f"{fix}, or use e.g. sqlite:///optuna/study.db or postgresql://..."
        ) from None


def prepare_storage(url: str | None, attempts: int = 6) -> None:
    """Create a SQLite study's folder, and the study database's tables if it has none yet.

    Optuna creates missing tables whenever it opens a storage; two processes doing that at once on a
    fresh PostgreSQL database collide (a unique violation on ``alembic_version`` or ``pg_type``). The
    loser retries and then finds the tables in place. (Two processes creating the same study is
    handled by Optuna itself: ``load_if_exists``.)
    """
    if url is None:
        return  # in memory
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        # Private when genre makes it (like run dirs): the study's trials are nobody else's business.
        folder = Path(parsed.database).parent
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.mkdir(mode=0o700, exist_ok=True)
    for attempt in range(1, attempts + 1):
        try:
            RDBStorage(url, engine_kwargs=engine_kwargs(url))
            return
        except SQLAlchemyError as exc:
            if attempt == attempts:
                raise
            log.info(
                "Preparing the study storage failed (%s: %s); retrying", type(exc).__name__, str(exc).splitlines()[0]
            )
            time.sleep(random.uniform(0.2, 1.0) * attempt)


def sweeper_storage(
    url: str | None, heartbeat_interval: int, grace_period: int | None, retry_failed: int
) -> BaseStorage | None:
    """The storage the sweeper asks and tells through (None: in memory), with heartbeats on."""
    if url is None:
        return None
    with warnings.catch_warnings():
        # Heartbeats and their retry callback are marked experimental (since Optuna 2.8/2.9).
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = RetryHeartbeatStaleTrialCallback(max_retry=retry_failed) if retry_failed > 0 else None
        return RDBStorage(
            url,
            engine_kwargs=engine_kwargs(url),
            heartbeat_interval=int(heartbeat_interval),
            grace_period=int(grace_period) if grace_period else None,
            heartbeat_stale_trial_callback=retry,
        )


def job_storage(url: str) -> RDBStorage:
    """The storage as a job opens it: the tables exist already, and creating them again would race."""
    return RDBStorage(url, engine_kwargs=engine_kwargs(url), skip_table_creation=True, skip_compatibility_check=True)


def fail_stale_trials(study: optuna.Study, retried: bool) -> list[int]:
    """Fail the study's RUNNING trials whose heartbeat stopped; return their numbers (logged). ``retried``:
    whether the storage re-queues them (``retry_failed``)."""
    before = {t.number for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    after = {t.number: t for t in study.get_trials(deepcopy=False) if t.number in before}
    failed = sorted(number for number, trial in after.items() if trial.state == optuna.trial.TrialState.FAIL)
    if failed:
        log.warning(
            "Trial(s) %s of study %s were still RUNNING with no heartbeat (their sweep was killed): marked FAIL%s",
            ", ".join(map(str, failed)),
            study.study_name,
            "; their parameters are queued again (retry_failed)" if retried else "",
        )
    return failed


class Heartbeats:
    """A thread recording a heartbeat for each trial this sweep has running, every ``interval`` seconds."""

    def __init__(self, storage: BaseStorage | None, interval: float) -> None:
        self.storage = storage if isinstance(storage, RDBStorage) else None
        self.interval = interval
        self._trials: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="optuna-heartbeats", daemon=True)

    def __enter__(self) -> Heartbeats:
        if self.storage is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def add(self, trial_id: int) -> None:
        """Start beating for ``trial_id`` (the first beat is recorded at once)."""
        if self.storage is None:
            return
        self.storage.record_heartbeat(trial_id)
        with self._lock:
            self._trials.add(trial_id)

    def remove(self, trial_id: int) -> None:
        """Stop beating for ``trial_id`` (it was told to the study)."""
        with self._lock:
            self._trials.discard(trial_id)

    def _beat(self) -> None:
        assert self.storage is not None
        while not self._stop.wait(self.interval):
            with self._lock:
                trials = sorted(self._trials)
            for trial_id in trials:
                try:
                    self.storage.record_heartbeat(trial_id)
                except SQLAlchemyError as exc:  # a busy database: the next beat will do
                    log.debug("Heartbeat of trial id %d failed: %s", trial_id, exc)

"""``status.json`` in each run dir: whether the job is running, completed, pruned or failed, and why.

Hydra leaves no trace of a job's outcome in its folder; this record lets ``genre.cli.report`` summarise a
sweep from the run folders alone, including one that was killed or is still running.
"""

from __future__ import annotations

import json
import os
import socket
import traceback
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from genre.core.errors import DamagedFileError
from genre.core.filesystem import DiskFullError, atomic_write_text

# The file's name and the failed status come from the run-dir claim, which must recognise a failed run
# without importing the sweeps (a run refused at set-up frees its dir).
from genre.run_files.directory import FAILED, STATUS_FILE
from genre.run_files.records import STATUS_FIELDS, check_fields, read_json_object

RUNNING = "running"
COMPLETED = "completed"
# Stopped by an Optuna study's pruner (genre.sweeps.optuna.pruning): a clean end, with its checkpoints.
PRUNED = "pruned"
# Set by the report, never written: a "running" job whose process is gone.
KILLED = "killed"


@dataclass
class JobStatus:
    """One job's outcome as recorded in its run dir."""

    status: str
    started: str
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    ended: str | None = None
    wall_seconds: float | None = None
    error: str | None = None
    traceback: str | None = None
    # How a pruned job ended ("pruned at epoch 3 (trial 7)"), and that epoch.
    detail: str | None = None
    pruned_epoch: int | None = None

    @classmethod
    def start(cls) -> JobStatus:
        """The record of a job that starts now."""
        return cls(status=RUNNING, started=_now())

    def finish(self, error: BaseException | None = None) -> None:
        """Mark the job completed, pruned (``error`` is :class:`~genre.sweeps.optuna.pruning.RunPruned`), or failed
        with ``error`` (its one-line reason and its traceback)."""
        from genre.sweeps.optuna.pruning import RunPruned

        ended = datetime.now(UTC)
        self.ended = ended.isoformat()
        self.wall_seconds = round((ended - datetime.fromisoformat(self.started)).total_seconds(), 3)
        if error is None:
            self.status = COMPLETED
            return
        if isinstance(error, RunPruned):
            self.status, self.detail, self.pruned_epoch = PRUNED, str(error), error.epoch
            return
        self.status = FAILED
        self.error = describe_error(error)
        self.traceback = "".join(traceback.format_exception(error))

    def write(self, run_dir: str | Path) -> None:
        """Write atomically, so a reader never sees half a record.

        On a full disk (no room for the new copy beside the old) the record is rewritten in place,
        without its traceback: a job that failed for want of space must not stay "running".
        """
        path = Path(run_dir) / STATUS_FILE
        try:
            atomic_write_text(path, json.dumps(asdict(self), indent=2))
        except DiskFullError:
            if not path.is_file():
                raise
            brief = {**asdict(self), "traceback": None}
            with open(path, "r+") as handle:
                handle.truncate(0)  # frees the old record's block for the new one
                handle.write(json.dumps(brief))
                handle.flush()

    @classmethod
    def read(cls, run_dir: str | Path) -> JobStatus | None:
        """The record in ``run_dir``, or None where the job left none; :class:`~genre.core.errors.DamagedFileError`
        (one line naming the file) for one that is not a record genre writes."""
        path = Path(run_dir) / STATUS_FILE
        if not path.is_file():
            return None
        data = read_json_object(path)
        check_fields(path, data, STATUS_FIELDS)
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})

    def process_is_gone(self) -> bool | None:
        """Whether the process that ran this job has ended; None when it ran on another host."""
        if self.host != socket.gethostname():
            return None
        try:
            os.kill(int(self.pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, owned by someone else
            return False
        return False


def record_failure(run_dir: str | Path, error: BaseException) -> None:
    """Mark the run this process records in ``run_dir`` failed with ``error``.

    For a run that ends by exiting with a one-line error (``run.py`` outside a sweep): Hydra then calls no
    ``on_job_end``, and ``status.json`` would say "running" for good. Another process's record, a damaged
    one or none is left alone."""
    try:
        record = JobStatus.read(run_dir)
    except DamagedFileError:
        return
    if record is None or record.status != RUNNING or (record.host, record.pid) != (socket.gethostname(), os.getpid()):
        return
    record.finish(error)
    record.write(run_dir)


def describe_error(error: BaseException) -> str:
    """One line, as summaries show it: a user error as the command line prints it (``model.dropout: ...``),
    anything else as ``Type: message``."""
    from genre.core.cli_errors import user_error_line  # Hydra's error types; not needed to read a status file

    line = user_error_line(error)
    if line is not None:
        return line
    message = " ".join(str(error).split())
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _now() -> str:
    return datetime.now(UTC).isoformat()

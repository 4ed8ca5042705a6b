"""One run per run dir: a run claims its directory before Hydra writes anything into it.

Two runs in one directory clobber each other (one run's ``best.pt`` beside the other's overrides and
metrics), and the default ``outputs/<date>/<time>`` is shared by two runs started in the same second.
A run therefore takes a lock in its directory for as long as it lives, and refuses a directory that
another live run holds or that holds a finished or interrupted run -- unless it is resuming that run.
A default (timestamped) directory that is taken gets a suffix instead: ``12-00-00-1``.

A directory a run (or sweep) creates is private to its user (mode 0700): its checkpoints and TensorBoard
files hold the whole run config, its logs hold error messages and paths, and nothing in it is meant for
other local users. Share one on purpose (``chmod -R g+rX <dir>``). A directory that exists already (made
by hand, or a resumed run's) keeps its mode. The lock file refuses a symbolic link or a non-regular file
at its name (:func:`genre.core.filesystem.open_regular`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from genre.core.errors import ConfigError, DamagedFileError
from genre.core.filesystem import UnsafeFileError, release_lock, try_lock
from genre.run_files.records import read_json_object

# A run's status record, and the status of one that failed (genre.sweeps.jobs.status reads and writes them).
STATUS_FILE = "status.json"
FAILED = "failed"

LOCK_NAME = ".genre-run.lock"
# What a run leaves in its dir (any one of them means the dir holds a run).
RUN_FILES = (STATUS_FILE, "metrics.json", "best.pt", "last.pt", "tensorboard")
# Default directories taken already get a suffix, up to this many.
MAX_SUFFIX = 1000
# What a directory genre creates for a run or sweep is made with (only its user may enter it).
PRIVATE_DIR_MODE = 0o700


@dataclass
class Claim:
    """A claimed directory and the descriptor of its lock."""

    directory: Path
    fd: int

    def release(self) -> None:
        """Let another run have the directory (a process that ends releases it anyway)."""
        release_lock(self.fd)


def holds_a_run(directory: Path) -> bool:
    """Whether ``directory`` holds a run's files (finished, failed, interrupted or running).

    A run that failed before it trained anything (refused at set-up: a bad value, a split its data cannot
    give) left nothing to keep: its dir is free again, so the corrected command can use it.
    """
    if any((directory / name).exists() for name in RUN_FILES if name != STATUS_FILE):
        return True
    return (directory / STATUS_FILE).exists() and not failed_before_training(directory)


def failed_before_training(directory: Path) -> bool:
    """Whether ``directory``'s status records a failed run that left no results, checkpoints or logs of
    training anywhere below it (a cross-validation job's fold dirs included)."""
    status = directory / STATUS_FILE
    try:
        record = read_json_object(status)
    except (DamagedFileError, OSError):
        return False  # not ours to judge: the dir stays taken
    if record.get("status") != FAILED:
        return False
    return not any(path.name in RUN_FILES and path != status for path in directory.rglob("*"))


def holds_sweep_jobs(directory: Path) -> bool:
    """Whether ``directory`` holds the job dirs of a sweep (``<n>/.hydra`` or a job's run files)."""
    return any(path.is_dir() and ((path / ".hydra").is_dir() or holds_a_run(path)) for path in directory.iterdir())


def claim(
    directory: str | os.PathLike[str], *, key: str, resuming: bool = False, default: bool = False, sweep: bool = False
) -> Claim:
    """Create and lock ``directory`` for this process's run (or sweep, with ``sweep``).

    Raises :class:`ConfigError` naming ``key`` when another live process holds it, or when it holds a
    run (a sweep: job dirs) and this is no resume of it. With ``default`` (the directory was not
    chosen by the user), a taken directory is not an error: the first free ``<dir>-<n>`` is claimed.
    """
    base = Path(directory)
    candidates = [base] + ([base.with_name(f"{base.name}-{n}") for n in range(1, MAX_SUFFIX)] if default else [])
    for candidate in candidates:
        try:
            candidate.parent.mkdir(parents=True, exist_ok=True)
            candidate.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
            fd = try_lock(candidate / LOCK_NAME)
        except UnsafeFileError as exc:
            raise ConfigError(key, exc.message, f"Or point {key} at a folder of your own") from None
        except OSError as exc:
            raise ConfigError(
                key, f"cannot create '{candidate}' ({exc.strerror or exc})", f"Point {key} at a writable folder"
            ) from None
        if fd is None:
            problem = "is in use by another run that is still going"
        elif (holds_sweep_jobs(candidate) if sweep else holds_a_run(candidate)) and not resuming:
            release_lock(fd)
            problem = "holds another sweep's jobs" if sweep else "holds another run"
        else:
            return Claim(candidate, fd)
        if not default:
            fix = (
                "Give each sweep its own hydra.sweep.dir"
                if sweep
                else f"Choose another {key}, or continue that run with resume={candidate}"
            )
            raise ConfigError(key, f"'{candidate}' {problem}", fix)
    raise ConfigError(key, f"'{base}' and {MAX_SUFFIX - 1} numbered siblings are all taken", f"Set {key} yourself")

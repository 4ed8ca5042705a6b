"""File-system primitives every writer of shared files uses: an exclusive lock, atomic file writes and an
atomic directory replace.

The audio cache, the demo corpus, checkpoints and status files are read by other processes (sweep
jobs, ``genre.cli.report``, a resumed run) while they may be written; these helpers make sure a reader sees
either the old file or the new one, never half of one, and that a killed writer leaves nothing that
looks finished.

Lock and temporary files live in folders other users may write to (a shared cache). Creating one never
follows a symbolic link at its name and never accepts anything but a regular file there
(:func:`open_regular`): otherwise another user's planted link would make our process -- root, say --
create or truncate a file wherever it points.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import secrets
import shutil
import stat
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

# Descriptors of the locks this process holds. A forked child shares them (O_CLOEXEC acts only on
# exec), and an flock stays held while any descriptor of it is open: a worker forked inside a lock
# that outlived a killed parent would keep the lock forever. Every forked child closes its copies.
_held_locks: set[int] = set()


def _close_inherited_locks() -> None:
    """In a freshly forked child: close the lock descriptors inherited from the parent (the lock stays the parent's)."""
    for fd in list(_held_locks):
        with contextlib.suppress(OSError):
            os.close(fd)
    _held_locks.clear()


os.register_at_fork(after_in_child=_close_inherited_locks)


class UnsafeFileError(OSError):
    """A lock or temporary file's name is taken by a symbolic link or something other than a regular file
    (a user error: one line, naming the file, at the command line -- :mod:`genre.core.cli_errors`)."""

    def __init__(self, path: str | os.PathLike[str], what: str) -> None:
        super().__init__(errno.ELOOP, f"{what}: genre never follows it there", str(path))
        self.message = (
            f"{path} is {what}, where genre keeps a lock or temporary file; it is not followed (another "
            "user may have planted it). Remove it and run again"
        )

    def __str__(self) -> str:
        return self.message


def open_regular(path: str | os.PathLike[str], flags: int, mode: int = 0o644) -> int:
    """``os.open(path, flags, mode)`` that refuses a symbolic link at ``path`` (``O_NOFOLLOW``) and anything
    but a regular file (a FIFO, a device, a folder) with :class:`UnsafeFileError`; the descriptor is
    close-on-exec. Opening never blocks on a planted FIFO (``O_NONBLOCK``, harmless for regular files)."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeFileError(path, "a symbolic link") from None
        if exc.errno in (errno.EISDIR, errno.ENXIO):  # a folder; a FIFO or socket nobody reads
            raise UnsafeFileError(path, "not a regular file") from None
        raise
    kind = os.fstat(fd).st_mode
    if not stat.S_ISREG(kind):
        os.close(fd)
        raise UnsafeFileError(path, "not a regular file")
    return fd


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike[str], *, waiting_for: str | None = None) -> Iterator[float]:
    """Hold an exclusive ``flock`` on ``path`` (created if needed) for the ``with`` block; yield the seconds
    spent waiting for another holder.

    The kernel releases the lock when the holder's file descriptor closes, including when it dies.
    The lock file is left in place: deleting it would let two processes lock two different files.
    ``waiting_for`` names what the holder is building, for the one log line said when we must wait.
    Processes forked inside the block do not hold the lock: they close their copy of the descriptor
    at once (a worker that outlives a killed holder must not keep everyone else waiting), and
    leaving the block unlocks explicitly.
    """
    fd = open_regular(path, os.O_RDWR | os.O_CREAT)
    _held_locks.add(fd)
    try:
        waited = 0.0
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting_for:
                log.info("Another process is building %s; waiting for it", waiting_for)
            started = time.perf_counter()
            fcntl.flock(fd, fcntl.LOCK_EX)
            waited = time.perf_counter() - started
        yield waited
    finally:
        _held_locks.discard(fd)
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def try_lock(path: str | os.PathLike[str]) -> int | None:
    """Take an exclusive ``flock`` on ``path`` (created if needed) without waiting; return its descriptor,
    or None when another process holds it.

    The lock lasts until :func:`release_lock` or the end of this process (the kernel releases it
    then, however the process ends); forked children do not hold it (see :func:`exclusive_lock`).
    """
    fd = open_regular(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    _held_locks.add(fd)
    return fd


def release_lock(fd: int) -> None:
    """Let go of a lock taken by :func:`try_lock`."""
    _held_locks.discard(fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def fsync_directory(directory: str | os.PathLike[str]) -> None:
    """Make a rename inside ``directory`` durable (it survives a crash right after)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary_sibling(path: str | os.PathLike[str], tag: str = "tmp") -> Path:
    """A hidden, unique name next to ``path`` for writing it before the rename (same file system)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{tag}-{os.getpid()}-{secrets.token_hex(4)}")


class DiskFullError(OSError):
    """A file could not be written because its file system is full (or the user's quota is spent)."""

    def __init__(self, path: Path, free: int) -> None:
        super().__init__(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        self.message = (
            f"cannot write {path}: no space left on its file system ({free / 1e6:.1f} MB free in "
            f"{path.parent}); free some space there, or point the run's directory elsewhere"
        )

    def __str__(self) -> str:
        return self.message


# Below this much free space, a failed write is taken for a full disk, whatever the writer raised
# (torch.save reports one as "RuntimeError: ... file write failed", libsndfile as "System error").
_NEARLY_FULL_BYTES = 1 << 20


def free_if_disk_full(directory: Path, error: BaseException) -> int | None:
    """The free bytes in ``directory`` when ``error`` (raised while writing there) came from a full file
    system or a spent quota, else None. Call it before removing the partial output, which frees space."""
    if not isinstance(error, Exception):
        return None  # Ctrl-C, SystemExit: not a write failure
    try:
        free = shutil.disk_usage(directory).free
    except OSError:
        return None
    quota = isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)
    return free if quota or free < _NEARLY_FULL_BYTES else None


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; when the block ends without error, rename it onto ``path``.

    On any error (a full disk, Ctrl-C) the temporary file is removed and ``path`` keeps its old
    contents; a full disk is reported as :class:`DiskFullError`, one line naming the file, whatever
    the writer raised. The data is flushed to disk before the rename, so a crash never leaves a
    truncated file.
    """
    final = Path(path)
    tmp = temporary_sibling(final)
    try:
        # Created here, exclusively and without following a link (O_EXCL implies it): the writer then
        # writes into this very file, which is checked to be the same one before it replaces ``path``.
        fd = open_regular(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        created = os.fstat(fd)
        os.close(fd)
        yield tmp
        fd = open_regular(tmp, os.O_RDONLY)
        try:
            written = os.fstat(fd)
            if (written.st_dev, written.st_ino) != (created.st_dev, created.st_ino):
                raise UnsafeFileError(tmp, "no longer the file genre created")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
    except BaseException as exc:
        free = free_if_disk_full(final.parent, exc)  # before unlinking, which frees the partial file's space
        tmp.unlink(missing_ok=True)
        if free is not None and not isinstance(exc, DiskFullError):
            raise DiskFullError(final, free) from exc
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` by ``data`` atomically (see :func:`atomic_output`)."""
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Replace ``path`` by ``text`` (UTF-8) atomically (see :func:`atomic_output`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def replace_directory(staging: str | os.PathLike[str], final: str | os.PathLike[str]) -> None:
    """Rename the complete directory ``staging`` onto ``final`` (which must be absent or empty) and make it durable.

    The rename is the commit point: before it no ``final`` directory exists, so a killed builder
    never leaves one that looks finished.
    """
    final = Path(final)
    os.replace(staging, final)
    fsync_directory(final.parent)


def remove_directory(directory: str | os.PathLike[str], tag: str = "removed") -> None:
    """Delete a directory tree, renaming it aside first so that no reader ever sees it half-deleted.

    The aside name is ``temporary_sibling(directory, tag)``; a ``tag`` that says why (``"damaged"``)
    tells whoever finds one left by a crash what it was.
    """
    aside = temporary_sibling(directory, tag)
    os.replace(directory, aside)
    shutil.rmtree(aside, ignore_errors=True)

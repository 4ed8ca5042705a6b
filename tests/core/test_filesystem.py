"""genre.core.filesystem: the lock excludes other holders, atomic writes never leave half a file, directory
replace and removal leave nothing half-done."""

from __future__ import annotations

import fcntl
import logging
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from genre.core.filesystem import (
    atomic_output,
    atomic_write_bytes,
    atomic_write_text,
    exclusive_lock,
    remove_directory,
    replace_directory,
    temporary_sibling,
)
from helpers.waiting import SAFETY_TIMEOUT, blocked_on_lock, wait_for

REPO = Path(__file__).resolve().parents[2]


def try_lock(path: Path) -> bool:
    """Whether a fresh descriptor (a different open file description) can take the lock right now."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


# --------------------------------------------------------------------------------------------
# exclusive_lock
# --------------------------------------------------------------------------------------------


def test_lock_excludes_another_descriptor_until_released(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    with exclusive_lock(lock) as waited:
        assert waited == 0.0
        assert not try_lock(lock)
    assert try_lock(lock)
    assert lock.exists()  # left in place on purpose


_HOLD_AND_REPORT = """
import sys, time
from genre.core.filesystem import exclusive_lock
with exclusive_lock(sys.argv[1], waiting_for="the thing") as waited:
    print(f"{time.time()} {waited}", flush=True)
"""


@pytest.mark.slow
def test_lock_makes_another_process_wait_and_says_how_long(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with exclusive_lock(lock):
        child = subprocess.Popen(
            [sys.executable, "-c", _HOLD_AND_REPORT, str(lock)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # However long its start-up takes: release only once the child is blocked on our lock.
        wait_for(lambda: blocked_on_lock(child.pid), "the child blocked on the lock", child)
        released = time.time()
    out, err = child.communicate(timeout=SAFETY_TIMEOUT)
    assert child.returncode == 0, err
    acquired, waited = map(float, out.split())
    assert acquired >= released
    assert waited > 0.0


def test_lock_logs_once_when_it_must_wait(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    lock = tmp_path / "x.lock"
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with exclusive_lock(lock):
            held.set()
            release.wait(SAFETY_TIMEOUT)

    def releaser() -> None:
        # Only once this process is blocked on the lock, then 0.3 s on: the wait measured is at least that.
        wait_for(lambda: blocked_on_lock(os.getpid()), "the test blocked on the lock")
        time.sleep(0.3)
        release.set()

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(SAFETY_TIMEOUT)
    threading.Thread(target=releaser, daemon=True).start()
    with (
        caplog.at_level(logging.INFO, logger="genre.core.filesystem"),
        exclusive_lock(lock, waiting_for="the audio cache /x") as waited,
    ):
        assert waited >= 0.3
    thread.join(SAFETY_TIMEOUT)
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["Another process is building the audio cache /x; waiting for it"]


@pytest.mark.slow
def test_lock_is_released_even_when_a_forked_child_holds_the_descriptor(tmp_path: Path) -> None:
    # Worker pools fork inside the lock; their copy of the descriptor must not keep it held.
    lock = tmp_path / "x.lock"
    ctx = multiprocessing.get_context("fork")
    with exclusive_lock(lock):
        child = ctx.Process(target=time.sleep, args=(30,))
        child.start()
    try:
        assert try_lock(lock)
    finally:
        child.kill()
        child.join()


def test_lock_is_released_when_the_block_raises(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    with pytest.raises(RuntimeError), exclusive_lock(lock):
        raise RuntimeError("boom")
    assert try_lock(lock)


# --------------------------------------------------------------------------------------------
# atomic writes
# --------------------------------------------------------------------------------------------


def test_atomic_output_keeps_the_old_file_and_no_temporary_on_error(tmp_path: Path) -> None:
    path = tmp_path / "record.json"
    path.write_text("old")
    with pytest.raises(OSError, match="disk full"), atomic_output(path) as tmp:
        assert tmp.parent == path.parent and tmp.name.startswith(".record.json.")
        tmp.write_text("half of the ne")
        raise OSError("disk full")
    assert path.read_text() == "old"
    assert siblings(path) == ["record.json"]


def test_atomic_output_replaces_on_success(tmp_path: Path) -> None:
    path = tmp_path / "record.json"
    path.write_text("old")
    with atomic_output(path) as tmp:
        tmp.write_text("new")
        assert path.read_text() == "old"  # nothing visible until the block ends
    assert path.read_text() == "new"
    assert siblings(path) == ["record.json"]


def test_atomic_write_bytes_and_text(tmp_path: Path) -> None:
    atomic_write_bytes(tmp_path / "a.bin", b"\x00\x01")
    atomic_write_text(tmp_path / "b.txt", "grüße")
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "b.txt").read_bytes() == "grüße".encode()
    assert siblings(tmp_path / "a.bin") == ["a.bin", "b.txt"]


def test_temporary_sibling_is_hidden_unique_and_next_to_the_path(tmp_path: Path) -> None:
    path = tmp_path / "corpus"
    names = {temporary_sibling(path, "partial") for _ in range(20)}
    assert len(names) == 20
    for name in names:
        assert name.parent == tmp_path and name.name.startswith(f".corpus.partial-{os.getpid()}-")


# --------------------------------------------------------------------------------------------
# directories
# --------------------------------------------------------------------------------------------


def _staged(tmp_path: Path) -> Path:
    staging = tmp_path / ".out.tmp"
    (staging / "sub").mkdir(parents=True)
    (staging / "sub" / "f.txt").write_text("data")
    return staging


def test_replace_directory_onto_an_absent_or_empty_directory(tmp_path: Path) -> None:
    for premade in (False, True):
        final = tmp_path / f"out{premade}"
        if premade:
            final.mkdir()
        replace_directory(_staged(tmp_path), final)
        assert (final / "sub" / "f.txt").read_text() == "data"
        assert not (tmp_path / ".out.tmp").exists()


def test_replace_directory_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    final = tmp_path / "out"
    final.mkdir()
    (final / "mine.txt").write_text("precious")
    staging = _staged(tmp_path)
    with pytest.raises(OSError):
        replace_directory(staging, final)
    assert sorted(p.name for p in final.iterdir()) == ["mine.txt"]
    assert (staging / "sub" / "f.txt").read_text() == "data"


def test_remove_directory_leaves_nothing_behind(tmp_path: Path) -> None:
    for tag in ("removed", "damaged"):
        doomed = _staged(tmp_path)
        remove_directory(doomed, tag)
        assert list(tmp_path.iterdir()) == []


def test_remove_directory_moves_it_aside_before_deleting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # What a reader could see while the tree is being deleted: no half-deleted tree under the old name.
    doomed = _staged(tmp_path)
    seen: list[tuple[bool, list[str]]] = []

    def rmtree(path: str | os.PathLike, ignore_errors: bool = False) -> None:
        seen.append((doomed.exists(), siblings(Path(path))))

    monkeypatch.setattr("genre.core.filesystem.shutil.rmtree", rmtree)
    remove_directory(doomed, "damaged")
    [(old_name_exists, names)] = seen
    assert not old_name_exists
    assert len(names) == 1 and names[0].startswith(f"..out.tmp.damaged-{os.getpid()}-")

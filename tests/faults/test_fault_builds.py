"""Killing and stopping the builders of the shared demo corpus and audio cache on purpose: a kill -9 of
the builder must not leave workers that hold the lock (the next build would wait forever), and a
SIGTERM must stop a build at once and leave nothing of it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from builder import CACHE_FILES, DEMO_ARGS  # tests/faults/builder.py, beside this file

from genre.demo.genres import DEMO_GENRES
from helpers import REPO, TINY_TRAINING
from helpers.waiting import SAFETY_TIMEOUT, read_lines, wait_for

pytestmark = pytest.mark.slow  # each test spawns and kills processes

BUILDER = Path(__file__).with_name("builder.py")
KINDS = ["demo", "cache"]
CLIPS = {"demo": DEMO_ARGS["clips_per_genre"] * len(DEMO_GENRES), "cache": CACHE_FILES}


def _start(kind: str, root: Path, *extra: str, report: int | None = None) -> subprocess.Popen:
    """The builder, its output in files: workers that outlived it would hold pipes open forever.

    With ``report`` (a pipe's write end, closed here once the builder has it), each clip writes the
    pid making it to that pipe as it starts; the pipe ends when the builder and all its workers are gone.
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    name = f"builder-{time.monotonic_ns()}"
    reporting = () if report is None else ("--report-fd", str(report))
    with open(root / f"{name}.out", "w") as out, open(root / f"{name}.err", "w") as err:
        process = subprocess.Popen(
            [sys.executable, str(BUILDER), kind, str(root), *extra, *reporting],
            cwd=REPO,
            text=True,
            env=env,
            stdout=out,
            stderr=err,
            pass_fds=() if report is None else (report,),
        )
    if report is not None:
        os.close(report)
    process.output = lambda: ((root / f"{name}.out").read_text(), (root / f"{name}.err").read_text())  # type: ignore[attr-defined]
    return process


def _partials(kind: str, root: Path) -> list[Path]:
    """The half-written build folders (the demo corpus's partial sibling, the cache's tmp dir)."""
    if kind == "demo":
        return list(root.glob(".demo.partial-*"))
    return list((root / "cache" / "audio").glob(".*.tmp-*"))


def _wait_mid_build(kind: str, root: Path, process: subprocess.Popen, reports: int) -> list[str]:
    """Block until both of the builder's workers are making a clip (read from the ``reports`` pipe).

    Returns the lines read (one pid per clip started); the workers are the builder's children, and
    its partial folder exists.
    """
    started: list[str] = []
    while len(set(started)) < 2:
        started += read_lines(reports, 1, f"two workers started clips (builder output: {process.output()})")
    assert {int(pid) for pid in started} <= set(_children(process.pid)), (started, process.output())
    assert _partials(kind, root), "the workers make clips, yet there is no partial folder"
    return started


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _alive(pid: int) -> bool:
    """Running (not gone, and not a zombie waiting to be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("kind", KINDS)
def test_kill_9_of_the_builder_then_the_same_build_finishes_without_waiting(kind: str, tmp_path: Path) -> None:
    reports, report = os.pipe()
    # Its clips never end (an hour each): the kill lands mid-build however slow the machine is.
    killed = _start(kind, tmp_path, "--slow", "3600", report=report)
    workers: list[int] = []
    try:
        _wait_mid_build(kind, tmp_path, killed, reports)
        workers = _children(killed.pid)
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        # The workers die with their parent (they used to live on, holding the build lock): the pipe
        # ends when its last writer is gone, and then each worker is gone or a zombie.
        read_lines(reports, None, "the killed builder's workers exited")
        wait_for(lambda: not any(_alive(pid) for pid in workers), "the killed builder's workers died")
    finally:
        os.close(reports)
        for pid in workers:  # only if the test failed: never leave hour-long sleepers behind
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    again = _start(kind, tmp_path)
    try:
        again.wait(timeout=SAFETY_TIMEOUT)
    finally:
        again.kill()
    out, err = again.output()
    assert again.returncode == 0 and out.strip() == "done", err
    assert not _partials(kind, tmp_path)  # the killed build's leftovers were removed


@pytest.mark.parametrize("kind", KINDS)
def test_sigterm_stops_a_build_at_once_and_removes_its_partial_output(kind: str, tmp_path: Path) -> None:
    reports, report = os.pipe()
    # A second per clip: the whole build would take 12 s of clips on its two workers.
    process = _start(kind, tmp_path, "--slow", "1.0", "--stop-request", report=report)
    try:
        started = _wait_mid_build(kind, tmp_path, process, reports)
        process.send_signal(signal.SIGTERM)
        started += read_lines(reports, None, "the stopped builder and its workers exited")
        process.wait(timeout=SAFETY_TIMEOUT)
    finally:
        os.close(reports)
        process.kill()
    _, err = process.output()
    # Counted, not timed: the clips still queued at SIGTERM were never started.
    assert len(started) < CLIPS[kind], f"the build went on after SIGTERM: all {len(started)} clips were made"
    assert process.returncode != 0 and "SIGTERM received while building" in err
    assert not _partials(kind, tmp_path)
    assert not (tmp_path / "demo").exists() and not list((tmp_path / "cache").glob("audio/*/index.json"))


def test_sigterm_while_a_run_generates_the_demo_corpus_ends_the_run_promptly(tmp_path: Path) -> None:
    # The full-size default corpus takes many seconds to write; the run must not wait for it.
    cache = tmp_path / "cache"
    env = {**os.environ, "GENRE_CACHE": str(cache), "HYDRA_FULL_ERROR": "0"}
    process = subprocess.Popen(
        [sys.executable, str(REPO / "run.py"), *TINY_TRAINING, f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    wait_for(lambda: list(cache.glob("demo/.*.partial-*/*/*.wav")), "the corpus was started", process)
    process.send_signal(signal.SIGTERM)
    try:
        _, err = process.communicate(timeout=SAFETY_TIMEOUT)
    finally:
        process.kill()
    # Not timed: a run that went on generating would have left a finished corpus, not just the lock.
    assert process.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "SIGTERM received while preparing the data" in err
    # Only the lock file is left (it is never deleted, see genre.core.filesystem.exclusive_lock).
    assert [path.suffix for path in (cache / "demo").iterdir()] == [".lock"]

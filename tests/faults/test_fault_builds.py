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

from helpers import REPO, TINY_TRAINING

pytestmark = pytest.mark.slow  # each test spawns and kills processes

BUILDER = Path(__file__).with_name("builder.py")
KINDS = ["demo", "cache"]


def _start(kind: str, root: Path, *extra: str) -> subprocess.Popen:
    """The builder, its output in files: workers that outlived it would hold pipes open forever."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    name = f"builder-{time.monotonic_ns()}"
    with open(root / f"{name}.out", "w") as out, open(root / f"{name}.err", "w") as err:
        process = subprocess.Popen(
            [sys.executable, str(BUILDER), kind, str(root), *extra],
            cwd=REPO,
            text=True,
            env=env,
            stdout=out,
            stderr=err,
        )
    process.output = lambda: ((root / f"{name}.out").read_text(), (root / f"{name}.err").read_text())  # type: ignore[attr-defined]
    return process


def _partials(kind: str, root: Path) -> list[Path]:
    """The half-written build folders (the demo corpus's partial sibling, the cache's tmp dir)."""
    if kind == "demo":
        return list(root.glob(".demo.partial-*"))
    return list((root / "cache" / "audio").glob(".*.tmp-*"))


def _wait_mid_build(kind: str, root: Path, process: subprocess.Popen) -> list[int]:
    """Wait until the builder's workers are busy in its partial folder; return the workers' pids."""
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, process.output()
        assert time.monotonic() < deadline, "the build never started"
        children = _children(process.pid)
        if _partials(kind, root) and len(children) >= 2:
            time.sleep(0.3)  # a clip or two into the build
            return _children(process.pid)
        time.sleep(0.05)


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
    killed = _start(kind, tmp_path, "--slow", "0.2")
    workers = _wait_mid_build(kind, tmp_path, killed)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    # The workers die with their parent (they used to live on, holding the build lock).
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in workers if _alive(pid)], "workers outlived the killed builder"
    again = _start(kind, tmp_path, "--slow", "0.2")
    try:
        again.wait(timeout=60)
    finally:
        again.kill()
    out, err = again.output()
    assert again.returncode == 0 and out.strip() == "done", err
    assert not _partials(kind, tmp_path)  # the killed build's leftovers were removed


@pytest.mark.parametrize("kind", KINDS)
def test_sigterm_stops_a_build_at_once_and_removes_its_partial_output(kind: str, tmp_path: Path) -> None:
    process = _start(kind, tmp_path, "--slow", "0.3", "--stop-request")
    _wait_mid_build(kind, tmp_path, process)
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    finally:
        process.kill()
    _, err = process.output()
    assert time.monotonic() - sent < 5, "the build went on after SIGTERM"
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
    deadline = time.monotonic() + 120
    while not list(cache.glob("demo/.*.partial-*/*/*.wav")):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the corpus was never started"
        time.sleep(0.05)
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert time.monotonic() - sent < 10, "the run went on generating after SIGTERM"
    assert process.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "SIGTERM received while preparing the data" in err
    # Only the lock file is left (it is never deleted, see genre.filesystem.exclusive_lock).
    assert [path.suffix for path in (cache / "demo").iterdir()] == [".lock"]

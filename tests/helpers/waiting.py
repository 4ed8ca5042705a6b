"""Waiting for another process to reach a point: on a file, a pipe or a lock, never on a deadline.

A test that gives up after N seconds fails whenever the machine is busy (another suite, a build
beside it). These waits end when the awaited thing happens or the process ends without it; the only
clock is :data:`SAFETY_TIMEOUT`, so that a hung test cannot hang CI. No test relies on it.
"""

from __future__ import annotations

import os
import select
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

# Seconds: far beyond any wait on a loaded machine; only there so a hung test fails instead of hanging CI.
SAFETY_TIMEOUT = 900.0


def wait_for(condition: Callable[[], object], what: str, process: subprocess.Popen | None = None) -> None:
    """Block until ``condition()`` is true; fail at once if ``process`` ends first (it never will reach it)."""
    stop = time.monotonic() + SAFETY_TIMEOUT
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the process ended ({process.returncode}) before {what}")
        if time.monotonic() > stop:
            raise AssertionError(f"hung: still waiting for {what} after {SAFETY_TIMEOUT:.0f} s")
        time.sleep(0.02)


def read_lines(fd: int, count: int | None, what: str) -> list[str]:
    """Read ``count`` lines from the pipe ``fd`` (all of them, up to end of file, when ``count`` is None).

    Fails if the pipe reaches end of file (every writer gone) before ``count`` lines came.
    """
    data = b""
    stop = time.monotonic() + SAFETY_TIMEOUT
    while count is None or data.count(b"\n") < count:
        ready, _, _ = select.select([fd], [], [], max(0.0, stop - time.monotonic()))
        if not ready:
            raise AssertionError(f"hung: still waiting for {what} after {SAFETY_TIMEOUT:.0f} s")
        chunk = os.read(fd, 4096)
        if not chunk:
            if count is None:
                break
            raise AssertionError(f"the pipe closed before {what}: got {data.decode()!r}")
        data += chunk
    return data.decode().splitlines()


def blocked_on_lock(pid: int) -> bool:
    """Whether ``pid`` waits for a file lock (an ``flock``/``fcntl`` request blocked, per ``/proc/locks``)."""
    # A blocked request is listed as "N: -> FLOCK  ADVISORY  WRITE PID ..." under the lock it waits for.
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[1] == "->" and fields[5] == str(pid):
            return True
    return False

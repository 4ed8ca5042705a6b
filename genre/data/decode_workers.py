"""Decoding a dataset's files in worker processes, in order, surviving a decoder that kills its process."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from genre.core.worker_processes import worker_pool
from genre.data.decode import ClipFormat, warm_up

log = logging.getLogger(__name__)

# (path, the clip's bytes or None, why not, whether that was a read failure of the moment).
Decoded = tuple[str, bytes | None, str | None, bool]
# Decodes one file (a module-level function: worker processes call it by name).
Job = Callable[[str, ClipFormat], Decoded]


def default_workers() -> int:
    """The CPUs this process may use (on a cluster node: its allocation, not the whole machine)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _pool(workers: int) -> ProcessPoolExecutor:
    # Forked workers that die with this process and never hold its lock (see genre.core.worker_processes).
    return worker_pool(workers)


def _decode_alone(job: Job, path: str, fmt: ClipFormat) -> Decoded:
    """Decode one file in a process of its own, so a decoder that kills its process costs only this file."""
    with _pool(1) as pool:
        try:
            return pool.submit(job, path, fmt).result()
        except BrokenProcessPool:
            return path, None, "the decoder crashed on this file (its process died)", False


def decoded(job: Job, paths: list[str], fmt: ClipFormat, workers: int) -> Iterator[Decoded]:
    """``job`` (decode one file) on every path in worker processes, yielding in input order with a bounded
    number of clips in flight.

    A worker that dies (a decoder segfault, the OOM killer) breaks the whole pool and we cannot tell
    which of the files in flight killed it; those are then decoded one per process, so the culprit
    is skipped with its reason and the rest of the dataset still gets decoded.
    """
    if workers <= 1:
        for path in paths:
            yield job(path, fmt)
        return
    warm_up(fmt)
    window = 4 * workers
    position = 0  # paths[:position] have been yielded
    while position < len(paths):
        submitted = position  # paths[position:submitted] are in flight
        pool = _pool(workers)
        try:
            pending: list[Future] = []
            while position < len(paths):
                while submitted < len(paths) and len(pending) < window:
                    pending.append(pool.submit(job, paths[submitted], fmt))
                    submitted += 1
                result = pending.pop(0).result()
                position += 1
                yield result
        except BrokenProcessPool:
            log.warning(
                "A decoder process died; decoding the %d files that were in flight one at a time", submitted - position
            )
            for path in paths[position:submitted]:
                position += 1
                yield _decode_alone(job, path, fmt)
        finally:
            # A stop (SIGTERM, Ctrl-C) or an error: don't decode the rest of a build that will be discarded.
            pool.shutdown(wait=True, cancel_futures=True)

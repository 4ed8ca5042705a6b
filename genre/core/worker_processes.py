"""Worker processes that never outlive the process that forked them.

The audio cache and the demo corpus are built by forked worker pools while the builder holds a
lock (see :mod:`genre.core.filesystem`). A worker that outlived a killed builder (``kill -9``, the OOM
killer) would go on writing into a folder nobody will finish, and -- had it kept the lock -- make
every later run wait forever. So each worker asks the kernel to kill it when its parent dies
(``PR_SET_PDEATHSIG``), leaves stop signals to its parent, and inherits no lock (the file system
module closes held lock descriptors in every forked child).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor

log = logging.getLogger(__name__)

# From <linux/prctl.h>.
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Make the calling process receive SIGKILL when its parent dies; exit now if it already has.

    Ignores SIGINT and SIGTERM: the parent decides when to stop (it cancels the pool and removes
    what was written), and a worker that died of a stop signal meant for its parent would look like
    a crashed decoder. A no-op outside Linux, where the kernel offers no such request.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_PDEATHSIG) failed (errno %d): this worker may outlive its parent", ctypes.get_errno())
    # The parent may have died between fork() and prctl(): then we have been re-parented already.
    if os.getppid() != parent_pid:
        os._exit(1)


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """A process pool whose workers die with this process (see :func:`die_with_parent`).

    Forked on Linux: workers need only what is already imported, and "spawn"/"forkserver" would
    re-import the caller's ``__main__`` (a run script or a test), costing seconds per worker; an
    unguarded script would even re-enter the build and block on its lock.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=die_with_parent, initargs=(os.getpid(),)
    )

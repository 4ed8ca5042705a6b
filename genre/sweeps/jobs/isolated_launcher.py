"""``hydra/launcher=joblib``: hydra-joblib-launcher's parallel jobs, each in a process of its own.

joblib runs a batch of jobs in one pool of loky workers; when the OOM killer (or anyone) kills one
worker, loky breaks the whole pool and ``Parallel`` raises, which ended the sweep -- the healthy
sibling too, and before the summary. Here each job gets a fresh single-worker loky executor, at most
``n_jobs`` at once: a killed job fails alone (its ``JobReturn`` says it was killed, its
``status.json`` stays "running" with a dead pid, so summaries call it ``killed``), the other jobs run
on and the sweep writes its summary. Each job pays a fresh interpreter's start (a few seconds).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher
from joblib.externals.loky.process_executor import ProcessPoolExecutor, TerminatedWorkerError

from genre.core.upstream import joblib_execute_job

log = logging.getLogger(__name__)


class JobKilled(RuntimeError):
    """A job's process died before the job returned (SIGKILL, the OOM killer, a crash)."""


class IsolatedJoblibLauncher(JoblibLauncher):
    """Runs each job of a batch in its own loky worker process, ``n_jobs`` at a time.

    ``concurrent_jobs``: how many jobs a caller keeps running at once through separate ``launch`` calls
    (the Optuna sweeper's asynchronous trials launch one job per call); each job's thread share counts
    them, capped by ``n_jobs``. None: only this call's own jobs run at once.
    """

    concurrent_jobs: int | None = None

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        setup_globals()
        assert self.config is not None and self.task_function is not None and self.hydra_context is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        n_jobs = _n_jobs(self.joblib.get("n_jobs"), len(job_overrides))
        log.info(
            "Launching %d jobs, %d at a time, each in its own process; sweep output dir: %s",
            len(job_overrides),
            n_jobs,
            sweep_dir,
        )
        for idx, overrides in enumerate(job_overrides):
            log.info("\t#%d : %s", initial_job_idx + idx, " ".join(filter_overrides(overrides)))
        state = Singleton.get_state()
        threads = str(self._threads_per_job(len(job_overrides)))
        with ThreadPoolExecutor(n_jobs) as pool:
            futures = [
                pool.submit(self._run_alone, initial_job_idx + idx, list(overrides), state, threads)
                for idx, overrides in enumerate(job_overrides)
            ]
            return [future.result() for future in futures]

    def _threads_per_job(self, count: int) -> int:
        """Like joblib: each job gets its share of the cores among all the jobs running at once."""
        running = _n_jobs(self.joblib.get("n_jobs"), max(count, self.concurrent_jobs or 1))
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return max(1, cpus // running)

    def _run_alone(self, idx: int, overrides: list[str], state: dict[Any, Any], threads: str) -> JobReturn:
        env = {name: threads for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
        executor = ProcessPoolExecutor(max_workers=1, env=env)
        try:
            return executor.submit(
                joblib_execute_job(), idx, overrides, self.hydra_context, self.config, self.task_function, state
            ).result()
        except (TerminatedWorkerError, BrokenProcessPool) as exc:
            log.error("Job %d (%s) was killed: %s", idx, " ".join(overrides), " ".join(str(exc).split())[:300])
            return _killed(idx, overrides, exc)
        finally:
            executor.shutdown(wait=True, kill_workers=True)


def _n_jobs(n_jobs: Any, count: int) -> int:
    """joblib's meaning of ``n_jobs`` (-1: every CPU, -2: all but one ...), at most ``count``."""
    n = int(n_jobs) if n_jobs is not None else -1
    cpus = os.cpu_count() or 1
    if n < 0:
        n = max(1, cpus + 1 + n)
    return max(1, min(n, count))


def _killed(idx: int, overrides: list[str], exc: BaseException) -> JobReturn:
    ret = JobReturn(overrides=overrides, status=JobStatus.FAILED)
    ret.return_value = JobKilled(  # the public setter: status FAILED makes it the job's error
        f"job {idx}'s process died before it returned ({type(exc).__name__}); the OOM killer or a signal ended it"
    )
    return ret

"""Hydra callbacks, configured in ``genre/conf/hydra/callbacks/`` and on for every run and sweep.

- :class:`JobStatusRecorder` writes each job's ``status.json`` (running, then completed or failed
  with its error), in the job's own process: locally, in a joblib worker or on a SLURM node.
- :class:`JobEnvironment` prepares where jobs run: each job's share of the machine when jobs run
  side by side.
- :class:`SweepSummary` writes ``summary.csv``, ``summary.md`` and ``heatmap.png`` into the sweep
  dir when a sweep ends and prints the table.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn
from hydra.core.utils import JobStatus as HydraJobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from genre.sweeps.status import JobStatus
from genre.upstream import failed_job_error

log = logging.getLogger(__name__)


class JobStatusRecorder(Callback):
    """Records in ``<run dir>/status.json`` that a job runs, and how it ended."""

    def __init__(self) -> None:
        self._status: JobStatus | None = None

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._status = JobStatus.start()
        self._status.write(config.hydra.runtime.output_dir)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        status = self._status or JobStatus.start()
        error = failed_job_error(job_return) if job_return.status == HydraJobStatus.FAILED else None
        if job_return.status == HydraJobStatus.FAILED and not isinstance(error, BaseException):
            error = RuntimeError(f"job failed without an exception ({error!r})")
        status.finish(error)
        status.write(config.hydra.runtime.output_dir)
        self._status = None


class JobEnvironment(Callback):
    """Prepares the environment jobs run in.

    Imports need nothing here: submitit runs each job in a fresh interpreter (a local process or a
    SLURM job) of the same environment, where ``pip install -e .`` (``make``) made ``genre`` importable.

    - Threads: joblib's workers already limit torch to ``cpus // n_jobs`` threads (loky sets
      ``OMP_NUM_THREADS``), but submitit's jobs see every core of the machine; when the launcher names
      ``cpus_per_task``, torch gets that many threads.
    - GPUs: when several GPUs are visible to one job (a joblib worker sees them all), job ``n`` trains
      on GPU ``n % count`` unless ``trainer.device`` names one. Under SLURM each job sees only its own.
    """

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        import torch  # here, not at import: ``python run.py --help`` should not pay for torch

        cpus_per_task = config.hydra.launcher.get("cpus_per_task")
        if cpus_per_task:
            torch.set_num_threads(min(int(cpus_per_task), len(os.sched_getaffinity(0))))
        message = f"torch threads {torch.get_num_threads()}"
        device = str(config.get("trainer", {}).get("device", "auto")).lower()
        if device in ("auto", "cuda") and torch.cuda.is_available() and torch.cuda.device_count() > 1:
            gpu = int(config.hydra.job.get("num") or 0) % torch.cuda.device_count()
            # trainer.device=auto/cuda then means the current device.
            torch.cuda.set_device(gpu)
            message += f", GPU {gpu} of {torch.cuda.device_count()}"
        log.info("Job environment: %s", message)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        # A job that ran out of GPU memory leaves its cached blocks to the next job in the same worker.
        if job_return.status == HydraJobStatus.FAILED:
            import torch

            if torch.cuda.is_available() and torch.cuda.is_initialized():
                torch.cuda.empty_cache()


class SweepSummary(Callback):
    """At the end of a sweep, summarises every job of the sweep dir (see :mod:`genre.sweeps.summary`)."""

    def __init__(self, heatmap_metric: str = "test/acc") -> None:
        self.heatmap_metric = heatmap_metric

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from genre.sweeps.summary import summarise_sweep

        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            log.warning("No sweep dir %s: nothing to summarise", sweep_dir)
            return
        summary = summarise_sweep(sweep_dir, heatmap_metric=self.heatmap_metric)
        print(summary.table)
        log.info("Sweep summary: %s", ", ".join(str(path) for path in summary.files))

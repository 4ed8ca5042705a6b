"""Hydra callbacks, configured in ``genre/conf/hydra/callbacks/`` and on for every run and sweep.

- :class:`RunDirectoryGuard` claims each run's (and sweep's) directory before Hydra writes into it
  (:mod:`genre.run_files.directory`), and masks study-URL passwords in the ``.hydra/`` files Hydra wrote.
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
from omegaconf import DictConfig, read_write

from genre.core.errors import ConfigError, exit_with_one_line
from genre.core.upstream import failed_job_error
from genre.run_files.directory import Claim, claim
from genre.sweeps.jobs.status import JobStatus
from genre.sweeps.optuna.storage_url import mask_files

log = logging.getLogger(__name__)


class RunDirectoryGuard(Callback):
    """One run per run dir, one sweep per sweep dir (see :mod:`genre.run_files.directory`).

    Claims ``hydra.run.dir`` in ``on_run_start`` and ``hydra.sweep.dir`` in ``on_multirun_start``,
    which Hydra calls before it creates the directory and writes ``.hydra/`` there. A refusal is one
    line and exit status 2, like every other bad setting. In each job it masks study-URL passwords in
    the ``.hydra/`` files Hydra has just written (and in the sweep's ``multirun.yaml``).
    """

    def __init__(self) -> None:
        self._claim: Claim | None = None

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and os.environ.get("RANK", "0") != "0":
            return  # a torchrun rank other than 0 writes nothing of its own (genre.core.overrides)
        resuming = bool(config.get("resume"))
        self._claim = _claim_or_exit(config.hydra.run, "hydra.run.dir", config, resuming=resuming, sweep=False)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._claim = _claim_or_exit(config.hydra.sweep, "hydra.sweep.dir", config, resuming=False, sweep=True)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        run_dir = Path(config.hydra.runtime.output_dir)
        files = [
            run_dir / str(config.hydra.output_subdir) / name for name in ("config.yaml", "hydra.yaml", "overrides.yaml")
        ]
        if config.hydra.output_subdir is None:
            files = []
        mask_files([*files, Path(str(config.hydra.sweep.dir)) / "multirun.yaml"])


def _claim_or_exit(node: DictConfig, key: str, config: DictConfig, *, resuming: bool, sweep: bool) -> Claim:
    """Claim ``node.dir``; a taken default dir becomes ``<dir>-<n>``, a refusal ends the program with one line."""
    explicit = any(str(item).lstrip("+~").partition("=")[0] == key for item in config.hydra.overrides.hydra)
    try:
        claimed = claim(str(node.dir), key=key, resuming=resuming, default=not explicit, sweep=sweep)
    except ConfigError as exc:
        exit_with_one_line(exc)
    if str(claimed.directory) != str(node.dir):
        with read_write(node):
            node.dir = str(claimed.directory)
    return claimed


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
    """At the end of a sweep, summarises every job of the sweep dir (see :mod:`genre.sweeps.results.summary`)."""

    def __init__(self, heatmap_metric: str = "test/acc") -> None:
        self.heatmap_metric = heatmap_metric

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from genre.sweeps.results.summary import summarise_sweep

        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            log.warning("No sweep dir %s: nothing to summarise", sweep_dir)
            return
        summary = summarise_sweep(sweep_dir, heatmap_metric=self.heatmap_metric)
        log.info("Sweep summary: %s", ", ".join(str(path) for path in summary.files))
        print(summary.table, flush=True)  # last: its last line names the best configuration

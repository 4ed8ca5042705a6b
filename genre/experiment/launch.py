"""Where a run happens: in this process, in ``trainer.devices`` spawned processes, or as one rank of a
``torchrun`` launch. The run's spec (:mod:`genre.experiment.spec`) is built once, before any spawn, and
each process then runs :class:`~genre.experiment.phases.Run` on it."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from genre.core.errors import ConfigError, TrainingInterrupted
from genre.experiment.cross_validation import (
    cross_validation_folds,
    is_cross_validation_dir,
    resume_cross_validation,
    run_cross_validation,
)
from genre.experiment.phases import Run
from genre.experiment.resume import resume_config
from genre.experiment.spec import RunSpec, build_spec
from genre.training.callbacks import EpochCallback, StoppedByCallback
from genre.training.distributed import (
    DistContext,
    destroy_process_group,
    init_process_group,
    launched_by_torchrun,
    replica_device,
    run_spawned,
    torchrun_context,
)
from genre.training.interrupt import StopRequest

log = logging.getLogger(__name__)


def run_experiment(cfg: DictConfig, callbacks: Sequence[EpochCallback] = ()) -> float | list[float]:
    """Train, validate and test one configuration; return the objective (best validation metric).

    With ``cv.folds=k`` (or ``resume=`` a cross-validation job dir) that is k runs, one per fold, and the
    mean of their objectives (:mod:`genre.experiment.cross_validation`). ``callbacks`` (e.g. an Optuna
    trial's reporter, injected by ``run.py``) are told of every epoch on rank 0 and may end the run.

    Raises :class:`TrainingInterrupted` when SIGINT/SIGTERM stopped training (``last.pt`` is saved), and
    :class:`StoppedByCallback` when a callback ended it.
    """
    run_one = functools.partial(run_configured, callbacks=tuple(callbacks))
    resume_from: str | None = None
    if cfg.get("resume"):
        if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
            raise ConfigError("resume", "cannot be part of a sweep (-m)", "Resume one run at a time, without -m")
        if is_cross_validation_dir(str(cfg.resume)):
            return resume_cross_validation(cfg, run_one)
        cfg, last = resume_config(cfg)
        resume_from = str(last)
    elif cross_validation_folds(cfg):
        build_spec(cfg)  # the job's settings are checked before any fold starts
        return run_cross_validation(cfg, run_one)
    return run_one(cfg, resume_from)


def run_configured(
    cfg: DictConfig, resume_from: str | None, callbacks: Sequence[EpochCallback] = ()
) -> float | list[float]:
    """Run one configured run (fresh, or continuing ``resume_from``'s ``last.pt``) where it is meant to run."""
    spec = build_spec(cfg, resume_from)  # before any spawn: a bad setting fails once, not in every process
    if launched_by_torchrun():
        ctx = torchrun_context()
        log.info("torchrun launch: rank %d of %d (trainer.devices is ignored)", ctx.rank, ctx.world_size)
        return _run_in_group(ctx, "env://", spec, callbacks)
    devices = spec.runtime.devices
    if devices == 1:
        return run_in_process(spec, DistContext(), callbacks)
    log.info("Spawning %d training processes (DistributedDataParallel)", devices)
    outcome = run_spawned(_spawned_worker, devices, spec, tuple(callbacks), _log_file())
    if outcome is None:
        raise RuntimeError("the training processes ended without a result")
    if outcome[0] == "interrupted":
        raise TrainingInterrupted(outcome[1], outcome[2])
    if outcome[0] == "stopped":
        raise StoppedByCallback(outcome[1])
    value = outcome[1]  # one objective, or one value per objective of a multi-objective sweep
    return [float(v) for v in value] if isinstance(value, list) else float(value)


def run_in_process(spec: RunSpec, ctx: DistContext, callbacks: Sequence[EpochCallback] = ()) -> float | list[float]:
    """Run this process's part (all of it, or one rank's), with SIGINT/SIGTERM saving ``last.pt``."""
    with StopRequest() as stop:
        return Run(spec, ctx, stop, callbacks).execute()


def _log_file() -> str | None:
    """Hydra's log file of this job (``run.log``), for the spawned processes to append to."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            return handler.baseFilename
    return None


def _run_in_group(
    ctx: DistContext, init_method: str, spec: RunSpec, callbacks: Sequence[EpochCallback]
) -> float | list[float]:
    device = replica_device(spec.runtime.device, ctx)
    init_process_group(ctx, device, init_method)
    try:
        # One run: every rank takes rank 0's spec (torchrun ranks each composed their own config and output dir).
        return run_in_process(ctx.broadcast(spec), ctx, callbacks)
    finally:
        destroy_process_group()


def _spawned_worker(
    ctx: DistContext,
    init_method: str,
    results: Any,
    spec: RunSpec,
    callbacks: tuple[EpochCallback, ...],
    log_file: str | None,
) -> None:
    """Entry point of a process started for ``trainer.devices=N``: rank 0 reports the outcome."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if ctx.is_main and log_file:
        handlers.append(logging.FileHandler(log_file))
    logging.basicConfig(
        level=logging.INFO if ctx.is_main else logging.WARNING,
        handlers=handlers,
        force=True,
        format=f"[%(asctime)s][%(name)s][%(levelname)s][rank {ctx.rank}] - %(message)s",
    )
    # The CPU's cores are shared among the processes (on GPUs this only affects the data pipeline).
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // ctx.world_size))
    try:
        value = _run_in_group(ctx, init_method, spec, callbacks)
        if ctx.is_main:
            results.put(("done", value))
    except TrainingInterrupted as exc:
        if ctx.is_main:
            results.put(("interrupted", exc.signum, str(exc)))
    except StoppedByCallback as exc:
        if ctx.is_main:
            results.put(("stopped", exc.epoch))

"""Where a run happens: in this process, in ``trainer.devices`` spawned processes, or as one rank of a
``torchrun`` launch. Each process then runs :class:`~genre.experiment.phases.Run`."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any, cast

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from genre.errors import ConfigError, TrainingInterrupted
from genre.experiment.checks import check_config
from genre.experiment.cross_validation import (
    cross_validation_folds,
    is_cross_validation_dir,
    resume_cross_validation,
    run_cross_validation,
)
from genre.experiment.hparams import run_hparams
from genre.experiment.phases import Run
from genre.training.device import resolve_device
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
from genre.training.resume import resume_config

log = logging.getLogger(__name__)


def run_experiment(cfg: DictConfig) -> float | list[float]:
    """Train, validate and test one configuration; return the objective (best validation metric).

    With ``cv.folds=k`` (or ``resume=`` a cross-validation job dir) that is k runs, one per fold, and the
    mean of their objectives (:mod:`genre.experiment.cross_validation`).

    Raises :class:`TrainingInterrupted` when SIGINT/SIGTERM stopped training (``last.pt`` is saved).
    """
    resume_from: str | None = None
    if cfg.get("resume"):
        if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
            raise ConfigError("resume", "cannot be part of a sweep (-m)", "Resume one run at a time, without -m")
        if is_cross_validation_dir(str(cfg.resume)):
            return resume_cross_validation(cfg, run_configured)
        cfg, last = resume_config(cfg)
        resume_from = str(last)
    elif cross_validation_folds(cfg):
        check_config(cfg)
        return run_cross_validation(cfg, run_configured)
    return run_configured(cfg, resume_from)


def run_configured(cfg: DictConfig, resume_from: str | None) -> float | list[float]:
    """Run one configured run (fresh, or continuing ``resume_from``'s ``last.pt``) where it is meant to run."""
    check_config(cfg)
    hparams = run_hparams(cfg)
    # The run's own config, resolved; Hydra's node (present when composed with return_hydra_config) is not ours.
    own = cast(
        dict[str, Any],
        OmegaConf.to_container(OmegaConf.masked_copy(cfg, [str(key) for key in cfg if key != "hydra"]), resolve=True),
    )
    Path(own["paths"]["output_dir"]).mkdir(parents=True, exist_ok=True)
    if launched_by_torchrun():
        ctx = torchrun_context()
        log.info("torchrun launch: rank %d of %d (trainer.devices is ignored)", ctx.rank, ctx.world_size)
        return _run_in_group(ctx, "env://", own, hparams, resume_from)
    devices = int(cfg.trainer.devices)
    if devices == 1:
        return run_in_process(own, hparams, DistContext(), resume_from)
    log.info("Spawning %d training processes (DistributedDataParallel)", devices)
    outcome = run_spawned(_spawned_worker, devices, own, hparams, resume_from, _log_file())
    if outcome is None:
        raise RuntimeError("the training processes ended without a result")
    if outcome[0] == "interrupted":
        raise TrainingInterrupted(outcome[1], outcome[2])
    value = outcome[1]  # one objective, or one value per objective of a multi-objective sweep
    return [float(v) for v in value] if isinstance(value, list) else float(value)


def run_in_process(
    own: dict[str, Any], hparams: dict[str, Any], ctx: DistContext, resume_from: str | None
) -> float | list[float]:
    """Run this process's part (all of it, or one rank's), with SIGINT/SIGTERM saving ``last.pt``."""
    with StopRequest() as stop:
        return Run(OmegaConf.create(own), hparams, ctx, resume_from, stop).execute()


def _log_file() -> str | None:
    """Hydra's log file of this job (``run.log``), for the spawned processes to append to."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            return handler.baseFilename
    return None


def _run_in_group(
    ctx: DistContext, init_method: str, own: dict[str, Any], hparams: dict[str, Any], resume_from: str | None
) -> float | list[float]:
    device = replica_device(resolve_device(own["trainer"]["device"]), ctx)
    init_process_group(ctx, device, init_method)
    try:
        # One output directory: every rank uses rank 0's (torchrun ranks each composed their own config).
        own["paths"]["output_dir"] = ctx.broadcast(own["paths"]["output_dir"])
        return run_in_process(own, hparams, ctx, resume_from)
    finally:
        destroy_process_group()


def _spawned_worker(
    ctx: DistContext,
    init_method: str,
    results: Any,
    own: dict[str, Any],
    hparams: dict[str, Any],
    resume_from: str | None,
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
        value = _run_in_group(ctx, init_method, own, hparams, resume_from)
        if ctx.is_main:
            results.put(("done", value))
    except TrainingInterrupted as exc:
        if ctx.is_main:
            results.put(("interrupted", exc.signum, str(exc)))

"""One run, end to end: data, features, model, training, test, logs. ``run.py`` calls :func:`run_experiment`.

:func:`run_experiment` checks the config and decides how to run it: in this process, in
``trainer.devices`` spawned processes, or as one rank of a ``torchrun`` launch. Each process then runs
:func:`train_and_test`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from genre.augment import Augmentations
from genre.data.clips import ClipDataset
from genre.data.prepare import PreparedData, prepare_data
from genre.errors import ConfigError, TrainingInterrupted
from genre.tracking.classification_report import log_split_report
from genre.tracking.tensorboard import RunLogger
from genre.training.checkpoint import load_checkpoint
from genre.training.device import resolve_device, resolve_precision
from genre.training.distributed import (
    DistContext,
    destroy_process_group,
    init_process_group,
    launched_by_torchrun,
    replica_device,
    run_spawned,
    state_fingerprint,
    torchrun_context,
)
from genre.training.early_stopping import EarlyStopping
from genre.training.interrupt import StopRequest
from genre.training.loaders import eval_loader, train_loader
from genre.training.resume import resume_config
from genre.training.seeding import restore_rng_state, seed_everything
from genre.training.segments import AGGREGATES
from genre.training.trainer import Position, Trainer
from genre.training.weight_decay import decay_groups

log = logging.getLogger(__name__)

# Checkpoints are chosen on validation data only: choosing on test data would inflate the result.
OBJECTIVES = ("val/acc", "val/loss", "val/segment_acc", "val/segment_loss")


def _check(cfg: DictConfig) -> None:
    """Refuse bad settings before any work (and before spawning processes that would each fail)."""
    if str(cfg.objective) not in OBJECTIVES:
        raise ConfigError("objective", f"'{cfg.objective}' is not one of {', '.join(OBJECTIVES)}",
                          "Pick the checkpoint on validation data; test metrics are reported, never optimised")
    if str(cfg.get("objective_mode", "max")) not in ("max", "min"):
        raise ConfigError("objective_mode", f"'{cfg.objective_mode}' is not max or min",
                          "Use max for accuracy, min for loss")
    trainer_cfg = cfg.trainer
    clip = float(cfg.dataset.clip_seconds)
    for key, value in (("trainer.segment_seconds", trainer_cfg.segment_seconds),
                       ("eval.segment_seconds", cfg.eval.segment_seconds)):
        if not 0 < float(value) <= clip:
            raise ConfigError(key, f"{value} s is longer than the {clip} s clips (dataset.clip_seconds) or not "
                              f"positive", "Use a segment no longer than the clips")
    if str(cfg.eval.aggregate) not in AGGREGATES:
        raise ConfigError("eval.aggregate", f"'{cfg.eval.aggregate}' is not one of {', '.join(AGGREGATES)}",
                          "Use mean (average segment logits), vote or none")
    if int(trainer_cfg.epochs) < 1:
        raise ConfigError("trainer.epochs", f"{trainer_cfg.epochs} is not a positive count", "Use e.g. 30")
    if int(trainer_cfg.crops_per_clip) < 1:
        raise ConfigError("trainer.crops_per_clip", f"{trainer_cfg.crops_per_clip} is not a positive count",
                          "Use 1 or more random crops per clip and epoch")
    if not 0.0 <= float(trainer_cfg.label_smoothing) < 1.0:
        raise ConfigError("trainer.label_smoothing", f"{trainer_cfg.label_smoothing} is outside [0, 1)",
                          "Use e.g. 0.1")
    devices = int(trainer_cfg.devices)
    if devices < 1:
        raise ConfigError("trainer.devices", f"{devices} is not a positive process count", "Use 1, or the GPU count")
    device = resolve_device(trainer_cfg.device)
    if devices > 1 and device.type == "cuda" and devices > torch.cuda.device_count():
        raise ConfigError("trainer.devices", f"{devices} processes but {torch.cuda.device_count()} GPU(s)",
                          "Use at most one process per GPU")
    if devices > 1 and device.type not in ("cuda", "cpu"):
        raise ConfigError("trainer.devices", f"data-parallel training needs CUDA or CPU, not {device.type}",
                          "Use trainer.device=cuda or cpu")


def _hparams(cfg: DictConfig) -> dict[str, Any]:
    """The run's config choices and main numbers, plus every command-line override, for TensorBoard's HPARAMS."""
    params: dict[str, Any] = {}
    if HydraConfig.initialized():
        hydra_cfg = HydraConfig.get()
        for group in ("dataset", "feature", "model", "optimizer", "scheduler", "trainer", "augment"):
            choice = hydra_cfg.runtime.choices.get(group)
            if choice is not None:
                params[group] = str(choice)
        for override in hydra_cfg.overrides.task:
            key, _, value = override.lstrip("+~").partition("=")
            if key in params:
                continue
            try:
                params[key] = float(value)
            except ValueError:
                params[key] = value
    params.update({"optimizer.lr": float(cfg.optimizer.lr), "trainer.batch_size": int(cfg.trainer.batch_size),
                   "trainer.epochs": int(cfg.trainer.epochs), "trainer.segment_seconds":
                   float(cfg.trainer.segment_seconds), "eval.aggregate": str(cfg.eval.aggregate),
                   "seed": int(cfg.seed)})
    return params


def run_experiment(cfg: DictConfig) -> float:
    """Train, validate and test one configuration; return the objective (best validation metric).

    Raises :class:`TrainingInterrupted` when SIGINT/SIGTERM stopped training (``last.pt`` is saved).
    """
    resume_from: str | None = None
    if cfg.get("resume"):
        if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
            raise ConfigError("resume", "cannot be part of a sweep (-m)", "Resume one run at a time, without -m")
        cfg, last = resume_config(cfg)
        resume_from = str(last)
    _check(cfg)
    hparams = _hparams(cfg)
    # The run's own config, resolved; Hydra's node (present when composed with return_hydra_config) is not ours.
    own = OmegaConf.to_container(OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"]), resolve=True)
    Path(own["paths"]["output_dir"]).mkdir(parents=True, exist_ok=True)
    if launched_by_torchrun():
        ctx = torchrun_context()
        log.info("torchrun launch: rank %d of %d (trainer.devices is ignored)", ctx.rank, ctx.world_size)
        return _run_in_group(ctx, "env://", own, hparams, resume_from)
    devices = int(cfg.trainer.devices)
    if devices == 1:
        return train_and_test(own, hparams, DistContext(), resume_from)
    log.info("Spawning %d training processes (DistributedDataParallel)", devices)
    outcome = run_spawned(_spawned_worker, devices, own, hparams, resume_from, _log_file())
    if outcome is None:
        raise RuntimeError("the training processes ended without a result")
    if outcome[0] == "interrupted":
        raise TrainingInterrupted(outcome[1], outcome[2])
    return float(outcome[1])


def _log_file() -> str | None:
    """Hydra's log file of this job (``run.log``), for the spawned processes to append to."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            return handler.baseFilename
    return None


def _run_in_group(ctx: DistContext, init_method: str, own: dict[str, Any], hparams: dict[str, Any],
                  resume_from: str | None) -> float:
    device = replica_device(resolve_device(own["trainer"]["device"]), ctx)
    init_process_group(ctx, device, init_method)
    try:
        # One output directory: every rank uses rank 0's (torchrun ranks each composed their own config).
        own["paths"]["output_dir"] = ctx.broadcast(own["paths"]["output_dir"])
        return train_and_test(own, hparams, ctx, resume_from)
    finally:
        destroy_process_group()


def _spawned_worker(ctx: DistContext, init_method: str, results: Any, own: dict[str, Any], hparams: dict[str, Any],
                    resume_from: str | None, log_file: str | None) -> None:
    """Entry point of a process started for ``trainer.devices=N``: rank 0 reports the outcome."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if ctx.is_main and log_file:
        handlers.append(logging.FileHandler(log_file))
    logging.basicConfig(level=logging.INFO if ctx.is_main else logging.WARNING, handlers=handlers, force=True,
                        format=f"[%(asctime)s][%(name)s][%(levelname)s][rank {ctx.rank}] - %(message)s")
    # The CPU's cores are shared among the processes (on GPUs this only affects the data pipeline).
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // ctx.world_size))
    try:
        value = _run_in_group(ctx, init_method, own, hparams, resume_from)
        if ctx.is_main:
            results.put(("done", value))
    except TrainingInterrupted as exc:
        if ctx.is_main:
            results.put(("interrupted", exc.signum, str(exc)))


def _prepare(cfg: DictConfig, ctx: DistContext) -> PreparedData:
    # Rank 0 generates/decodes first; the others then only open the finished cache.
    data = prepare_data(cfg.dataset, cfg.paths.cache_dir, progress=bool(cfg.trainer.progress)) if ctx.is_main else None
    ctx.barrier()
    return data or prepare_data(cfg.dataset, cfg.paths.cache_dir, progress=False)


def train_and_test(own: dict[str, Any], hparams: dict[str, Any], ctx: DistContext, resume_from: str | None) -> float:
    """Train (or continue training), then test the best checkpoint; rank 0 writes every output."""
    with StopRequest() as stop:
        return _train_and_test(OmegaConf.create(own), hparams, ctx, resume_from, stop)


def _train_and_test(cfg: DictConfig, hparams: dict[str, Any], ctx: DistContext, resume_from: str | None,
                    stop: StopRequest) -> float:
    run_dir = Path(cfg.paths.output_dir)
    trainer_cfg = cfg.trainer
    seed = int(cfg.seed)
    seed_everything(seed, bool(trainer_cfg.deterministic))
    device = replica_device(resolve_device(trainer_cfg.device), ctx)
    precision = resolve_precision(trainer_cfg.precision, device)
    if ctx.is_main:
        log.info("Run dir %s | device %s | precision %s | processes %d%s", run_dir, device, precision,
                 ctx.world_size, f" | resuming from {resume_from}" if resume_from else "")

    data = _prepare(cfg, ctx)
    if ctx.is_main:
        log.info("%s", data.summary())
    sample_rate = int(cfg.dataset.sample_rate)
    segment = int(round(float(trainer_cfg.segment_seconds) * sample_rate))
    eval_segment = int(round(float(cfg.eval.segment_seconds) * sample_rate))
    workers = int(trainer_cfg.num_workers)
    splits = data.splits
    train_set = ClipDataset(data.cache, splits["train"].rows, splits["train"].targets, segment_samples=segment,
                            seed=seed, crops_per_clip=int(trainer_cfg.crops_per_clip))
    crops = train_loader(train_set, batch_size=int(trainer_cfg.batch_size), seed=seed, ctx=ctx, device=device,
                         num_workers=workers)
    clips = {name: ClipDataset(data.cache, splits[name].rows, splits[name].targets) for name in ("train", "val", "test")}
    eval_batch = int(trainer_cfg.eval_batch_size)
    loaders = {name: eval_loader(clips[name], batch_size=eval_batch, ctx=ctx, device=device, num_workers=workers)
               for name in ("val", "test")}

    features = instantiate(cfg.feature).to(device)
    n_classes = len(data.labels)
    model: nn.Module = instantiate(cfg.model, n_bands=features.n_bands, n_classes=n_classes).to(device)
    n_parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if ctx.is_main:
        log.info("Model %s: %d trainable parameters; features %s: %d bands", type(model).__name__, n_parameters,
                 type(features.transform).__name__, features.n_bands)
    if ctx.enabled and device.type == "cuda":
        # Per-GPU batches are small; synchronised BatchNorm normalises over the global batch.
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    optimizer = instantiate(cfg.optimizer)(params=decay_groups(model))
    schedule = instantiate(cfg.scheduler)(optimizer, epochs=int(trainer_cfg.epochs), steps_per_epoch=len(crops))
    augment = Augmentations([instantiate(node) for node in cfg.augment.values()], n_classes)
    if ctx.is_main and augment:
        log.info("Augmentation: %s", augment)
    tracker = EarlyStopping(name=str(cfg.objective), mode=str(cfg.objective_mode),
                            patience=trainer_cfg.early_stopping.patience,
                            min_delta=float(trainer_cfg.early_stopping.min_delta))
    trainer = Trainer(model, features, optimizer, schedule, device=device, precision=precision,
                      loss_fn=nn.CrossEntropyLoss(label_smoothing=float(trainer_cfg.label_smoothing)),
                      augment=augment, segment_samples=eval_segment, aggregate=str(cfg.eval.aggregate),
                      grad_clip=trainer_cfg.grad_clip, dist=ctx, progress=bool(trainer_cfg.progress), stop=stop)

    state: dict[str, Any] | None = None
    position, history, seconds_before = Position(), [], 0.0
    if resume_from:
        state = load_checkpoint(resume_from, map_location=device)
        if int(state.get("world_size", 1)) != ctx.world_size:
            raise ConfigError("trainer.devices", f"the run trained on {state.get('world_size', 1)} process(es), "
                              f"not {ctx.world_size}", "Resume with the same number of processes")
        if state.get("audio_cache", data.cache.directory.name) != data.cache.directory.name and ctx.is_main:
            # The cache key hashes every file's size and mtime: the audio changed since the run started.
            log.warning("The dataset's audio changed since this run started (audio cache %s, now %s): the resumed "
                        "run will not match an uninterrupted one", state["audio_cache"], data.cache.directory.name)
        trainer.load_state_dict(state)
        tracker.load_state_dict(state["early_stopping"])
        position = Position(**state["position"])
        history, seconds_before = state["history"], float(state["train_seconds"])
    else:
        # Standardisation statistics come from the training split only (whole clips), never from val/test.
        norm = eval_loader(clips["train"], batch_size=eval_batch, ctx=ctx, device=device, num_workers=workers,
                           shard=False)
        features.fit_normalization(audio.to(device).float() / 32768.0 for audio, _ in norm)
    if ctx.enabled:
        trainer.model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        if state is None and ctx.rank:
            # Replicas start from rank 0's weights (DDP broadcast them); their dropout and augmentation differ.
            seed_everything(seed + ctx.rank, bool(trainer_cfg.deterministic))
    if state is not None:
        # Last: everything above may have drawn random numbers the interrupted run did not.
        restore_rng_state(state["rng"][ctx.rank], device)

    logger = None
    if ctx.is_main:
        # purge_step drops anything an interrupted run logged past its checkpoint, so curves continue cleanly.
        logger = RunLogger(run_dir / "tensorboard", purge_step=position.epoch if state is not None else None)
        if state is None:
            logger.text("config", OmegaConf.to_yaml(cfg))
            logger.text("data", data.summary())
    trainer.logger = logger
    try:
        fit = trainer.fit(crops, loaders["val"], epochs=int(trainer_cfg.epochs), tracker=tracker, run_dir=run_dir,
                          checkpoint_extra={"labels": data.labels, "config": OmegaConf.to_container(cfg),
                                            "audio_cache": data.cache.directory.name},
                          start=position, history=history, seconds_before=seconds_before)
        # The replicas' final weights, to show that data-parallel training kept them identical.
        fingerprints = ctx.gather(state_fingerprint(trainer.module.state_dict()))
        best = load_checkpoint(run_dir / "best.pt", map_location=device)
        trainer.module.load_state_dict(best["model"])
        val = trainer.evaluate(loaders["val"], desc="val (best)")
        test = trainer.evaluate(loaders["test"], desc="test (best)")
        last_epoch = fit.history[-1]
        metrics = {**val.metrics("val"), **test.metrics("test"), "train/loss": last_epoch["train/loss"],
                   "train/acc": last_epoch["train/acc"]}
        if logger is not None:
            report = log_split_report(logger, test, data.labels, "test", fit.best_epoch)
            summary = {**metrics, "best_epoch": fit.best_epoch, "epochs": int(trainer_cfg.epochs),
                       "epochs_run": int(last_epoch["epoch"]), "stopped_early": fit.stopped_early,
                       "n_parameters": n_parameters, "train_seconds": fit.seconds, "labels": data.labels,
                       "n_clips": {name: len(split) for name, split in splits.items()},
                       "skipped": len(data.skipped), "aggregate": str(cfg.eval.aggregate),
                       "world_size": ctx.world_size, "resumed": resume_from is not None}
            if ctx.enabled:
                summary["final_state_sha256_per_rank"] = fingerprints
            (run_dir / "metrics.json").write_text(json.dumps(summary, indent=2))
            logger.scalars(test.metrics("test"), step=fit.best_epoch)
            logger.hparams(hparams, {f"hparams/{k.replace('/', '_')}": v for k, v in metrics.items()},
                           step=int(trainer_cfg.epochs))
            log.info("Test report (best epoch %d):\n%s", fit.best_epoch, report)
            log.info("val acc %.4f | test acc %.4f (segments %.4f) | test loss %.4f", val.acc, test.acc,
                     test.segment_acc, test.loss)
            print(f"test accuracy: {test.acc:.4f} (segments {test.segment_acc:.4f}; val accuracy {val.acc:.4f}, "
                  f"best epoch {fit.best_epoch}) -> {run_dir}")
    finally:
        if logger is not None:
            logger.close()
    # A sweep must see a failure, never a number, from a diverged run: a NaN val/loss beside a finite
    # val/acc is still one (and a NaN objective crashes hydra-optuna-sweeper, Hydra issue #2237).
    non_finite = [f"{key}={value}" for key, value in metrics.items() if not math.isfinite(value)]
    if non_finite:
        raise FloatingPointError(f"non-finite final metrics ({', '.join(non_finite)}): the run diverged; lower "
                                 f"optimizer.lr or set trainer.grad_clip")
    return float(metrics[str(cfg.objective)])

"""One run, end to end: data, features, model, training, test, logs. ``run.py`` calls :func:`run_experiment`."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from sklearn.metrics import classification_report, confusion_matrix
from torch.utils.data import DataLoader

from genre.data.clips import ClipDataset
from genre.data.prepare import PreparedData, prepare_data
from genre.errors import ConfigError
from genre.logging.tensorboard import RunLogger
from genre.training.checkpoint import load_checkpoint
from genre.training.device import resolve_device, resolve_precision
from genre.training.seeding import seed_everything
from genre.training.trainer import EvalResult, Objective, Trainer

log = logging.getLogger(__name__)

# Checkpoints are chosen on validation data only: choosing on test data would inflate the result.
OBJECTIVES = ("val/acc", "val/loss")


def _objective(cfg: DictConfig) -> Objective:
    name, mode = str(cfg.objective), str(cfg.get("objective_mode", "max"))
    if name not in OBJECTIVES:
        raise ConfigError("objective", f"'{name}' is not one of {', '.join(OBJECTIVES)}",
                          "Pick the checkpoint on validation data; test metrics are reported, never optimised")
    if mode not in ("max", "min"):
        raise ConfigError("objective_mode", f"'{mode}' is not max or min", "Use max for accuracy, min for loss")
    return Objective(name=name, mode=mode)


def _loader(dataset: ClipDataset, batch_size: int, *, shuffle: bool, cfg: DictConfig, device: torch.device,
            seed: int) -> DataLoader:
    workers = int(cfg.trainer.num_workers)
    generator = torch.Generator().manual_seed(seed)
    # Training drops a ragged last batch: a batch of one breaks BatchNorm, and shuffling moves it each epoch.
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=workers,
                      pin_memory=device.type == "cuda", persistent_workers=workers > 0, generator=generator,
                      drop_last=shuffle and len(dataset) > batch_size)


def _hparams(cfg: DictConfig) -> dict[str, Any]:
    """The run's config choices and main numbers, plus every command-line override, for TensorBoard's HPARAMS."""
    params: dict[str, Any] = {}
    if HydraConfig.initialized():
        hydra_cfg = HydraConfig.get()
        for group in ("dataset", "feature", "model", "optimizer", "scheduler", "trainer"):
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
                   float(cfg.trainer.segment_seconds), "seed": int(cfg.seed)})
    return params


def _report(logger: RunLogger, result: EvalResult, labels: list[str], split: str, step: int) -> str:
    matrix = confusion_matrix(result.targets, result.predictions, labels=list(range(len(labels))))
    logger.confusion_matrix(f"{split}/confusion_matrix", matrix, labels, step)
    report = classification_report(result.targets, result.predictions, labels=list(range(len(labels))),
                                   target_names=labels, digits=3, zero_division=0)
    logger.text(f"{split}/classification_report", report, step)
    return report


def run_experiment(cfg: DictConfig) -> float:
    """Train, validate and test one configuration; return the objective (best validation metric)."""
    objective = _objective(cfg)
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    trainer_cfg = cfg.trainer
    if float(trainer_cfg.segment_seconds) > float(cfg.dataset.clip_seconds):
        raise ConfigError("trainer.segment_seconds", f"{trainer_cfg.segment_seconds} s is longer than the "
                          f"{cfg.dataset.clip_seconds} s clips (dataset.clip_seconds)",
                          "Use a segment no longer than the clips")
    if int(trainer_cfg.epochs) < 1:
        raise ConfigError("trainer.epochs", f"{trainer_cfg.epochs} is not a positive count", "Use e.g. 30")
    seed_everything(int(cfg.seed), bool(trainer_cfg.deterministic))
    device = resolve_device(trainer_cfg.device)
    precision = resolve_precision(trainer_cfg.precision, device)
    log.info("Run dir %s | device %s | precision %s", run_dir, device, precision)

    data: PreparedData = prepare_data(cfg.dataset, cfg.paths.cache_dir, progress=bool(trainer_cfg.progress))
    log.info("%s", data.summary())
    sample_rate = int(cfg.dataset.sample_rate)
    segment = int(round(float(trainer_cfg.segment_seconds) * sample_rate))
    train_set = ClipDataset(data.cache, data.splits["train"].rows, data.splits["train"].targets,
                            segment_samples=segment, seed=int(cfg.seed))
    eval_sets = {name: ClipDataset(data.cache, data.splits[name].rows, data.splits[name].targets)
                 for name in ("train", "val", "test")}
    train_loader = _loader(train_set, int(trainer_cfg.batch_size), shuffle=True, cfg=cfg, device=device,
                           seed=int(cfg.seed))
    eval_loaders = {name: _loader(dataset, int(trainer_cfg.eval_batch_size), shuffle=False, cfg=cfg,
                                  device=device, seed=int(cfg.seed)) for name, dataset in eval_sets.items()}

    features = instantiate(cfg.feature).to(device)
    # Standardisation statistics come from the training split only, never from val/test.
    features.fit_normalization(audio.to(device).float() / 32768.0 for audio, _ in eval_loaders["train"])
    model = instantiate(cfg.model, n_bands=features.n_bands, n_classes=len(data.labels)).to(device)
    n_parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log.info("Model %s: %d trainable parameters; features %s: %d bands", type(model).__name__, n_parameters,
             type(features.transform).__name__, features.n_bands)
    optimizer = instantiate(cfg.optimizer)(params=model.parameters())
    scheduler = instantiate(cfg.scheduler)(optimizer, epochs=int(trainer_cfg.epochs),
                                           steps_per_epoch=len(train_loader))

    logger = RunLogger(run_dir / "tensorboard")
    # The run's own config, resolved; Hydra's node (present when composed with return_hydra_config) is not ours.
    own = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
    resolved = OmegaConf.to_container(own, resolve=True)
    logger.text("config", OmegaConf.to_yaml(own, resolve=True))
    logger.text("data", data.summary())
    trainer = Trainer(model, features, optimizer, scheduler, device=device, precision=precision,
                      grad_clip=trainer_cfg.grad_clip, logger=logger, progress=bool(trainer_cfg.progress))
    try:
        fit = trainer.fit(train_loader, eval_loaders["val"], epochs=int(trainer_cfg.epochs), objective=objective,
                          run_dir=run_dir, checkpoint_extra={"labels": data.labels, "config": resolved})
        best = load_checkpoint(run_dir / "best.pt", map_location=device)
        model.load_state_dict(best["model"])
        val = trainer.evaluate(eval_loaders["val"], desc="val (best)")
        test = trainer.evaluate(eval_loaders["test"], desc="test (best)")
        report = _report(logger, test, data.labels, "test", fit.best_epoch)
        metrics = {"val/acc": val.acc, "val/loss": val.loss, "test/acc": test.acc, "test/loss": test.loss,
                   "train/loss": fit.history[-1]["train/loss"], "train/acc": fit.history[-1]["train/acc"]}
        summary = {**metrics, "best_epoch": fit.best_epoch, "epochs": int(trainer_cfg.epochs),
                   "n_parameters": n_parameters, "train_seconds": fit.seconds, "labels": data.labels,
                   "n_clips": {name: len(clips) for name, clips in data.splits.items()},
                   "skipped": len(data.skipped)}
        (run_dir / "metrics.json").write_text(json.dumps(summary, indent=2))
        logger.scalars({"test/acc": test.acc, "test/loss": test.loss}, step=fit.best_epoch)
        logger.hparams(_hparams(cfg), {f"hparams/{k.replace('/', '_')}": v for k, v in metrics.items()},
                       step=int(trainer_cfg.epochs))
    finally:
        logger.close()
    log.info("Test report (best epoch %d):\n%s", fit.best_epoch, report)
    log.info("val acc %.4f | test acc %.4f | test loss %.4f", val.acc, test.acc, test.loss)
    print(f"test accuracy: {test.acc:.4f} (val accuracy {val.acc:.4f}, best epoch {fit.best_epoch}) -> {run_dir}")
    # A sweep must see a failure, never a number, from a diverged run: a NaN val/loss beside a finite
    # val/acc is still one (and a NaN objective crashes hydra-optuna-sweeper, Hydra issue #2237).
    non_finite = [f"{key}={value}" for key, value in metrics.items() if not math.isfinite(value)]
    if non_finite:
        raise FloatingPointError(f"non-finite final metrics ({', '.join(non_finite)}): the run diverged; lower "
                                 f"optimizer.lr or set trainer.grad_clip")
    return float(metrics[objective.name])

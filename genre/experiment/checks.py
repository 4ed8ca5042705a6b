"""Checks of a run's composed config, made before any work (and before spawning processes that would each fail)."""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from genre.errors import ConfigError, config_keys
from genre.training.device import resolve_device, resolve_precision
from genre.training.early_stopping import EarlyStopping
from genre.training.segments import AGGREGATES

# Checkpoints are chosen on validation data only: choosing on test data would inflate the result.
OBJECTIVES = ("val/acc", "val/loss", "val/segment_acc", "val/segment_loss")


def check_config(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` (naming the key and the fix) for the first bad setting of ``cfg``."""
    _check_objective(cfg)
    _check_segments(cfg)
    _check_training(cfg.trainer)
    _check_devices(cfg.trainer)
    with config_keys("trainer.early_stopping"):
        EarlyStopping(
            patience=cfg.trainer.early_stopping.patience, min_delta=float(cfg.trainer.early_stopping.min_delta)
        )


def _check_objective(cfg: DictConfig) -> None:
    if str(cfg.objective) not in OBJECTIVES:
        raise ConfigError(
            "objective",
            f"'{cfg.objective}' is not one of {', '.join(OBJECTIVES)}",
            "Pick the checkpoint on validation data; test metrics are reported, never optimised",
        )
    if str(cfg.get("objective_mode", "max")) not in ("max", "min"):
        raise ConfigError(
            "objective_mode", f"'{cfg.objective_mode}' is not max or min", "Use max for accuracy, min for loss"
        )


def _check_segments(cfg: DictConfig) -> None:
    clip = float(cfg.dataset.clip_seconds)
    for key, value in (
        ("trainer.segment_seconds", cfg.trainer.segment_seconds),
        ("eval.segment_seconds", cfg.eval.segment_seconds),
    ):
        if not 0 < float(value) <= clip:
            raise ConfigError(
                key,
                f"{value} s is longer than the {clip} s clips (dataset.clip_seconds) or not positive",
                "Use a segment no longer than the clips",
            )
    if str(cfg.eval.aggregate) not in AGGREGATES:
        raise ConfigError(
            "eval.aggregate",
            f"'{cfg.eval.aggregate}' is not one of {', '.join(AGGREGATES)}",
            "Use mean (average segment logits), vote or none",
        )


def _check_training(trainer: DictConfig) -> None:
    if int(trainer.epochs) < 1:
        raise ConfigError("trainer.epochs", f"{trainer.epochs} is not a positive count", "Use e.g. 30")
    if int(trainer.crops_per_clip) < 1:
        raise ConfigError(
            "trainer.crops_per_clip",
            f"{trainer.crops_per_clip} is not a positive count",
            "Use 1 or more random crops per clip and epoch",
        )
    if not 0.0 <= float(trainer.label_smoothing) < 1.0:
        raise ConfigError("trainer.label_smoothing", f"{trainer.label_smoothing} is outside [0, 1)", "Use e.g. 0.1")


def _check_devices(trainer: DictConfig) -> None:
    devices = int(trainer.devices)
    if devices < 1:
        raise ConfigError("trainer.devices", f"{devices} is not a positive process count", "Use 1, or the GPU count")
    with config_keys("trainer"):
        device = resolve_device(trainer.device)
        resolve_precision(trainer.precision, device)
    if devices > 1 and device.type == "cuda" and devices > torch.cuda.device_count():
        raise ConfigError(
            "trainer.devices",
            f"{devices} processes but {torch.cuda.device_count()} GPU(s)",
            "Use at most one process per GPU",
        )
    if devices > 1 and device.type not in ("cuda", "cpu"):
        raise ConfigError(
            "trainer.devices",
            f"data-parallel training needs CUDA or CPU, not {device.type}",
            "Use trainer.device=cuda or cpu",
        )

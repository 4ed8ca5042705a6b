"""Checks of a run's composed config, made before any work (and before spawning processes that would each fail)."""

from __future__ import annotations

import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from genre.errors import ConfigError, config_keys
from genre.objective import mode_of
from genre.training.device import resolve_device, resolve_precision
from genre.training.early_stopping import EarlyStopping
from genre.training.segments import AGGREGATES

log = logging.getLogger(__name__)

# Checkpoints are chosen on validation data only: choosing on test data would inflate the result.
OBJECTIVES = ("val/acc", "val/loss", "val/segment_acc", "val/segment_loss")
# Numbers checked before anything reads them: key -> (whole number?, smallest allowed, smallest excluded?, example).
NUMBERS: dict[str, tuple[bool, float, bool, str]] = {
    "trainer.epochs": (True, 1, False, "30"),
    "trainer.batch_size": (True, 1, False, "16"),
    "trainer.eval_batch_size": (True, 1, False, "8"),
    "trainer.crops_per_clip": (True, 1, False, "1"),
    "trainer.num_workers": (True, 0, False, "0"),
    "trainer.devices": (True, 1, False, "1"),
    "trainer.segment_seconds": (False, 0, True, "5.0"),
    "eval.segment_seconds": (False, 0, True, "5.0"),
    "dataset.clip_seconds": (False, 0, True, "30.0"),
    "dataset.sample_rate": (True, 1, False, "22050"),
    "optimizer.lr": (False, 0, True, "1e-3"),
    "optimizer.weight_decay": (False, 0, False, "1e-2"),
    "scheduler.warmup_epochs": (False, 0, False, "1.0"),
    "trainer.label_smoothing": (False, 0, False, "0.1"),
}
# Longer clips than this (an hour) are a typo, and would ask for gigabytes per clip.
MAX_CLIP_SECONDS = 3600.0
# Facts of a run (RunMetrics fields) that later objectives of a multi-objective sweep may name.
FACT_OBJECTIVES = ("n_parameters", "train_seconds")


def check_config(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` (naming the key and the fix) for the first bad setting of ``cfg``."""
    _check_mandatory(cfg)
    for key, rule in NUMBERS.items():
        check_number(cfg, key, *rule)
    _check_objective(cfg)
    _check_segments(cfg)
    _check_training(cfg.trainer)
    _check_schedule(cfg)
    _check_devices(cfg.trainer)
    with config_keys("trainer.early_stopping"):
        EarlyStopping(
            patience=cfg.trainer.early_stopping.patience, min_delta=float(cfg.trainer.early_stopping.min_delta)
        )
    check_cache_dir(OmegaConf.select(cfg, "paths.cache_dir"))
    check_writable("paths.output_dir", OmegaConf.select(cfg, "paths.output_dir"))


def check_number(cfg: DictConfig, key: str, whole: bool, lowest: float, excluded: bool, example: str) -> None:
    """Refuse a value of ``key`` that is not a (whole) number above ``lowest`` (or at least it)."""
    value: Any = OmegaConf.select(cfg, key, default=None)
    if value is None:
        return  # not part of this config (e.g. a scheduler without warm-up)
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or (whole and number != int(number)):
        raise ConfigError(key, f"'{value}' is not a {'whole ' if whole else ''}number", f"Use e.g. {key}={example}")
    if number < lowest or (excluded and number == lowest):
        bound = f"{'above' if excluded else 'at least'} {lowest:g}"
        raise ConfigError(key, f"{value} is not {bound}", f"Use e.g. {key}={example}")


def check_clip_seconds(key: str, seconds: float, sample_rate: int, n_fft: int | None) -> None:
    """Refuse an analysis length that is not positive, longer than an hour, or shorter than the
    feature's FFT window of ``n_fft`` samples (``feature.transform.n_fft``; None: no window)."""
    if not 0 < seconds <= MAX_CLIP_SECONDS:
        raise ConfigError(
            key, f"{seconds:g} s is not within (0, {MAX_CLIP_SECONDS:g}] s", "Use the clip length in seconds"
        )
    if n_fft and round(seconds * sample_rate) < int(n_fft):
        raise ConfigError(
            key,
            f"{seconds:g} s is shorter than the feature's FFT window (feature.transform.n_fft="
            f"{n_fft}, {int(n_fft) / sample_rate:.3f} s)",
            "Use longer segments, or a smaller n_fft",
        )


def check_writable(key: str, directory: Any) -> None:
    """Refuse a directory this process cannot create or write in (checked by writing a file there)."""
    if directory is None:
        return
    path = Path(str(directory)).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ConfigError(
            key,
            f"cannot write in '{path}' ({exc.strerror or exc})",
            f"Point {key} at a writable folder{' (or set GENRE_CACHE)' if 'cache' in key else ''}",
        ) from None


def check_cache_dir(directory: Any) -> None:
    """Refuse a ``paths.cache_dir`` this process can neither write in nor reuse caches from.

    A folder that cannot be written but holds caches (prepared ahead on a read-only mount, shared on a
    cluster) is accepted: its finished caches are reused, and one that would have to be built there is
    refused when that happens, with one line naming ``paths.cache_dir`` (genre.data.cache_integrity).
    """
    try:
        check_writable("paths.cache_dir", directory)
    except ConfigError:
        path = Path(str(directory)).expanduser()
        if not any(os.access(path / part, os.R_OK | os.X_OK) for part in ("audio", "embeddings")):
            raise
        log.info("paths.cache_dir '%s' is read-only here: its finished caches are reused, none is built", path)


def _check_mandatory(cfg: DictConfig, prefix: str = "") -> None:
    """Refuse a mandatory value (``???``) left unset, e.g. ``dataset.root`` of ``dataset=gtzan``."""
    for key in cfg:
        if not prefix and key == "hydra":
            continue
        dotted = f"{prefix}{key!s}"
        if OmegaConf.is_missing(cfg, key):
            raise ConfigError(dotted, "is not set", f"Add {dotted}=... to the command line (see the README)")
        node = cfg._get_node(key)
        if isinstance(node, DictConfig) and not node._is_interpolation() and not node._is_none():
            _check_mandatory(node, f"{dotted}.")


def _check_schedule(cfg: DictConfig) -> None:
    warmup = OmegaConf.select(cfg, "scheduler.warmup_epochs", default=None)
    if warmup is not None and float(warmup) > int(cfg.trainer.epochs):
        raise ConfigError(
            "scheduler.warmup_epochs",
            f"{warmup} epochs of warm-up is longer than the {cfg.trainer.epochs}-epoch run",
            "Use fewer warm-up epochs than trainer.epochs",
        )


def run_objectives(cfg: DictConfig) -> list[tuple[str, str]]:
    """``(name, mode)`` of each objective: ``objective`` is one name or a list of them (a multi-objective
    sweep), the first of which picks the best checkpoint; ``objective_mode`` is one mode or one per name."""
    names = [cfg.objective] if isinstance(cfg.objective, str) else list(cfg.objective)
    mode = cfg.get("objective_mode", "max")
    modes = [mode] * len(names) if isinstance(mode, str) else list(mode)
    if len(modes) != len(names):
        raise ConfigError(
            "objective_mode",
            f"{len(modes)} mode(s) for {len(names)} objective(s)",
            "Give one max or min per objective, e.g. objective_mode=[max,min]",
        )
    return [(str(name), str(mode)) for name, mode in zip(names, modes)]


def _check_objective(cfg: DictConfig) -> None:
    objectives = run_objectives(cfg)
    first = objectives[0][0]
    if first not in OBJECTIVES:
        raise ConfigError(
            "objective",
            f"'{first}' is not one of {', '.join(OBJECTIVES)}",
            "Pick the checkpoint on validation data; test metrics are reported, never optimised",
        )
    for name, _ in objectives[1:]:
        if name not in (*OBJECTIVES, *FACT_OBJECTIVES):
            raise ConfigError(
                "objective",
                f"'{name}' is not one of {', '.join((*OBJECTIVES, *FACT_OBJECTIVES))}",
                "Trade the validation metric against another one or the model's size or training time",
            )
    for _, mode in objectives:
        if mode not in ("max", "min"):
            raise ConfigError("objective_mode", f"'{mode}' is not max or min", "Use max for accuracy, min for loss")
    for name, mode in objectives:
        expected = mode_of(name)
        if expected is not None and mode != expected:
            worst = "worst" if name in FACT_OBJECTIVES else ("highest-loss" if mode == "max" else "lowest-accuracy")
            raise ConfigError(
                "objective_mode",
                f"{mode} with objective={name} would keep the {worst} checkpoint",
                f"Leave objective_mode out (it follows the objective) or set it to {expected}",
            )


def _check_segments(cfg: DictConfig) -> None:
    clip = float(cfg.dataset.clip_seconds)
    check_clip_seconds("dataset.clip_seconds", clip, int(cfg.dataset.sample_rate), None)
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
        check_clip_seconds(
            key,
            float(value),
            int(cfg.dataset.sample_rate),
            OmegaConf.select(cfg, "feature.transform.n_fft", default=None),
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

"""The train/evaluate loop: features on the device inside each step, mixed precision, checkpoints."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from genre.data.decode import INT16_SCALE
from genre.errors import NonFiniteLossError
from genre.logging.tensorboard import RunLogger
from genre.training.checkpoint import save_checkpoint
from genre.training.device import Precision

log = logging.getLogger(__name__)

# How often (in steps) the loss is checked for NaN/inf; each check waits for the device.
FINITE_CHECK_EVERY = 10


@dataclass
class EvalResult:
    """Loss, accuracy and per-clip predictions over one split."""

    loss: float
    acc: float
    targets: np.ndarray
    predictions: np.ndarray


@dataclass
class Objective:
    """The metric that picks the best checkpoint (and that run.py returns)."""

    name: str = "val/acc"
    mode: str = "max"

    def better(self, value: float, best: float | None) -> bool:
        """Whether ``value`` improves on ``best``."""
        if best is None:
            return True
        return value > best if self.mode == "max" else value < best


@dataclass
class FitResult:
    """What training produced: the best epoch and its metrics, the history of every epoch."""

    best_epoch: int
    best_metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


class Trainer:
    """Trains ``model`` on features computed from raw waveform batches on ``device``."""

    def __init__(self, model: nn.Module, features: nn.Module, optimizer: Optimizer, scheduler: LRScheduler, *,
                 device: torch.device, precision: Precision, grad_clip: float | None = None,
                 logger: RunLogger | None = None, progress: bool = True) -> None:
        self.model = model
        self.features = features
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.device = device
        self.precision = precision
        self.grad_clip = grad_clip
        self.logger = logger
        self.progress = progress
        self.loss_fn = nn.CrossEntropyLoss()
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision.needs_scaler)
        self.step = 0

    def _to_device(self, audio: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # int16 travels (pinned, asynchronously) and becomes float only on the device.
        audio = audio.to(self.device, non_blocking=True).float().div_(INT16_SCALE)
        return audio, targets.to(self.device, non_blocking=True)

    def train_epoch(self, loader: DataLoader, epoch: int) -> dict[str, float]:
        """One pass over ``loader``; returns the epoch's mean loss, accuracy and last learning rate."""
        self.model.train()
        total_loss = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        seen = 0
        bar = tqdm(loader, desc=f"epoch {epoch} train", leave=False, disable=not self.progress, unit="batch")
        for batch_index, (audio, targets) in enumerate(bar):
            audio, targets = self._to_device(audio, targets)
            with torch.no_grad():
                inputs = self.features(audio)
            with self.precision.autocast():
                logits = self.model(inputs)
                loss = self.loss_fn(logits.float(), targets)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if self.grad_clip:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            self.step += 1
            total_loss += loss.detach() * len(targets)
            correct += (logits.argmax(dim=1) == targets).sum()
            seen += len(targets)
            if batch_index % FINITE_CHECK_EVERY == 0 or batch_index == len(loader) - 1:
                value = loss.item()
                if not math.isfinite(value):
                    raise NonFiniteLossError(
                        f"training loss became {value} at epoch {epoch}, step {self.step}: lower optimizer.lr, "
                        f"set trainer.grad_clip, or use trainer.precision=32")
                bar.set_postfix(loss=f"{value:.3f}")
        return {"train/loss": total_loss.item() / max(seen, 1), "train/acc": correct.item() / max(seen, 1),
                "train/lr": self.optimizer.param_groups[0]["lr"]}

    @torch.no_grad()
    def evaluate(self, loader: DataLoader, desc: str = "eval") -> EvalResult:
        """Loss, accuracy and predictions of the model over ``loader`` (whole clips)."""
        self.model.eval()
        losses: list[torch.Tensor] = []
        predictions: list[torch.Tensor] = []
        all_targets: list[torch.Tensor] = []
        for audio, targets in tqdm(loader, desc=desc, leave=False, disable=not self.progress, unit="batch"):
            audio, targets = self._to_device(audio, targets)
            inputs = self.features(audio)
            with self.precision.autocast():
                logits = self.model(inputs).float()
            losses.append(nn.functional.cross_entropy(logits, targets, reduction="sum"))
            predictions.append(logits.argmax(dim=1))
            all_targets.append(targets)
        target_array = torch.cat(all_targets).cpu().numpy()
        prediction_array = torch.cat(predictions).cpu().numpy()
        loss = torch.stack(losses).sum().item() / len(target_array)
        return EvalResult(loss=loss, acc=float((target_array == prediction_array).mean()),
                          targets=target_array, predictions=prediction_array)

    def state_dict(self) -> dict[str, Any]:
        """Model, features (with their fitted statistics), optimizer, scheduler and scaler state."""
        return {"model": self.model.state_dict(), "features": self.features.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(), "step": self.step}

    def fit(self, train_loader: DataLoader, val_loader: DataLoader, *, epochs: int, objective: Objective,
            run_dir: Path, checkpoint_extra: dict[str, Any],
            on_epoch: Callable[[int, dict[str, float]], None] | None = None) -> FitResult:
        """Train for ``epochs``, validating after each; keep ``best.pt`` (by the objective) and ``last.pt``."""
        started = time.perf_counter()
        best_value: float | None = None
        result = FitResult(best_epoch=-1, best_metrics={})
        for epoch in range(1, epochs + 1):
            dataset = train_loader.dataset
            if hasattr(dataset, "set_epoch"):
                dataset.set_epoch(epoch)
            metrics = self.train_epoch(train_loader, epoch)
            val = self.evaluate(val_loader, desc=f"epoch {epoch} val")
            metrics.update({"val/loss": val.loss, "val/acc": val.acc})
            result.history.append({"epoch": epoch, **metrics})
            if self.logger:
                self.logger.scalars(metrics, step=epoch)
            if objective.name not in metrics:
                raise KeyError(objective.name)
            state = {**self.state_dict(), **checkpoint_extra, "epoch": epoch, "metrics": metrics}
            if objective.better(metrics[objective.name], best_value):
                best_value = metrics[objective.name]
                result.best_epoch, result.best_metrics = epoch, dict(metrics)
                save_checkpoint(run_dir / "best.pt", state)
            save_checkpoint(run_dir / "last.pt", state)
            log.info("epoch %d/%d  train loss %.4f acc %.3f | val loss %.4f acc %.3f | lr %.2e%s", epoch, epochs,
                     metrics["train/loss"], metrics["train/acc"], val.loss, val.acc, metrics["train/lr"],
                     "  (best)" if result.best_epoch == epoch else "")
            if on_epoch:
                on_epoch(epoch, metrics)
        result.seconds = time.perf_counter() - started
        return result

"""The train loop: features and augmentation on the device inside each step, mixed precision,
gradient clipping, per-step schedules, validation, checkpoints, early stopping and clean interruption."""

from __future__ import annotations

import logging
import math
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim import Optimizer
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from genre.augment import Augmentations
from genre.data.decode import INT16_SCALE
from genre.errors import NonFiniteLossError, TrainingInterrupted
from genre.tracking.tensorboard import RunLogger
from genre.training.checkpoint import save_checkpoint
from genre.training.device import Precision
from genre.training.distributed import DistContext
from genre.training.early_stopping import EarlyStopping
from genre.training.evaluation import EvalResult, segment_logits, summarize
from genre.training.interrupt import StopRequest
from genre.training.sampling import EpochSampler
from genre.training.schedules import LRSchedule
from genre.training.seeding import capture_rng_state

log = logging.getLogger(__name__)

# How often (in steps) the loss is checked for NaN/inf; each check waits for the device.
FINITE_CHECK_EVERY = 10


@dataclass
class Position:
    """Where training stands: the epoch in progress (1-based), its batches done, and their running sums."""

    epoch: int = 1
    batch: int = 0
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0


@dataclass
class FitResult:
    """What training produced: the best epoch, the history of every epoch, whether it stopped early."""

    best_epoch: int
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    stopped_early: bool = False


class _Stop(Exception):
    """Raised inside an epoch when every rank agreed to stop; carries the position reached."""

    def __init__(self, position: Position) -> None:
        super().__init__()
        self.position = position


class Trainer:
    """Trains ``model`` (optionally a DDP replica) on features computed from raw waveform batches.

    Evaluation runs on the unwrapped model over this rank's shard of whole clips; the segment logits
    of all ranks are gathered, so every rank computes the same metrics and takes the same decisions
    (best checkpoint, early stopping, plateau schedule).
    """

    def __init__(self, model: nn.Module, features: nn.Module, optimizer: Optimizer, schedule: LRSchedule, *,
                 device: torch.device, precision: Precision, loss_fn: nn.Module, augment: Augmentations,
                 segment_samples: int, aggregate: str, grad_clip: float | None = None,
                 dist: DistContext = DistContext(), logger: RunLogger | None = None, progress: bool = True,
                 stop: StopRequest | None = None) -> None:
        self.model = model
        self.features = features
        self.optimizer = optimizer
        self.schedule = schedule
        self.device = device
        self.precision = precision
        self.loss_fn = loss_fn
        self.augment = augment
        self.segment_samples = segment_samples
        self.aggregate = aggregate
        self.grad_clip = grad_clip
        self.dist = dist
        self.logger = logger
        self.progress = progress and dist.is_main
        self.stop = stop or StopRequest()
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision.needs_scaler)
        self.step = 0

    @property
    def module(self) -> nn.Module:
        """The model itself, without the DDP wrapper."""
        return self.model.module if isinstance(self.model, DistributedDataParallel) else self.model

    def _to_device(self, audio: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # int16 travels (pinned, asynchronously) and becomes float only on the device.
        audio = audio.to(self.device, non_blocking=True).float().div_(INT16_SCALE)
        return audio, targets.to(self.device, non_blocking=True)

    def train_epoch(self, loader: DataLoader, position: Position) -> dict[str, float]:
        """Train on ``loader`` (already positioned at ``position.batch``); return the epoch's loss, accuracy, lr.

        Raises :class:`_Stop` after the step during which a stop signal arrived on any rank.
        """
        self.model.train()
        epoch = position.epoch
        total_loss = torch.tensor(position.loss_sum, device=self.device, dtype=torch.float32)
        correct = torch.tensor(position.correct, device=self.device, dtype=torch.long)
        seen = position.seen
        n_batches = position.batch + len(loader)
        bar = tqdm(loader, desc=f"epoch {epoch} train", leave=False, disable=not self.progress, unit="batch",
                   initial=position.batch, total=n_batches)
        for batch_index, (audio, targets) in enumerate(bar, start=position.batch):
            audio, targets = self._to_device(audio, targets)
            inputs, soft_targets = self.augment(audio, targets, self.features)
            with self.precision.autocast():
                logits = self.model(inputs)
                loss = self.loss_fn(logits.float(), soft_targets)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if self.grad_clip:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.schedule.step()
            self.step += 1
            total_loss += loss.detach() * len(targets)
            correct += (logits.argmax(dim=1) == targets).sum()
            seen += len(targets)
            if batch_index % FINITE_CHECK_EVERY == 0 or batch_index == n_batches - 1:
                value = loss.item()
                if not math.isfinite(value):
                    raise NonFiniteLossError(
                        f"training loss became {value} at epoch {epoch}, step {self.step}: lower optimizer.lr, "
                        f"set trainer.grad_clip, or use trainer.precision=32")
                bar.set_postfix(loss=f"{value:.3f}")
            if self.dist.any(self.stop.requested, self.device) and batch_index < n_batches - 1:
                raise _Stop(Position(epoch, batch_index + 1, total_loss.item(), int(correct.item()), seen))
        sums = self.dist.sum_(torch.stack([total_loss, correct.float(), torch.tensor(float(seen), device=self.device)]))
        loss_sum, n_correct, n_seen = sums.tolist()
        return {"train/loss": loss_sum / max(n_seen, 1), "train/acc": n_correct / max(n_seen, 1),
                "train/lr": self.optimizer.param_groups[0]["lr"]}

    @torch.no_grad()
    def evaluate(self, loader: DataLoader, desc: str = "eval") -> EvalResult:
        """Clip- and segment-level metrics over ``loader`` (this rank's shard), gathered over ranks."""
        logits, targets = segment_logits(self.module, self.features, loader, device=self.device,
                                         precision=self.precision, segment_samples=self.segment_samples,
                                         progress=self.progress, desc=desc)
        # Shards are rank::world_size slices; interleaving them back restores the split's clip order.
        shards = self.dist.gather((logits, targets))
        if len(shards) > 1:
            filled = [(rank, lg, t) for rank, (lg, t) in enumerate(shards) if len(t)]
            order = torch.cat([torch.arange(rank, rank + self.dist.world_size * len(t), self.dist.world_size)
                               for rank, _, t in filled]).argsort()
            logits = torch.cat([lg for _, lg, _ in filled])[order]
            targets = torch.cat([t for _, _, t in filled])[order]
        return summarize(logits, targets, self.aggregate)

    def _sync_buffers(self) -> None:
        # DDP broadcasts BatchNorm statistics at the start of each forward; after the last training
        # forward each rank holds its own. Rank 0's make every replica evaluate (and save) the same model.
        if self.dist.enabled:
            for buffer in self.module.buffers():
                torch.distributed.broadcast(buffer, src=0)

    def state_dict(self, position: Position, tracker: EarlyStopping, history: list[dict[str, float]],
                   seconds: float) -> dict[str, Any]:
        """Everything needed to evaluate, predict with or continue the run from ``position``.

        Collective: every rank's RNG state is gathered (a resumed rank draws what it would have drawn).
        """
        rng = self.dist.gather(capture_rng_state(self.device))
        return {"model": self.module.state_dict(), "features": self.features.state_dict(),
                "optimizer": self.optimizer.state_dict(), "schedule": self.schedule.state_dict(),
                "scaler": self.scaler.state_dict(), "step": self.step, "position": vars(position).copy(),
                "early_stopping": tracker.state_dict(), "history": list(history), "rng": rng,
                "train_seconds": seconds, "world_size": self.dist.world_size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore model, features, optimizer, schedule, scaler and step from a checkpoint."""
        self.module.load_state_dict(state["model"])
        self.features.load_state_dict(state["features"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])

    def _save(self, path: Path, state: dict[str, Any]) -> None:
        if self.dist.is_main:
            save_checkpoint(path, state)

    def fit(self, train_loader: DataLoader, val_loader: DataLoader, *, epochs: int, tracker: EarlyStopping,
            run_dir: Path, checkpoint_extra: dict[str, Any], start: Position | None = None,
            history: list[dict[str, float]] | None = None, seconds_before: float = 0.0) -> FitResult:
        """Train from ``start`` to ``epochs``, validating after each epoch; keep ``best.pt`` (by the
        tracker's objective) and ``last.pt``; stop early when the tracker says so.

        Raises :class:`TrainingInterrupted` after saving ``last.pt`` when SIGINT/SIGTERM arrived.
        """
        started = time.perf_counter() - seconds_before
        position = start or Position()
        history = list(history or [])
        sampler = train_loader.sampler
        dataset = train_loader.dataset
        result = FitResult(best_epoch=tracker.best_epoch, history=history)

        def checkpoint(pos: Position) -> dict[str, Any]:
            return {**self.state_dict(pos, tracker, history, time.perf_counter() - started), **checkpoint_extra}

        for epoch in range(position.epoch, epochs + 1):
            if tracker.should_stop:
                break
            if isinstance(sampler, EpochSampler):
                sampler.set_epoch(epoch)
                sampler.set_start(position.batch * int(train_loader.batch_size or 1) if epoch == position.epoch else 0)
            if hasattr(dataset, "set_epoch"):
                dataset.set_epoch(epoch)
            current = position if epoch == position.epoch else Position(epoch)
            try:
                metrics = self.train_epoch(train_loader, current)
            except _Stop as stop:
                self._save(run_dir / "last.pt", checkpoint(stop.position))
                self.dist.barrier()
                raise self._interrupted(run_dir, stop.position) from None
            self._sync_buffers()
            val = self.evaluate(val_loader, desc=f"epoch {epoch} val")
            metrics.update(val.metrics("val"))
            history.append({"epoch": epoch, **metrics})
            if self.logger:
                self.logger.scalars(metrics, step=epoch)
            objective = metrics[tracker.name]
            improved = tracker.update(objective, epoch)
            self.schedule.epoch_end(objective)
            state = checkpoint(Position(epoch + 1))
            state.update(epoch=epoch, metrics=metrics)
            if improved:
                result.best_epoch = epoch
                self._save(run_dir / "best.pt", state)
            self._save(run_dir / "last.pt", state)
            if self.dist.is_main:
                log.info("epoch %d/%d  train loss %.4f acc %.3f | val loss %.4f acc %.3f (segments %.3f) | lr %.2e%s",
                         epoch, epochs, metrics["train/loss"], metrics["train/acc"], val.loss, val.acc,
                         val.segment_acc, metrics["train/lr"], "  (best)" if improved else "")
            if self.dist.any(self.stop.requested, self.device) and epoch < epochs:
                self.dist.barrier()
                raise self._interrupted(run_dir, Position(epoch + 1))
        result.stopped_early = tracker.should_stop and bool(history) and history[-1]["epoch"] < epochs
        if result.stopped_early:
            log.info("Early stopping: %s has not improved for %d epochs (best %.4f at epoch %d)", tracker.name,
                     tracker.bad_epochs, tracker.best, tracker.best_epoch)
        self.dist.barrier()  # best.pt is complete before any rank reads it
        result.best_epoch = tracker.best_epoch
        result.seconds = time.perf_counter() - started
        return result

    def _interrupted(self, run_dir: Path, position: Position) -> TrainingInterrupted:
        signum = self.stop.signum if self.stop.signum is not None else signal.SIGTERM
        return TrainingInterrupted(signum, f"interrupted by {signal.Signals(signum).name} at epoch {position.epoch}, "
                                   f"batch {position.batch}: saved {run_dir / 'last.pt'}; continue with "
                                   f"python run.py resume={run_dir}")

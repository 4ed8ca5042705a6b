"""The train loop: features and augmentation on the device inside each step, mixed precision,
gradient clipping, per-step schedules, validation, checkpoints, early stopping, clean interruption,
and the loop's own timing (clips per second, the share of each epoch spent waiting for data)."""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim import Optimizer
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from genre.augment import Augmentations
from genre.core.errors import NonFiniteLossError, TrainingInterrupted
from genre.features.extractor import FeatureExtractor
from genre.run_files import BEST_CHECKPOINT, LAST_CHECKPOINT, Checkpoint, Position, RunIdentity
from genre.tracking.tensorboard import RunLogger
from genre.training.callbacks import EpochCallback, any_stops
from genre.training.device import Precision
from genre.training.distributed import DistContext, gather_clips
from genre.training.early_stopping import EarlyStopping
from genre.training.evaluation import EvalResult, segment_logits, summarize
from genre.training.finetuned import FineTuned
from genre.training.interrupt import StopRequest
from genre.training.loaders import batch_on_device, position_loader
from genre.training.schedules import LRSchedule
from genre.training.seeding import capture_rng_state
from genre.training.timing import EpochClock, timed
from genre.training.unfreezing import Unfreezing

log = logging.getLogger(__name__)

# How often (in steps) the loss is checked for NaN/inf; each check waits for the device.
FINITE_CHECK_EVERY = 10


@dataclass
class FitResult:
    """What training produced: the best epoch, the history of every epoch, whether it stopped early,
    and how fast the epochs of this process went (over the epochs it trained itself)."""

    best_epoch: int
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    stopped_early: bool = False
    perf: dict[str, float] = field(default_factory=dict)
    # The epoch after which an epoch callback ended training (None: none did).
    stopped_by_callback: int | None = None


class _Stop(Exception):
    """Raised inside an epoch when every rank agreed to stop; carries the position reached."""

    def __init__(self, position: Position) -> None:
        super().__init__()
        self.position = position


class Trainer:
    """Trains ``model`` (optionally a DDP replica) on features of raw waveform batches, or with ``precomputed``,
    of the feature transform's activations (``features.forward_transformed``). Evaluation runs on the unwrapped
    model over this rank's shard of whole clips; the segment logits of all ranks are gathered, so every rank
    takes the same decisions (best checkpoint, early stopping, plateau schedule)."""

    def __init__(
        self,
        model: nn.Module,
        features: FeatureExtractor,
        optimizer: Optimizer,
        schedule: LRSchedule,
        *,
        device: torch.device,
        precision: Precision,
        loss_fn: nn.Module,
        augment: Augmentations,
        segment_samples: int,
        aggregate: str,
        precomputed: bool = False,
        grad_clip: float | None = None,
        dist: DistContext = DistContext(),
        logger: RunLogger | None = None,
        progress: bool = True,
        stop: StopRequest | None = None,
        unfreezing: Unfreezing | None = None,
    ) -> None:
        # Data-parallel: the replica wraps itself (DDP broadcasts rank 0's weights here). A fine-tuned
        # network frozen for the head epochs takes no gradients then: DDP must not wait for them.
        self.model: nn.Module = model
        self.unfreezing = unfreezing
        if dist.enabled:
            self.model = DistributedDataParallel(
                model,
                device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=unfreezing is not None and unfreezing.head_epochs > 0,
            )
        self.features = features
        self.optimizer = optimizer
        self.schedule = schedule
        self.device = device
        self.precision = precision
        self.loss_fn = loss_fn
        self.augment = augment
        self.segment_samples = segment_samples
        self.aggregate = aggregate
        # What the loaders deliver (int16 audio, or the transform's activations) and the stages it still needs.
        self.precomputed = precomputed
        self.encode: Callable[[torch.Tensor], torch.Tensor] = features.forward_transformed if precomputed else features
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

    def _to_device(self, batch: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        inputs = batch_on_device(batch, self.device, precomputed=self.precomputed)
        return inputs, targets.to(self.device, non_blocking=True)

    def _optimise(self, audio: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimisation step on a raw waveform batch; returns the batch's loss and whether each
        prediction was right (on the device, without waiting for it)."""
        audio, targets = self._to_device(audio, targets)
        inputs, soft_targets = self.augment(audio, targets, self.encode)
        with self.precision.autocast():
            logits = self.model(inputs)
            loss = self.loss_fn(logits.float(), soft_targets)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.grad_clip:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        with self.unfreezing.applied(self.optimizer, self.step) if self.unfreezing else contextlib.nullcontext():
            self.scaler.step(self.optimizer)
        self.scaler.update()
        self.schedule.step()
        self.step += 1
        return loss.detach(), logits.detach().argmax(dim=1) == targets

    def _check_finite(self, loss: torch.Tensor, epoch: int) -> float:
        value = loss.item()
        if not math.isfinite(value):
            raise NonFiniteLossError(
                f"training loss became {value} at epoch {epoch}, step {self.step}: lower "
                f"optimizer.lr, set trainer.grad_clip, or use trainer.precision=32"
            )
        return value

    def train_epoch(self, loader: DataLoader, position: Position) -> dict[str, float]:
        """Train on ``loader`` (already positioned at ``position.batch``); return the epoch's loss, accuracy,
        lr and ``perf/`` timings (clips per second over all ranks, this rank's share of time waiting for data).

        Raises :class:`_Stop` after the step during which a stop signal arrived on any rank.
        """
        self.model.train()
        clock = EpochClock()
        epoch = position.epoch
        total_loss = torch.tensor(position.loss_sum, device=self.device, dtype=torch.float32)
        correct = torch.tensor(position.correct, device=self.device, dtype=torch.long)
        seen = position.seen
        n_batches = position.batch + len(loader)
        bar = tqdm(
            timed(loader, clock),
            desc=f"epoch {epoch} train",
            leave=False,
            disable=not self.progress,
            unit="batch",
            initial=position.batch,
            total=n_batches,
        )
        for batch_index, (audio, targets) in enumerate(bar, start=position.batch):
            loss, right = self._optimise(audio, targets)
            total_loss += loss * len(targets)
            correct += right.sum()
            seen += len(targets)
            if batch_index % FINITE_CHECK_EVERY == 0 or batch_index == n_batches - 1:
                bar.set_postfix(loss=f"{self._check_finite(loss, epoch):.3f}")
            if self.dist.any(self.stop.requested, self.device) and batch_index < n_batches - 1:
                raise _Stop(Position(epoch, batch_index + 1, total_loss.item(), int(correct.item()), seen))
        counts = torch.tensor([float(seen), float(seen - position.seen)], device=self.device)
        sums = self.dist.sum_(torch.cat([torch.stack([total_loss, correct.float()]), counts]))
        loss_sum, n_correct, n_seen, n_trained = sums.tolist()
        return {
            "train/loss": loss_sum / max(n_seen, 1),
            "train/acc": n_correct / max(n_seen, 1),
            "train/lr": self.optimizer.param_groups[0]["lr"],
            **(self.unfreezing.scalars(self.optimizer, self.step - 1, epoch) if self.unfreezing else {}),
            **clock.perf(int(n_trained)),
        }

    @torch.no_grad()
    def evaluate(self, loader: DataLoader, desc: str = "eval") -> EvalResult:
        """Clip- and segment-level metrics over ``loader`` (this rank's shard), gathered over ranks."""
        logits, targets = gather_clips(self.dist, *self.segment_outputs(self.module, loader, desc))
        return summarize(logits, targets, self.aggregate)

    @torch.no_grad()
    def segment_outputs(self, module: nn.Module, loader: DataLoader, desc: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``module``'s outputs ``(clips, segments, ...)`` on ``loader``'s evaluation segments, and the targets."""
        return segment_logits(
            module, self.encode, loader, device=self.device, precision=self.precision, desc=desc,
            segment_samples=self.segment_samples, precomputed=self.precomputed, progress=self.progress,
        )  # fmt: skip

    def _sync_buffers(self) -> None:
        # DDP broadcasts BatchNorm statistics at the start of each forward; after the last training
        # forward each rank holds its own. Rank 0's make every replica evaluate (and save) the same model.
        if self.dist.enabled:
            for buffer in self.module.buffers():
                torch.distributed.broadcast(buffer, src=0)

    def checkpoint(
        self,
        position: Position,
        tracker: EarlyStopping,
        history: list[dict[str, float]],
        seconds: float,
        identity: RunIdentity,
    ) -> Checkpoint:
        """Everything needed to evaluate, predict with or continue the run from ``position``.

        Collective: every rank's RNG state is gathered (a resumed rank draws what it would have drawn).
        """
        return Checkpoint(
            config=identity.config,
            labels=list(identity.labels),
            audio_cache=identity.audio_cache,
            model=self.module.state_dict(),
            features=self.features.state_dict(),
            optimizer=self.optimizer.state_dict(),
            schedule=self.schedule.state_dict(),
            scaler=self.scaler.state_dict(),
            step=self.step,
            position=replace(position),
            early_stopping=tracker.state_dict(),
            history=list(history),
            rng=self.dist.gather(capture_rng_state(self.device)),
            train_seconds=seconds,
            world_size=self.dist.world_size,
        )

    def restore(self, checkpoint: Checkpoint) -> None:
        """Restore model, features, optimizer, schedule, scaler and step from a checkpoint."""
        self.module.load_state_dict(checkpoint.model)
        self.features.load_state_dict(checkpoint.features)
        self.optimizer.load_state_dict(checkpoint.optimizer)
        self.schedule.load_state_dict(checkpoint.schedule)
        self.scaler.load_state_dict(checkpoint.scaler)
        self.step = int(checkpoint.step)

    def _save(self, checkpoint: Checkpoint, path: Path) -> None:
        if self.dist.is_main:
            checkpoint.save(path)

    def fit(
        self,
        train_loader: DataLoader,
        val_loader: DataLoader,
        *,
        epochs: int,
        tracker: EarlyStopping,
        run_dir: Path,
        identity: RunIdentity,
        resume: Checkpoint | None = None,
        callbacks: Sequence[EpochCallback] = (),
    ) -> FitResult:
        """Train to ``epochs`` (from the start, or from where ``resume`` stopped), validating after each
        epoch; keep ``best.pt`` (by the tracker's objective) and ``last.pt``; stop early when the tracker
        says so, or after an epoch for which one of the ``callbacks`` (called on rank 0) returns True. The tracker must
        already hold ``resume``'s state.

        Raises :class:`TrainingInterrupted` after saving ``last.pt`` when SIGINT/SIGTERM arrived.
        """
        started = time.perf_counter() - (resume.train_seconds if resume else 0.0)
        position = replace(resume.position) if resume else Position()
        result = FitResult(best_epoch=tracker.best_epoch, history=list(resume.history) if resume else [])

        def checkpoint(pos: Position) -> Checkpoint:
            return self.checkpoint(pos, tracker, result.history, time.perf_counter() - started, identity)

        perf: list[dict[str, float]] = []
        for epoch in range(position.epoch, epochs + 1):
            if tracker.should_stop:
                break
            current = position if epoch == position.epoch else Position(epoch)
            position_loader(train_loader, current)
            if self.unfreezing is not None and isinstance(self.module, FineTuned):
                self.module.freeze_backbone(self.unfreezing.frozen_in(epoch))
            try:
                metrics = self.train_epoch(train_loader, current)
            except _Stop as stop:
                self._save(checkpoint(stop.position), run_dir / LAST_CHECKPOINT)
                self.dist.barrier()
                raise self._interrupted(run_dir, stop.position) from None
            perf.append({key: value for key, value in metrics.items() if key.startswith("perf/")})
            improved = self._end_epoch(epoch, epochs, metrics, val_loader, tracker, result)
            state = checkpoint(Position(epoch + 1))
            state.epoch, state.metrics = epoch, metrics
            if improved:
                self._save(state, run_dir / BEST_CHECKPOINT)
            self._save(state, run_dir / LAST_CHECKPOINT)
            if self._callbacks_stop(callbacks, epoch, metrics) and epoch < epochs:
                result.stopped_by_callback = epoch
                break
            if self.dist.any(self.stop.requested, self.device) and epoch < epochs:
                self.dist.barrier()
                raise self._interrupted(run_dir, Position(epoch + 1))
        return self._finish(result, tracker, epochs, started, perf)

    def _callbacks_stop(self, callbacks: Sequence[EpochCallback], epoch: int, metrics: dict[str, float]) -> bool:
        """Whether a callback (each called on rank 0) ends training after ``epoch``; every rank takes the answer."""
        return self.dist.any(self.dist.is_main and any_stops(callbacks, epoch, metrics), self.device)

    def _end_epoch(
        self,
        epoch: int,
        epochs: int,
        metrics: dict[str, float],
        val_loader: DataLoader,
        tracker: EarlyStopping,
        result: FitResult,
    ) -> bool:
        """Validate, log and track the epoch just trained (``metrics`` gains the ``val/`` values); return
        whether it is the new best."""
        self._sync_buffers()
        val = self.evaluate(val_loader, desc=f"epoch {epoch} val")
        metrics.update(val.metrics("val"))
        result.history.append({"epoch": epoch, **metrics})
        if self.logger:
            self.logger.scalars(metrics, step=epoch)
        objective = metrics[tracker.name]
        improved = tracker.update(objective, epoch)
        self.schedule.epoch_end(objective)
        if self.dist.is_main:
            log.info(
                "epoch %d/%d  train loss %.4f acc %.3f | val loss %.4f acc %.3f (segments %.3f) | lr %.2e | "
                "%.0f clips/s, %.0f%% waiting for data%s",
                epoch,
                epochs,
                metrics["train/loss"],
                metrics["train/acc"],
                val.loss,
                val.acc,
                val.segment_acc,
                metrics["train/lr"],
                metrics["perf/clips_per_second"],
                100 * metrics["perf/data_wait_fraction"],
                "  (best)" if improved else "",
            )
        return improved

    def _finish(
        self, result: FitResult, tracker: EarlyStopping, epochs: int, started: float, perf: list[dict[str, float]]
    ) -> FitResult:
        history = result.history
        result.stopped_early = tracker.should_stop and bool(history) and history[-1]["epoch"] < epochs
        if result.stopped_early:
            log.info(
                "Early stopping: %s has not improved for %d epochs (best %.4f at epoch %d)",
                tracker.name,
                tracker.bad_epochs,
                tracker.best,
                tracker.best_epoch,
            )
        self.dist.barrier()  # best.pt is complete before any rank reads it
        result.best_epoch = tracker.best_epoch
        result.seconds = time.perf_counter() - started
        if perf:  # the mean over the epochs this process trained (a resumed run: since it resumed)
            result.perf = {key: sum(p[key] for p in perf) / len(perf) for key in perf[0]}
        return result

    def _interrupted(self, run_dir: Path, position: Position) -> TrainingInterrupted:
        signum = self.stop.signum if self.stop.signum is not None else signal.SIGTERM
        return TrainingInterrupted(
            signum,
            f"interrupted by {signal.Signals(signum).name} at epoch {position.epoch}, "
            f"batch {position.batch}: saved {run_dir / LAST_CHECKPOINT}; continue with "
            f"python run.py resume={run_dir}",
        )

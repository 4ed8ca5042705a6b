"""Fitting a closed-form model (a :class:`~genre.models.probe.ClosedFormProbe`) in place of training epochs.

The fit is one "epoch": the training clips are cut into the evaluation segments (whole clips when
``eval.segment_seconds`` is the clip length), each segment's features are pooled, the probe is
solved on them, and the result is validated, logged and saved as ``best.pt`` and ``last.pt`` like a
trained epoch, so the run's test, outputs, ``genre.predict`` and resume treat it as any other run.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from genre.core.errors import ConfigError
from genre.models.probe import ProbeSolution
from genre.run_files import BEST_CHECKPOINT, LAST_CHECKPOINT, Checkpoint, Position, RunIdentity
from genre.training.early_stopping import EarlyStopping
from genre.training.evaluation import EvalResult, summarize
from genre.training.trainer import FitResult, Trainer

log = logging.getLogger(__name__)


@runtime_checkable
class ClosedFormModel(Protocol):
    """A model fitted in one solve on pooled features (declares ``closed_form = True``)."""

    closed_form: bool

    def pool(self, x: torch.Tensor) -> torch.Tensor: ...

    def classify(self, pooled: torch.Tensor) -> torch.Tensor: ...

    def solve(self, pooled: np.ndarray, targets: np.ndarray, groups: np.ndarray, seed: int) -> ProbeSolution: ...


def is_closed_form(model: nn.Module) -> bool:
    """Whether ``model`` declares itself fitted by a solve rather than by an optimizer."""
    return isinstance(model, ClosedFormModel) and model.closed_form is True


class _Pooling(nn.Module):
    """The probe's pooling as a module, so that the evaluation loop yields pooled vectors instead of logits."""

    def __init__(self, probe: ClosedFormModel) -> None:
        super().__init__()
        self.probe = probe

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.probe.pool(x)


def _solve(trainer: Trainer, probe: ClosedFormModel, clips: DataLoader, seed: int) -> tuple[ProbeSolution, EvalResult]:
    """Solve ``probe`` on the pooled vectors of the clips' evaluation segments (each clip's segments one
    inner-fold group), then score the solved probe on those same vectors: one pass over the clips."""
    pooled, targets = trainer.segment_outputs(_Pooling(probe), clips, "train (pooled)")
    n_clips, segments, width = pooled.shape
    solution = probe.solve(
        pooled.reshape(n_clips * segments, width).double().numpy(),
        targets.repeat_interleave(segments).numpy(),
        np.repeat(np.arange(n_clips), segments),
        seed,
    )
    with torch.no_grad():
        logits = probe.classify(pooled.reshape(n_clips * segments, width).to(trainer.device))
    return solution, summarize(logits.reshape(n_clips, segments, -1).float().cpu(), targets, trainer.aggregate)


def _log_solution(solution: ProbeSolution, seconds: float) -> None:
    log.info(
        "Closed-form fit: %s, chosen by %d-fold inner cross-validation on %d training segments in %.1f s",
        solution.describe(),
        solution.inner_folds,
        solution.examples,
        seconds,
    )


def fit_closed_form(
    trainer: Trainer,
    train_clips: DataLoader,
    val_loader: DataLoader,
    *,
    tracker: EarlyStopping,
    run_dir: Path,
    identity: RunIdentity,
    seed: int,
    resume: Checkpoint | None = None,
) -> FitResult:
    """Solve ``trainer``'s closed-form model on the pooled segments of ``train_clips``, validate it on
    ``val_loader`` and save it as epoch 1 (``best.pt`` and ``last.pt``). A ``resume`` of a solved run
    (interrupted after the solve) returns its recorded result without solving again.
    """
    if resume is not None:
        return FitResult(best_epoch=tracker.best_epoch, history=list(resume.history), seconds=resume.train_seconds)
    probe = trainer.module
    assert isinstance(probe, ClosedFormModel)
    started = time.perf_counter()
    try:
        solution, train = _solve(trainer, probe, train_clips, seed)
    except ValueError as exc:
        if not str(exc).startswith("targets:"):
            raise
        raise ConfigError(
            "dataset",
            "a genre has fewer than 2 training clips, too few for the inner cross-validation that chooses C",
            "Use more clips per genre, or a model trained by epochs (e.g. model=linear)",
        ) from exc
    _log_solution(solution, time.perf_counter() - started)
    metrics = {"train/loss": train.loss, "train/acc": train.acc, **solution.scalars()}
    metrics.update(trainer.evaluate(val_loader, desc="val").metrics("val"))
    result = FitResult(best_epoch=1, history=[{"epoch": 1, **metrics}])
    tracker.update(metrics[tracker.name], 1)
    if trainer.logger is not None:
        trainer.logger.scalars(metrics, step=1)
        trainer.logger.text("closed_form", solution.describe())
    result.seconds = time.perf_counter() - started
    state = trainer.checkpoint(Position(2), tracker, result.history, result.seconds, identity)
    state.epoch, state.metrics = 1, metrics
    if trainer.dist.is_main:
        state.save(run_dir / BEST_CHECKPOINT)
        state.save(run_dir / LAST_CHECKPOINT)
    trainer.dist.barrier()
    log.info(
        "val loss %.4f acc %.3f (segments %.3f)", metrics["val/loss"], metrics["val/acc"], metrics["val/segment_acc"]
    )
    return result

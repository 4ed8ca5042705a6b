"""Epoch callbacks: code outside training, injected into :meth:`~genre.training.trainer.Trainer.fit`, that is
told of every finished epoch and may end training there (as Lightning's callbacks, or the pruning callback
optuna-integration hands a trainer). The trainer never knows who they are: ``run.py`` injects the Optuna
trial's reporter, and turns :class:`StoppedByCallback` into the sweep's own outcome (a pruned trial)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol


class EpochCallback(Protocol):
    """Told of every finished epoch, on rank 0, after the epoch's checkpoints are saved."""

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> bool:
        """Called with the epoch and its train/val metrics; True ends training there."""
        ...


class StoppedByCallback(Exception):
    """A run an :class:`EpochCallback` ended after ``epoch`` (its checkpoints are kept; test and outputs skipped)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        super().__init__(f"stopped by an epoch callback after epoch {epoch}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Crosses process boundaries (a spawned rank's outcome) with its own argument.
        return (StoppedByCallback, (self.epoch,))


def any_stops(callbacks: Sequence[EpochCallback], epoch: int, metrics: Mapping[str, float]) -> bool:
    """Tell every callback of ``epoch`` (each sees every epoch, even after another asked to stop); whether
    any of them ends training there."""
    answers = [bool(callback.on_epoch_end(epoch, metrics)) for callback in callbacks]
    return any(answers)

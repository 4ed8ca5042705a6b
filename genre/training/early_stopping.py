"""Tracking the objective across epochs: the best epoch, and when to stop early."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class EarlyStopping:
    """The best value of the objective so far and how many epochs have passed without improving on it.

    An epoch improves when it beats the best by more than ``min_delta`` (the first epoch always does).
    With ``patience`` set, training stops after ``patience`` epochs in a row without improvement;
    ``None`` never stops. The state goes into checkpoints so a resumed run stops where the
    uninterrupted one would.
    """

    name: str = "val/acc"
    mode: str = "max"
    patience: int | None = None
    min_delta: float = 0.0
    best: float | None = None
    best_epoch: int = 0
    bad_epochs: int = 0

    def __post_init__(self) -> None:
        if self.patience is not None and int(self.patience) < 1:
            raise ValueError(
                f"patience: {self.patience} is not a positive epoch count. Use e.g. 5, or null to never stop early"
            )
        if self.min_delta < 0:
            raise ValueError(f"min_delta: {self.min_delta} is negative. Use e.g. 0.0")

    def improves(self, value: float) -> bool:
        """Whether ``value`` beats the best by more than ``min_delta``."""
        if self.best is None:
            return True
        if self.mode == "max":
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def update(self, value: float, epoch: int) -> bool:
        """Record an epoch's objective; return whether it is the new best."""
        if self.improves(value):
            self.best, self.best_epoch, self.bad_epochs = float(value), epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        """Whether ``patience`` epochs in a row have not improved."""
        return self.patience is not None and self.bad_epochs >= int(self.patience)

    def state_dict(self) -> dict[str, Any]:
        """The tracker's state, for checkpoints."""
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the best value, its epoch and the epochs without improvement (not the settings)."""
        self.best, self.best_epoch, self.bad_epochs = state["best"], int(state["best_epoch"]), int(state["bad_epochs"])

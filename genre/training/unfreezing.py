"""Linear probe, then fine-tune (Kumar et al., ICLR 2022): the head trains alone on the frozen network for
``head_epochs``, then the network joins it, its learning rate ramped up from near 0 over ``warmup_steps``.

Both follow from the epoch and the optimizer step alone, so a resumed run picks them up where it stopped.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from torch.optim import Optimizer


@dataclass(frozen=True)
class Unfreezing:
    """When a fine-tuned network trains, and the ramp of its learning rate once it does.

    Args:
        head_epochs: the first epochs (1-based, inclusive) train the head on the frozen network.
        warmup_steps: optimizer steps over which the network's learning rate ramps linearly up to its
            scheduled value, counted from its first step (0: no ramp).
        steps_per_epoch: optimizer steps in one epoch.
    """

    head_epochs: int = 0
    warmup_steps: int = 0
    steps_per_epoch: int = 1

    def __post_init__(self) -> None:
        for name in ("head_epochs", "warmup_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: {getattr(self, name)} is negative. Use 0 or more")
        if self.steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch: {self.steps_per_epoch} is not positive")

    @classmethod
    def of_epochs(cls, head_epochs: int, warmup_epochs: float, steps_per_epoch: int) -> Unfreezing:
        """The schedule of a run with ``steps_per_epoch`` optimizer steps per epoch (warm-up given in epochs)."""
        steps = max(steps_per_epoch, 1)
        return cls(head_epochs, int(round(warmup_epochs * steps)), steps)

    def frozen_in(self, epoch: int) -> bool:
        """Whether the network stays frozen during ``epoch`` (1-based)."""
        return epoch <= self.head_epochs

    def factor(self, step: int) -> float:
        """The network's share of its scheduled learning rate at optimizer step ``step`` (0-based)."""
        since = step - self.head_epochs * self.steps_per_epoch
        if self.warmup_steps == 0 or since >= self.warmup_steps:
            return 1.0
        return max(since + 1, 0) / self.warmup_steps

    @contextmanager
    def applied(self, optimizer: Optimizer, step: int) -> Iterator[None]:
        """Scale the learning rate of the network's groups (tagged ``backbone``) by :meth:`factor` for one
        optimizer step, and put the scheduled value back after it (the schedule never sees the ramp)."""
        factor = self.factor(step)
        groups = [group for group in optimizer.param_groups if group.get("backbone")]
        scheduled = [group["lr"] for group in groups]
        for group in groups:
            group["lr"] = group["lr"] * factor
        try:
            yield
        finally:
            for group, lr in zip(groups, scheduled):
                group["lr"] = lr

    def scalars(self, optimizer: Optimizer, step: int, epoch: int) -> dict[str, float]:
        """``train/backbone_lr``: the network's learning rate at optimizer step ``step`` of ``epoch`` (0: frozen)."""
        groups = [group for group in optimizer.param_groups if group.get("backbone")]
        if not groups:
            return {}
        return {"train/backbone_lr": 0.0 if self.frozen_in(epoch) else float(groups[0]["lr"]) * self.factor(step)}

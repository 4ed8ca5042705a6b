"""Learning-rate schedules, stepped once per optimizer step, with an optional linear warm-up.

Configs give them as ``_partial_`` callables; the trainer completes them with the optimizer, the
number of epochs and the steps per epoch (only known once the data is loaded).
"""

from __future__ import annotations

import logging

from torch.optim import Optimizer
from torch.optim.lr_scheduler import ConstantLR, CosineAnnealingLR, LinearLR, LRScheduler, SequentialLR

from genre.errors import ConfigError

log = logging.getLogger(__name__)


def _warmup_steps(warmup_epochs: float, epochs: int, steps_per_epoch: int) -> int:
    if warmup_epochs < 0:
        raise ConfigError("scheduler.warmup_epochs", f"{warmup_epochs} is negative", "Use 0 for no warm-up")
    total = epochs * steps_per_epoch
    steps = int(round(warmup_epochs * steps_per_epoch))
    if steps > total // 2:
        # Short runs (a 1-epoch smoke test) keep half their steps for the schedule proper.
        log.warning("scheduler.warmup_epochs=%g is most of a %d-epoch run; warming up for %d of %d steps",
                    warmup_epochs, epochs, total // 2, total)
        steps = total // 2
    return steps


def _with_warmup(optimizer: Optimizer, after: LRScheduler, warmup: int, start_factor: float) -> LRScheduler:
    if warmup == 0:
        return after
    if not 0.0 < start_factor <= 1.0:
        raise ConfigError("scheduler.warmup_start_factor", f"{start_factor} is outside (0, 1]", "Use e.g. 0.1")
    ramp = LinearLR(optimizer, start_factor=start_factor, end_factor=1.0, total_iters=warmup)
    return SequentialLR(optimizer, schedulers=[ramp, after], milestones=[warmup])


def warmup_cosine(optimizer: Optimizer, *, epochs: int, steps_per_epoch: int, warmup_epochs: float = 1.0,
                  warmup_start_factor: float = 0.1, min_lr_ratio: float = 0.01) -> LRScheduler:
    """Linear warm-up, then cosine decay to ``lr * min_lr_ratio`` at the last step."""
    warmup = _warmup_steps(warmup_epochs, epochs, steps_per_epoch)
    base_lr = optimizer.param_groups[0]["lr"]
    cosine = CosineAnnealingLR(optimizer, T_max=max(1, epochs * steps_per_epoch - warmup),
                               eta_min=base_lr * min_lr_ratio)
    return _with_warmup(optimizer, cosine, warmup, warmup_start_factor)


def warmup_constant(optimizer: Optimizer, *, epochs: int, steps_per_epoch: int, warmup_epochs: float = 0.0,
                    warmup_start_factor: float = 0.1) -> LRScheduler:
    """A constant learning rate, after an optional linear warm-up."""
    warmup = _warmup_steps(warmup_epochs, epochs, steps_per_epoch)
    return _with_warmup(optimizer, ConstantLR(optimizer, factor=1.0, total_iters=0), warmup, warmup_start_factor)

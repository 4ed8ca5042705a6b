"""Learning-rate schedules with an optional linear warm-up, as ``_partial_`` factories.

Configs (``genre/conf/scheduler/``) give a factory; the run completes it with the optimizer, the number of
epochs and the steps per epoch (only known once the data is loaded):
``factory(optimizer, epochs=..., steps_per_epoch=...) -> LRSchedule``. Every schedule is built from
``torch.optim.lr_scheduler`` classes and stepped after each optimizer step, so lengths given in epochs
become steps; only ``plateau`` also reacts to the objective after each validation.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Literal

from torch.optim import Optimizer
from torch.optim.lr_scheduler import (
    ConstantLR,
    ExponentialLR,
    LambdaLR,
    LinearLR,
    LRScheduler,
    OneCycleLR,
    ReduceLROnPlateau,
    SequentialLR,
    StepLR,
)

log = logging.getLogger(__name__)


class LRSchedule:
    """What the trainer steps: ``step()`` after every optimizer step, ``epoch_end(objective)`` after each validation.

    ``per_step`` is any torch scheduler (warm-up included); ``plateau``, when given, is a
    ``ReduceLROnPlateau`` fed the objective once warm-up (``plateau_after`` steps) is over, so it never
    fights the ramp.
    """

    def __init__(self, per_step: LRScheduler, plateau: ReduceLROnPlateau | None = None, plateau_after: int = 0) -> None:
        self.per_step = per_step
        self.plateau = plateau
        self.plateau_after = plateau_after
        self.steps = 0

    def step(self) -> None:
        """Advance by one optimizer step."""
        self.per_step.step()
        self.steps += 1

    def epoch_end(self, objective: float) -> None:
        """Report the epoch's objective (only ``plateau`` uses it)."""
        if self.plateau is not None and self.steps >= self.plateau_after:
            self.plateau.step(objective)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the schedule exactly (resume)."""
        return {
            "per_step": self.per_step.state_dict(),
            "steps": self.steps,
            "plateau": None if self.plateau is None else self.plateau.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.per_step.load_state_dict(state["per_step"])
        self.steps = int(state["steps"])
        if self.plateau is not None and state.get("plateau") is not None:
            self.plateau.load_state_dict(state["plateau"])


def _steps(epochs: float, steps_per_epoch: int, name: str, minimum: int = 1) -> int:
    steps = int(round(float(epochs) * steps_per_epoch))
    if steps < minimum:
        raise ValueError(
            f"{name}: {epochs} epochs is less than {minimum} step(s) of {steps_per_epoch} per epoch. "
            "Use a longer period"
        )
    return steps


def _warmup_steps(warmup_epochs: float, epochs: int, steps_per_epoch: int) -> int:
    if warmup_epochs < 0:
        raise ValueError(f"warmup_epochs: {warmup_epochs} is negative. Use 0 for no warm-up")
    total = epochs * steps_per_epoch
    steps = int(round(warmup_epochs * steps_per_epoch))
    if steps > total // 2:
        # Short runs (a 1-epoch smoke test) keep half their steps for the schedule proper.
        log.warning(
            "scheduler.warmup_epochs=%g is most of a %d-epoch run; warming up for %d of %d steps",
            warmup_epochs,
            epochs,
            total // 2,
            total,
        )
        steps = total // 2
    return steps


class CosineFactor:
    """The share of each group's own learning rate after ``step`` steps of cosine annealing from 1 to
    ``min_ratio`` over ``period`` steps (SGDR with ``restart``: then again over periods ``mult`` times longer).

    A factor, not an absolute floor (torch's ``eta_min``), so groups at different rates (a fine-tuned
    network's) keep their ratio to each other at every step.
    """

    def __init__(self, period: int, min_ratio: float, mult: int = 1, restart: bool = False) -> None:
        self.period, self.min_ratio, self.mult, self.restart = period, min_ratio, mult, restart

    def __call__(self, step: int) -> float:
        period = self.period
        if self.restart:
            while step >= period:
                step, period = step - period, period * self.mult
        progress = min(step, period) / period
        return self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def _with_warmup(optimizer: Optimizer, after: LRScheduler, warmup: int, start_factor: float) -> LRScheduler:
    if warmup == 0:
        return after
    if not 0.0 < start_factor <= 1.0:
        raise ValueError(f"warmup_start_factor: {start_factor} is outside (0, 1]. Use e.g. 0.1")
    ramp = LinearLR(optimizer, start_factor=start_factor, end_factor=1.0, total_iters=warmup)
    return SequentialLR(optimizer, schedulers=[ramp, after], milestones=[warmup])


def _constant(optimizer: Optimizer) -> LRScheduler:
    return ConstantLR(optimizer, factor=1.0, total_iters=0)


def warmup_constant(
    optimizer: Optimizer,
    *,
    epochs: int,
    steps_per_epoch: int,
    warmup_epochs: float = 0.0,
    warmup_start_factor: float = 0.1,
) -> LRSchedule:
    """A constant learning rate, after an optional linear warm-up."""
    warmup = _warmup_steps(warmup_epochs, epochs, steps_per_epoch)
    return LRSchedule(_with_warmup(optimizer, _constant(optimizer), warmup, warmup_start_factor))


def warmup_cosine(
    optimizer: Optimizer,
    *,
    epochs: int,
    steps_per_epoch: int,
    warmup_epochs: float = 1.0,
    warmup_start_factor: float = 0.1,
    min_lr_ratio: float = 0.01,
) -> LRSchedule:
    """Linear warm-up, then cosine decay to ``lr * min_lr_ratio`` at the last step (Loshchilov & Hutter 2017)."""
    warmup = _warmup_steps(warmup_epochs, epochs, steps_per_epoch)
    cosine = LambdaLR(optimizer, CosineFactor(max(1, epochs * steps_per_epoch - warmup), min_lr_ratio))
    return LRSchedule(_with_warmup(optimizer, cosine, warmup, warmup_start_factor))


def warmup_cosine_restarts(
    optimizer: Optimizer,
    *,
    epochs: int,
    steps_per_epoch: int,
    cycle_epochs: float = 10.0,
    cycle_mult: int = 1,
    warmup_epochs: float = 0.0,
    warmup_start_factor: float = 0.1,
    min_lr_ratio: float = 0.01,
) -> LRSchedule:
    """Cosine annealing with warm restarts (SGDR): cycles of ``cycle_epochs``, each ``cycle_mult`` times longer."""
    if int(cycle_mult) != cycle_mult or cycle_mult < 1:
        raise ValueError(f"cycle_mult: {cycle_mult} is not an integer >= 1. Use 1 or 2")
    warmup = _warmup_steps(warmup_epochs, epochs, steps_per_epoch)
    cycle_steps = _steps(cycle_epochs, steps_per_epoch, "cycle_epochs")
    restarts = LambdaLR(optimizer, CosineFactor(cycle_steps, min_lr_ratio, int(cycle_mult), restart=True))
    return LRSchedule(_with_warmup(optimizer, restarts, warmup, warmup_start_factor))


def warmup_linear(
    optimizer: Optimizer,
    *,
    epochs: int,
    steps_per_epoch: int,
    warmup_epochs: float = 1.0,
    warmup_start_factor: float = 0.1,
    end_factor: float = 0.01,
) -> LRSchedule:
    """Linear warm-up, then linear decay to ``lr * end_factor`` at the last step."""
    if not 0.0 <= end_factor <= 1.0:
        raise ValueError(f"end_factor: {end_factor} is outside [0, 1]. Use e.g. 0.01")
    warmup = _warmup_steps(warmup_epochs, epochs, steps_per_epoch)
    decay = LinearLR(
        optimizer, start_factor=1.0, end_factor=end_factor, total_iters=max(1, epochs * steps_per_epoch - warmup)
    )
    return LRSchedule(_with_warmup(optimizer, decay, warmup, warmup_start_factor))


def warmup_exponential(
    optimizer: Optimizer,
    *,
    epochs: int,
    steps_per_epoch: int,
    gamma: float = 0.9,
    warmup_epochs: float = 0.0,
    warmup_start_factor: float = 0.1,
) -> LRSchedule:
    """Multiply the learning rate by ``gamma`` per epoch, applied smoothly (``gamma ** (1/steps)`` per step)."""
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma: {gamma} is outside (0, 1]. Use e.g. 0.9 (per epoch)")
    warmup = _warmup_steps(warmup_epochs, epochs, steps_per_epoch)
    decay = ExponentialLR(optimizer, gamma=gamma ** (1.0 / steps_per_epoch))
    return LRSchedule(_with_warmup(optimizer, decay, warmup, warmup_start_factor))


def warmup_step(
    optimizer: Optimizer,
    *,
    epochs: int,
    steps_per_epoch: int,
    step_epochs: float = 10.0,
    gamma: float = 0.1,
    warmup_epochs: float = 0.0,
    warmup_start_factor: float = 0.1,
) -> LRSchedule:
    """Multiply the learning rate by ``gamma`` every ``step_epochs`` epochs."""
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma: {gamma} is outside (0, 1]. Use e.g. 0.1")
    warmup = _warmup_steps(warmup_epochs, epochs, steps_per_epoch)
    decay = StepLR(optimizer, step_size=_steps(step_epochs, steps_per_epoch, "step_epochs"), gamma=gamma)
    return LRSchedule(_with_warmup(optimizer, decay, warmup, warmup_start_factor))


def warmup_plateau(
    optimizer: Optimizer,
    *,
    epochs: int,
    steps_per_epoch: int,
    mode: Literal["max", "min"] = "max",
    factor: float = 0.5,
    patience: int = 3,
    threshold: float = 1e-4,
    min_lr_ratio: float = 0.0,
    warmup_epochs: float = 0.0,
    warmup_start_factor: float = 0.1,
) -> LRSchedule:
    """Multiply the learning rate by ``factor`` when the objective has not improved for ``patience`` epochs."""
    if mode not in ("max", "min"):
        raise ValueError(f"mode: '{mode}' is not max or min. Use ${{objective_mode}}")
    if not 0.0 < factor < 1.0:
        raise ValueError(f"factor: {factor} is outside (0, 1). Use e.g. 0.5")
    warmup = _warmup_steps(warmup_epochs, epochs, steps_per_epoch)
    floors = [group["lr"] * min_lr_ratio for group in optimizer.param_groups]
    plateau = ReduceLROnPlateau(
        optimizer, mode=mode, factor=factor, patience=int(patience), threshold=threshold, min_lr=floors
    )
    return LRSchedule(
        _with_warmup(optimizer, _constant(optimizer), warmup, warmup_start_factor), plateau, plateau_after=warmup
    )


def one_cycle(
    optimizer: Optimizer,
    *,
    epochs: int,
    steps_per_epoch: int,
    warmup_epochs: float = 5.0,
    warmup_start_factor: float = 0.04,
    final_factor: float = 1e-4,
    anneal_strategy: Literal["cos", "linear"] = "cos",
) -> LRSchedule:
    """The 1cycle policy (Smith & Topin 2019): warm up to ``lr`` over ``warmup_epochs``, then anneal to
    ``lr * final_factor``, with momentum (or Adam's beta1) cycled inversely. The warm-up is OneCycleLR's
    own first phase, linear with ``anneal_strategy=linear``.
    """
    if anneal_strategy not in ("cos", "linear"):
        raise ValueError(f"anneal_strategy: '{anneal_strategy}' is not cos or linear. Use cos")
    for name, factor, example in (
        ("warmup_start_factor", warmup_start_factor, "0.04"),
        ("final_factor", final_factor, "1e-4"),
    ):
        if not 0.0 < factor <= 1.0:
            raise ValueError(f"{name}: {factor} is outside (0, 1]. Use e.g. {example}")
    total = epochs * steps_per_epoch
    warmup = min(max(1, _warmup_steps(warmup_epochs, epochs, steps_per_epoch)), max(1, total - 2))
    # OneCycleLR peaks at step pct_start·total - 1; this puts the peak after `warmup` steps, as elsewhere.
    schedule = OneCycleLR(
        optimizer,
        max_lr=[group["lr"] for group in optimizer.param_groups],
        total_steps=total,
        pct_start=(warmup + 1) / total,
        anneal_strategy=anneal_strategy,
        div_factor=1.0 / warmup_start_factor,
        final_div_factor=warmup_start_factor / final_factor,
    )
    return LRSchedule(schedule)

"""What a run reports to a sweep: its objectives (``objective``, ``objective_mode``), parsed and checked."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig

from genre.core.errors import ConfigError
from genre.core.objective import mode_of

# Checkpoints are chosen on validation data only: choosing on test data would inflate the result.
OBJECTIVES = ("val/acc", "val/loss", "val/segment_acc", "val/segment_loss")
# Facts of a run (RunMetrics fields) that later objectives of a multi-objective sweep may name.
FACT_OBJECTIVES = ("n_parameters", "train_seconds")


@dataclass(frozen=True)
class Objective:
    """A metric the run reports to a sweep and whether larger is better (``max``) or smaller (``min``)."""

    name: str
    mode: str


def parse_objectives(cfg: DictConfig) -> tuple[Objective, ...]:
    """``objective`` (one name, or a list for a multi-objective sweep: the first picks the checkpoint) and
    ``objective_mode`` (one mode, or one per name), checked."""
    names = [cfg.objective] if isinstance(cfg.objective, str) else list(cfg.objective)
    mode = cfg.get("objective_mode", "max")
    modes = [mode] * len(names) if isinstance(mode, str) else list(mode)
    if len(modes) != len(names):
        raise ConfigError(
            "objective_mode",
            f"{len(modes)} mode(s) for {len(names)} objective(s)",
            "Give one max or min per objective, e.g. objective_mode=[max,min]",
        )
    objectives = tuple(Objective(str(name), str(mode)) for name, mode in zip(names, modes))
    if objectives[0].name not in OBJECTIVES:
        raise ConfigError(
            "objective",
            f"'{objectives[0].name}' is not one of {', '.join(OBJECTIVES)}",
            "Pick the checkpoint on validation data; test metrics are reported, never optimised",
        )
    for objective in objectives[1:]:
        if objective.name not in (*OBJECTIVES, *FACT_OBJECTIVES):
            raise ConfigError(
                "objective",
                f"'{objective.name}' is not one of {', '.join((*OBJECTIVES, *FACT_OBJECTIVES))}",
                "Trade the validation metric against another one or the model's size or training time",
            )
    for objective in objectives:
        _check_mode(objective)
    return objectives


def _check_mode(objective: Objective) -> None:
    name, mode = objective.name, objective.mode
    if mode not in ("max", "min"):
        raise ConfigError("objective_mode", f"'{mode}' is not max or min", "Use max for accuracy, min for loss")
    expected = mode_of(name)
    if expected is not None and mode != expected:
        worst = "worst" if name in FACT_OBJECTIVES else ("highest-loss" if mode == "max" else "lowest-accuracy")
        raise ConfigError(
            "objective_mode",
            f"{mode} with objective={name} would keep the {worst} checkpoint",
            f"Leave objective_mode out (it follows the objective) or set it to {expected}",
        )

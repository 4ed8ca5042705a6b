"""Which way an objective is better: losses down, accuracies up.

``objective_mode`` defaults to the mode of ``objective`` through the ``genre.objective_mode`` config
resolver, so ``objective=val/loss`` keeps the lowest-loss checkpoint and an Optuna search minimises
it; an explicit mode that contradicts the objective is refused (:func:`genre.experiment.spec.build_spec`).
Kept free of heavy imports: it is registered whenever ``genre`` is imported.
"""

from __future__ import annotations

from typing import Any

from omegaconf import ListConfig, OmegaConf

RESOLVER = "genre.objective_mode"


def mode_of(objective: str) -> str | None:
    """``min`` for a loss, ``max`` for an accuracy, None for a metric of neither kind."""
    name = str(objective).rsplit("/", 1)[-1]
    if name in ("n_parameters", "train_seconds"):  # a multi-objective sweep's costs: smaller is better
        return "min"
    if name.endswith("loss"):
        return "min"
    if name.endswith("acc"):
        return "max"
    return None


def _resolve(objective: Any) -> str | list[str]:
    # An unknown objective is refused by build_spec with the list of valid ones; "max" until then.
    if isinstance(objective, ListConfig | list | tuple):  # a multi-objective sweep: one mode per objective
        return [mode_of(str(name)) or "max" for name in objective]
    return mode_of(str(objective)) or "max"


if not OmegaConf.has_resolver(RESOLVER):
    OmegaConf.register_new_resolver(RESOLVER, _resolve)

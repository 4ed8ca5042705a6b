"""What TensorBoard's HPARAMS tab shows for a run: its config choices, main numbers and overrides."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hydra.core.hydra_config import HydraConfig

from genre.core.overrides import parse_override

# Config groups whose chosen option names the run in the HPARAMS table.
GROUPS = ("dataset", "feature", "model", "optimizer", "scheduler", "trainer", "augment")


def run_hparams(numbers: Mapping[str, Any]) -> dict[str, Any]:
    """The run's config choices and every command-line override (numbers as floats), then its main
    ``numbers`` (config key -> value, parsed by :func:`genre.experiment.spec.build_spec`)."""
    params: dict[str, Any] = {}
    if HydraConfig.initialized():
        hydra_cfg = HydraConfig.get()
        for group in GROUPS:
            choice = hydra_cfg.runtime.choices.get(group)
            if choice is not None:
                params[group] = str(choice)
        for override in hydra_cfg.overrides.task:
            key, value = parse_override(override)
            if key in params:
                continue
            try:
                params[key] = float(value)
            except ValueError:
                params[key] = value
    params.update(numbers)
    return params

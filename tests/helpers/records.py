"""Run records as a finished run leaves them, for tests that build sweep or run dirs by hand."""

from __future__ import annotations

from typing import Any

from genre.run_files import RunMetrics

# The facts of a small finished run; a test overrides the ones it is about.
RUN_FACTS: dict[str, Any] = {
    "scores": {"val/acc": 0.5},
    "objective": "val/acc",
    "objective_mode": "max",
    "best_epoch": 1,
    "epochs": 1,
    "epochs_run": 1,
    "stopped_early": False,
    "n_parameters": 5,
    "train_seconds": 1.0,
    "labels": ["a", "b"],
    "n_clips": {"train": 2, "val": 2, "test": 2},
    "skipped": 0,
    "aggregate": "mean",
    "world_size": 1,
    "resumed": False,
}


def make_metrics(**overrides: Any) -> RunMetrics:
    """The one builder of a ``metrics.json`` record in tests: :data:`RUN_FACTS` with ``overrides`` (any
    :class:`~genre.run_files.RunMetrics` field, ``scores`` among them) in their place."""
    return RunMetrics(**{**RUN_FACTS, **overrides})

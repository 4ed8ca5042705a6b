"""``metrics.json``: a finished run's scores, performance figures and identity, as a typed record."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from genre.core.filesystem import atomic_write_text
from genre.run_files.fields import required
from genre.run_files.names import METRICS_FILE, METRICS_VERSION
from genre.run_files.records import check_metrics, read_record


@dataclass
class RunMetrics:
    """A finished run's results (``metrics.json``).

    ``scores`` holds the split metrics under their TensorBoard tags (``val/acc``, ``test/loss``,
    ``train/acc``...); ``perf`` how fast training went (``perf/clips_per_second``,
    ``perf/data_wait_fraction``). In the file both sit at the top level beside the run's facts.
    """

    scores: dict[str, float]
    objective: str
    objective_mode: str
    best_epoch: int
    epochs: int
    epochs_run: int
    stopped_early: bool
    n_parameters: int
    train_seconds: float
    labels: list[str]
    n_clips: dict[str, int]
    skipped: int
    aggregate: str
    world_size: int
    resumed: bool
    perf: dict[str, float] = field(default_factory=dict)
    final_state_sha256_per_rank: list[str] | None = None
    # A multi-objective sweep's objectives (the first is ``objective``) and their modes; None: one objective.
    objectives: list[str] | None = None
    objective_modes: list[str] | None = None
    version: int = METRICS_VERSION

    @classmethod
    def mean(cls, runs: list[RunMetrics]) -> RunMetrics:
        """One record standing for several runs (a cross-validation job's folds): scores and perf averaged
        over the runs that have them, ``train_seconds`` summed, ``resumed`` if any was, other facts the first's."""
        if not runs:
            raise ValueError("runs: expected at least one run's metrics")

        def average(name: str) -> dict[str, float]:
            keys = dict.fromkeys(key for run in runs for key in getattr(run, name))
            return {
                key: float(np.mean([getattr(run, name)[key] for run in runs if key in getattr(run, name)]))
                for key in keys
            }

        first = runs[0]
        return cls(
            **{
                **{item.name: getattr(first, item.name) for item in fields(cls)},
                "scores": average("scores"),
                "perf": average("perf"),
                "train_seconds": float(sum(run.train_seconds for run in runs)),
                "resumed": any(run.resumed for run in runs),
                "final_state_sha256_per_rank": None,
            }
        )

    @property
    def objective_value(self) -> float:
        """The value of the run's configured objective (NaN when it was not recorded)."""
        return float(self.scores.get(self.objective, math.nan))

    def objective_values(self) -> list[float]:
        """The value of each objective: a split metric, or a fact of the run (``n_parameters``, ``train_seconds``)."""
        return [
            float(self.scores[name]) if name in self.scores else float(getattr(self, name, math.nan))
            for name in (self.objectives or [self.objective])
        ]

    def to_json(self) -> dict[str, Any]:
        """The flat dictionary written to ``metrics.json``."""
        facts = {item.name: getattr(self, item.name) for item in fields(self) if item.name not in ("scores", "perf")}
        for optional in ("final_state_sha256_per_rank", "objectives", "objective_modes"):
            if facts[optional] is None:
                del facts[optional]
        return {**self.scores, **self.perf, **facts}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunMetrics:
        """The record behind a ``metrics.json`` dictionary; raises ``KeyError`` for a missing field."""
        scores = {key: float(value) for key, value in data.items() if "/" in key and not key.startswith("perf/")}
        perf = {key: float(value) for key, value in data.items() if key.startswith("perf/")}
        facts = {
            item.name: data[item.name]
            for item in fields(cls)
            if item.name not in ("scores", "perf") and (item.name in data or required(item))
        }
        return cls(scores=scores, perf=perf, **facts)

    def write(self, run_dir: str | Path) -> Path:
        """Write ``<run_dir>/metrics.json`` atomically; return its path."""
        path = Path(run_dir) / METRICS_FILE
        atomic_write_text(path, json.dumps(self.to_json(), indent=2))
        return path

    @classmethod
    def read(cls, run_dir: str | Path, strict: bool = False) -> RunMetrics | None:
        """The metrics of the run in ``run_dir``, checked as plain data of the shape :meth:`write` gives them.
        None where it has none, or a damaged one (logged; with ``strict``:
        :class:`~genre.core.errors.DamagedFileError`)."""
        path = Path(run_dir) / METRICS_FILE
        data = read_record(path, check_metrics, strict) if path.is_file() else None
        return None if data is None else cls.from_json(data)

"""``cv.json``: a cross-validation job's folds and their summary, as a typed record."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from genre.core.filesystem import atomic_write_text
from genre.run_files.names import CROSS_VALIDATION_FILE
from genre.run_files.records import CROSS_VALIDATION_VERSION, check_cross_validation, read_record


@dataclass
class CrossValidationMetrics:
    """A cross-validation job's record (``cv.json`` in the job dir, beside ``fold0/``, ``fold1/``...).

    ``config`` is the job's resolved config (``resume=<job dir>`` continues from it); ``completed`` the
    folds whose run finished (each fold's own ``metrics.json`` holds its results); ``objective_values``
    their objective, in ``completed`` order; ``mean``/``std``/``low``/``high`` each score's mean, standard
    deviation and 95 % Student-t interval over the completed folds (NaN interval for one fold).
    """

    folds: int
    config: dict[str, Any]
    objective: str
    objective_mode: str
    completed: list[int] = field(default_factory=list)
    objective_values: list[float] = field(default_factory=list)
    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    low: dict[str, float] = field(default_factory=dict)
    high: dict[str, float] = field(default_factory=dict)
    version: int = CROSS_VALIDATION_VERSION

    @staticmethod
    def fold_dir(fold: int) -> str:
        """The sub-directory of fold ``fold`` in the job dir."""
        return f"fold{fold}"

    @property
    def finished(self) -> bool:
        """Whether every fold has finished."""
        return sorted(self.completed) == list(range(self.folds))

    def write(self, job_dir: str | Path) -> Path:
        """Write ``<job_dir>/cv.json`` atomically; return its path."""
        path = Path(job_dir) / CROSS_VALIDATION_FILE
        atomic_write_text(path, json.dumps(asdict(self), indent=2))
        return path

    @classmethod
    def read(cls, job_dir: str | Path, strict: bool = False) -> CrossValidationMetrics | None:
        """The record in ``job_dir``, checked as plain data of the shape :meth:`write` gives it (its ``config``
        stays data: nothing is built from it here). None where it has none, or a damaged one or one of another
        version (logged; with ``strict``: :class:`~genre.core.errors.DamagedFileError`)."""
        path = Path(job_dir) / CROSS_VALIDATION_FILE
        data = read_record(path, check_cross_validation, strict) if path.is_file() else None
        return (
            None if data is None else cls(**{item.name: data[item.name] for item in fields(cls) if item.name in data})
        )

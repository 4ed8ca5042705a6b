"""The files a run leaves in its directory as typed records (checkpoints, ``metrics.json``, ``predictions.csv``,
a cross-validation job's ``cv.json``), which training, resume, predict and the summaries all go through.
Checkpoints are read with ``torch.load(..., weights_only=True)`` and their stored config must pass
:func:`~genre.stored_config.check_stored_config`: a checkpoint someone sends never runs code."""

from __future__ import annotations

import json
import logging
import math
import pickle
from dataclasses import MISSING, Field, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from genre.errors import UserInputError
from genre.filesystem import atomic_output, atomic_write_text
from genre.json_records import CROSS_VALIDATION_VERSION, check_cross_validation, check_metrics, read_record
from genre.stored_config import check_stored_config

log = logging.getLogger(__name__)

BEST_CHECKPOINT = "best.pt"
LAST_CHECKPOINT = "last.pt"
METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.csv"
CROSS_VALIDATION_FILE = "cv.json"
TENSORBOARD_DIR = "tensorboard"

# Bumped whenever a field changes meaning; a checkpoint of another version is refused with one line.
CHECKPOINT_VERSION = 2
METRICS_VERSION = 2
# predictions.csv: one probability column per genre, named p/<genre>.
PROBABILITY_PREFIX = "p/"


class CheckpointError(UserInputError):
    """A checkpoint file that cannot be used: missing, damaged, of another version, or holding code."""


@dataclass
class Position:
    """Where training stands: the epoch in progress (1-based), its batches done, and their running sums."""

    epoch: int = 1
    batch: int = 0
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0


@dataclass(frozen=True)
class RunIdentity:
    """What every checkpoint of a run stores besides the training state: its resolved config (plain
    containers), its genre names in label order, and the audio cache it trained on."""

    config: dict[str, Any]
    labels: list[str]
    audio_cache: str


@dataclass
class Checkpoint:
    """Everything needed to evaluate, predict with or continue a run (``best.pt``, ``last.pt``).

    ``config`` is the run's resolved config as plain containers; ``rng`` holds one entry per rank
    (see :mod:`genre.training.seeding`); ``epoch``/``metrics`` are those of the last finished epoch
    (None in a checkpoint saved mid-epoch).
    """

    config: dict[str, Any]
    labels: list[str]
    audio_cache: str
    model: dict[str, torch.Tensor]
    features: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    schedule: dict[str, Any]
    scaler: dict[str, Any]
    step: int
    position: Position
    early_stopping: dict[str, Any]
    history: list[dict[str, float]]
    rng: list[dict[str, Any]]
    train_seconds: float
    world_size: int
    epoch: int | None = None
    metrics: dict[str, float] | None = None
    version: int = CHECKPOINT_VERSION

    def save(self, path: str | Path) -> None:
        """Write atomically: a crash mid-write never leaves a truncated checkpoint behind."""
        state = {item.name: getattr(self, item.name) for item in fields(self)}
        state["position"] = asdict(self.position)
        with atomic_output(path) as tmp:
            torch.save(state, tmp)

    @classmethod
    def load(cls, path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
        """Read a checkpoint written by :meth:`save`; raise :class:`CheckpointError` (one line) for
        anything else, without running any code the file may hold."""
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: no such checkpoint file")
        try:
            state = torch.load(path, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(
                f"{path}: refused to load, it holds more than tensors and plain data "
                f"({first[:160]}). Only load checkpoints written by genre"
            ) from None
        except Exception as exc:  # noqa: BLE001 - damaged bytes fail anywhere in the unpickler (IndexError, KeyError...)
            raise CheckpointError(
                f"{path}: not a readable checkpoint ({type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:160]}). Use a best.pt/last.pt written by genre"
            ) from None
        return cls._from_state(path, state)

    @classmethod
    def _from_state(cls, path: Path, state: Any) -> Checkpoint:
        if not isinstance(state, dict):
            raise CheckpointError(f"{path}: not a genre checkpoint (it holds a {type(state).__name__})")
        version = state.get("version")
        if version != CHECKPOINT_VERSION:
            raise CheckpointError(
                f"{path}: checkpoint format version {version}, this genre reads version "
                f"{CHECKPOINT_VERSION}. Retrain the run with this version of genre"
            )
        names = {item.name for item in fields(cls)}
        missing = sorted(item.name for item in fields(cls) if _required(item) and item.name not in state)
        if missing:
            raise CheckpointError(f"{path}: not a complete genre checkpoint (missing {', '.join(missing)})")
        values = {name: state[name] for name in names if name in state}
        check_stored_config(values["config"], path)  # here, so that no reader can skip it
        labels, position = values["labels"], values["position"]
        if not (isinstance(labels, list) and labels and all(isinstance(label, str) for label in labels)) or not (
            isinstance(position, dict) and set(position) <= {item.name for item in fields(Position)}
        ):
            raise CheckpointError(f"{path}: not a genre checkpoint (its labels or training position are not data)")
        return cls(**{**values, "position": Position(**position)})


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
            if item.name not in ("scores", "perf") and (item.name in data or _required(item))
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
        None where it has none, or a damaged one (logged; with ``strict``: :class:`~genre.errors.DamagedFileError`)."""
        path = Path(run_dir) / METRICS_FILE
        data = read_record(path, check_metrics, strict) if path.is_file() else None
        return None if data is None else cls.from_json(data)


@dataclass
class Predictions:
    """A run's predictions on its validation and test clips (``predictions.csv``), each split in its order.

    One row per clip, or per segment when ``eval.aggregate=none`` (then ``segment`` numbers the segments
    of each clip from 0, and the rows are not independent clips: comparisons skip such files). Columns:
    ``split``, ``clip_id`` (the file's path relative to the folder holding all of the dataset's clips, so
    runs on two copies of one dataset match), ``path``, [``segment``], ``true`` and ``predicted`` (genre
    names), then ``p/<genre>`` per genre in ``labels`` order.
    """

    labels: list[str]
    split: list[str]
    clip_id: list[str]
    path: list[str]
    y_true: np.ndarray
    y_pred: np.ndarray
    probabilities: np.ndarray
    segment: np.ndarray | None = None

    @property
    def per_segment(self) -> bool:
        """Whether the rows are segments (``eval.aggregate=none``) rather than whole clips."""
        return self.segment is not None

    def of_split(self, name: str) -> Predictions:
        """The rows of one split (``val`` or ``test``)."""
        keep = np.flatnonzero(np.asarray(self.split) == name)
        return Predictions(
            labels=self.labels,
            split=[self.split[i] for i in keep],
            clip_id=[self.clip_id[i] for i in keep],
            path=[self.path[i] for i in keep],
            y_true=self.y_true[keep],
            y_pred=self.y_pred[keep],
            probabilities=self.probabilities[keep],
            segment=None if self.segment is None else self.segment[keep],
        )

    def frame(self) -> pd.DataFrame:
        """The table written to ``predictions.csv``."""
        names = np.asarray(self.labels, dtype=object)
        columns: dict[str, Any] = {"split": self.split, "clip_id": self.clip_id, "path": self.path}
        if self.segment is not None:
            columns["segment"] = self.segment
        columns.update({"true": names[self.y_true], "predicted": names[self.y_pred]})
        columns.update(
            {f"{PROBABILITY_PREFIX}{label}": self.probabilities[:, i] for i, label in enumerate(self.labels)}
        )
        return pd.DataFrame(columns)

    def write(self, run_dir: str | Path) -> Path:
        """Write ``<run_dir>/predictions.csv`` atomically; return its path."""
        path = Path(run_dir) / PREDICTIONS_FILE
        atomic_write_text(path, self.frame().to_csv(index=False, float_format="%.6g"))
        return path

    @classmethod
    def read(cls, run_dir: str | Path) -> Predictions | None:
        """The predictions of the run in ``run_dir``; None where it has none or only an unreadable file."""
        path = Path(run_dir) / PREDICTIONS_FILE
        if not path.is_file():
            return None
        try:
            table = pd.read_csv(
                path,
                dtype={"clip_id": str, "path": str, "true": str, "predicted": str, "split": str},
                keep_default_na=False,
            )
            labels = [
                column[len(PROBABILITY_PREFIX) :] for column in table.columns if column.startswith(PROBABILITY_PREFIX)
            ]
            ids = {label: i for i, label in enumerate(labels)}
            return cls(
                labels=labels,
                split=list(table["split"]),
                clip_id=list(table["clip_id"]),
                path=list(table["path"]),
                y_true=table["true"].map(ids).to_numpy(dtype=np.int64),
                y_pred=table["predicted"].map(ids).to_numpy(dtype=np.int64),
                probabilities=table[[f"{PROBABILITY_PREFIX}{label}" for label in labels]].to_numpy(float),
                segment=table["segment"].to_numpy(dtype=np.int64) if "segment" in table else None,
            )
        except (KeyError, ValueError, TypeError, pd.errors.ParserError) as exc:
            log.warning("Ignoring unreadable %s: %s: %s", path, type(exc).__name__, exc)
            return None


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
        version (logged; with ``strict``: :class:`~genre.errors.DamagedFileError`)."""
        path = Path(job_dir) / CROSS_VALIDATION_FILE
        data = read_record(path, check_cross_validation, strict) if path.is_file() else None
        return (
            None if data is None else cls(**{item.name: data[item.name] for item in fields(cls) if item.name in data})
        )


def _required(item: Field[Any]) -> bool:
    """Whether a dataclass field has no default (so a file without it is incomplete)."""
    return item.default is MISSING and item.default_factory is MISSING

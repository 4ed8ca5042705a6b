"""The files a run leaves in its directory, as typed records: checkpoints and ``metrics.json``.

Training, resume, ``genre.predict`` and the sweep summary all read and write these files through
this module, so a renamed field fails at import or in a test instead of surfacing as an empty
summary column. Checkpoints hold only tensors and plain containers and are read with
``torch.load(..., weights_only=True)``: a checkpoint someone sends can never run code on load.
"""

from __future__ import annotations

import json
import logging
import math
import pickle
from dataclasses import MISSING, Field, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from genre.errors import UserInputError
from genre.filesystem import atomic_output, atomic_write_text

log = logging.getLogger(__name__)

BEST_CHECKPOINT = "best.pt"
LAST_CHECKPOINT = "last.pt"
METRICS_FILE = "metrics.json"
TENSORBOARD_DIR = "tensorboard"

# Bumped whenever a field changes meaning; a checkpoint of another version is refused with one line.
CHECKPOINT_VERSION = 2
METRICS_VERSION = 2


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
        except (RuntimeError, EOFError, OSError, ValueError) as exc:
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
        values["position"] = Position(**values["position"])
        return cls(**values)


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
    def read(cls, run_dir: str | Path) -> RunMetrics | None:
        """The metrics of the run in ``run_dir``; None where it has none, or only an unreadable or
        incomplete one (a run killed while writing it, or one written by an older version)."""
        path = Path(run_dir) / METRICS_FILE
        if not path.is_file():
            return None
        try:
            return cls.from_json(json.loads(path.read_text()))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            log.warning("Ignoring unreadable %s: %s: %s", path, type(exc).__name__, exc)
            return None


def _required(item: Field[Any]) -> bool:
    """Whether a dataclass field has no default (so a file without it is incomplete)."""
    return item.default is MISSING and item.default_factory is MISSING

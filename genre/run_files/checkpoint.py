"""Checkpoints (``best.pt``, ``last.pt``): the training state and the run's identity, read with
``torch.load(..., weights_only=True)``; their stored config must pass
:func:`~genre.run_files.stored_config.check_stored_config`, so a checkpoint someone sends never runs code."""

from __future__ import annotations

import pickle
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch

from genre.core.errors import UserInputError
from genre.core.filesystem import atomic_output
from genre.run_files.fields import required
from genre.run_files.names import CHECKPOINT_VERSION
from genre.run_files.stored_config import check_stored_config


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
        missing = sorted(item.name for item in fields(cls) if required(item) and item.name not in state)
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

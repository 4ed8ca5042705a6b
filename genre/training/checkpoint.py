"""Checkpoints: everything needed to evaluate, predict with or continue a run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` atomically: a crash mid-write never leaves a truncated checkpoint behind."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`."""
    # Our checkpoints hold plain containers (config dict, label names) besides tensors.
    return torch.load(Path(path), map_location=map_location, weights_only=False)

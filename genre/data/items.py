"""What every dataset source lists: :class:`AudioItem`, one audio file with its label.

A module of its own so that each source (a genre folder, a CSV manifest, GTZAN, FMA) and the code that
splits and caches their items can share the type without importing one another.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class AudioItem:
    """One audio file of a dataset with its genre label and, where the dataset defines them, its split and
    its group: files sharing a group (FMA: one artist; a manifest's group column) must never be on both
    sides of a split, or the model is tested on what it has in effect heard (``dataset/split=kfold``)."""

    path: Path
    label: str
    split: str | None = None
    group: str | None = None

"""Which fields of a record dataclass a file must hold: those without a default."""

from __future__ import annotations

from dataclasses import MISSING, Field
from typing import Any


def required(item: Field[Any]) -> bool:
    """Whether a dataclass field has no default (so a file without it is incomplete)."""
    return item.default is MISSING and item.default_factory is MISSING

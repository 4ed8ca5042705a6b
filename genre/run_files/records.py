"""The JSON records genre reads back from run dirs (``metrics.json``, ``cv.json``, ``status.json``), checked
as plain data of the shape genre writes before any field is used.

A run dir may be damaged, half-copied, or handed over by someone else: every record is read as UTF-8
JSON holding an object, and each field must have its kind (a string, a whole number, a list of numbers...).
Anything else is a :class:`~genre.core.errors.DamagedFileError`: one line naming the file and the field, which
``genre.cli.report`` turns into a skipped job and ``genre.cli.compare`` into its error line. Nothing in a record is
ever resolved, imported or built.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from genre.core.errors import DamagedFileError

log = logging.getLogger(__name__)

# The cv.json format this genre reads (genre.run_files.CROSS_VALIDATION_VERSION: that module imports this one).
CROSS_VALIDATION_VERSION = 1

# Each field of a record: (its kind, whether every record has it).
METRICS_FIELDS: dict[str, tuple[str, bool]] = {
    "objective": ("text", True),
    "objective_mode": ("text", True),
    "best_epoch": ("whole number", True),
    "epochs": ("whole number", True),
    "epochs_run": ("whole number", True),
    "stopped_early": ("boolean", True),
    "n_parameters": ("whole number", True),
    "train_seconds": ("number", True),
    "labels": ("list of text", True),
    "n_clips": ("mapping of whole numbers", True),
    "skipped": ("whole number", True),
    "aggregate": ("text", True),
    "world_size": ("whole number", True),
    "resumed": ("boolean", True),
    "final_state_sha256_per_rank": ("list of text", False),
    "objectives": ("list of text", False),
    "objective_modes": ("list of text", False),
    "version": ("whole number", False),
}
CROSS_VALIDATION_FIELDS: dict[str, tuple[str, bool]] = {
    "folds": ("whole number", True),
    "config": ("mapping", True),
    "objective": ("text", True),
    "objective_mode": ("text", True),
    "completed": ("list of whole numbers", False),
    "objective_values": ("list of numbers", False),
    "mean": ("mapping of numbers", False),
    "std": ("mapping of numbers", False),
    "low": ("mapping of numbers", False),
    "high": ("mapping of numbers", False),
    "version": ("whole number", False),
}
# status.json (genre.sweeps.jobs.status.JobStatus): every field but status and started may be null or missing.
STATUS_FIELDS: dict[str, tuple[str, bool]] = {
    "status": ("text", True),
    "started": ("text", True),
    "host": ("text or null", False),
    "pid": ("whole number or null", False),
    "ended": ("text or null", False),
    "wall_seconds": ("number or null", False),
    "error": ("text or null", False),
    "traceback": ("text or null", False),
    "detail": ("text or null", False),
    "pruned_epoch": ("whole number or null", False),
}
_SCALARS = {
    "text": lambda value: isinstance(value, str),
    "boolean": lambda value: isinstance(value, bool),
    "whole number": lambda value: isinstance(value, int) and not isinstance(value, bool),
    "number": lambda value: isinstance(value, (int, float)) and not isinstance(value, bool),
}


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path`` as plain data; :class:`~genre.core.errors.DamagedFileError` when the file is not
    UTF-8 JSON text holding an object."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise DamagedFileError(f"{path}: not UTF-8 text, so not a file genre wrote. Restore it, or remove it") from None
    except ValueError as exc:
        raise DamagedFileError(f"{path}: not valid JSON ({exc}). Restore it, or remove it") from None
    if not isinstance(data, dict):
        raise DamagedFileError(f"{path}: holds a JSON {json_kind(data)}, not an object. Restore it, or remove it")
    return data


def read_record(path: Path, check: Callable[[Path, dict[str, Any]], None], strict: bool) -> dict[str, Any] | None:
    """The record in ``path`` once ``check`` passed it. A damaged one: with ``strict``, its
    :class:`~genre.core.errors.DamagedFileError`; else None, logged (training goes on as if the file were missing)."""
    try:
        data = read_json_object(path)
        check(path, data)
    except DamagedFileError as exc:
        if strict:
            raise
        log.warning("Ignoring %s", exc)
        return None
    return data


def check_metrics(path: Path, data: Mapping[str, Any]) -> None:
    """Check a ``metrics.json`` record: its facts, and every split metric (``val/acc``...) a number."""
    check_fields(path, data, {**METRICS_FIELDS, **{key: ("number", True) for key in data if "/" in key}})


def check_cross_validation(path: Path, data: Mapping[str, Any]) -> None:
    """Check a ``cv.json`` record: its version, its fields, and its completed folds among its folds."""
    if data.get("version") != CROSS_VALIDATION_VERSION:
        raise DamagedFileError(
            f"{path}: cv.json version {data.get('version')!r}, this genre reads {CROSS_VALIDATION_VERSION}. "
            "Rerun that cross-validation with this genre"
        )
    check_fields(path, data, CROSS_VALIDATION_FIELDS)
    if data["folds"] < 1 or not all(0 <= fold < data["folds"] for fold in data.get("completed", [])):
        raise DamagedFileError(f"{path}: its completed folds are not among its folds. Restore it, or remove it")


def is_kind(value: Any, kind: str) -> bool:
    """Whether the JSON value ``value`` is of ``kind``: text, boolean, whole number, number, mapping, or a list of
    / mapping of one of these (``list of numbers``, ``mapping of whole numbers``); ``<kind> or null`` admits null."""
    if kind.endswith(" or null"):
        return value is None or is_kind(value, kind.removesuffix(" or null"))
    for container, of_type in (("list of ", list), ("mapping of ", dict)):
        if kind.startswith(container):
            inner = kind[len(container) :].removesuffix("s") if kind != "list of text" else "text"
            items = value.values() if isinstance(value, dict) else value
            keys_ok = not isinstance(value, dict) or all(isinstance(key, str) for key in value)
            return isinstance(value, of_type) and keys_ok and all(is_kind(item, inner) for item in items)
    if kind == "mapping":
        return isinstance(value, dict) and all(isinstance(key, str) for key in value)
    return _SCALARS[kind](value)


def check_fields(path: Path, data: Mapping[str, Any], kinds: Mapping[str, tuple[str, bool]]) -> None:
    """:class:`~genre.core.errors.DamagedFileError` naming ``path`` and the field, unless each field of ``kinds`` in
    ``data`` is of its kind and every required one is there."""
    for key, (kind, required) in kinds.items():
        if key not in data and not required:
            continue
        if key not in data or not is_kind(data[key], kind):
            found = _with_article(json_kind(data[key])) if key in data else "missing"
            raise DamagedFileError(
                f"{path}: {key} is {found}, not {_with_article(kind)}. It is not a file genre wrote: restore it, or "
                "remove that run"
            )


def _with_article(kind: str) -> str:
    if kind in ("text", "null") or kind.startswith(("list", "mapping")):
        return kind
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def json_kind(value: Any) -> str:
    """A JSON value's kind as a reader names it (the value itself could be anything, of any length)."""
    names = {dict: "object", list: "list", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)

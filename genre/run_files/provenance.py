"""``provenance.json``: where a run's numbers come from (the split, the data, the code, the command), as a typed
record written when the run starts, so that failed, pruned and killed runs have one too."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from genre.core.errors import DamagedFileError
from genre.core.filesystem import atomic_write_text
from genre.run_files.fields import required
from genre.run_files.names import PROVENANCE_FILE, PROVENANCE_VERSION
from genre.run_files.records import check_fields, read_record

# Each field of the record: (its kind, whether every record has it); see records.is_kind.
PROVENANCE_FIELDS: dict[str, tuple[str, bool]] = {
    "split": ("text", True),
    "split_parameters": ("mapping", True),
    "fold": ("whole number or null", True),
    "audio_cache": ("text", True),
    "n_clips": ("mapping of whole numbers", True),
    "skipped": ("whole number", True),
    "package_version": ("text or null", True),
    "git_commit": ("text or null", True),
    "git_dirty": ("boolean or null", True),
    "libraries": ("mapping of text or nulls", True),
    "command": ("list of text", True),
    "started": ("text", True),
    "resumed_from": ("text or null", False),
    "earlier": ("list of mappings", False),
    "version": ("whole number", False),
}
# What a launch of the run contributes (the rest -- split and data -- is the run's own and cannot change).
LAUNCH_FIELDS = ("package_version", "git_commit", "git_dirty", "libraries", "command", "started", "resumed_from")


@dataclass
class Provenance:
    """Where a run's numbers come from (``provenance.json`` in the run dir).

    ``split`` is the class that split the clips (``genre.data.splits.KFoldSplit``), ``split_parameters`` every
    parameter it ran with (defaults included) and ``fold`` its fold when it has one; ``audio_cache`` the
    audio cache's key (its folder name: it hashes every file's path, size and mtime and the clip format), and
    ``n_clips`` the clips per split. ``git_commit`` and ``git_dirty`` describe the checkout genre ran from
    (None when it runs from no git checkout), ``libraries`` the versions of Python and the libraries results
    depend on, ``command`` the process's command line (``sys.argv``) and ``started`` when (UTC, ISO 8601).
    A resumed run records its own launch and keeps the launches before it in ``earlier``, oldest first.
    """

    split: str
    split_parameters: dict[str, Any]
    fold: int | None
    audio_cache: str
    n_clips: dict[str, int]
    skipped: int
    package_version: str | None
    git_commit: str | None
    git_dirty: bool | None
    libraries: dict[str, str | None]
    command: list[str]
    started: str
    resumed_from: str | None = None
    earlier: list[dict[str, Any]] = field(default_factory=list)
    version: int = PROVENANCE_VERSION

    def launch(self) -> dict[str, Any]:
        """This launch's facts (code, libraries, command, start), as :attr:`earlier` keeps them."""
        return {name: getattr(self, name) for name in LAUNCH_FIELDS}

    def split_description(self) -> str:
        """The split as one readable call: ``KFoldSplit(folds=5, fold=2, seed=0, val=0.15, group='group')``."""
        arguments = ", ".join(f"{key}={value!r}" for key, value in self.split_parameters.items())
        return f"{self.split.rpartition('.')[2]}({arguments})"

    def write(self, run_dir: str | Path) -> Path:
        """Write ``<run_dir>/provenance.json`` atomically; return its path."""
        path = Path(run_dir) / PROVENANCE_FILE
        atomic_write_text(path, json.dumps(asdict(self), indent=2))
        return path

    @classmethod
    def read(cls, run_dir: str | Path, strict: bool = False) -> Provenance | None:
        """The record in ``run_dir``, checked as plain data of the shape :meth:`write` gives it. None where it
        has none, or a damaged one or one of another version (logged; with ``strict``:
        :class:`~genre.core.errors.DamagedFileError`)."""
        path = Path(run_dir) / PROVENANCE_FILE
        data = read_record(path, check_provenance, strict) if path.is_file() else None
        if data is None:
            return None
        return cls(**{item.name: data[item.name] for item in fields(cls) if item.name in data or required(item)})


def check_provenance(path: Path, data: dict[str, Any]) -> None:
    """Check a ``provenance.json`` record: its version and every field's kind."""
    if data.get("version", PROVENANCE_VERSION) != PROVENANCE_VERSION:
        raise DamagedFileError(
            f"{path}: provenance.json version {data.get('version')!r}, this genre reads {PROVENANCE_VERSION}. "
            "Rerun that run with this genre to record its provenance"
        )
    check_fields(path, data, PROVENANCE_FIELDS)

"""A CSV manifest as a dataset: one row per audio file, ``path,label[,split][,group]`` with a header row."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from genre.data.items import AudioItem

# How a manifest may name a split; the short names are the ones the rest of the code uses.
SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


class ManifestSource:
    """Files, labels and (optionally, per row) splits and groups from a CSV with columns
    ``path,label[,split][,group]`` (any order).

    Relative paths are taken from ``base`` when given, else from the manifest's own folder. Rows with
    an empty split are split by the configured splitter. ``group`` (e.g. an artist or recording id) keeps
    files sharing it on one side of a k-fold split; empty means the file is its own group.
    Files that do not exist are skipped by the
    cache and reported, but a manifest none of whose files exist is an error.
    """

    def __init__(self, manifest: str | os.PathLike, base: str | os.PathLike | None = None) -> None:
        self.manifest = Path(manifest).expanduser()
        self.base = Path(base).expanduser() if base is not None else self.manifest.parent
        self.notes: list[str] = []

    def items(self) -> list[AudioItem]:
        """Read and check the manifest; one item per row, in the manifest's order.

        Raises ValueError naming ``manifest``, the file and (for a bad row) its line.
        """
        table = self._read_table()
        items: list[AudioItem] = []
        seen: dict[Path, int] = {}
        for offset, row in enumerate(table.itertuples(index=False)):
            line = offset + 2  # 1-based, after the header row: what an editor shows
            where = f"'{self.manifest}' line {line}"
            # every column is read as str (dtype=str, keep_default_na=False)
            raw_path, label = str(row.path).strip(), str(row.label).strip()
            if not raw_path or not label:
                raise ValueError(
                    f"manifest: {where} has an empty {'path' if not raw_path else 'label'}. "
                    "Give every row a path and a label"
                )
            split_name = getattr(row, "split", "").strip().lower()
            if split_name and split_name not in SPLIT_NAMES:
                raise ValueError(
                    f"manifest: {where} has the split '{split_name}'. "
                    "Use train, val or test, or leave it empty to split that file by seed"
                )
            path = Path(raw_path).expanduser()
            path = (path if path.is_absolute() else self.base / path).resolve()
            if path in seen:
                raise ValueError(
                    f"manifest: {where} repeats the file of line {seen[path]} ({path}). "
                    "List every file once, or it could land in two splits"
                )
            seen[path] = line
            group = getattr(row, "group", "").strip() or None
            items.append(AudioItem(path=path, label=label, split=SPLIT_NAMES.get(split_name), group=group))
        present = sum(item.path.exists() for item in items)
        if present == 0:
            raise ValueError(
                f"manifest: none of the {len(items)} files in '{self.manifest}' exist "
                f"(e.g. {items[0].path}). Relative paths are read from '{self.base}'; fix the paths "
                "or the base folder (the dataset root)"
            )
        if present < len(items):
            self.notes.append(
                f"manifest {self.manifest}: {len(items) - present} of {len(items)} listed files "
                "do not exist (skipped below)"
            )
        return items

    def _read_table(self) -> Any:
        """The manifest as a DataFrame of strings with lower-case column names, checked for its header and rows."""
        import pandas as pd  # only when a manifest is used

        if not self.manifest.is_file():
            raise ValueError(
                f"manifest: '{self.manifest}' is not a file. "
                "Point it at a CSV with a header row path,label[,split][,group]"
            )
        try:
            table = pd.read_csv(self.manifest, dtype=str, keep_default_na=False, skipinitialspace=True)
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise ValueError(
                f"manifest: '{self.manifest}' is not a readable CSV ({_first_line(exc)}). "
                "Write it as CSV with a header row path,label[,split][,group]"
            ) from exc
        table.columns = [str(c).strip().lower() for c in table.columns]
        unknown = set(table.columns) - {"path", "label", "split", "group"}
        if not {"path", "label"} <= set(table.columns) or unknown:
            raise ValueError(
                f"manifest: '{self.manifest}' has the columns {', '.join(table.columns) or 'none'}. "
                "Its header row must be path,label with optional split and group columns"
            )
        if table.empty:
            raise ValueError(f"manifest: '{self.manifest}' lists no files. Add one row per audio file")
        return table


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

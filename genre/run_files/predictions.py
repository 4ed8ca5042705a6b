"""``predictions.csv``: every val/test clip's true genre, prediction and probabilities."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genre.core.filesystem import atomic_write_text
from genre.run_files.names import PREDICTIONS_FILE, PROBABILITY_PREFIX

log = logging.getLogger(__name__)


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

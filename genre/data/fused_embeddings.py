"""The embedding tables of a fused feature's parts, read as one table.

Each part of a fusion (:class:`genre.features.fusion.Fusion`) has its own embedding cache, keyed by that
part alone, so single-part runs and fusions share them. A run reads the parts side by side: the same
clip rows, the dimensions concatenated in the parts' order, the steps those of the parts on the first
part's grid (cut to the fewest); a part on another grid is read through its step map (which of its steps
goes with each fused step; the fusion feature decides it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from genre.data.embedding_cache import EmbeddingStats, EmbeddingTable


@dataclass
class FusedTable:
    """Several parts' :class:`EmbeddingTable` of the same audio cache, read as one ``steps x dims`` table."""

    tables: list[EmbeddingTable]
    # Per table: None (read step for step) or, for every fused step, the table's step to read.
    step_maps: list[np.ndarray | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.tables or len({table.rows for table in self.tables}) != 1:
            raise ValueError("tables: give one or more tables of the same clips (rows)")
        self.step_maps = self.step_maps or [None] * len(self.tables)
        if len(self.step_maps) != len(self.tables) or self.step_maps[0] is not None:
            raise ValueError("step_maps: one per table, the first None (the fused steps are its steps)")
        for table, index in zip(self.tables, self.step_maps, strict=True):
            if index is not None and (len(index) != self.steps or index.min() < 0 or index.max() >= table.steps):
                raise ValueError(f"step_maps: a map must give each of the {self.steps} steps one of its table's steps")

    @property
    def rows(self) -> int:
        """Clips (audio-cache rows)."""
        return self.tables[0].rows

    @property
    def steps(self) -> int:
        """Steps per clip: the fewest of the parts read step for step."""
        return min(table.steps for table, index in zip(self.tables, self.step_maps, strict=True) if index is None)

    @property
    def dims(self) -> int:
        """Every part's dimensions together."""
        return sum(table.dims for table in self.tables)

    @property
    def stats(self) -> EmbeddingStats:
        """Built if any part was built here (the time: all parts' together)."""
        return EmbeddingStats(
            built=any(table.stats.built for table in self.tables),
            seconds=sum(table.stats.seconds for table in self.tables),
            waited_seconds=sum(table.stats.waited_seconds for table in self.tables),
        )

    def read(self, row: int, start: int = 0, length: int | None = None) -> np.ndarray:
        """Steps ``start:start+length`` of clip ``row``: ``(length, dims)`` float32, the parts side by side."""
        length = self.steps - start if length is None else length
        if start + length > self.steps:
            raise IndexError(f"row {row}, steps {start}:{start + length} outside the fused embeddings ({self.steps})")
        return np.concatenate(
            [
                table.read(row, start, length) if index is None else table.read(row)[index[start : start + length]]
                for table, index in zip(self.tables, self.step_maps, strict=True)
            ],
            axis=1,
        )

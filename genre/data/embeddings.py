"""PyTorch datasets over precomputed embeddings: random windows on the patch grid, whole clips for evaluation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from genre.data.clips import CroppedClips
from genre.data.embedding_cache import EmbeddingTable
from genre.data.fused_embeddings import FusedTable


class EmbeddingDataset(CroppedClips):
    """Embedded clips of one split, returned as ``(float32 (dims, steps), label id)``.

    With ``window_steps`` set, every access returns a window of that many steps starting on a patch
    boundary (a multiple of ``steps_per_patch``) drawn from (seed, epoch, index) alone, like the
    random crops of :class:`genre.data.clips.ClipDataset` but on the patch grid the embeddings were
    computed on. Without it, whole clips are returned (evaluation uses every patch).
    """

    def __init__(
        self,
        table: EmbeddingTable | FusedTable,
        rows: Sequence[int] | np.ndarray,
        targets: Sequence[int] | np.ndarray,
        *,
        window_steps: int | None = None,
        steps_per_patch: int = 1,
        seed: int = 0,
        crops_per_clip: int = 1,
    ) -> None:
        super().__init__(rows, targets, window_steps, "window_steps", seed, crops_per_clip)
        if window_steps is not None and not (0 < window_steps <= table.steps and window_steps % steps_per_patch == 0):
            raise ValueError(
                f"window_steps={window_steps} must be a positive multiple of steps_per_patch="
                f"{steps_per_patch} and at most the clip's {table.steps} steps"
            )
        self.table = table
        self.window_steps = window_steps
        self.steps_per_patch = steps_per_patch

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        row, target = self._row_and_target(index)
        if self.window_steps is None:
            values = self.table.read(row)
        else:
            patches = self.table.steps // self.steps_per_patch
            window = self.window_steps // self.steps_per_patch
            start = self._start(index, patches - window + 1) * self.steps_per_patch
            values = self.table.read(row, start, self.window_steps)
        return torch.from_numpy(np.ascontiguousarray(values.T)), target

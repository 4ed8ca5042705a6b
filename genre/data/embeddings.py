"""PyTorch datasets over precomputed embeddings: random windows on the patch grid, whole clips for evaluation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from genre.data.embedding_cache import EmbeddingTable


class EmbeddingDataset(Dataset):
    """Embedded clips of one split, returned as ``(float32 (dims, steps), label id)``.

    With ``window_steps`` set, every access returns a window of that many steps starting on a patch
    boundary (a multiple of ``steps_per_patch``) drawn from (seed, epoch, index) alone, like the
    random crops of :class:`genre.data.clips.ClipDataset` but on the patch grid the embeddings were
    computed on. Without it, whole clips are returned (evaluation uses every patch).
    """

    def __init__(
        self,
        table: EmbeddingTable,
        rows: Sequence[int] | np.ndarray,
        targets: Sequence[int] | np.ndarray,
        *,
        window_steps: int | None = None,
        steps_per_patch: int = 1,
        seed: int = 0,
        crops_per_clip: int = 1,
    ) -> None:
        if len(rows) != len(targets):
            raise ValueError("rows and targets differ in length")
        if window_steps is not None and not (0 < window_steps <= table.steps and window_steps % steps_per_patch == 0):
            raise ValueError(
                f"window_steps={window_steps} must be a positive multiple of steps_per_patch="
                f"{steps_per_patch} and at most the clip's {table.steps} steps"
            )
        if crops_per_clip < 1 or (window_steps is None and crops_per_clip != 1):
            raise ValueError(f"crops_per_clip={crops_per_clip} needs window_steps and must be >= 1")
        self.table = table
        self.rows = np.asarray(rows, dtype=np.int64)
        self.targets = np.asarray(targets, dtype=np.int64)
        self.window_steps = window_steps
        self.steps_per_patch = steps_per_patch
        self.seed = seed
        self.crops_per_clip = crops_per_clip
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw new window positions for a new epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.rows) * self.crops_per_clip

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        clip = index // self.crops_per_clip
        row = int(self.rows[clip])
        if self.window_steps is None:
            values = self.table.read(row)
        else:
            patches = self.table.steps // self.steps_per_patch
            window = self.window_steps // self.steps_per_patch
            rng = np.random.default_rng([self.seed, self.epoch, index])
            start = int(rng.integers(0, patches - window + 1)) * self.steps_per_patch
            values = self.table.read(row, start, self.window_steps)
        return torch.from_numpy(np.ascontiguousarray(values.T)), int(self.targets[clip])

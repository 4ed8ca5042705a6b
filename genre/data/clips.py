"""PyTorch datasets over the audio cache: random training crops and whole evaluation clips."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from genre.data.cache import AudioCache


class ClipDataset(Dataset):
    """Clips of one split, returned as ``(int16 waveform, label id)``.

    With ``segment_samples`` set, every access returns a random crop of that length whose position
    depends only on (seed, epoch, index): the same in every worker layout and after a resume.
    ``crops_per_clip`` > 1 draws that many crops of every clip per epoch (index ``i`` is clip
    ``i // crops_per_clip``). Without ``segment_samples``, whole clips are returned (evaluation).
    Waveforms stay int16 until they reach the run's device, halving the bytes copied.
    """

    def __init__(
        self,
        cache: AudioCache,
        rows: Sequence[int] | np.ndarray,
        targets: Sequence[int] | np.ndarray,
        segment_samples: int | None = None,
        seed: int = 0,
        crops_per_clip: int = 1,
    ) -> None:
        if len(rows) != len(targets):
            raise ValueError("rows and targets differ in length")
        if segment_samples is not None and not 0 < segment_samples <= cache.clip_samples:
            raise ValueError(f"segment of {segment_samples} samples does not fit clips of {cache.clip_samples}")
        if crops_per_clip < 1 or (segment_samples is None and crops_per_clip != 1):
            raise ValueError(f"crops_per_clip={crops_per_clip} needs segment_samples and must be >= 1")
        self.cache = cache
        self.rows = np.asarray(rows, dtype=np.int64)
        self.targets = np.asarray(targets, dtype=np.int64)
        self.segment_samples = segment_samples
        self.seed = seed
        self.crops_per_clip = crops_per_clip
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw new crop positions for a new epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.rows) * self.crops_per_clip

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        clip = index // self.crops_per_clip
        row = int(self.rows[clip])
        if self.segment_samples is None:
            audio = self.cache.read(row)
        else:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            start = int(rng.integers(0, self.cache.clip_samples - self.segment_samples + 1))
            audio = self.cache.read(row, start, self.segment_samples)
        # read() returns a fresh writable array, so torch can share it without another copy.
        return torch.from_numpy(audio), int(self.targets[clip])

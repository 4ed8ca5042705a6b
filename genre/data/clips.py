"""PyTorch datasets over the audio cache: random training crops and whole evaluation clips."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from genre.data.cache import AudioCache


class CroppedClips(Dataset):
    """What every dataset of one split's clips shares: cache rows and label ids, ``crops_per_clip``
    accesses per clip and epoch (index ``i`` is clip ``i // crops_per_clip``), and a crop position
    drawn from (seed, epoch, index) alone: the same in every worker layout and after a resume.

    ``crop``: the crop length in the subclass's units (None: whole clips), named ``crop_name`` in errors.
    """

    def __init__(
        self,
        rows: Sequence[int] | np.ndarray,
        targets: Sequence[int] | np.ndarray,
        crop: int | None,
        crop_name: str,
        seed: int,
        crops_per_clip: int,
    ) -> None:
        if len(rows) != len(targets):
            raise ValueError("rows and targets differ in length")
        if crops_per_clip < 1 or (crop is None and crops_per_clip != 1):
            raise ValueError(f"crops_per_clip={crops_per_clip} needs {crop_name} and must be >= 1")
        self.rows = np.asarray(rows, dtype=np.int64)
        self.targets = np.asarray(targets, dtype=np.int64)
        self.seed = seed
        self.crops_per_clip = crops_per_clip
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw new crop positions for a new epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.rows) * self.crops_per_clip

    def _row_and_target(self, index: int) -> tuple[int, int]:
        clip = index // self.crops_per_clip
        return int(self.rows[clip]), int(self.targets[clip])

    def _start(self, index: int, positions: int) -> int:
        """The crop's position (0 .. positions-1) of access ``index`` in this epoch."""
        return int(np.random.default_rng([self.seed, self.epoch, index]).integers(0, positions))


class ClipDataset(CroppedClips):
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
        super().__init__(rows, targets, segment_samples, "segment_samples", seed, crops_per_clip)
        if segment_samples is not None and not 0 < segment_samples <= cache.clip_samples:
            raise ValueError(f"segment of {segment_samples} samples does not fit clips of {cache.clip_samples}")
        self.cache = cache
        self.segment_samples = segment_samples

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        row, target = self._row_and_target(index)
        if self.segment_samples is None:
            audio = self.cache.read(row)
        else:
            start = self._start(index, self.cache.clip_samples - self.segment_samples + 1)
            audio = self.cache.read(row, start, self.segment_samples)
        # read() returns a fresh writable array, so torch can share it without another copy.
        return torch.from_numpy(audio), target

"""Random gain: each training example is made louder or quieter by a random number of decibels."""

from __future__ import annotations

import torch
from torch import Tensor

from genre.augment.pipeline import Augmentation


class RandomGain(Augmentation):
    """Scale each waveform by a gain drawn uniformly in ``[min_db, max_db]`` dB, with probability ``p``.

    Recording level says nothing about genre; with per-band standardisation fitted at one level, this
    teaches the model to ignore the (constant) offset a level change puts on log features.
    """

    stage = "waveform"

    def __init__(self, min_db: float = -6.0, max_db: float = 6.0, p: float = 1.0) -> None:
        super().__init__()
        if min_db > max_db:
            raise ValueError(f"min_db: {min_db} is above max_db={max_db}. Use min_db <= max_db")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p: {p} is not a probability. Use a value in [0, 1]")
        self.min_db, self.max_db, self.p = float(min_db), float(max_db), float(p)

    def forward(self, audio: Tensor) -> Tensor:
        """Apply a random gain per example of ``(batch, samples)``."""
        batch = audio.shape[0]
        db = torch.empty(batch, 1, device=audio.device).uniform_(self.min_db, self.max_db)
        applied = torch.rand(batch, 1, device=audio.device) < self.p
        gain = torch.where(applied, torch.pow(10.0, db / 20.0), torch.ones_like(db))
        # int16-range audio stays within [-1, 1] up to +6 dB; clipping keeps louder gains realistic.
        return (audio * gain).clamp_(-1.0, 1.0)

    def extra_repr(self) -> str:
        return f"min_db={self.min_db}, max_db={self.max_db}, p={self.p}"

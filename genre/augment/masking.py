"""SpecAugment-style frequency and time masking (Park et al. 2019) with torchaudio's transforms."""

from __future__ import annotations

import math

import torchaudio.transforms as T
from torch import Tensor

from genre.augment.pipeline import Augmentation


class SpecAugment(Augmentation):
    """Zero ``freq_masks`` bands-ranges and ``time_masks`` frame-ranges per example (iid across the batch).

    Mask widths are given as fractions of the feature's bands and the crop's frames, so one config
    suits 12 chroma bands and 128 mel bands, 2-s crops and 10-s crops: each mask is up to
    ``ceil(fraction * size)`` wide (torchaudio draws the width uniformly below that). Features are
    standardised per band, so 0 is every band's mean: a masked region looks "average", not silent.
    """

    stage = "features"

    def __init__(
        self,
        freq_masks: int = 2,
        freq_mask_fraction: float = 0.15,
        time_masks: int = 2,
        time_mask_fraction: float = 0.1,
        p: float = 1.0,
    ) -> None:
        super().__init__()
        for key, value in (("freq_mask_fraction", freq_mask_fraction), ("time_mask_fraction", time_mask_fraction)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{key}: {value} is not a fraction in [0, 1]. Use e.g. 0.15")
        for key, count in (("freq_masks", freq_masks), ("time_masks", time_masks)):
            if count < 0:
                raise ValueError(f"{key}: {count} is a negative mask count. Use e.g. 2")
        self.freq_masks, self.time_masks = int(freq_masks), int(time_masks)
        self.freq_mask_fraction, self.time_mask_fraction = float(freq_mask_fraction), float(time_mask_fraction)
        self.p = float(p)

    def forward(self, features: Tensor) -> Tensor:
        """Mask a ``(batch, bands, frames)`` batch; each example gets its own masks."""
        bands, frames = features.shape[-2:]
        # Built per call (plain objects, no state): the widths depend on this batch's bands and frames.
        freq = T.FrequencyMasking(math.ceil(self.freq_mask_fraction * bands), iid_masks=True)
        time = T.TimeMasking(math.ceil(self.time_mask_fraction * frames), iid_masks=True, p=self.p)
        for _ in range(self.freq_masks):
            features = freq(features)
        for _ in range(self.time_masks):
            features = time(features)
        return features

    def extra_repr(self) -> str:
        return (
            f"freq_masks={self.freq_masks}, freq_mask_fraction={self.freq_mask_fraction}, "
            f"time_masks={self.time_masks}, time_mask_fraction={self.time_mask_fraction}, p={self.p}"
        )

"""Mixup (Zhang et al. 2018): train on convex combinations of example pairs and of their labels."""

from __future__ import annotations

import torch
from torch import Tensor

from genre.augment.pipeline import Augmentation


class Mixup(Augmentation):
    """With probability ``p`` per batch, mix every example with another of the batch (a random
    permutation) by ``lam ~ Beta(alpha, alpha)``: ``x = lam·x + (1-lam)·x[perm]``, and the same for
    the target probabilities. Mixing standardised log features rather than waveforms keeps the two
    sources' spectra apart instead of summing power.
    """

    stage = "batch"

    def __init__(self, alpha: float = 0.4, p: float = 1.0) -> None:
        super().__init__()
        if alpha <= 0:
            raise ValueError(f"alpha: {alpha} is not positive. Use e.g. 0.2-0.4")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p: {p} is not a probability. Use a value in [0, 1]")
        self.alpha, self.p = float(alpha), float(p)

    def forward(self, features: Tensor, probabilities: Tensor) -> tuple[Tensor, Tensor]:
        """Mix a batch of features ``(batch, ...)`` and target probabilities ``(batch, classes)``."""
        # Drawn on the CPU generator whatever the device: one seeded stream, restored on resume.
        if torch.rand(()).item() >= self.p:
            return features, probabilities
        alpha = torch.tensor(self.alpha)
        lam = torch.distributions.Beta(alpha, alpha).sample().item()
        perm = torch.randperm(features.shape[0]).to(features.device)
        return (lam * features + (1.0 - lam) * features[perm], lam * probabilities + (1.0 - lam) * probabilities[perm])

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, p={self.p}"

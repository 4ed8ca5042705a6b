"""Multinomial logistic regression on pooled feature statistics: the floor every report shows."""

from __future__ import annotations

import torch
from torch import nn

from genre.models.base import GenreModel

# Keeps sqrt differentiable when a band is constant over the crop (e.g. a single frame).
_VAR_EPS = 1e-5


class LinearBaseline(GenreModel):
    """Per-band mean and standard deviation over frames (2·bands values) -> one ``nn.Linear``.

    The "texture window" summary statistics of Tzanetakis & Cook 2002, "Musical genre
    classification of audio signals" (IEEE TASLP), fed to a multinomial logistic regression
    (softmax is applied by the cross-entropy loss). With ``standardize`` the statistics first
    pass a BatchNorm without affine parameters — a fixed z-scoring by running dataset
    statistics, nothing trainable — because raw dB-mel or MFCC-c0 values span hundreds and would
    leave the regression badly conditioned. Note it then needs training batches of >= 2 items.

    Args:
        n_bands: feature bands, 12..128.
        n_classes: number of genres.
        standardize: z-score the pooled statistics with running mean/variance.
    """

    def __init__(self, n_bands: int, n_classes: int, standardize: bool = True) -> None:
        super().__init__(n_bands, n_classes)
        self.standardize = nn.BatchNorm1d(2 * n_bands, affine=False) if standardize else nn.Identity()
        self.linear = nn.Linear(2 * n_bands, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(batch, bands, frames)`` features to ``(batch, n_classes)`` logits."""
        self._check_input(x)
        var, mean = torch.var_mean(x, dim=2, correction=0)
        stats = torch.cat([mean, torch.sqrt(var + _VAR_EPS)], dim=1)
        return self.linear(self.standardize(stats))

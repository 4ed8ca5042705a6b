"""1-D CNN: frequency bands as input channels, convolution along time only."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from genre.models.base import GenreModel, check_dropout, positive_int, positive_ints
from genre.models.blocks import capped_max_pool1d, global_mean_max, mlp_head


class _ConvBlock1d(nn.Module):
    """Conv1d -> BatchNorm -> ReLU -> capped MaxPool1d."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, pool: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, padding="same", bias=False)
        self.bn = nn.BatchNorm1d(out_channels)
        self.act = nn.ReLU(inplace=True)
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``(B, C_in, T)``."""
        return capped_max_pool1d(self.act(self.bn(self.conv(x))), self.pool)


class CNN1D(GenreModel):
    """Temporal 1-D CNN after Dieleman & Schrauwen 2014, "End-to-end learning for music audio"
    (ICASSP), whose spectrogram baseline convolves along time with all bands as channels.

    Each filter spans the whole spectrum, so the model learns timbre/pitch patterns over a few
    frames and is cheap even for 128 bands; global mean+max pooling over time then a MLP head.

    Args:
        n_bands: feature bands (= input channels), 12..128.
        n_classes: number of genres.
        channels: output channels of each conv block.
        kernel_size: temporal kernel length in frames.
        dropout: dropout before the last linear layer.
        hidden: width of the head's hidden layer.
        pool: time pool factor per block (capped at the remaining frames).
    """

    def __init__(
        self,
        n_bands: int,
        n_classes: int,
        channels: Sequence[int] = (128, 128, 256),
        kernel_size: int = 3,
        dropout: float = 0.3,
        hidden: int = 128,
        pool: int = 2,
    ) -> None:
        super().__init__(n_bands, n_classes)
        widths = positive_ints("channels", channels)
        kernel_size, hidden = positive_int("kernel_size", kernel_size), positive_int("hidden", hidden)
        pool = positive_int("pool", pool)
        self.input_bn = nn.BatchNorm1d(n_bands)
        ins = (n_bands, *widths[:-1])
        self.blocks = nn.Sequential(*(_ConvBlock1d(i, o, kernel_size, pool) for i, o in zip(ins, widths)))
        self.head = mlp_head(2 * widths[-1], hidden, n_classes, check_dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(batch, bands, frames)`` features to ``(batch, n_classes)`` logits."""
        self._check_input(x)
        return self.head(global_mean_max(self.blocks(self.input_bn(x))))

"""A plain VGG-style 2-D CNN over the (bands x frames) feature image."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from genre.models.base import GenreModel, check_dropout, positive_int, positive_ints
from genre.models.blocks import ConvBlock2d, global_mean_max, mlp_head


class CNN(GenreModel):
    """Stacked 3x3 conv blocks with 2x2 max-pooling, global mean+max pooling, MLP head.

    The VGG recipe (Simonyan & Zisserman 2015, "Very deep convolutional networks for
    large-scale image recognition") applied to spectrogram-like features, as in Choi et al.
    2016's FCN minus the fully-convolutional output. The input is first normalised per band
    with BatchNorm (as Choi et al.'s implementations do), so chroma, MFCC and dB-scaled mel
    features all arrive at the first conv on a comparable scale.

    Args:
        n_bands: feature bands (rows), 12..128.
        n_classes: number of genres.
        channels: output channels of each conv block; each block halves bands and frames
            (capped at 1, so any input size works).
        dropout: dropout before the last linear layer.
        hidden: width of the head's hidden layer.
        freq_as_channel: treat the bands as input channels of a one-row image and convolve over time
            only (1 x 3 kernels): the 1-D variant of the same network.
    """

    def __init__(
        self,
        n_bands: int,
        n_classes: int,
        channels: Sequence[int] = (16, 32, 64, 128),
        dropout: float = 0.3,
        hidden: int = 128,
        freq_as_channel: bool = False,
    ) -> None:
        super().__init__(n_bands, n_classes, freq_as_channel)
        widths = positive_ints("channels", channels)
        hidden = positive_int("hidden", hidden)
        self.input_bn = nn.BatchNorm1d(n_bands)
        ins = (self.in_channels, *widths[:-1])
        self.blocks = nn.Sequential(
            *(ConvBlock2d(i, o, pool=(2, 2), kernel=self.kernel()) for i, o in zip(ins, widths))
        )
        self.head = mlp_head(2 * widths[-1], hidden, n_classes, check_dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(batch, bands, frames)`` features to ``(batch, n_classes)`` logits."""
        self._check_input(x)
        x = self.as_image(self.input_bn(x))  # (B, 1, bands, frames), or (B, bands, 1, frames)
        return self.head(global_mean_max(self.blocks(x)))

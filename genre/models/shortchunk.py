"""Short-chunk CNN with residual blocks (Won et al. 2020)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from genre.models.base import GenreModel, check_dropout, positive_ints
from genre.models.blocks import ResBlock2d


class ShortChunkCNN(GenreModel):
    """Short-chunk CNN + Res, after Won et al. 2020, "Evaluation of CNN-based automatic music
    tagging models" (SMC).

    One Res-2D block per entry of ``channels`` (3x3 conv -> BN -> ReLU -> 3x3 conv -> BN, plus a
    3x3-conv shortcut, ReLU). As in the reference code every block downsamples 2x2 — by a stride-2
    first conv, which maps n to ceil(n/2) and so never reduces a dimension below 1 (12 chroma
    bands reach 1 after four blocks and stay there). Then a global max pool over bands and time,
    dense -> BN -> ReLU -> dropout -> dense. The reference's widths are 128·(1, 1, 2, 2, 2, 2, 4);
    the CPU-sized default is 32·(1, 1, 2, 2, 2, 2, 4), seven layers.

    Args:
        n_bands: feature bands, 12..128.
        n_classes: number of genres.
        channels: output channels of each residual block (its length is the depth).
        dropout: dropout in the head (0.5 in the paper).
        freq_as_channel: treat the bands as input channels of a one-row image and convolve over time
            only (1 x 3 kernels): the 1-D variant of the same network.
    """

    def __init__(
        self,
        n_bands: int,
        n_classes: int,
        channels: Sequence[int] = (32, 32, 64, 64, 64, 64, 128),
        dropout: float = 0.5,
        freq_as_channel: bool = False,
    ) -> None:
        super().__init__(n_bands, n_classes, freq_as_channel)
        widths = positive_ints("channels", channels)
        self.input_bn = nn.BatchNorm1d(n_bands)
        ins = (self.in_channels, *widths[:-1])
        self.blocks = nn.Sequential(
            *(ResBlock2d(i, o, stride=2, shortcut_kernel=3, kernel=self.kernel()) for i, o in zip(ins, widths))
        )
        width = widths[-1]
        self.head = nn.Sequential(
            nn.Linear(width, width),
            nn.BatchNorm1d(width),
            nn.ReLU(inplace=True),
            nn.Dropout(check_dropout(dropout)),
            nn.Linear(width, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(batch, bands, frames)`` features to ``(batch, n_classes)`` logits."""
        self._check_input(x)
        x = self.blocks(self.as_image(self.input_bn(x)))
        return self.head(x.amax(dim=(-2, -1)))

"""Fully convolutional network (FCN) of Choi et al. 2016 with input-adaptive pooling."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from genre.models.base import GenreModel, check_dropout, positive_ints
from genre.models.blocks import ConvBlock2d, capped_max_pool2d


def pool_factor(size: int, remaining: int) -> int:
    """Smallest k with k ** remaining >= size: equal pooling that reaches 1 after ``remaining`` pools."""
    k = max(1, round(size ** (1.0 / remaining)))
    # Integer corrections: the float root is off by one for exact powers (8 ** (1/3) > 2).
    while k**remaining < size:
        k += 1
    while k > 1 and (k - 1) ** remaining >= size:
        k -= 1
    return k


class FCN(GenreModel):
    """FCN after Choi et al. 2016, "Automatic tagging using deep convolutional neural networks"
    (ISMIR).

    Only 3x3 conv -> BN -> ReLU -> max-pool layers, the last of which leaves a 1x1 map, then a
    1x1 conv to the classes — no dense layers. The paper fixes its pool sizes for 96 x 1366 inputs
    (FCN-4: (2,4), (4,5), (3,8), (4,8)); here each layer's pool is chosen per input as the equal
    factor that brings bands and frames to 1 by the last layer, which is the same design for any
    shape (and exactly reproduces the paper's "pool to 1x1"). A global max then guards the 1x1
    invariant. Widths default to a CPU-sized (32, 64, 128, 256) instead of the paper's
    (128, 384, 768, 2048).

    Args:
        n_bands: feature bands, 12..128.
        n_classes: number of genres.
        channels: output channels of each conv layer.
        dropout: dropout before the 1x1 output conv.
        freq_as_channel: treat the bands as input channels of a one-row image and convolve over time
            only (1 x 3 kernels): the 1-D variant of the same network.
    """

    def __init__(
        self,
        n_bands: int,
        n_classes: int,
        channels: Sequence[int] = (32, 64, 128, 256),
        dropout: float = 0.3,
        freq_as_channel: bool = False,
    ) -> None:
        super().__init__(n_bands, n_classes, freq_as_channel)
        widths = positive_ints("channels", channels)
        self.input_bn = nn.BatchNorm1d(n_bands)
        ins = (self.in_channels, *widths[:-1])
        self.blocks = nn.ModuleList(ConvBlock2d(i, o, pool=None, kernel=self.kernel()) for i, o in zip(ins, widths))
        self.dropout = nn.Dropout(check_dropout(dropout))
        self.output = nn.Conv2d(widths[-1], n_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(batch, bands, frames)`` features to ``(batch, n_classes)`` logits."""
        self._check_input(x)
        x = self.as_image(self.input_bn(x))
        for i, block in enumerate(self.blocks):
            remaining = len(self.blocks) - i
            x = block(x)
            x = capped_max_pool2d(x, (pool_factor(x.shape[-2], remaining), pool_factor(x.shape[-1], remaining)))
        x = x.amax(dim=(-2, -1), keepdim=True)  # (B, C, 1, 1)
        return self.output(self.dropout(x)).flatten(1)

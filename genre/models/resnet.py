"""A small 2-D residual network over the (bands x frames) feature image."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from genre.models.base import GenreModel, check_dropout, positive_ints
from genre.models.blocks import ResBlock2d, capped_max_pool2d, global_mean_max


class ResNet(GenreModel):
    """ResNet with basic blocks, after He et al. 2016, "Deep residual learning for image
    recognition" (CVPR).

    Stem (3x3 conv -> BN -> ReLU -> 2x2 max-pool) then one stage per entry of ``widths``; each
    stage after the first starts with a stride-2 block (projection shortcut), halving bands and
    frames (ceil, so never below 1). Global mean+max pooling and dropout -> linear, as the
    paper's global-average-pool -> FC head (max added to keep short events).

    Args:
        n_bands: feature bands, 12..128.
        n_classes: number of genres.
        widths: channels of each stage; the stem has ``widths[0]``.
        blocks_per_stage: residual blocks in each stage, same length as ``widths``.
        dropout: dropout before the output layer.
        freq_as_channel: treat the bands as input channels of a one-row image and convolve over time
            only (1 x 3 kernels): the 1-D variant of the same network.
    """

    def __init__(
        self,
        n_bands: int,
        n_classes: int,
        widths: Sequence[int] = (32, 64, 128),
        blocks_per_stage: Sequence[int] = (2, 2, 2),
        dropout: float = 0.3,
        freq_as_channel: bool = False,
    ) -> None:
        super().__init__(n_bands, n_classes, freq_as_channel)
        widths = positive_ints("widths", widths)
        depths = positive_ints("blocks_per_stage", blocks_per_stage)
        if len(widths) != len(depths):
            raise ValueError(
                f"blocks_per_stage: {len(depths)} entries but widths has {len(widths)}. "
                "Give one block count per stage width"
            )
        self.input_bn = nn.BatchNorm1d(n_bands)
        kernel = self.kernel()
        self.stem = nn.Sequential(
            nn.Conv2d(self.in_channels, widths[0], kernel, padding=(kernel[0] // 2, kernel[1] // 2), bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        blocks: list[nn.Module] = []
        in_ch = widths[0]
        for stage, (width, depth) in enumerate(zip(widths, depths)):
            for i in range(depth):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(ResBlock2d(in_ch, width, stride=stride, shortcut_kernel=1, kernel=kernel))
                in_ch = width
        self.stages = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Dropout(check_dropout(dropout)), nn.Linear(2 * widths[-1], n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(batch, bands, frames)`` features to ``(batch, n_classes)`` logits."""
        self._check_input(x)
        # Pool right after the stem: full-resolution residual stages would cost 4x the compute.
        x = capped_max_pool2d(self.stem(self.as_image(self.input_bn(x))), (2, 2))
        return self.head(global_mean_max(self.stages(x)))

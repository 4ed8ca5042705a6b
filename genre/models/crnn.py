"""Convolutional recurrent network: local conv features, a bidirectional GRU over time."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from genre.models.base import GenreModel, check_dropout, positive_int, positive_ints
from genre.models.blocks import ConvBlock2d


class CRNN(GenreModel):
    """CRNN after Choi et al. 2017, "Convolutional recurrent neural networks for music
    classification" (ICASSP).

    Conv blocks (3x3 conv -> BN -> ELU -> max-pool -> dropout, as in the paper) pool frequency
    harder than time, so after the stack few bands remain but a usable time sequence does; the
    remaining bands are collapsed with a max (what the paper's pooling to one band amounts to).
    A bidirectional GRU then models the sequence.

    Temporal pooling is the *mean over time of the GRU outputs*, not the last state: with a
    bidirectional GRU the "last" output of the backward direction has seen a single step, and
    the mean uses every step of both directions equally, so it does not depend on where the
    crop happens to end and behaves the same for 1-s crops and 30-s clips.

    Args:
        n_bands: feature bands, 12..128.
        n_classes: number of genres.
        channels: output channels of each conv block.
        rnn_hidden: GRU hidden size per direction.
        rnn_layers: stacked GRU layers.
        dropout: dropout before the output layer.
        conv_dropout: dropout after each conv block (0.1 in the paper).
        freq_pool: frequency pool factor per conv block (capped at the remaining bands).
        time_pool: time pool factor per conv block (capped at the remaining frames).
        freq_as_channel: treat the bands as input channels of a one-row image and convolve over time
            only (1 x 3 kernels): the 1-D variant of the same network.
    """

    def __init__(
        self,
        n_bands: int,
        n_classes: int,
        channels: Sequence[int] = (16, 32, 64, 64),
        rnn_hidden: int = 64,
        rnn_layers: int = 2,
        dropout: float = 0.3,
        conv_dropout: float = 0.1,
        freq_pool: int = 4,
        time_pool: int = 2,
        freq_as_channel: bool = False,
    ) -> None:
        super().__init__(n_bands, n_classes, freq_as_channel)
        widths = positive_ints("channels", channels)
        rnn_hidden, rnn_layers = positive_int("rnn_hidden", rnn_hidden), positive_int("rnn_layers", rnn_layers)
        freq_pool, time_pool = positive_int("freq_pool", freq_pool), positive_int("time_pool", time_pool)
        conv_dropout = check_dropout(conv_dropout, "conv_dropout")
        self.input_bn = nn.BatchNorm1d(n_bands)
        ins = (self.in_channels, *widths[:-1])
        self.blocks = nn.Sequential(
            *(
                ConvBlock2d(i, o, pool=(freq_pool, time_pool), act="elu", dropout=conv_dropout, kernel=self.kernel())
                for i, o in zip(ins, widths)
            )
        )
        self.rnn = nn.GRU(widths[-1], rnn_hidden, num_layers=rnn_layers, batch_first=True, bidirectional=True)
        self.head = nn.Sequential(nn.Dropout(check_dropout(dropout)), nn.Linear(2 * rnn_hidden, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(batch, bands, frames)`` features to ``(batch, n_classes)`` logits."""
        self._check_input(x)
        x = self.blocks(self.as_image(self.input_bn(x)))  # (B, C, bands', frames')
        seq = x.amax(dim=2).transpose(1, 2)  # (B, frames', C)
        out, _ = self.rnn(seq)  # (B, frames', 2 * rnn_hidden)
        return self.head(out.mean(dim=1))

"""A probe: features pooled over time, then a small multilayer perceptron (the benchmark toolkits' head)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from genre.models.base import GenreModel, check_dropout, positive_ints

POOLS = ("mean", "max", "mean_max")
NORMS = ("batch", "layer", "none")


def _norm(kind: str, width: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm1d(width)
    if kind == "layer":
        return nn.LayerNorm(width)
    return nn.Identity()


class MLP(GenreModel):
    """Pool ``(batch, bands, frames)`` over frames, then ``hidden`` layers of Linear -> norm -> ReLU -> dropout.

    The probe of MARBLE / HEAR / jukemir on pretrained embeddings, usable on any feature. ``hidden=[]``
    is a linear probe on the pooled features.

    Args:
        n_bands: feature dimensions.
        n_classes: number of genres.
        hidden: widths of the hidden layers (an int: one layer), e.g. ``[512]``.
        dropout: dropout after each hidden layer (and on the pooled input).
        norm: ``batch``, ``layer`` or ``none`` normalisation in each hidden layer.
        pool: ``mean``, ``max`` or ``mean_max`` (both, concatenated) over frames.
    """

    def __init__(
        self,
        n_bands: int,
        n_classes: int,
        hidden: Sequence[int] | int = (512,),
        dropout: float = 0.5,
        norm: str = "batch",
        pool: str = "mean",
    ) -> None:
        super().__init__(n_bands, n_classes)
        if pool not in POOLS:
            raise ValueError(f"pool: '{pool}' is not one of {', '.join(POOLS)}. Set model.pool=mean")
        if norm not in NORMS:
            raise ValueError(f"norm: '{norm}' is not one of {', '.join(NORMS)}. Set model.norm=batch")
        widths = positive_ints("hidden", [hidden] if isinstance(hidden, int) else hidden) if hidden != [] else ()
        self.pool = pool
        dropout = check_dropout(dropout)
        width = 2 * n_bands if pool == "mean_max" else n_bands
        layers: list[nn.Module] = [nn.Dropout(dropout)] if dropout else []
        for out in widths:
            layers += [nn.Linear(width, out), _norm(norm, out), nn.ReLU(), nn.Dropout(dropout)]
            width = out
        layers.append(nn.Linear(width, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(batch, bands, frames)`` features to ``(batch, n_classes)`` logits."""
        self._check_input(x)
        if self.pool == "mean":
            pooled = x.mean(dim=2)
        elif self.pool == "max":
            pooled = x.amax(dim=2)
        else:
            pooled = torch.cat([x.mean(dim=2), x.amax(dim=2)], dim=1)
        return self.net(pooled)

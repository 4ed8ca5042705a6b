"""The contract every genre classifier follows, and checks shared by their constructors."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def count_trainable(module: nn.Module) -> int:
    """Number of trainable (``requires_grad``) parameter values of ``module``: the one count runs report."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


class GenreModel(nn.Module):
    """Base class: maps features ``(batch, bands, frames)`` to logits ``(batch, n_classes)``.

    Subclasses are built as ``Model(n_bands, n_classes, **hyperparameters)`` and call
    :meth:`_check_input` first thing in ``forward`` so a feature/model mismatch fails with a
    readable message instead of a shape error deep inside a layer.
    """

    def __init__(self, n_bands: int, n_classes: int, freq_as_channel: bool = False) -> None:
        super().__init__()
        if n_bands < 1:
            raise ValueError(f"n_bands: {n_bands} is below 1. Check the feature config")
        if n_classes < 1:
            raise ValueError(f"n_classes: {n_classes} is below 1. Check the dataset labels")
        self.n_bands = n_bands
        self.n_classes = n_classes
        self.freq_as_channel = bool(freq_as_channel)

    @property
    def in_channels(self) -> int:
        """Input channels of a 2-D model's first conv: 1, or every band with ``freq_as_channel``."""
        return self.n_bands if self.freq_as_channel else 1

    def kernel(self, size: int = 3) -> tuple[int, int]:
        """A 2-D model's conv kernel: ``size x size``, or ``1 x size`` (time only) with ``freq_as_channel``."""
        return (1, size) if self.freq_as_channel else (size, size)

    def as_image(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, bands, frames)`` as a 2-D model's input image.

        Normally ``(B, 1, bands, frames)``: one channel, convolved over frequency and time. With
        ``freq_as_channel`` it is ``(B, bands, 1, frames)``: every band is an input channel of a
        one-row image, so the same network becomes a 1-D (temporal) CNN whose first filters span the
        whole spectrum, as in Dieleman & Schrauwen 2014 and the 1-D models of Choi et al. 2017.
        """
        return x.unsqueeze(2) if self.freq_as_channel else x.unsqueeze(1)

    @property
    def n_parameters(self) -> int:
        """Number of trainable (``requires_grad``) parameter values."""
        return count_trainable(self)

    def _check_input(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is ``(batch, n_bands, frames)`` with frames >= 1."""
        if x.dim() != 3 or x.shape[1] != self.n_bands or x.shape[2] < 1:
            raise ValueError(
                f"{type(self).__name__} expects (batch, {self.n_bands}, frames) features, got shape {tuple(x.shape)}"
            )


def _is_positive_int(value: object) -> bool:
    try:
        return int(value) == value and int(value) >= 1  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return False


def positive_ints(name: str, values: Sequence[int]) -> tuple[int, ...]:
    """Validate a sequence hyperparameter (list, tuple or OmegaConf ListConfig) as positive ints."""
    # Hydra hands lists over as ListConfig; a plain tuple keeps the module picklable and printable.
    items = list(values)
    if not items or not all(_is_positive_int(v) for v in items):
        raise ValueError(f"{name}: {items} is not a non-empty list of positive ints. Use e.g. [32, 64]")
    return tuple(int(v) for v in items)


def positive_int(name: str, value: int) -> int:
    """Validate a scalar hyperparameter as a positive int."""
    if not _is_positive_int(value):
        raise ValueError(f"{name}: {value!r} is not a positive int. Use e.g. 2")
    return int(value)


def check_dropout(dropout: float, name: str = "dropout") -> float:
    """Validate a dropout probability in ``[0, 1)``."""
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"{name}: {dropout} is outside [0, 1). Use e.g. 0.3")
    return float(dropout)

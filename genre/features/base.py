"""The contract every feature module follows, and validation of the arguments they share.

A feature maps a waveform batch ``(batch, samples)`` to ``(batch, n_bands, frames)`` and is
always computed in float32: STFT, mel/pitch matmuls and logarithms are inaccurate in half
precision, so autocast is switched off for the feature computation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn

# A typical value of each positive parameter, for the fix an error message suggests.
_EXAMPLES = {
    "sample_rate": "22050",
    "n_fft": "2048",
    "hop_length": "512",
    "n_mels": "128",
    "n_mfcc": "20",
    "eps": "1e-5",
}


def check_positive(name: str, value: float) -> None:
    """Raise ValueError naming ``name`` unless ``value`` is strictly positive."""
    if not value > 0:
        raise ValueError(f"{name}: {value!r} is not positive. Use e.g. {_EXAMPLES.get(name, '1')}")


def check_frequency_range(sample_rate: int, f_min: float, f_max: float | None) -> float:
    """Validate ``sample_rate`` and the ``[f_min, f_max]`` range.

    Returns:
        The effective upper frequency: ``f_max``, or the Nyquist frequency when it is None.

    Raises:
        ValueError: naming the offending parameter.
    """
    check_positive("sample_rate", sample_rate)
    nyquist = sample_rate / 2
    if f_min < 0:
        raise ValueError(f"f_min: {f_min!r} is negative. Use e.g. 0.0")
    if f_max is None:
        f_max = nyquist
    if f_max > nyquist:
        raise ValueError(
            f"f_max: {f_max!r} is above the Nyquist frequency {nyquist} (sample_rate / 2). "
            f"Use at most {nyquist}, or null for the Nyquist frequency"
        )
    if f_min >= f_max:
        raise ValueError(f"f_min: {f_min!r} is not below f_max={f_max!r}. Lower f_min or raise f_max")
    return float(f_max)


def check_stft_args(sample_rate: int, n_fft: int, hop_length: int, f_min: float, f_max: float | None) -> float:
    """Validate the STFT and frequency-range arguments shared by all features.

    Returns:
        The effective upper frequency (see :func:`check_frequency_range`).

    Raises:
        ValueError: naming the offending parameter.
    """
    check_positive("n_fft", n_fft)
    check_positive("hop_length", hop_length)
    return check_frequency_range(sample_rate, f_min, f_max)


def check_top_db(top_db: float | None) -> None:
    """Raise ValueError unless ``top_db`` is None or non-negative."""
    if top_db is not None and top_db < 0:
        raise ValueError(f"top_db: {top_db!r} is negative. Use e.g. 80.0, or null for no floor")


@runtime_checkable
class PrecomputedTransform(Protocol):
    """A feature transform that declares ``precomputed = True``: a fixed function of the audio (a frozen
    pretrained network), so a run computes it once per clip before training and then trains and
    evaluates on its activations, never on the audio.

    :meth:`embed` maps float waveforms ``(batch, samples)`` to ``(batch, n_bands, steps)``; the steps
    come in patches of ``steps_per_patch`` (training windows and evaluation segments are whole patches).
    """

    precomputed: bool
    n_bands: int
    steps_per_patch: int
    # The audio one patch needs, in seconds (for messages).
    patch_seconds: float
    # Whether runs share the activations through the embedding cache (else each computes them in memory).
    cache: bool

    def embed(self, waveform: Tensor) -> Tensor:
        """Float waveforms ``(batch, samples)`` -> activations ``(batch, n_bands, steps)``."""
        ...

    def identity(self) -> dict[str, object]:
        """Everything the activations depend on besides the audio (the embedding cache's key hashes it)."""
        ...

    def steps_in(self, samples: int) -> int:
        """Steps :meth:`embed` returns for a waveform of ``samples`` samples (0: not one whole patch)."""
        ...


@runtime_checkable
class FusedTransform(PrecomputedTransform, Protocol):
    """A precomputed transform made of parts, each precomputed (and cached) on its own, read side by side."""

    @property
    def components(self) -> list[PrecomputedTransform]:
        """The parts, in order."""
        ...

    def step_maps(self, part_steps: Sequence[int]) -> list[np.ndarray | None]:
        """For parts of ``part_steps`` steps: ``None`` for a part read step for step, else its step for
        every fused step."""
        ...


class WaveformFeature(nn.Module):
    """Base class: ``(batch, samples)`` waveform -> ``(batch, n_bands, frames)`` float32.

    Subclasses set ``n_bands`` and implement :meth:`compute`; :meth:`forward` checks the
    input shape and runs :meth:`compute` in float32 with autocast disabled.
    """

    n_bands: int
    # Computed inside every training step (cheap, and what augmentation acts on): never precomputed.
    precomputed = False

    def forward(self, waveform: Tensor) -> Tensor:
        """Compute the feature of a ``(batch, samples)`` waveform batch."""
        if waveform.dim() != 2:
            raise ValueError(f"waveform must have shape (batch, samples), got {tuple(waveform.shape)}")
        with torch.autocast(device_type=waveform.device.type, enabled=False):
            return self.compute(waveform.to(torch.float32))

    def compute(self, waveform: Tensor) -> Tensor:
        """Compute the feature of a float32 ``(batch, samples)`` waveform."""
        raise NotImplementedError

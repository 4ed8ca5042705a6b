"""Waveform augmentations that change what a clip sounds like but not its genre: pitch, speed, timbre
(random filters), noise, polarity. Each example draws its own, on the run's device, in training only.

Pitch shift, coloured noise, filters and polarity are torch-audiomentations' (per-example mode); speed
is julius's fractional resampler. These run before the feature, so they need a feature computed in
every step (a spectrogram, or a fine-tuned network's front end); a frozen network's cached activations
cannot be augmented, and a run says so before training.
"""

from __future__ import annotations

import random

import julius
import torch
import torch_audiomentations as library
from torch import Tensor, nn

from genre.augment.pipeline import Augmentation


def _check_range(low_name: str, low: float, high_name: str, high: float) -> None:
    if low > high:
        raise ValueError(f"{low_name}: {low} is above {high_name}={high}. Use {low_name} <= {high_name}")


def _check_p(p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p: {p} is not a probability. Use a value in [0, 1]")


class _PerExample(Augmentation):
    """A torch-audiomentations transform on ``(batch, samples)`` waveforms (it takes ``(batch, 1, samples)``)."""

    stage = "waveform"
    transform: nn.Module

    def forward(self, audio: Tensor) -> Tensor:
        """Augment each example of ``(batch, samples)`` on its own."""
        return self.transform(audio.unsqueeze(1)).samples.squeeze(1)


class PitchShift(_PerExample):
    """Transpose each example by a random number of semitones in ``[min_semitones, max_semitones]`` (tempo
    kept), with probability ``p``. Genre survives a transposition; the instrument's register does not."""

    def __init__(self, sample_rate: int, min_semitones: float = -2.0, max_semitones: float = 2.0, p: float = 0.5):
        super().__init__()
        _check_range("min_semitones", min_semitones, "max_semitones", max_semitones)
        _check_p(p)
        self.transform = library.PitchShift(
            min_transpose_semitones=min_semitones,
            max_transpose_semitones=max_semitones,
            p=p,
            sample_rate=sample_rate,
            output_type="dict",
        )


class ColoredNoise(_PerExample):
    """Add noise of spectral slope ``f ** decay`` (decay in ``[min_decay, max_decay]``: -2 brown ... 0 white
    ... 2 violet) at a signal-to-noise ratio in ``[min_snr_db, max_snr_db]`` dB, with probability ``p``."""

    def __init__(
        self,
        sample_rate: int,
        min_snr_db: float = 10.0,
        max_snr_db: float = 40.0,
        min_decay: float = -2.0,
        max_decay: float = 2.0,
        p: float = 0.5,
    ) -> None:
        super().__init__()
        _check_range("min_snr_db", min_snr_db, "max_snr_db", max_snr_db)
        _check_range("min_decay", min_decay, "max_decay", max_decay)
        _check_p(p)
        self.transform = library.AddColoredNoise(
            min_snr_in_db=min_snr_db,
            max_snr_in_db=max_snr_db,
            min_f_decay=min_decay,
            max_f_decay=max_decay,
            p=p,
            sample_rate=sample_rate,
            output_type="dict",
        )


class RandomFilter(Augmentation):
    """One random filter per example, with probability ``p``: a band-pass, band-stop, low-pass or
    high-pass of random frequency (torch-audiomentations' defaults), a crude random equaliser."""

    stage = "waveform"

    def __init__(self, sample_rate: int, p: float = 0.5) -> None:
        super().__init__()
        _check_p(p)
        kinds = (library.BandPassFilter, library.BandStopFilter, library.LowPassFilter, library.HighPassFilter)
        self.filters = nn.ModuleList([kind(p=1.0, sample_rate=sample_rate, output_type="dict") for kind in kinds])
        self.p = float(p)

    def forward(self, audio: Tensor) -> Tensor:
        """Filter each example of ``(batch, samples)`` with its own kind of filter (torch-audiomentations'
        ``OneOf`` draws one kind per batch)."""
        out = audio.clone()
        for index in range(audio.shape[0]):
            if random.random() < self.p:
                chosen = self.filters[random.randrange(len(self.filters))]
                out[index] = chosen(audio[index].view(1, 1, -1)).samples.view(-1)
        return out

    def extra_repr(self) -> str:
        return f"p={self.p}"


class PolarityInversion(_PerExample):
    """Flip the sign of each example with probability ``p`` (inaudible; it changes the waveform a network sees)."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        _check_p(p)
        self.transform = library.PolarityInversion(p=p, output_type="dict")


class RandomSpeed(Augmentation):
    """Play each example faster or slower by a factor in ``[min_rate, max_rate]`` (tempo and pitch together,
    as a turntable does), with probability ``p``; cropped or zero-padded back to its length.

    Factors come on a grid of ``1/denominator`` steps (julius resamples by the ratio of two integers).
    """

    stage = "waveform"

    def __init__(self, min_rate: float = 0.9, max_rate: float = 1.1, p: float = 0.5, denominator: int = 100) -> None:
        super().__init__()
        _check_range("min_rate", min_rate, "max_rate", max_rate)
        _check_p(p)
        if min_rate <= 0:
            raise ValueError(f"min_rate: {min_rate} is not above 0. Use e.g. 0.9")
        if denominator < 1:
            raise ValueError(f"denominator: {denominator} is not at least 1. Use e.g. 100")
        self.min_rate, self.max_rate, self.p, self.denominator = float(min_rate), float(max_rate), float(p), denominator

    def forward(self, audio: Tensor) -> Tensor:
        """Change the speed of each example of ``(batch, samples)`` on its own."""
        out = audio.clone()
        length = audio.shape[-1]
        for index in range(audio.shape[0]):
            if random.random() >= self.p:
                continue
            rate = random.uniform(self.min_rate, self.max_rate)
            # Faster playback: fewer output samples per input sample (new rate / old rate = 1 / rate).
            new = max(1, round(self.denominator / rate))
            if new == self.denominator:
                continue
            changed = julius.resample_frac(audio[index], self.denominator, new)[:length]
            out[index] = torch.nn.functional.pad(changed, (0, length - changed.shape[-1]))
        return out

    def extra_repr(self) -> str:
        return f"min_rate={self.min_rate}, max_rate={self.max_rate}, p={self.p}"

"""Pitch features: STFT power pooled into the 128 MIDI notes, and folded into 12 pitch classes.

MIDI note ``p`` (0-127) has centre frequency ``F(p) = 440 * 2 ** ((p - 69) / 12)`` and owns
the STFT bins whose frequency lies in ``[F(p - 1/2), F(p + 1/2))``.

Resolution limit: a note's band must hold at least ``min_bins`` bins (default 2) or the note
is left empty. A Hann-windowed tone leaks about a third of its energy into the two
neighbouring bins, which belong to other notes when the band is a single bin: measured, only
57-66 % of a tone's energy then stays in its note, while every band of >= 2 bins keeps
>= 90 %. Bins of notes that are too narrow are owned by nobody. Low notes have the narrowest
bands, so raise ``n_fft`` to resolve lower notes: ``n_fft=8192`` at 22050 Hz resolves every
note from E2 (MIDI 40) upward, plus a few lower ones whose bands happen to catch 2 bins
(MIDI 33, 36, 38); the rest below E2 are empty.
"""

from __future__ import annotations

import torch
from torch import Tensor

from genre.features.base import (
    WaveformFeature,
    check_frequency_range,
    check_positive,
    check_stft_args,
)

N_MIDI = 128
N_CHROMA = 12


def midi_to_hz(pitch: Tensor) -> Tensor:
    """Frequency in Hz of (possibly fractional) MIDI pitch numbers, A4 = 69 = 440 Hz."""
    return 440.0 * 2.0 ** ((pitch - 69.0) / 12.0)


def midi_filterbank(
    sample_rate: int,
    n_fft: int,
    f_min: float = 0.0,
    f_max: float | None = None,
    min_bins: int = 2,
) -> Tensor:
    """0/1 matrix ``(128, n_fft // 2 + 1)`` assigning one-sided STFT bins to MIDI notes.

    Row ``p`` marks the bins with frequency in ``[F(p - 1/2), F(p + 1/2))`` and in
    ``[f_min, f_max]``; rows with fewer than ``min_bins`` marked bins are zeroed (see the
    module docstring). Each bin belongs to at most one note.
    """
    check_positive("n_fft", n_fft)
    f_max = check_frequency_range(sample_rate, f_min, f_max)
    if min_bins < 1:
        raise ValueError(f"min_bins: {min_bins!r} is below 1. Use e.g. 1")
    # float64 so that band edges are compared exactly as the formula states.
    freqs = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * (sample_rate / n_fft)
    edges = midi_to_hz(torch.arange(N_MIDI + 1, dtype=torch.float64) - 0.5)
    in_band = (freqs >= edges[:-1, None]) & (freqs < edges[1:, None])
    in_range = (freqs >= f_min) & (freqs <= f_max)
    owned = in_band & in_range
    owned &= owned.sum(dim=1, keepdim=True) >= min_bins
    return owned.to(torch.float32)


def chroma_fold() -> Tensor:
    """0/1 matrix ``(12, 128)`` summing MIDI notes into pitch classes (C = 0, ``p % 12``)."""
    pitch_class = torch.arange(N_MIDI) % N_CHROMA
    return (pitch_class[None, :] == torch.arange(N_CHROMA)[:, None]).to(torch.float32)


class _PitchSTFT(WaveformFeature):
    window: Tensor  # buffers, declared for type checkers
    filters: Tensor

    """Power STFT followed by a fixed ``(n_bands, n_freqs)`` pooling matrix ``filters``."""

    def __init__(self, sample_rate: int, n_fft: int, hop_length: int, filters: Tensor) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.n_bands = filters.shape[0]
        self.register_buffer("window", torch.hann_window(n_fft))
        self.register_buffer("filters", filters)

    def compute(self, waveform: Tensor) -> Tensor:
        """Pooled power spectrogram ``(batch, n_bands, frames)`` of a float32 waveform."""
        spec = torch.stft(
            waveform,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            window=self.window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )
        power = spec.real.square() + spec.imag.square()
        return self.filters @ power


class MidiSpectrogram(_PitchSTFT):
    """STFT power summed per MIDI note: output ``(batch, 128, frames)``.

    Notes whose band holds fewer than ``min_bins`` STFT bins stay all-zero: a single bin
    cannot separate a note from its neighbours (a Hann-windowed tone leaks ~1/3 of its energy
    into neighbouring bins; with 1-bin bands only 57-66 % of a tone's energy stays in its
    note, with >= 2-bin bands >= 90 %). Raise ``n_fft`` to resolve lower notes; the default
    ``n_fft=8192`` at 22050 Hz resolves from about E2 upward.
    """

    def __init__(
        self,
        sample_rate: int = 22050,
        n_fft: int = 8192,
        hop_length: int = 512,
        f_min: float = 0.0,
        f_max: float | None = None,
        min_bins: int = 2,
    ) -> None:
        check_stft_args(sample_rate, n_fft, hop_length, f_min, f_max)
        super().__init__(
            sample_rate,
            n_fft,
            hop_length,
            midi_filterbank(sample_rate, n_fft, f_min, f_max, min_bins),
        )


class Chromagram(_PitchSTFT):
    """STFT power summed per pitch class (C = 0 ... B = 11): output ``(batch, 12, frames)``.

    Class ``c`` is the sum of the :class:`MidiSpectrogram` notes ``p`` with ``p % 12 == c``,
    so the same ``min_bins`` resolution limit applies. The fold and the MIDI filter are
    combined into one ``(12, n_freqs)`` matrix so the forward pass is a single matmul.
    """

    def __init__(
        self,
        sample_rate: int = 22050,
        n_fft: int = 8192,
        hop_length: int = 512,
        f_min: float = 0.0,
        f_max: float | None = None,
        min_bins: int = 2,
    ) -> None:
        check_stft_args(sample_rate, n_fft, hop_length, f_min, f_max)
        filters = chroma_fold() @ midi_filterbank(sample_rate, n_fft, f_min, f_max, min_bins)
        super().__init__(sample_rate, n_fft, hop_length, filters)

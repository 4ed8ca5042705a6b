"""Mel spectrogram and MFCC features: thin, librosa-compatible torchaudio wrappers."""

from __future__ import annotations

import torchaudio
from torch import Tensor

from genre.features.base import WaveformFeature, check_positive, check_stft_args, check_top_db

# Settings that make torchaudio's mel filterbank and STFT padding match librosa's defaults.
_LIBROSA_MEL = {
    "mel_scale": "slaney",
    "norm": "slaney",
    "pad_mode": "constant",
    "center": True,
    "power": 2.0,
}


class MelSpectrogram(WaveformFeature):
    """Power mel spectrogram, numerically matching ``librosa.feature.melspectrogram``.

    Output: ``(batch, n_mels, frames)`` with ``frames = samples // hop_length + 1``.
    """

    def __init__(
        self,
        sample_rate: int = 22050,
        n_fft: int = 2048,
        hop_length: int = 512,
        n_mels: int = 128,
        f_min: float = 0.0,
        f_max: float | None = None,
    ) -> None:
        super().__init__()
        f_max = check_stft_args(sample_rate, n_fft, hop_length, f_min, f_max)
        check_positive("n_mels", n_mels)
        self.n_bands = n_mels
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=n_fft,
            hop_length=hop_length,
            n_mels=n_mels,
            f_min=f_min,
            f_max=f_max,
            **_LIBROSA_MEL,
        )

    def compute(self, waveform: Tensor) -> Tensor:
        """Mel power spectrogram of a float32 ``(batch, samples)`` waveform."""
        return self.mel(waveform)


class MFCC(WaveformFeature):
    """MFCCs of the dB-scaled power mel spectrogram, matching ``librosa.feature.mfcc``.

    The dB ``top_db`` clamp is applied per clip (relative to that clip's own maximum), so a
    clip's MFCCs do not depend on the other clips in its batch.

    Output: ``(batch, n_mfcc, frames)``.
    """

    def __init__(
        self,
        sample_rate: int = 22050,
        n_mfcc: int = 40,
        n_fft: int = 2048,
        hop_length: int = 512,
        n_mels: int = 128,
        f_min: float = 0.0,
        f_max: float | None = None,
        top_db: float | None = 80.0,
    ) -> None:
        super().__init__()
        f_max = check_stft_args(sample_rate, n_fft, hop_length, f_min, f_max)
        check_positive("n_mels", n_mels)
        check_positive("n_mfcc", n_mfcc)
        if n_mfcc > n_mels:
            raise ValueError(f"n_mfcc: {n_mfcc} exceeds n_mels={n_mels}. Use at most n_mels coefficients")
        check_top_db(top_db)
        self.n_bands = n_mfcc
        self.mfcc = torchaudio.transforms.MFCC(
            sample_rate=sample_rate,
            n_mfcc=n_mfcc,
            dct_type=2,
            norm="ortho",
            log_mels=False,
            melkwargs={
                "n_fft": n_fft,
                "hop_length": hop_length,
                "n_mels": n_mels,
                "f_min": f_min,
                "f_max": f_max,
                **_LIBROSA_MEL,
            },
        )
        # torchaudio.transforms.MFCC hard-codes top_db=80 in its constructor; override it.
        self.mfcc.top_db = top_db
        self.mfcc.amplitude_to_DB.top_db = top_db

    def compute(self, waveform: Tensor) -> Tensor:
        """MFCCs of a float32 ``(batch, samples)`` waveform."""
        # torchaudio's amplitude_to_DB takes the top_db reference max over the last three
        # dims; a (batch, 1, mels, frames) layout makes that max per clip, not per batch.
        return self.mfcc(waveform.unsqueeze(1)).squeeze(1)

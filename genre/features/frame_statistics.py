"""Hand-made statistics of a spectral feature, per patch: the texture-window summary of Tzanetakis & Cook.

``FrameStatistics(feature="mfcc")`` cuts the feature's frames into patches of about ``patch_seconds``
(3 s: musicnn's patch) and gives each patch the mean and standard deviation of every band over its
frames: ``(batch, 2 * bands, patches)``. It is the classic hand-made genre descriptor (MFCC means and
deviations over texture windows, Tzanetakis & Cook 2002; chroma for harmony), made a fixed function of
the audio so that it can be a part of :class:`~genre.features.fusion.Fusion` beside a pretrained network
(``mfcc_stats``, ``chroma_stats``), cached like the other parts.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from genre.features.base import WaveformFeature, check_positive
from genre.features.pitch import Chromagram
from genre.features.spectral import MFCC

# Bumped when the statistics change for the same settings (the embedding cache's key holds it).
FEATURE_VERSION = 1
HOP_LENGTH = 512
# Chroma energies are compared in dB, floored 80 dB below each clip's peak as feature=chroma does.
CHROMA_TOP_DB = 80.0


def _frames(feature: str, sample_rate: int) -> WaveformFeature:
    """The frame-level feature ``feature`` with feature=mfcc's / feature=chroma's settings."""
    if feature == "mfcc":
        return MFCC(sample_rate=sample_rate, n_mfcc=40, hop_length=HOP_LENGTH)
    if feature == "chroma":
        return Chromagram(sample_rate=sample_rate, hop_length=HOP_LENGTH)
    raise ValueError(f"feature: {feature!r} is not a frame feature with statistics. Use mfcc or chroma")


class FrameStatistics(nn.Module):
    """Mean and standard deviation of each band of a spectral feature over each ~3-s patch (module doc).

    Args:
        sample_rate: the run's sample rate.
        feature: ``mfcc`` (40 coefficients, feature=mfcc's settings) or ``chroma`` (12 pitch classes, in dB).
        patch_seconds: the patch (one step) length; 3.0 is musicnn's patch, so the steps line up with its own.
        cache: computed once per audio cache into the embedding cache; false recomputes it in every run.
    """

    # A fixed function of the audio: computed once per clip.
    precomputed = True
    frozen = True
    trainable = False
    steps_per_patch = 1

    def __init__(self, sample_rate: int, feature: str = "mfcc", patch_seconds: float = 3.0, cache: bool = True) -> None:
        super().__init__()
        check_positive("sample_rate", sample_rate)
        check_positive("patch_seconds", patch_seconds)
        self.feature, self.sample_rate, self.cache = str(feature), int(sample_rate), bool(cache)
        self.frames = _frames(self.feature, self.sample_rate)
        self.frames_per_patch = max(2, round(patch_seconds * sample_rate / HOP_LENGTH))
        self.n_bands = 2 * self.frames.n_bands
        # A patch's audio and the hop from one patch to the next (patches do not overlap).
        self.step_seconds = self.frames_per_patch * HOP_LENGTH / sample_rate
        self.patch_seconds = self.step_seconds

    def identity(self) -> dict[str, object]:
        """Everything the statistics depend on besides the audio (the embedding cache's key hashes it)."""
        return {
            "feature_version": FEATURE_VERSION,
            "layer": f"{self.feature} statistics",
            "sample_rate": self.sample_rate,
            "hop_length": HOP_LENGTH,
            "frames_per_patch": self.frames_per_patch,
        }

    def steps_in(self, samples: int) -> int:
        """Whole patches in a waveform of ``samples`` samples (frames of a centred STFT: 1 + samples // hop)."""
        return (1 + samples // HOP_LENGTH) // self.frames_per_patch

    def embed(self, waveform: Tensor) -> Tensor:
        """``(batch, samples)`` float waveforms -> ``(batch, 2 * bands, patches)``: each band's mean, then
        its standard deviation, over each patch's frames.

        Raises ValueError naming ``waveform`` for audio shorter than one patch.
        """
        patches = self.steps_in(waveform.shape[-1]) if waveform.dim() == 2 else 0
        if patches < 1:
            raise ValueError(
                f"waveform: {self.feature} statistics need (batch, samples) waveforms of at least "
                f"{self.patch_seconds:.2f} s; got shape {tuple(waveform.shape)}: raise trainer.segment_seconds"
            )
        with torch.no_grad():
            frames = self.frames(waveform)
            if self.feature == "chroma":  # energies -> dB below each clip's peak, as feature=chroma's log: db
                db = 10 * torch.log10(frames.clamp_min(1e-10))
                frames = torch.maximum(db, db.amax(dim=(1, 2), keepdim=True) - CHROMA_TOP_DB)
            size = self.frames_per_patch
            cut = frames[..., : patches * size].unflatten(-1, (patches, size))  # (batch, bands, patches, size)
            return torch.cat([cut.mean(-1), cut.std(-1)], dim=1)

    def forward(self, waveform: Tensor) -> Tensor:
        """Same as :meth:`embed`."""
        return self.embed(waveform)

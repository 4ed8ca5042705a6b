"""Hand-made statistics per patch (``mfcc_stats``, ``chroma_stats``): each band's mean and deviation over a
patch's frames, on a grid a fusion can set beside musicnn's patches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genre.features import MFCC, Chromagram
from genre.features.base import PrecomputedTransform
from genre.features.frame_statistics import FrameStatistics

RATE = 22050


def _audio(seconds: float, seed: int = 0) -> torch.Tensor:
    return 0.1 * torch.randn(2, int(seconds * RATE), generator=torch.Generator().manual_seed(seed))


def _texture_windows(frames: np.ndarray, size: int) -> np.ndarray:
    """Mean then sample deviation of each band over consecutive windows of ``size`` frames, by numpy."""
    count = frames.shape[-1] // size
    windows = [frames[..., k * size : (k + 1) * size] for k in range(count)]
    means = np.stack([w.mean(-1) for w in windows], axis=-1)
    stds = np.stack([w.std(-1, ddof=1) for w in windows], axis=-1)
    return np.concatenate([means, stds], axis=1)


def test_mfcc_statistics_are_each_coefficients_mean_and_deviation_per_3_s_patch() -> None:
    stats = FrameStatistics(RATE, feature="mfcc")
    assert isinstance(stats, PrecomputedTransform) and stats.n_bands == 80
    assert stats.frames_per_patch == 129 and stats.patch_seconds == pytest.approx(2.995, abs=1e-3)
    audio = _audio(10.0)
    out = stats.embed(audio)
    frames = MFCC(sample_rate=RATE, n_mfcc=40)(audio).numpy()
    assert out.shape == (2, 80, 3) == (2, 80, stats.steps_in(audio.shape[-1]))
    np.testing.assert_allclose(out.numpy(), _texture_windows(frames, 129), rtol=1e-4, atol=1e-4)


def test_chroma_statistics_are_taken_in_db_below_each_clips_peak() -> None:
    stats = FrameStatistics(RATE, feature="chroma")
    audio = _audio(7.0, seed=1)
    audio[1] *= 100.0  # a louder clip: its dB shift by 40, its deviations do not
    power = Chromagram(sample_rate=RATE)(audio).numpy()
    db = 10 * np.log10(np.maximum(power, 1e-10))
    db = np.maximum(db, db.max(axis=(1, 2), keepdims=True) - 80.0)
    out = stats.embed(audio).numpy()
    assert out.shape == (2, 24, 2)
    np.testing.assert_allclose(out, _texture_windows(db, 129), rtol=1e-4, atol=1e-3)


def test_steps_follow_the_audio_length_and_short_audio_or_unknown_features_are_refused() -> None:
    stats = FrameStatistics(RATE, feature="mfcc", cache=False)
    for seconds in (2.99, 3.0, 5.9, 6.0, 30.0):
        samples = int(seconds * RATE)
        expected = stats.embed(_audio(seconds)).shape[-1] if stats.steps_in(samples) else 0
        assert stats.steps_in(samples) == expected == (1 + samples // 512) // 129, seconds
    with pytest.raises(ValueError, match=r"^waveform: mfcc statistics need .* at least 3\.00 s"):
        stats.embed(_audio(2.0))
    with pytest.raises(ValueError, match=r"^feature: 'mel' is not a frame feature with statistics"):
        FrameStatistics(RATE, feature="mel")
    assert FrameStatistics(RATE, "mfcc").identity() != FrameStatistics(RATE, "chroma").identity()


def test_a_fusion_sets_mfcc_statistics_beside_the_musicnn_patch_they_overlap_most() -> None:
    pytest.importorskip("musicnn", reason="the musicnn wheel is not installed")
    from genre.features import Fusion, Musicnn

    fusion = Fusion(sample_rate=RATE, parts=["MTT_musicnn/max_pool", "mfcc_stats"])
    assert fusion.part_bands == (753, 80)
    audio = _audio(12.0, seed=2)
    with torch.no_grad():
        fused = fusion.embed(audio)
        patches = Musicnn(RATE, model="MTT_musicnn").embed(audio)
        stats = FrameStatistics(RATE).embed(audio)
    # 12 s: four 2.99-s musicnn patches and four 2.995-s statistics patches, centre for centre.
    assert patches.shape[-1] == stats.shape[-1] == 4
    torch.testing.assert_close(fused, torch.cat([patches, stats], dim=1))

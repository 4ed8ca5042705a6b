"""The decode-once audio cache: content, reuse, invalidation and crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from genre.data.cache import open_cache
from genre.data.decode import ClipFormat


def _tone(path: Path, seconds: float, rate: int, channels: int = 1, freq: float = 440.0) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    audio = 0.5 * np.sin(2 * np.pi * freq * t)
    if channels == 2:
        audio = np.stack([audio, -0.5 * audio], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, rate, subtype="PCM_16")
    return path


def test_build_then_reuse_without_decoding(tmp_path: Path) -> None:
    files = [_tone(tmp_path / "a" / f"a.{i:05d}.wav", 1.0, 22050, freq=200 + 100 * i) for i in range(3)]
    fmt = ClipFormat(sample_rate=16000, clip_seconds=1.0)
    first = open_cache(files, fmt, tmp_path / "cache", workers=1, progress=False)
    assert first.stats.built and first.stats.decoded == 3
    second = open_cache(files, fmt, tmp_path / "cache", workers=1, progress=False)
    assert not second.stats.built and second.stats.decoded == 0
    assert second.directory == first.directory
    # Resampled to 16 kHz, trimmed/padded to exactly one second.
    assert first.read(0).shape == (16000,)
    np.testing.assert_array_equal(first.read(1), second.read(1))


def test_crop_reads_the_same_samples_as_the_whole_clip(tmp_path: Path) -> None:
    files = [_tone(tmp_path / "g" / "g.00000.wav", 2.0, 22050)]
    cache = open_cache(files, ClipFormat(22050, 2.0), tmp_path / "cache", workers=1, progress=False)
    whole = cache.read(0)
    np.testing.assert_array_equal(cache.read(0, 1000, 500), whole[1000:1500])


def test_changed_file_rebuilds(tmp_path: Path) -> None:
    path = _tone(tmp_path / "g" / "g.00000.wav", 1.0, 22050)
    fmt = ClipFormat(22050, 1.0)
    a = open_cache([path], fmt, tmp_path / "cache", workers=1, progress=False)
    _tone(path, 1.5, 22050, freq=880.0)
    b = open_cache([path], fmt, tmp_path / "cache", workers=1, progress=False)
    assert b.stats.built and b.directory != a.directory
    assert not np.array_equal(a.read(0), b.read(0))


def test_stereo_is_mixed_short_is_padded_and_bad_files_are_skipped(tmp_path: Path) -> None:
    stereo = _tone(tmp_path / "g" / "stereo.wav", 1.0, 44100, channels=2)
    short = _tone(tmp_path / "g" / "short.wav", 0.5, 22050)
    empty = tmp_path / "g" / "empty.wav"
    empty.write_bytes(b"")
    junk = tmp_path / "g" / "junk.wav"
    junk.write_bytes(b"this is not audio at all" * 100)
    cache = open_cache([stereo, short, empty, junk], ClipFormat(22050, 1.0), tmp_path / "cache", workers=2,
                       progress=False)
    assert set(cache.skipped) == {str(empty.resolve()), str(junk.resolve())}
    assert "zero-byte" in cache.skipped[str(empty.resolve())]
    mixed = cache.read(cache.row_of[str(stereo.resolve())]).astype(np.float64) / 32768
    # L = x, R = -x/2: the mono mix is x/4, i.e. a 0.125-amplitude tone.
    assert abs(np.abs(mixed).max() - 0.125) < 0.01
    padded = cache.read(cache.row_of[str(short.resolve())])
    assert np.abs(padded[:11000]).max() > 1000 and np.all(padded[11100:] == 0)

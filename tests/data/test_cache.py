"""The decode-once audio cache: content, reuse, invalidation, crops, and surviving concurrent,
killed and crashing builds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import genre.data.cache as cache_module
from genre.data.cache import open_cache
from genre.data.decode import ClipFormat, decode_clip
from helpers import python_env
from helpers.waiting import SAFETY_TIMEOUT, wait_for


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


@pytest.mark.slow
def test_stereo_is_mixed_short_is_padded_and_bad_files_are_skipped(tmp_path: Path) -> None:
    stereo = _tone(tmp_path / "g" / "stereo.wav", 1.0, 44100, channels=2)
    short = _tone(tmp_path / "g" / "short.wav", 0.5, 22050)
    empty = tmp_path / "g" / "empty.wav"
    empty.write_bytes(b"")
    junk = tmp_path / "g" / "junk.wav"
    junk.write_bytes(b"this is not audio at all" * 100)
    cache = open_cache(
        [stereo, short, empty, junk], ClipFormat(22050, 1.0), tmp_path / "cache", workers=2, progress=False
    )
    assert set(cache.skipped) == {str(empty.resolve()), str(junk.resolve())}
    assert "zero-byte" in cache.skipped[str(empty.resolve())]
    mixed = cache.read(cache.row_of[str(stereo.resolve())]).astype(np.float64) / 32768
    # L = x, R = -x/2: the mono mix is x/4, i.e. a 0.125-amplitude tone.
    assert abs(np.abs(mixed).max() - 0.125) < 0.01
    padded = cache.read(cache.row_of[str(short.resolve())])
    assert np.abs(padded[:11000]).max() > 1000 and np.all(padded[11100:] == 0)


# ----------------------------------------------------------------------------------------------
# Reuse, concurrent builders, killed and damaged builds, crashing decoders
# ----------------------------------------------------------------------------------------------

FMT = ClipFormat(sample_rate=8000, clip_seconds=1.0)

# A builder process: opens (builds) the cache of the files listed in argv[1] under argv[2], with every
# decode slowed by argv[3] seconds so that the test can act while the build runs; argv[4]: workers;
# argv[5] (optional): a file to wait for before starting, so that two builders start together; it
# holds both builders' pids, and then the one that builds decodes nothing until the other one waits
# on its lock (or decodes too: then both built, which the test refuses), however busy the machine.
BUILDER = """
import hashlib, json, os, sys, time
from pathlib import Path
import genre.data.cache as cache
from genre.data.decode import ClipFormat

files, root = json.loads(Path(sys.argv[1]).read_text()), sys.argv[2]
delay, workers = float(sys.argv[3]), int(sys.argv[4])
real = cache.decode_clip
me, others = str(os.getpid()), []  # the builder's pid (its forked decoders inherit both)
def other_waits_or_decodes():
    blocked = any(f[1] == "->" and f[5] in others for f in map(str.split, open("/proc/locks")) if len(f) > 5)
    return blocked or any(Path(sys.argv[5] + ".decoding-" + pid).exists() for pid in others)
def slow(path, fmt):
    if others:
        Path(sys.argv[5] + ".decoding-" + me).touch()
        while not other_waits_or_decodes():
            time.sleep(0.005)
    time.sleep(delay)
    return real(path, fmt)
cache.decode_clip = slow
if len(sys.argv) > 5:
    Path(sys.argv[5] + ".ready-" + me).touch()
    while not Path(sys.argv[5]).exists():
        time.sleep(0.005)
    others = [pid for pid in Path(sys.argv[5]).read_text().split() if pid != me]
started = time.time()
c = cache.open_cache(files, ClipFormat(8000, 1.0), root, workers=workers, progress=False)
digest = hashlib.sha256(b"".join(c.read(i).tobytes() for i in range(len(c)))).hexdigest()
print(json.dumps({"built": c.stats.built, "decoded": c.stats.decoded, "waited": c.stats.waited_seconds,
                  "directory": str(c.directory), "digest": digest, "started": started, "finished": time.time()}))
"""


def _corpus(folder: Path, n: int) -> list[Path]:
    return [_tone(folder / f"c.{i:05d}.wav", 1.0, 8000, freq=100.0 + 37 * i) for i in range(n)]


def _builder(
    tmp_path: Path, files: list[Path], cache_root: Path, delay: float, workers: int, go: Path | None = None
) -> subprocess.Popen:
    listing = tmp_path / "files.json"
    listing.write_text(json.dumps([str(f) for f in files]))
    args = [sys.executable, "-c", BUILDER, str(listing), str(cache_root), str(delay), str(workers)]
    return subprocess.Popen(
        args + ([str(go)] if go else []), env=python_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _entries(cache_root: Path) -> list[str]:
    """What is in the cache folder, lock files aside."""
    return sorted(p.name for p in (cache_root / "audio").iterdir() if p.suffix != ".lock")


def test_second_open_calls_the_decoder_zero_times(tmp_path: Path, monkeypatch) -> None:
    files = _corpus(tmp_path / "g", 5)
    calls: list[str] = []
    real = cache_module.decode_clip

    def counting(path, fmt):
        calls.append(path)
        return real(path, fmt)

    monkeypatch.setattr(cache_module, "decode_clip", counting)
    open_cache(files, FMT, tmp_path / "cache", workers=1, progress=False)
    assert len(calls) == 5
    calls.clear()
    again = open_cache(files, FMT, tmp_path / "cache", workers=1, progress=False)
    assert calls == [] and again.stats.decoded == 0 and len(again) == 5


@pytest.mark.slow
def test_two_concurrent_builders_end_with_one_identical_loadable_cache(tmp_path: Path) -> None:
    files = _corpus(tmp_path / "g", 16)
    cache_root, go = tmp_path / "cache", tmp_path / "go"
    builders = [_builder(tmp_path, files, cache_root, delay=0.0, workers=2, go=go) for _ in range(2)]
    for builder in builders:  # both imported and waiting: start them together
        wait_for((tmp_path / f"go.ready-{builder.pid}").exists, "the builders started", builder)
    (tmp_path / "go.partial").write_text(" ".join(str(b.pid) for b in builders))
    (tmp_path / "go.partial").rename(go)
    results = []
    for builder in builders:
        out, err = builder.communicate(timeout=SAFETY_TIMEOUT)
        assert builder.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    # Both ran at once: exactly one built, the other waited on its lock and then loaded its result.
    assert sorted(r["built"] for r in results) == [False, True]
    loader = next(r for r in results if not r["built"])
    builder_result = next(r for r in results if r["built"])
    assert loader["waited"] > 0 and loader["started"] < builder_result["finished"]
    assert loader["directory"] == builder_result["directory"] and loader["digest"] == builder_result["digest"]
    assert _entries(cache_root) == [Path(loader["directory"]).name]  # no second copy, no temporary left
    reopened = open_cache(files, FMT, cache_root, workers=1, progress=False)
    assert not reopened.stats.built and len(reopened) == 16
    np.testing.assert_array_equal(reopened.read(7), decode_clip(files[7], FMT))


@pytest.mark.slow
def test_a_build_killed_midway_is_rebuilt_not_loaded(tmp_path: Path) -> None:
    files = _corpus(tmp_path / "g", 12)
    cache_root = tmp_path / "cache"
    builder = _builder(tmp_path, files, cache_root, delay=0.3, workers=1)

    def two_clips_written() -> bool:
        partial = list((cache_root / "audio").glob(".*.tmp-*/clips.i16")) if (cache_root / "audio").is_dir() else []
        return any(p.stat().st_size >= 2 * 2 * FMT.clip_samples for p in partial)

    wait_for(two_clips_written, "the builder wrote two clips", builder)
    builder.send_signal(signal.SIGKILL)
    builder.wait(timeout=SAFETY_TIMEOUT)
    assert builder.returncode == -signal.SIGKILL
    left = _entries(cache_root)
    assert all(name.startswith(".") for name in left), f"a killed build left something that looks finished: {left}"
    assert left, "the killed build's temporary directory should still be there (removed by the next builder)"

    cache = open_cache(files, FMT, cache_root, workers=1, progress=False)
    assert cache.stats.built and cache.stats.decoded == 12 and len(cache) == 12
    assert _entries(cache_root) == [cache.directory.name]
    for row in (0, 5, 11):
        np.testing.assert_array_equal(cache.read(row), decode_clip(files[row], FMT))


def test_a_damaged_cache_is_rebuilt_not_read(tmp_path: Path) -> None:
    files = _corpus(tmp_path / "g", 3)
    first = open_cache(files, FMT, tmp_path / "cache", workers=1, progress=False)
    data = first.directory / "clips.i16"
    data.write_bytes(data.read_bytes()[:-100])  # e.g. a disk that filled up under someone's copy
    second = open_cache(files, FMT, tmp_path / "cache", workers=1, progress=False)
    assert second.stats.built and second.directory == first.directory
    assert data.stat().st_size == 3 * 2 * FMT.clip_samples
    np.testing.assert_array_equal(second.read(2), decode_clip(files[2], FMT))


@pytest.mark.slow
def test_a_decoder_that_kills_its_process_costs_only_that_file(tmp_path: Path, monkeypatch) -> None:
    files = _corpus(tmp_path / "g", 6)
    crasher = _tone(tmp_path / "g" / "crash.wav", 1.0, 8000)
    real = cache_module.decode_clip

    def segfaulting(path, fmt):
        if Path(path).name == "crash.wav":
            os._exit(139)  # what a decoder segfault looks like to the pool
        return real(path, fmt)

    monkeypatch.setattr(cache_module, "decode_clip", segfaulting)  # forked workers inherit it
    cache = open_cache([*files, crasher], FMT, tmp_path / "cache", workers=2, progress=False)
    assert list(cache.skipped) == [str(crasher.resolve())]
    assert "crashed" in cache.skipped[str(crasher.resolve())]
    assert len(cache) == 6
    for path in files:
        np.testing.assert_array_equal(cache.read(cache.row_of[str(path.resolve())]), decode_clip(path, FMT))

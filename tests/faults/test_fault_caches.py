"""The caches trusted by content, not by size: same-size damage is rebuilt (never read as data), a read
failure of the moment is never cached, and a finished cache on a read-only mount is reused."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

import genre.data.cache as cache_module
from genre.core.errors import ConfigError, UserInputError
from genre.data.cache import open_cache
from genre.data.decode import ClipFormat, decode_clip
from genre.data.embedding_cache import DATA_FILE as EMBEDDINGS_FILE
from genre.data.embedding_cache import open_embeddings
from genre.data.prepare import prepare_data
from genre.experiment.spec import build_spec
from helpers import TINY_TRAINING, compose_run
from helpers.dataset_trees import make_genre_folder, tone, write_audio

RATE = 8000
FMT = ClipFormat(RATE, 1.0)


def _corpus(folder: Path, n: int = 4) -> list[Path]:
    return [write_audio(folder / f"c{i}.wav", tone(1.0, RATE, 200.0 + 90 * i), RATE, "WAV") for i in range(n)]


def _open(files: list[Path], root: Path):
    return open_cache(files, FMT, root, workers=1, progress=False)


def _energies(waveform: torch.Tensor) -> torch.Tensor:
    """A deterministic stand-in feature: per 2000-sample frame, [mean, rms] -> (batch, 2 dims, steps)."""
    frames = waveform.unflatten(-1, (-1, 2000))
    return torch.stack([frames.mean(-1), frames.square().mean(-1).sqrt()], dim=1)


def _embeddings(audio, root: Path, embed=_energies, persist: bool = True):
    return open_embeddings(
        audio,
        embed,
        {"layer": "energy"},
        steps=audio.clip_samples // 2000,
        dims=2,
        cache_root=root,
        device=torch.device("cpu"),
        persist=persist,
        batch_clips=2,
        progress=False,
    )


def _overwrite(path: Path, offset: int, data: bytes) -> None:
    """Same-size damage: ``data`` written over ``path`` at ``offset`` (what a failing disk or copy leaves)."""
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(data)
    assert path.stat().st_size == size


# ------------------------------------------------------------------------------------------------
# Same-size damage
# ------------------------------------------------------------------------------------------------


def test_zeros_over_part_of_the_clips_are_rebuilt_not_read_as_silence(tmp_path: Path, caplog) -> None:
    files = _corpus(tmp_path / "g")
    first = _open(files, tmp_path / "cache")
    row = first.row_of[str(files[2].resolve())]
    _overwrite(first.directory / "clips.i16", row * 2 * FMT.clip_samples, bytes(2 * FMT.clip_samples))
    with caplog.at_level(logging.WARNING, logger="genre.data.cache"):
        again = _open(files, tmp_path / "cache")
    assert again.stats.built, "a cache whose data no longer matches its checksum was reused"
    np.testing.assert_array_equal(again.read(again.row_of[str(files[2].resolve())]), decode_clip(files[2], FMT))
    assert any("clips.i16 does not match the checksum" in r.getMessage() for r in caplog.records), caplog.text


@pytest.mark.parametrize("value", [np.nan, 1e30, -np.inf])
def test_nan_or_absurd_embeddings_are_recomputed_not_read(tmp_path: Path, caplog, value: float) -> None:
    audio = _open(_corpus(tmp_path / "g"), tmp_path / "cache")
    table = _embeddings(audio, tmp_path / "cache")
    expected = [table.read(row) for row in range(table.rows)]
    _overwrite(table.directory / EMBEDDINGS_FILE, 4 * 5, np.array([value], dtype="<f4").tobytes())
    with caplog.at_level(logging.WARNING, logger="genre.data.embedding_cache"):
        again = _embeddings(audio, tmp_path / "cache")
    assert again.stats.built and again.directory == table.directory
    for row in range(again.rows):
        np.testing.assert_array_equal(again.read(row), expected[row])
    assert any(EMBEDDINGS_FILE in r.getMessage() for r in caplog.records), caplog.text


@pytest.mark.parametrize("persist", [True, False])
def test_a_feature_returning_nan_is_refused_naming_the_clip(tmp_path: Path, persist: bool) -> None:
    files = _corpus(tmp_path / "g")
    audio = _open(files, tmp_path / "cache")
    poisoned = audio.row_of[str(files[3].resolve())]

    target = torch.from_numpy(audio.read(poisoned)).float() / 32768

    def nan_for_one_clip(waveform: torch.Tensor) -> torch.Tensor:
        out = _energies(waveform)
        for i, clip in enumerate(waveform):
            if torch.equal(clip, target):
                out[i, 0, 1] = float("nan")
        return out

    with pytest.raises(UserInputError) as caught:
        _embeddings(audio, tmp_path / "cache", nan_for_one_clip, persist=persist)
    message = str(caught.value)
    assert message.startswith(f"{files[3].resolve()}: the frozen feature returned NaN") and "\n" not in message
    root = tmp_path / "cache" / "embeddings"
    assert not root.exists() or [p.name for p in root.iterdir() if not p.name.endswith(".lock")] == []


def test_a_cache_from_before_checksums_is_rebuilt_with_one_line(tmp_path: Path, caplog) -> None:
    files = _corpus(tmp_path / "g")
    first = _open(files, tmp_path / "cache")
    index = first.directory / "index.json"
    old = json.loads(index.read_text())
    old.pop("checksum", None)
    index.write_text(json.dumps(old))
    with caplog.at_level(logging.INFO, logger="genre.data.cache"):
        again = _open(files, tmp_path / "cache")
    assert again.stats.built
    assert [r.getMessage() for r in caplog.records if "predates checksums" in r.getMessage()] == [
        f"Audio cache {first.directory}: its index predates checksums (written by an older genre); rebuilding it"
    ]


# ------------------------------------------------------------------------------------------------
# Read failures of the moment
# ------------------------------------------------------------------------------------------------


def _vanishing(monkeypatch, victim: Path, aside: Path, *, back_after_first_try: bool) -> None:
    """Make ``victim`` disappear when the build comes to decode it (and, if asked, come back right after
    that first try): what a network file system's hiccup or a copy in progress looks like."""
    real = cache_module.decode_clip
    tries = [0]

    def decode(path, fmt):
        if Path(path) == victim.resolve():
            tries[0] += 1
            if tries[0] == 1:
                victim.rename(aside)
                try:
                    return real(path, fmt)
                finally:
                    if back_after_first_try:
                        aside.rename(victim)
        return real(path, fmt)

    monkeypatch.setattr(cache_module, "decode_clip", decode)


def test_a_file_missing_during_the_build_is_not_cached_and_the_next_run_decodes_it(tmp_path: Path, monkeypatch) -> None:
    files = _corpus(tmp_path / "g")
    victim, aside = files[1], tmp_path / "aside.wav"
    with monkeypatch.context() as patch:
        _vanishing(patch, victim, aside, back_after_first_try=False)
        with pytest.raises(UserInputError) as caught:
            _open(files, tmp_path / "cache")
    message = str(caught.value)
    assert message.startswith(f"{victim.resolve()}: cannot be read (file missing)") and "\n" not in message
    assert [p.name for p in (tmp_path / "cache" / "audio").iterdir() if p.suffix != ".lock"] == []
    aside.rename(victim)  # back, unchanged (same size and mtime: the same cache key)
    cache = _open(files, tmp_path / "cache")
    assert cache.stats.built and cache.skipped == {}
    np.testing.assert_array_equal(cache.read(cache.row_of[str(victim.resolve())]), decode_clip(victim, FMT))


def test_a_file_briefly_missing_during_the_build_is_decoded_on_its_second_try(tmp_path: Path, monkeypatch) -> None:
    files = _corpus(tmp_path / "g")
    _vanishing(monkeypatch, files[0], tmp_path / "aside.wav", back_after_first_try=True)
    cache = _open(files, tmp_path / "cache")
    assert cache.skipped == {} and len(cache) == len(files)
    np.testing.assert_array_equal(cache.read(cache.row_of[str(files[0].resolve())]), decode_clip(files[0], FMT))


def test_a_file_missing_when_listed_is_skipped_until_it_appears(tmp_path: Path) -> None:
    # FMA's metadata lists tracks without audio: missing from the start, that is what the cache records,
    # and the key records it too, so the file's arrival makes a new cache.
    files = _corpus(tmp_path / "g", 3)
    absent = tmp_path / "g" / "later.wav"
    cache = _open([*files, absent], tmp_path / "cache")
    assert cache.skipped == {str(absent.resolve()): "file missing"}
    write_audio(absent, tone(1.0, RATE, 900.0), RATE, "WAV")
    later = _open([*files, absent], tmp_path / "cache")
    assert later.stats.built and later.skipped == {} and str(absent.resolve()) in later.row_of


# ------------------------------------------------------------------------------------------------
# A read-only cache
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def read_only_view(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """``(source, view)``: a folder and a read-only bind mount of it (chmod does not stop root, a read-only
    mount stops everyone; this is how a cache prepared ahead is shared on a cluster)."""
    source, view = tmp_path / "prepared", tmp_path / "mounted"
    source.mkdir()
    view.mkdir()
    mount = shutil.which("mount")
    if mount is None or os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root and mount(8)")
    done = subprocess.run([mount, "--bind", str(source), str(view)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {done.stderr.strip()}")
    try:
        remount = subprocess.run(
            [mount, "-o", "remount,ro,bind", str(view)], capture_output=True, text=True, check=False
        )
        if remount.returncode != 0:
            pytest.skip(f"cannot make a bind mount read-only here: {remount.stderr.strip()}")
        assert not os.access(view, os.W_OK)
        yield source, view
    finally:
        # Lazy: a cache object of the test may still hold a data file open there.
        subprocess.run(["umount", "--lazy", str(view)], check=True)


def _folder_run(tmp_path: Path, root: Path, cache_dir: Path):
    cfg = compose_run(
        [
            "dataset=folder",
            f"dataset.root={root}",
            f"dataset.sample_rate={RATE}",
            "dataset.clip_seconds=2",
            "dataset.decode_workers=1",
            *TINY_TRAINING,
        ],
        tmp_path / "run",
        cache_dir,
    )
    cfg.paths.cache_dir = str(cache_dir)
    return cfg


def test_a_complete_cache_on_a_read_only_mount_is_reused(tmp_path: Path, read_only_view) -> None:
    source, view = read_only_view
    root = make_genre_folder(tmp_path / "data", per_genre=4)
    prepared = prepare_data(_folder_run(tmp_path, root, source).dataset, source, progress=False)
    table = _embeddings(prepared.cache, source)
    cfg = _folder_run(tmp_path, root, view)
    build_spec(cfg)  # no refusal up front: the folder holds caches to reuse
    reused = prepare_data(cfg.dataset, view, progress=False)
    assert not reused.cache.stats.built and reused.cache.directory.parent == view / "audio"
    for row in (0, len(reused.cache) - 1):
        np.testing.assert_array_equal(reused.cache.read(row), prepared.cache.read(row))
    embedded = _embeddings(reused.cache, view)
    assert not embedded.stats.built
    np.testing.assert_array_equal(embedded.read(1), table.read(1))


def test_building_on_a_read_only_mount_is_one_line_naming_the_cache_dir(tmp_path: Path, read_only_view) -> None:
    source, view = read_only_view
    files = _corpus(tmp_path / "g", 3)
    _open(files[:2], source)
    with pytest.raises(ConfigError, match=r"^paths.cache_dir: .* must be built \(there is none yet\) but '.*' is not"):
        _open(files, view)
    damaged = _open(files[:2], source)
    _overwrite(damaged.directory / "clips.i16", 100, bytes(64))
    with pytest.raises(ConfigError, match=r"^paths.cache_dir: .* must be built \(clips.i16 does not match the check"):
        _open(files[:2], view)


def test_an_empty_unwritable_cache_dir_is_still_refused_up_front(tmp_path: Path, read_only_view) -> None:
    _, view = read_only_view
    cfg = _folder_run(tmp_path, tmp_path / "data", view)
    with pytest.raises(ConfigError, match=rf"^paths.cache_dir: cannot write in '{view}' \(Read-only file system\)"):
        build_spec(cfg)

"""dataset=gtzan on both real layouts: labels and counts, the published fault-filtered split, seeded
stratified splits, the unreadable jazz.00054.wav, reuse of the cache, and one-line errors."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from torchaudio.datasets import gtzan as torchaudio_gtzan

import genre.data.cache as cache_module
from genre.core.errors import ConfigError
from genre.data.gtzan import GTZAN_GENRES, clip_name
from genre.data.prepare import PreparedData, prepare_data
from helpers import compose_run
from helpers.dataset_trees import copy_tree, gtzan_names, tone, write_audio

# The fixture's clips are 3 s at 11025 Hz; the runs resample them to 8 kHz.
TINY = ["dataset.sample_rate=8000", "dataset.clip_seconds=3", "dataset.min_seconds=1"]
PUBLISHED = {
    "train": set(torchaudio_gtzan.filtered_train),
    "val": set(torchaudio_gtzan.filtered_valid),
    "test": set(torchaudio_gtzan.filtered_test),
}


def _prepare(root: Path, tmp_path: Path, cache: Path, *overrides: str) -> PreparedData:
    cfg = compose_run(["dataset=gtzan", f"dataset.root={root}", *TINY, *overrides], tmp_path, cache)
    return prepare_data(cfg.dataset, cfg.paths.cache_dir, progress=False)


def _names(data: PreparedData) -> dict[str, set[str]]:
    return {split: {clip_name(p) for p in clips.paths} for split, clips in data.splits.items()}


@pytest.mark.parametrize("copy", ["wav", "au"])
def test_labels_counts_and_the_fault_filtered_split_of_both_copies(
    copy: str, gtzan_trees, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = getattr(gtzan_trees, copy)
    with caplog.at_level(logging.WARNING):
        data = _prepare(root, tmp_path, tmp_path / "cache")  # the default split: fault_filtered
    present = {name for names in gtzan_names().values() for name in names}
    unreadable = {"jazz.00054"} if copy == "wav" else set()
    usable = present - unreadable

    assert data.labels == sorted(GTZAN_GENRES)
    # Exactly the published memberships, for the files present and readable.
    assert _names(data) == {split: usable & names for split, names in PUBLISHED.items()}
    assert data.unsplit == len(usable - set().union(*PUBLISHED.values())) > 0
    for split, clips in data.splits.items():
        labels = [data.labels[t] for t in clips.targets]
        assert labels == [Path(p).parent.name for p in clips.paths], split
    if copy == "wav":
        bad = str((root / "jazz" / "jazz.00054.wav").resolve())
        assert list(data.skipped) == [bad] and "undecodable" in data.skipped[bad]
        assert any("jazz.00054.wav" in r.message and r.levelno == logging.WARNING for r in caplog.records)
        assert "jazz.00054.wav: undecodable" in data.summary()
        assert "jazz.00054" in PUBLISHED["train"]  # the reason the skip matters: it is a training file
    else:
        assert data.skipped == {} and "jazz.00054" in _names(data)["train"]


def test_stratified_split_same_seed_same_split_disjoint_and_complete(gtzan_trees, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = _prepare(gtzan_trees.au, tmp_path, cache, "dataset/split=stratified", "dataset.split.seed=3")
    again = _prepare(gtzan_trees.au, tmp_path, cache, "dataset/split=stratified", "dataset.split.seed=3")
    other = _prepare(gtzan_trees.au, tmp_path, cache, "dataset/split=stratified", "dataset.split.seed=4")
    assert _names(first) == _names(again)
    assert _names(first) != _names(other)
    names = _names(first)
    assert not (names["train"] & names["val"] or names["train"] & names["test"] or names["val"] & names["test"])
    all_files = {name for names_ in gtzan_names().values() for name in names_}
    assert set().union(*names.values()) == all_files and first.unsplit == 0
    for split in ("val", "test"):  # stratified: every genre in every split
        assert {first.labels[t] for t in first.splits[split].targets} == set(GTZAN_GENRES)


def test_no_clip_is_in_two_splits(gtzan_trees, tmp_path: Path) -> None:
    data = _prepare(gtzan_trees.wav, tmp_path, tmp_path / "cache")
    rows = [set(clips.rows.tolist()) for clips in data.splits.values()]
    paths = [set(clips.paths) for clips in data.splits.values()]
    for i in range(3):
        for j in range(i + 1, 3):
            assert not rows[i] & rows[j] and not paths[i] & paths[j]


def test_a_second_run_decodes_nothing(gtzan_trees, tmp_path: Path, monkeypatch) -> None:
    calls: list[str] = []
    real = cache_module.decode_clip

    def counting(path, fmt):
        calls.append(path)
        return real(path, fmt)

    monkeypatch.setattr(cache_module, "decode_clip", counting)
    first = _prepare(gtzan_trees.wav, tmp_path, tmp_path / "cache", "dataset.decode_workers=1")
    n_files = sum(len(names) for names in gtzan_names().values())
    assert len(calls) == n_files and first.cache.stats.decoded == n_files
    calls.clear()
    second = _prepare(gtzan_trees.wav, tmp_path, tmp_path / "cache", "dataset.decode_workers=1")
    assert calls == [] and second.cache.stats.decoded == 0 and not second.cache.stats.built
    assert "reused: nothing decoded" in second.summary()
    assert second.cache.directory == first.cache.directory
    assert {k: v.paths for k, v in second.splits.items()} == {k: v.paths for k, v in first.splits.items()}


def test_pointing_at_the_archive_folder_suggests_the_genre_folder(gtzan_trees, tmp_path: Path) -> None:
    parent = gtzan_trees.wav.parent  # Data/, as the Kaggle archive unpacks, holding genres_original/
    with pytest.raises(
        ConfigError,
        match=r"dataset.root: .* holds none of GTZAN's ten genre folders\. "
        r"Did you mean '.*Data/genres_original'\?",
    ):
        _prepare(parent, tmp_path, tmp_path / "cache")


def test_missing_and_empty_genre_folders_and_merged_copies_are_one_line_errors(gtzan_trees, tmp_path: Path) -> None:
    root = copy_tree(gtzan_trees.wav, tmp_path / "genres_original")
    shutil.rmtree(root / "rock")
    with pytest.raises(ConfigError, match=r"^dataset.root: .* lacks GTZAN's genre folder\(s\) rock\. "):
        _prepare(root, tmp_path, tmp_path / "cache")
    (root / "rock").mkdir()
    with pytest.raises(ConfigError, match=r"^dataset.root: genre folder '.*rock' holds no \.wav or \.au files"):
        _prepare(root, tmp_path, tmp_path / "cache")
    write_audio(root / "rock" / "rock.00001.wav", tone(3.0, 11025, 440.0), 11025, "WAV")
    write_audio(root / "rock" / "rock.00001.au", tone(3.0, 11025, 440.0), 11025, "AU")
    with pytest.raises(ConfigError, match=r"holds both rock\.00001\.au and rock\.00001\.wav"):
        _prepare(root, tmp_path, tmp_path / "cache")


def test_missing_root_and_a_split_name_without_the_group_slash_are_one_line_errors(gtzan_trees, tmp_path: Path) -> None:
    cfg = compose_run(["dataset=gtzan", *TINY], tmp_path, tmp_path / "cache")
    with pytest.raises(ConfigError, match=r"^dataset.root: is not set\. "):
        prepare_data(cfg.dataset, cfg.paths.cache_dir, progress=False)
    with pytest.raises(ConfigError, match=r"^dataset.split: 'stratified' is not a split config\. .*dataset/split="):
        _prepare(gtzan_trees.wav, tmp_path, tmp_path / "cache", "dataset.split=stratified")


def test_fault_filtered_split_refuses_a_dataset_that_is_not_gtzan(tmp_path: Path) -> None:
    for genre in ("ambient", "polka"):
        for i in range(3):
            write_audio(tmp_path / "mine" / genre / f"take{i}.wav", tone(1.0, 8000, 300.0 + i), 8000, "WAV")
    cfg = compose_run(
        [
            "dataset=folder",
            f"dataset.root={tmp_path / 'mine'}",
            "dataset/split=fault_filtered",
            "dataset.sample_rate=8000",
            "dataset.clip_seconds=1",
        ],
        tmp_path,
        tmp_path / "cache",
    )
    with pytest.raises(ConfigError, match=r"^dataset.split: none of the 6 files is named like a GTZAN clip"):
        prepare_data(cfg.dataset, cfg.paths.cache_dir, progress=False)

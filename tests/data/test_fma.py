"""dataset=fma on the real layout: tracks.csv's two-level header, nested subsets, genre_top labels,
the official split, FMA's bad tracks skipped with their reasons, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from genre.core.errors import ConfigError
from genre.data.prepare import PreparedData, prepare_data
from helpers import compose_run
from helpers.dataset_trees import FMA_COLUMNS, FMATree, copy_tree

TINY = ["dataset.sample_rate=8000", "dataset.clip_seconds=10"]  # fixture tracks: 11 s MP3s at 8 kHz
RANK = {"small": 0, "medium": 1, "large": 2}
OFFICIAL = {"training": "train", "validation": "val", "test": "test"}


def _prepare(
    tree: FMATree, tmp_path: Path, *overrides: str, metadata: Path | None = None, audio: Path | None = None
) -> PreparedData:
    cfg = compose_run(
        [
            "dataset=fma",
            f"dataset.metadata_root={metadata or tree.metadata}",
            f"dataset.audio_root={audio or tree.audio}",
            *TINY,
            *overrides,
        ],
        tmp_path,
        tmp_path / "cache",
    )
    return prepare_data(cfg.dataset, cfg.paths.cache_dir, progress=False)


def _track_id(path: str) -> int:
    return int(Path(path).stem)


def test_the_fixture_has_the_real_tracks_csv_layout(fma_tree: FMATree) -> None:
    lines = (fma_tree.metadata / "tracks.csv").read_text().splitlines()
    groups, fields = lines[0].split(","), lines[1].split(",")
    assert groups[0] == "" and groups[1:] == [g for g, _ in FMA_COLUMNS]
    assert fields[0] == "" and fields[1:] == [f for _, f in FMA_COLUMNS]
    assert lines[2] == "track_id" + "," * len(FMA_COLUMNS)
    table = pd.read_csv(fma_tree.metadata / "tracks.csv", header=[0, 1], index_col=0)
    assert table.index.name == "track_id" and len(table) == len(fma_tree.tracks)
    assert {("set", "split"), ("set", "subset"), ("track", "genre_top")} <= set(table.columns)


@pytest.mark.parametrize("subset", ["small", "medium", "large"])
def test_nested_subsets_genre_top_labels_and_the_official_split(subset: str, fma_tree: FMATree, tmp_path: Path) -> None:
    data = _prepare(fma_tree, tmp_path, f"dataset.subset={subset}")
    in_subset = [t for t in fma_tree.tracks if RANK[t.subset] <= RANK[subset]]
    labelled = [t for t in in_subset if t.genre_top is not None]
    good = [t for t in labelled if t.audio == "ok"]
    assert data.labels == sorted({t.genre_top for t in good})
    expected = {split: {t.track_id for t in good if OFFICIAL[t.split] == split} for split in OFFICIAL.values()}
    assert {split: {_track_id(p) for p in clips.paths} for split, clips in data.splits.items()} == expected
    by_id = {t.track_id: t for t in good}
    for clips in data.splits.values():
        assert [data.labels[k] for k in clips.targets] == [by_id[_track_id(p)].genre_top for p in clips.paths]
    dropped = len(in_subset) - len(labelled)
    assert (
        f"FMA subset '{subset}': {len(in_subset)} tracks in tracks.csv; {dropped} without track/genre_top "
        f"dropped; {len(labelled)} used" in data.summary()
    )
    assert (dropped > 0) == (subset == "large")


def test_bad_tracks_are_skipped_with_their_reasons(fma_tree: FMATree, tmp_path: Path) -> None:
    data = _prepare(fma_tree, tmp_path)
    reasons = {_track_id(path): reason for path, reason in data.skipped.items()}
    assert set(reasons) == {99134, 108925, 98567, 133297}
    assert reasons[99134] == "zero-byte file"
    assert reasons[108925] == "file missing"
    assert reasons[98567].startswith("too short (3.0") and "min_seconds=10" in reasons[98567]
    assert reasons[133297].startswith("undecodable (")
    used = {_track_id(p) for clips in data.splits.values() for p in clips.paths}
    assert not used & set(reasons)
    for track_id in reasons:
        assert f"{track_id:06d}.mp3: " in data.summary()


def test_short_tracks_are_padded_or_skipped_per_option(fma_tree: FMATree, tmp_path: Path) -> None:
    padded = _prepare(fma_tree, tmp_path, "dataset.min_seconds=2")
    row = padded.cache.row_of[str(fma_tree.audio.resolve() / "098" / "098567.mp3")]
    clip = padded.cache.read(row)
    assert abs(clip[: 8000 * 2]).max() > 1000 and not clip[8000 * 4 :].any()  # 3 s of tone, then zeros
    skipped = _prepare(fma_tree, tmp_path, "dataset.min_seconds=2", "dataset.short_clips=skip")
    reason = skipped.skipped[str(fma_tree.audio.resolve() / "098" / "098567.mp3")]
    assert reason.startswith("shorter than the clip (3.0")


def test_missing_tracks_csv_and_wrong_metadata_folders_are_one_line_errors(fma_tree: FMATree, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(
        ConfigError,
        match=r"^dataset.metadata_root: '.*empty' holds no tracks.csv\. Point it at "
        r"the fma_metadata/ folder",
    ):
        _prepare(fma_tree, tmp_path, metadata=empty)
    with pytest.raises(
        ConfigError,
        match=r"^dataset.metadata_root: .* holds no tracks.csv\. Did you mean "
        r"'.*fma_metadata'\?",
    ):
        _prepare(fma_tree, tmp_path, metadata=fma_tree.metadata.parent)
    with pytest.raises(
        ConfigError,
        match=r"^dataset.metadata_root: .* holds FMA audio \(NNN/NNNNNN.mp3\), not "
        r"tracks.csv\. That is the audio_root",
    ):
        _prepare(fma_tree, tmp_path, metadata=fma_tree.audio)
    other = tmp_path / "other"
    other.mkdir()
    # A tracks.csv from something else (one header row, as most CSVs).
    (other / "tracks.csv").write_text("track_id,title,genre\n1,Song,Rock\n2,Other,Pop\n")
    with pytest.raises(
        ConfigError,
        match=r"^dataset.metadata_root: .* lacks the column\(s\) set/subset, set/split, "
        r"track/genre_top, so it is not FMA's tracks.csv",
    ):
        _prepare(fma_tree, tmp_path, metadata=other)


def test_an_audio_root_without_the_expected_files_is_a_one_line_error(fma_tree: FMATree, tmp_path: Path) -> None:
    empty = tmp_path / "fma_small"
    empty.mkdir()
    with pytest.raises(
        ConfigError,
        match=r"^dataset.audio_root: '.*fma_small' holds none of the \d+ tracks of "
        r"subset 'small' \(e.g. .*fma_small/000/000002.mp3\)",
    ):
        _prepare(fma_tree, tmp_path, audio=empty)
    with pytest.raises(ConfigError, match=r"^dataset.audio_root: .* Did you mean .*fma_large\?"):
        _prepare(fma_tree, tmp_path, "dataset.subset=large", audio=fma_tree.audio.parent)


def test_a_wrong_subset_and_unknown_split_values_are_one_line_errors(fma_tree: FMATree, tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"^dataset.subset: 'full' is not an FMA subset\. Use one of small, "
        r"medium, large",
    ):
        _prepare(fma_tree, tmp_path, "dataset.subset=full")
    metadata = copy_tree(fma_tree.metadata, tmp_path / "fma_metadata")
    table = pd.read_csv(metadata / "tracks.csv", header=[0, 1], index_col=0)
    table.loc[table.index[0], ("set", "split")] = "holdout"
    table.to_csv(metadata / "tracks.csv")
    with pytest.raises(ConfigError, match=r"set/split values other than training, validation, test \(holdout\)"):
        _prepare(fma_tree, tmp_path, metadata=metadata)

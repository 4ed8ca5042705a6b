"""dataset/split=kfold: every clip in exactly one test fold, no group on two sides, stratified counts,
seeded folds, one-line errors; on synthetic items, the demo corpus, the FMA fixture (artist groups from
tracks.csv) and a manifest with a group column."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate

from genre.data.items import AudioItem
from genre.data.prepare import prepare_data
from genre.data.splits import KFoldSplit
from helpers import TINY_DEMO, compose_run
from helpers.dataset_trees import FMATree, make_genre_folder

SIDES = ("train", "val", "test")


def _folds(
    items: Sequence[AudioItem], folds: int, seed: int = 0, val: float = 0.2, group: str | None = "group"
) -> list[list[str]]:
    """Every fold's assignment of ``items``."""
    return [KFoldSplit(folds, fold, seed, val, group).assign(items) for fold in range(folds)]


def _check_partition(items: Sequence[AudioItem], assignments: list[list[str]]) -> None:
    """Every clip in exactly one test fold; every fold has all three sides and nothing else."""
    test_count = Counter(i for a in assignments for i, side in enumerate(a) if side == "test")
    assert [test_count[i] for i in range(len(items))] == [1] * len(items)
    for assignment in assignments:
        assert set(assignment) == set(SIDES)


def _check_groups(items: Sequence[AudioItem], assignments: list[list[str]]) -> None:
    """No group value on two sides (train/val/test) of any fold."""
    for assignment in assignments:
        sides: dict[str, set[str]] = defaultdict(set)
        for item, side in zip(items, assignment):
            if item.group is not None:
                sides[item.group].add(side)
        assert all(len(s) == 1 for s in sides.values()), {g: s for g, s in sides.items() if len(s) > 1}


def _test_counts(items: Sequence[AudioItem], assignment: list[str]) -> Counter:
    return Counter(item.label for item, side in zip(items, assignment) if side == "test")


def _items(per_genre: dict[str, int]) -> list[AudioItem]:
    return [AudioItem(Path(f"/data/{g}/{g}.{i:05d}.wav"), g) for g, n in per_genre.items() for i in range(n)]


def _artist_items(seed: int = 0) -> list[AudioItem]:
    """Like FMA: one-genre artists of 1-5 tracks, a few tracks without an artist."""
    rng = np.random.default_rng(seed)
    items = []
    for genre, artists in (("rock", 14), ("jazz", 9), ("folk", 7)):
        for artist in range(artists):
            for track in range(int(rng.integers(1, 6))):
                group = None if rng.random() < 0.1 else f"{genre}-{artist}"
                items.append(AudioItem(Path(f"/fma/{genre}/{artist}/{track}.mp3"), genre, group=group))
    return items


@pytest.mark.parametrize("folds", [2, 3, 5])
def test_ungrouped_folds_partition_the_clips_and_are_stratified_within_one(folds: int) -> None:
    per_genre = {"rock": 23, "jazz": 11, "pop": 7, "metal": 5}
    items = _items(per_genre)
    assignments = _folds(items, folds)
    _check_partition(items, assignments)
    for assignment in assignments:
        for genre, count in _test_counts(items, assignment).items():
            assert math.floor(per_genre[genre] / folds) <= count <= math.ceil(per_genre[genre] / folds)
        val = Counter(item.label for item, side in zip(items, assignment) if side == "val")
        assert set(val) == set(per_genre)  # every genre validates, even the 5-clip one


def test_grouped_folds_keep_groups_on_one_side_with_an_honest_balance_bound() -> None:
    items = _artist_items()
    assignments = _folds(items, 4, val=0.25)
    _check_partition(items, assignments)
    _check_groups(items, assignments)
    # StratifiedGroupKFold guarantees no count: it places whole groups greedily. What it achieves (and what
    # we hold it to): each genre's test count is within its largest group's size of the stratified n/k.
    totals = Counter(item.label for item in items)
    largest = Counter()
    for (genre, _), size in Counter((i.label, i.group) for i in items if i.group is not None).items():
        largest[genre] = max(largest[genre], size)
    for assignment in assignments:
        for genre, total in totals.items():
            assert abs(_test_counts(items, assignment)[genre] - total / 4) <= max(1, largest[genre])


@pytest.mark.parametrize(
    "make,group", [(lambda: _items({"rock": 20, "jazz": 12, "pop": 9}), None), (_artist_items, "group")]
)
def test_same_seed_same_folds_other_seed_other_folds(make, group: str | None) -> None:
    items = make()
    first = _folds(items, 3, seed=7, group=group)
    assert _folds(items, 3, seed=7, group=group) == first
    # The source's listing order does not matter: the folds follow the files, not the list.
    reordered = list(reversed(items))
    again = _folds(reordered, 3, seed=7, group=group)
    assert [dict(zip(reordered, a)) for a in again] == [dict(zip(items, a)) for a in first]

    def partition(assignments: list[list[str]]) -> set[frozenset[int]]:
        return {frozenset(i for i, s in enumerate(a) if s == "test") for a in assignments}

    assert partition(_folds(items, 3, seed=8, group=group)) != partition(first)


def test_predefined_splits_are_ignored_and_ungrouped_clips_are_their_own_group() -> None:
    items = [AudioItem(p.path, p.label, split="test") for p in _items({"rock": 6, "jazz": 6})]
    assignments = _folds(items, 3)  # no group values at all: the plain stratified folds
    _check_partition(items, assignments)
    assert assignments == _folds(items, 3, group=None)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"folds": 1}, r"^folds: 1 is not a whole number of at least 2\. Use e\.g\. 5"),
        ({"folds": 5, "fold": 5}, r"^fold: 5 is not in 0\.\.4\. Choose one of the 5 folds"),
        ({"fold": -1}, r"^fold: -1 is not in 0\.\.4"),
        ({"val": 0.0}, r"^val: 0\.0 is not a fraction in \(0, 1\)"),
        ({"group": "artist"}, r"^group: 'artist' is not a field of the dataset's items \(group\)"),
    ],
)
def test_bad_parameters_name_themselves(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        KFoldSplit(**kwargs)


def test_impossible_splits_are_one_clear_error() -> None:
    with pytest.raises(
        ValueError,
        match=r"^folds: genre 'pop' has only 3 usable clip\(s\), fewer than folds=5, "
        r".*Lower folds to at most 3 or add clips of 'pop'",
    ):
        KFoldSplit(folds=5).assign(_items({"rock": 10, "pop": 3}))
    few_artists = [
        AudioItem(p.path, p.label, group=f"artist {i % 3}") for i, p in enumerate(_items({"rock": 10, "pop": 10}))
    ]
    with pytest.raises(
        ValueError,
        match=r"^folds: the clips have only 3 distinct 'group' values, fewer than "
        r"folds=5\. Lower folds or set group=null",
    ):
        KFoldSplit(folds=5, group="group").assign(few_artists)
    with pytest.raises(ValueError, match=r"^val: 0\.2 of the training folds needs 5 'group' groups, they have 2"):
        KFoldSplit(folds=3, val=0.2, group="group").assign(few_artists)


def test_the_config_group_instantiates_the_split(tmp_path: Path, cache_dir: Path) -> None:
    cfg = compose_run(["dataset/split=kfold", "dataset.split.fold=2"], tmp_path, cache_dir)
    split = instantiate(cfg.dataset.split)
    assert isinstance(split, KFoldSplit)
    assert (split.folds, split.fold, split.seed, split.val, split.group) == (5, 2, 0, 0.15, "group")


def test_on_the_demo_corpus(tmp_path: Path, cache_dir: Path) -> None:
    overrides = [*TINY_DEMO, "dataset/split=kfold", "dataset.split.folds=4"]
    cfg = compose_run(overrides, tmp_path, cache_dir)
    items = instantiate(cfg.dataset.source).items()  # as prepare_data lists them
    assert {item.group for item in items} == {None}
    assignments = [KFoldSplit(4, fold, 0, 0.15, "group").assign(items) for fold in range(4)]
    _check_partition(items, assignments)
    for assignment in assignments:
        assert set(_test_counts(items, assignment).values()) == {1}  # 4 clips per genre, 4 folds
    data = prepare_data(
        compose_run([*overrides, "dataset.split.fold=1"], tmp_path, cache_dir).dataset, cache_dir, progress=False
    )
    test = {Path(p).resolve() for p in data.splits["test"].paths}
    assert test == {Path(i.path).resolve() for i, side in zip(items, assignments[1]) if side == "test"}


def test_on_the_fma_fixture_artists_never_straddle(fma_tree: FMATree, tmp_path: Path) -> None:
    overrides = [
        "dataset=fma",
        f"dataset.metadata_root={fma_tree.metadata}",
        f"dataset.audio_root={fma_tree.audio}",
        "dataset.sample_rate=8000",
        "dataset.clip_seconds=10",
        "dataset/split=kfold",
        "dataset.split.folds=3",
        # 7 artists in 3 folds: a quarter of the training artists for validation leaves every genre a
        # training clip (prepare_data refuses a genre without one).
        "dataset.split.val=0.25",
    ]
    cfg = compose_run(overrides, tmp_path, tmp_path / "cache")
    items = instantiate(cfg.dataset.source).items()
    # The fixture writes ('artist', 'id') = track id % 7, as tracks.csv's artist column.
    assert [item.group for item in items] == [f"artist {int(item.path.stem) % 7}" for item in items]
    by_track: dict[int, str] = {}
    for fold in range(3):
        data = prepare_data(
            compose_run([*overrides, f"dataset.split.fold={fold}"], tmp_path, tmp_path / "cache").dataset,
            tmp_path / "cache",
            progress=False,
        )
        artists = {side: {int(Path(p).stem) % 7 for p in clips.paths} for side, clips in data.splits.items()}
        assert not (
            artists["train"] & artists["val"] or artists["train"] & artists["test"] or artists["val"] & artists["test"]
        )
        for path in data.splits["test"].paths:
            assert int(Path(path).stem) not in by_track
            by_track[int(Path(path).stem)] = f"fold {fold}"
    usable = {t.track_id for t in fma_tree.tracks if t.subset == "small" and t.audio == "ok"}
    assert set(by_track) == usable


def test_on_a_manifest_with_a_group_column(tmp_path: Path) -> None:
    root = make_genre_folder(tmp_path / "audio", per_genre=6)
    rows = ["path,label,group"]
    for genre in ("ambient", "polka", "techno"):
        for i, file in enumerate(sorted((root / genre).iterdir())):
            # Two files per recording session; one file with no group (its own).
            rows.append(f"{file},{genre},{'' if (genre, i) == ('polka', 5) else f'{genre}-session{i // 2}'}")
    manifest = tmp_path / "list.csv"
    manifest.write_text("\n".join(rows) + "\n")
    cfg = compose_run(
        [
            "dataset=folder",
            f"dataset.manifest={manifest}",
            "dataset/split=kfold",
            "dataset.split.folds=3",
            "dataset.split.val=0.25",
        ],
        tmp_path,
        tmp_path / "cache",
    )
    items = instantiate(cfg.dataset.source).items()
    assert Counter(item.group for item in items)[None] == 1 and len({i.group for i in items}) == 10
    assignments = _folds(items, 3, val=0.5)
    _check_partition(items, assignments)
    _check_groups(items, assignments)

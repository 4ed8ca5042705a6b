"""Stratified splits: seeded, disjoint, proportional, and label ids from sorted names."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from genre.data.items import AudioItem
from genre.data.splits import StratifiedSplit, label_names


def _items(per_genre: dict[str, int]) -> list[AudioItem]:
    return [AudioItem(Path(f"/data/{g}/{g}.{i:05d}.wav"), g) for g, n in per_genre.items() for i in range(n)]


def test_same_seed_same_split_and_input_order_irrelevant() -> None:
    items = _items({"rock": 20, "jazz": 20, "pop": 10})
    a = StratifiedSplit(0.2, 0.2, seed=3).assign(items)
    b = StratifiedSplit(0.2, 0.2, seed=3).assign(list(reversed(items)))
    assert dict(zip(items, a)) == dict(zip(reversed(items), b))
    c = StratifiedSplit(0.2, 0.2, seed=4).assign(items)
    assert a != c


def test_split_is_stratified_and_covers_every_genre() -> None:
    items = _items({"rock": 40, "jazz": 20, "pop": 5})
    splits = StratifiedSplit(0.15, 0.15, seed=0).assign(items)
    counts = Counter((item.label, split) for item, split in zip(items, splits))
    assert counts[("rock", "test")] == 6 and counts[("rock", "val")] == 6 and counts[("rock", "train")] == 28
    for genre in ("rock", "jazz", "pop"):
        for split in ("train", "val", "test"):
            assert counts[(genre, split)] >= 1


def test_predefined_splits_are_kept() -> None:
    items = [*_items({"rock": 10}), AudioItem(Path("/x/official.mp3"), "rock", "test")]
    splits = StratifiedSplit(0.2, 0.2, seed=0).assign(items)
    assert splits[-1] == "test"


def test_label_ids_come_from_sorted_names() -> None:
    items = _items({"zydeco": 3, "ambient": 3, "metal": 3})
    assert label_names(items) == ["ambient", "metal", "zydeco"]


@pytest.mark.parametrize("val,test", [(0.0, 0.2), (0.5, 0.5), (1.2, 0.1)])
def test_bad_ratios_name_the_parameter(val: float, test: float) -> None:
    # The split names its parameters (val, test); the command line adds the key, dataset.split.
    with pytest.raises(ValueError, match=r"^(val: |test: |val \+ test ).*\. (Use|Make) "):
        StratifiedSplit(val, test)


def test_too_few_clips_per_genre_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="'rare' has only 2"):
        StratifiedSplit().assign(_items({"rare": 2, "common": 10}))

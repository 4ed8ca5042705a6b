"""Train/validation/test splits.

A split object's ``assign(items)`` returns, for every item, "train", "val", "test", or None for an
item the split leaves out (GTZAN's fault-filtered split uses 930 of its 1000 files). Splits are
chosen with the ``dataset/split`` config group.

Label ids always come from the *sorted* genre names, so the same dataset gives the same ids in every
run and process (``set()`` order would not).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from genre.data.sources import AudioItem

SPLITS: tuple[str, ...] = ("train", "val", "test")


def label_names(items: Sequence[AudioItem]) -> list[str]:
    """The sorted genre names; a label's id is its position in this list."""
    return sorted({item.label for item in items})


class StratifiedSplit:
    """A seeded split that keeps every genre's proportions in train, val and test.

    Items whose source already defines a split (e.g. FMA's official one) keep it. Each genre is
    shuffled on its own and cut by the ratios, with at least one clip of every genre in each split,
    so that small corpora still validate and test on all classes.
    """

    def __init__(self, val: float = 0.15, test: float = 0.15, seed: int = 0) -> None:
        for key, value in (("val", val), ("test", test)):
            if not 0.0 < value < 1.0:
                raise ValueError(f"{key}: {value} is not a fraction in (0, 1). Use e.g. 0.15")
        if val + test >= 1.0:
            raise ValueError(f"val + test = {val + test:.2f} leaves nothing to train on. Make val + test < 1")
        self.val = val
        self.test = test
        self.seed = seed

    def assign(self, items: Sequence[AudioItem]) -> list[str]:
        """Return the split name ("train", "val" or "test") of every item, in the items' order."""
        splits: list[str | None] = [item.split for item in items]
        by_label: dict[str, list[int]] = defaultdict(list)
        # Sort by path so the result does not depend on the order the source listed files in.
        for index in sorted(range(len(items)), key=lambda i: str(items[i].path)):
            if splits[index] is None:
                by_label[items[index].label].append(index)
        rng = np.random.default_rng(self.seed)
        for label in sorted(by_label):
            indices = by_label[label]
            if len(indices) < 3:
                raise ValueError(f"genre '{label}' has only {len(indices)} usable clip(s). "
                                 "A stratified split needs at least 3 per genre; add clips or drop the genre")
            order = [indices[i] for i in rng.permutation(len(indices))]
            n_test = max(1, round(len(order) * self.test))
            n_val = max(1, round(len(order) * self.val))
            n_val = min(n_val, len(order) - n_test - 1)
            for position, index in enumerate(order):
                splits[index] = "test" if position < n_test else "val" if position < n_test + n_val else "train"
        return [s if s is not None else "train" for s in splits]


class PredefinedSplit:
    """The split the dataset itself defines for every file (FMA's official one, a manifest's column)."""

    def assign(self, items: Sequence[AudioItem]) -> list[str | None]:
        """Return each item's own split; every item must have one."""
        missing = [item for item in items if item.split is None]
        if missing:
            raise ValueError(f"{len(missing)} of {len(items)} files have no predefined split "
                             f"(e.g. {missing[0].path}). Use dataset/split=stratified for this dataset")
        return [item.split for item in items]

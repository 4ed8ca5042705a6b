"""Train/validation/test splits.

A split object's ``assign(items)`` returns, for every item, "train", "val", "test", or None for an
item the split leaves out (GTZAN's fault-filtered split uses 930 of its 1000 files). Splits are
chosen with the ``dataset/split`` config group.

Label ids always come from the *sorted* genre names, so the same dataset gives the same ids in every
run and process (``set()`` order would not).
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import fields

import numpy as np

from genre.data.items import AudioItem

SPLITS: tuple[str, ...] = ("train", "val", "test")
# What KFoldSplit's ``group`` may name: an item field other than the file, its label and its own split.
_GROUP_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(AudioItem) if f.name not in ("path", "label", "split"))


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
                raise ValueError(
                    f"genre '{label}' has only {len(indices)} usable clip(s). "
                    "A stratified split needs at least 3 per genre; add clips or drop the genre"
                )
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
            raise ValueError(
                f"{len(missing)} of {len(items)} files have no predefined split "
                f"(e.g. {missing[0].path}). Use dataset/split=stratified for this dataset"
            )
        return [item.split for item in items]


class KFoldSplit:
    """Fold ``fold`` of a seeded, stratified k-fold split: that fold tests, the other folds train and validate.

    Every clip is in exactly one of the ``folds`` test folds (the same seed gives the same folds for every
    ``fold``, so a grid over ``fold=0..k-1`` is one cross-validation). ``val`` of the training folds is held
    out for validation, stratified by label. With ``group`` (the name of an :class:`AudioItem` attribute,
    e.g. ``group``: FMA's artist, a manifest's group column) clips sharing a group value are never on two
    sides of any split; clips without a value are each their own group, and with no value at all the
    split is the plain stratified one. Splits the source defines (FMA's official one) are ignored: every
    clip takes its turn in a test fold.

    scikit-learn does the work: StratifiedKFold, or StratifiedGroupKFold when grouped. The latter places
    whole groups greedily, so per-class counts are only as even as the group sizes allow, and its
    ``random_state`` only breaks ties between groups of the same label make-up (plentiful in practice:
    one-genre artists with equally many tracks), so with groups another seed may give the same folds.
    Validation clips by
    StratifiedShuffleSplit, or when grouped by the first fold of a StratifiedGroupKFold with
    round(1 / val) folds (so ``val`` is then met to the nearest 1/n).
    """

    def __init__(
        self, folds: int = 5, fold: int = 0, seed: int = 0, val: float = 0.15, group: str | None = "group"
    ) -> None:
        if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
            raise ValueError(f"folds: {folds!r} is not a whole number of at least 2. Use e.g. 5")
        if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < folds:
            raise ValueError(f"fold: {fold!r} is not in 0..{folds - 1}. Choose one of the {folds} folds")
        if not 0.0 < val < 1.0:
            raise ValueError(f"val: {val!r} is not a fraction in (0, 1). Use e.g. 0.15")
        if group is not None and group not in _GROUP_FIELDS:
            raise ValueError(
                f"group: '{group}' is not a field of the dataset's items "
                f"({', '.join(_GROUP_FIELDS)}). Use group (or null for no grouping)"
            )
        self.folds, self.fold, self.seed, self.val, self.group = folds, fold, seed, val, group

    def assign(self, items: Sequence[AudioItem]) -> list[str]:
        """Return "test" for the clips of fold ``fold``, "val" or "train" for the others, in the items' order."""
        # Sorted by path so the folds do not depend on the order the source listed files in.
        order = sorted(range(len(items)), key=lambda i: str(items[i].path))
        labels = np.array([items[i].label for i in order])
        groups = self._groups([items[i] for i in order])
        self._check_counts(labels, groups)
        test = self._test_fold(labels, groups)
        rest = np.setdiff1d(np.arange(len(order)), test)
        val = rest[self._val_part(labels[rest], None if groups is None else groups[rest])]
        splits = np.full(len(order), "train", dtype=object)
        splits[test], splits[val] = "test", "val"
        assignment = [""] * len(items)
        for position, index in enumerate(order):
            assignment[index] = str(splits[position])
        return assignment

    def _groups(self, items: Sequence[AudioItem]) -> np.ndarray | None:
        """Integer group ids (clips without a value get one of their own), or None when nothing is grouped."""
        if self.group is None:
            return None
        values = [getattr(item, self.group) for item in items]
        if all(value is None for value in values):
            return None
        ids: dict[object, int] = {}
        return np.array(
            [
                ids.setdefault(value if value is not None else ("ungrouped", i), len(ids))
                for i, value in enumerate(values)
            ]
        )

    def _check_counts(self, labels: np.ndarray, groups: np.ndarray | None) -> None:
        names, counts = np.unique(labels, return_counts=True)
        if counts.min() < self.folds:
            rare = names[counts.argmin()]
            raise ValueError(
                f"folds: genre '{rare}' has only {counts.min()} usable clip(s), fewer than folds="
                f"{self.folds}, so some test folds would lack it. Lower folds to at most "
                f"{counts.min()} or add clips of '{rare}'"
            )
        if groups is not None and np.unique(groups).size < self.folds:
            raise ValueError(
                f"folds: the clips have only {np.unique(groups).size} distinct '{self.group}' values, "
                f"fewer than folds={self.folds}. Lower folds or set group=null"
            )

    def _test_fold(self, labels: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
        """The positions of fold ``fold``'s test clips."""
        from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

        placeholder = np.zeros(len(labels))
        if groups is None:
            cv = StratifiedKFold(n_splits=self.folds, shuffle=True, random_state=self.seed)
        else:
            cv = StratifiedGroupKFold(n_splits=self.folds, shuffle=True, random_state=self.seed)
        _, test = list(cv.split(placeholder, labels, groups))[self.fold]
        return test

    def _val_part(self, labels: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
        """The positions, within the training folds, of the validation clips."""
        from sklearn.model_selection import StratifiedGroupKFold, StratifiedShuffleSplit

        placeholder = np.zeros(len(labels))
        fix = "Raise val, lower folds, or add clips"
        if groups is None:
            # At least one clip per genre where possible, as the stratified split does, so small corpora
            # still validate on every class.
            n_val = max(int(np.ceil(self.val * len(labels))), np.unique(labels).size)
            try:
                cv = StratifiedShuffleSplit(n_splits=1, test_size=n_val, random_state=self.seed)
                _, val = next(cv.split(placeholder, labels))
            except ValueError as exc:
                raise ValueError(
                    f"val: cannot hold out {n_val} of the {len(labels)} training clips stratified by "
                    f"genre ({exc}). {fix}"
                ) from exc
            return val
        n_splits = max(2, round(1 / self.val))
        if np.unique(groups).size < n_splits:
            raise ValueError(
                f"val: {self.val} of the training folds needs {n_splits} '{self.group}' groups, they "
                f"have {np.unique(groups).size}. {fix}"
            )
        cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=self.seed)
        with warnings.catch_warnings():
            # "The least populated class has only n members": known and documented — grouped validation
            # may lack a rare genre; the test folds were checked above.
            warnings.filterwarnings("ignore", "The least populated class", UserWarning)
            _, val = next(cv.split(placeholder, labels, groups))
        return val

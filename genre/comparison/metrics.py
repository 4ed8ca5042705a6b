"""Clip-level classification metrics from true and predicted labels, and a bootstrap interval for accuracy.

Labels are integer ids into ``labels`` (the run's sorted genre names). Every class of ``labels`` is
reported even when a test fold lacks it: its recall is NaN when the fold has no clip of it (recall is
undefined, not zero), its F1 NaN when it is neither true nor predicted. Macro-F1 averages the classes
that occur (scikit-learn's own choice when no label list is given), so a class absent from a fold does
not drag the average down with an undefined zero.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats
from sklearn.metrics import accuracy_score, balanced_accuracy_score, precision_recall_fscore_support

from genre.comparison.intervals import CONFIDENCE, Interval


@dataclass(frozen=True)
class ClassificationMetrics:
    """Accuracy, balanced accuracy, macro-F1 and, per class name, recall, F1 and the number of true clips."""

    n: int
    accuracy: float
    balanced_accuracy: float
    macro_f1: float
    recall: dict[str, float] = field(default_factory=dict)
    f1: dict[str, float] = field(default_factory=dict)
    support: dict[str, int] = field(default_factory=dict)

    def flat(self, prefix: str = "") -> dict[str, float]:
        """One flat mapping for metrics files and TensorBoard: ``{prefix}acc``, ``{prefix}balanced_acc``,
        ``{prefix}macro_f1``, ``{prefix}recall/<class>``, ``{prefix}f1/<class>``."""
        values = {
            f"{prefix}acc": self.accuracy,
            f"{prefix}balanced_acc": self.balanced_accuracy,
            f"{prefix}macro_f1": self.macro_f1,
        }
        values.update({f"{prefix}recall/{name}": value for name, value in self.recall.items()})
        values.update({f"{prefix}f1/{name}": value for name, value in self.f1.items()})
        return values


def label_arrays(
    y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, n_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Both label sequences as equal-length, non-empty integer arrays (ids in ``0..n_classes-1`` if given)."""
    true, pred = np.asarray(y_true), np.asarray(y_pred)
    for name, array in (("y_true", true), ("y_pred", pred)):
        if array.ndim != 1 or array.size == 0 or not np.issubdtype(array.dtype, np.integer):
            raise ValueError(
                f"{name}: expected a non-empty 1-D array of integer label ids "
                f"(got shape {array.shape}, dtype {array.dtype})"
            )
        if n_classes is not None and (array.min() < 0 or array.max() >= n_classes):
            raise ValueError(
                f"{name}: label ids must be in 0..{n_classes - 1} (the labels list), "
                f"found {int(array.min())}..{int(array.max())}"
            )
    if true.shape != pred.shape:
        raise ValueError(f"y_pred: {pred.size} predictions for {true.size} true labels")
    return true, pred


def classification_metrics(
    y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, labels: Sequence[str]
) -> ClassificationMetrics:
    """Accuracy, balanced accuracy (mean recall over the classes present in ``y_true``), macro-F1 and
    per-class recall/F1 for every class name in ``labels``; ``y_true``/``y_pred`` are ids into ``labels``."""
    if not labels:
        raise ValueError("labels: expected the class names, got an empty list")
    true, pred = label_arrays(y_true, y_pred, len(labels))
    ids = list(range(len(labels)))
    # zero_division=NaN: an undefined recall/F1 is reported as undefined, and left out of the macro average.
    _, recall, f1, support = precision_recall_fscore_support(true, pred, labels=ids, zero_division=np.nan)
    with warnings.catch_warnings():
        # "y_pred contains classes not in y_true": expected when a fold lacks a class; the score is still right.
        warnings.simplefilter("ignore", UserWarning)
        balanced = balanced_accuracy_score(true, pred)
    macro_f1 = float(np.nanmean(f1)) if not np.isnan(f1).all() else math.nan
    return ClassificationMetrics(
        n=int(true.size),
        accuracy=float(accuracy_score(true, pred)),
        balanced_accuracy=float(balanced),
        macro_f1=macro_f1,
        recall={name: float(r) for name, r in zip(labels, recall)},
        f1={name: float(v) for name, v in zip(labels, f1)},
        support={name: int(s) for name, s in zip(labels, support)},
    )


def bootstrap_accuracy(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Interval:
    """Clip-level accuracy with a seeded bootstrap ``confidence`` interval (resampling clips).

    The percentile method, not BCa: for a mean of 0/1 outcomes at the sizes we test (tens to
    thousands of clips) the two agree closely, the percentile interval always stays inside [0, 1],
    and BCa needs a jackknife over every clip (O(n²) work on FMA-sized test sets) and returns NaN when
    all clips are right or all wrong. Degenerate cases give a zero-width interval instead of a crash:
    one clip (nothing to resample) and all-right/all-wrong (every resample has the same accuracy —
    the bootstrap cannot see uncertainty there; the interval says so by having no width).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence: {confidence} is not in (0, 1)")
    if n_resamples < 1:
        raise ValueError(f"n_resamples: {n_resamples} is not a positive count")
    true, pred = label_arrays(y_true, y_pred)
    correct = (true == pred).astype(float)
    accuracy = float(correct.mean())
    if correct.size < 2 or correct.min() == correct.max():
        return Interval(accuracy, accuracy, accuracy, confidence)
    result = stats.bootstrap(
        (correct,),
        np.mean,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    low, high = result.confidence_interval
    return Interval(accuracy, float(low), float(high), confidence)

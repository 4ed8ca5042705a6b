"""Paired significance tests between two configurations, and Holm's adjustment over several.

Which test fits which repeats:

- seeds on one split: :func:`paired_t_test` (scipy's ``ttest_rel``) over the matched seeds;
- k-fold cross-validation: :func:`corrected_resampled_t_test` (Nadeau & Bengio), because the folds'
  training sets overlap and the plain paired t-test then overstates significance;
- two single runs on the same test clips: :func:`mcnemar_exact` (statsmodels) on their predictions.

Conventions for the edge cases (so a summary never crashes on them): fewer than two pairs is no test
(statistic and p-value NaN, with a note); two identical score series mean "no difference", p = 1.0 with
a note (the t statistic itself is 0/0); differences that are the same non-zero number on every pair have
zero variance, so t = ±inf and p = 0.0, which is scipy's own answer, with a note. "Identical" and
"the same" allow for float rounding (1e-12).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from genre.comparison.intervals import as_values
from genre.comparison.metrics import label_arrays

ALPHA = 0.05
# Differences this close count as equal (scores are rounded floats).
_TOLERANCE = 1e-12


@dataclass(frozen=True)
class SignificanceResult:
    """One two-sided test of "a and b perform the same": its statistic, p-value and number of pairs."""

    test: str
    statistic: float
    p_value: float
    n: int
    note: str = ""


def _paired(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> np.ndarray:
    """The differences ``a - b`` of two equally long score series."""
    first, second = as_values(a, "a"), as_values(b, "b")
    if first.shape != second.shape:
        raise ValueError(f"b: {second.size} scores to pair with {first.size} in a")
    return first - second


def _degenerate(test: str, differences: np.ndarray) -> SignificanceResult | None:
    """The documented answers where the t statistic is undefined or infinite; None when it is regular."""
    n = differences.size
    if n < 2:
        return SignificanceResult(test, math.nan, math.nan, n, "one pair: a paired test needs n >= 2")
    mean = float(differences.mean())
    # Scores are rounded floats: 0.9 - 0.8 and 1.0 - 0.9 differ in the last bit, yet are "the same difference".
    if np.ptp(differences) <= _TOLERANCE * max(1.0, abs(mean)):
        if abs(mean) <= _TOLERANCE:
            return SignificanceResult(test, 0.0, 1.0, n, "identical scores: no difference to test")
        return SignificanceResult(
            test, math.copysign(math.inf, mean), 0.0, n, "the difference is the same on every pair (zero variance)"
        )
    return None


def paired_t_test(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> SignificanceResult:
    """Student's paired t-test of ``a`` against ``b`` (scores matched by seed), two-sided."""
    differences = _paired(a, b)
    special = _degenerate("paired t-test", differences)
    if special is not None:
        return special
    result = stats.ttest_rel(as_values(a, "a"), as_values(b, "b"))
    return SignificanceResult("paired t-test", float(result.statistic), float(result.pvalue), differences.size)


def corrected_resampled_t_test(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    n_train: float | Sequence[float] | np.ndarray,
    n_test: float | Sequence[float] | np.ndarray,
) -> SignificanceResult:
    """Nadeau & Bengio's corrected resampled t-test of ``a`` against ``b``, matched by fold, two-sided.

    Nadeau & Bengio, "Inference for the generalization error", Machine Learning 52 (2003); applied to
    (repeated) k-fold CV by Bouckaert & Frank (2004). With the J paired differences d_j = a_j - b_j of
    models trained on n_train and tested on n_test clips::

        mean  d̄  = (1/J) Σ d_j
        var   σ̂² = 1/(J-1) Σ (d_j - d̄)²
        t         = d̄ / sqrt((1/J + n_test/n_train) · σ̂²),    t ~ Student t with J - 1 degrees of freedom

    The plain paired t-test uses 1/J alone; the added n_test/n_train accounts for the overlap of the
    training sets (for k folds 1/(k-1)). ``n_train``/``n_test`` may be per-fold counts; their means are used.
    """
    differences = _paired(a, b)
    ratio = _test_train_ratio(n_train, n_test)
    special = _degenerate("corrected resampled t-test", differences)
    if special is not None:
        return special
    j = differences.size
    variance = differences.var(ddof=1)
    statistic = differences.mean() / math.sqrt((1.0 / j + ratio) * variance)
    p_value = 2.0 * stats.t.sf(abs(statistic), df=j - 1)
    return SignificanceResult("corrected resampled t-test", float(statistic), float(p_value), j)


def _test_train_ratio(
    n_train: float | Sequence[float] | np.ndarray, n_test: float | Sequence[float] | np.ndarray
) -> float:
    """mean(n_test) / mean(n_train), both positive."""
    counts = {}
    for name, value in (("n_train", n_train), ("n_test", n_test)):
        array = np.atleast_1d(np.asarray(value, dtype=float))
        if array.size == 0 or np.isnan(array).any() or (array <= 0).any():
            raise ValueError(f"{name}: expected positive clip counts, got {value!r}")
        counts[name] = float(array.mean())
    return counts["n_test"] / counts["n_train"]


@dataclass(frozen=True)
class McNemarResult(SignificanceResult):
    """McNemar's exact test with its 2x2 table of clips: rows a right/wrong, columns b right/wrong."""

    table: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0))

    @property
    def only_a_right(self) -> int:
        """Clips a classified right and b wrong."""
        return self.table[0][1]

    @property
    def only_b_right(self) -> int:
        """Clips b classified right and a wrong."""
        return self.table[1][0]


def mcnemar_exact(
    y_true: Sequence[int] | np.ndarray, pred_a: Sequence[int] | np.ndarray, pred_b: Sequence[int] | np.ndarray
) -> McNemarResult:
    """McNemar's exact test (statsmodels) of two classifiers' predictions on the same clips, two-sided.

    Only the clips exactly one of them gets right count: under "same accuracy" each such clip is a
    fair coin, so the p-value is a binomial test of their split. Identical predictions have no such
    clip: p = 1.0. The statistic is the smaller of the two discordant counts (statsmodels' convention).
    """
    true, first = label_arrays(y_true, pred_a)
    _, second = label_arrays(true, pred_b)
    right_a, right_b = first == true, second == true
    table = (
        (int(np.sum(right_a & right_b)), int(np.sum(right_a & ~right_b))),
        (int(np.sum(~right_a & right_b)), int(np.sum(~right_a & ~right_b))),
    )
    result = mcnemar(np.array(table), exact=True)
    note = "" if table[0][1] + table[1][0] else "no clip on which exactly one is right"
    return McNemarResult(
        "McNemar exact", float(result.statistic), float(result.pvalue), int(true.size), note, table=table
    )


@dataclass(frozen=True)
class ClipPredictions:
    """A run's predictions on its test clips: clip ids (e.g. file paths), true and predicted label ids."""

    clip_ids: Sequence[str]
    y_true: np.ndarray
    y_pred: np.ndarray


def mcnemar_on_clips(a: ClipPredictions, b: ClipPredictions) -> McNemarResult:
    """:func:`mcnemar_exact` on two runs' predictions, matched by clip id; ValueError naming ``b`` when the
    runs were not tested on the same clips with the same true labels."""
    order_b = {clip: i for i, clip in enumerate(b.clip_ids)}
    if len(order_b) != len(b.clip_ids) or len(set(a.clip_ids)) != len(a.clip_ids):
        raise ValueError("clip_ids: a run lists a clip twice")
    if set(order_b) != set(a.clip_ids):
        only_a, only_b = set(a.clip_ids) - set(order_b), set(order_b) - set(a.clip_ids)
        raise ValueError(
            f"b: the runs were tested on different clips ({len(only_a)} only in a, {len(only_b)} only "
            f"in b, e.g. {min(only_a or only_b)}); compare runs on the same test split"
        )
    index = np.array([order_b[clip] for clip in a.clip_ids])
    if not np.array_equal(np.asarray(a.y_true), np.asarray(b.y_true)[index]):
        raise ValueError(
            "b: the runs give the same clips different true labels; were they run on the same labels list?"
        )
    return mcnemar_exact(a.y_true, a.y_pred, np.asarray(b.y_pred)[index])


def holm(p_values: Sequence[float] | np.ndarray, alpha: float = ALPHA) -> tuple[np.ndarray, np.ndarray]:
    """Holm's step-down adjustment (statsmodels): the adjusted p-values and which are rejected at ``alpha``.

    NaN p-values (comparisons that could not be tested) stay NaN, are not rejected, and do not count
    in the family.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha: {alpha} is not in (0, 1)")
    values = np.asarray(p_values, dtype=float)
    adjusted, reject = np.full(values.shape, math.nan), np.zeros(values.shape, dtype=bool)
    tested = ~np.isnan(values)
    if tested.any():
        reject[tested], adjusted[tested], _, _ = multipletests(values[tested], alpha=alpha, method="holm")
    return adjusted, reject

"""genre.comparison against values computed independently: hand-built binomial and t computations,
Nadeau & Bengio's formula step by step, a manual Holm step-down; and the edge cases a summary meets
(identical predictions, n = 1, a class missing from a fold)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from genre.comparison.grouping import compare_with_best, configuration_table, configurations
from genre.comparison.intervals import t_interval
from genre.comparison.metrics import bootstrap_accuracy, classification_metrics
from genre.comparison.significance import (
    ClipPredictions,
    corrected_resampled_t_test,
    holm,
    mcnemar_exact,
    mcnemar_on_clips,
    paired_t_test,
)

# ------------------------------------------------------------------------------------------------
# metrics
# ------------------------------------------------------------------------------------------------


def test_metrics_by_hand_with_a_class_missing_from_the_fold() -> None:
    labels = ["blues", "jazz", "rock", "pop"]
    # No rock clip in this fold, one clip predicted rock; pop neither true nor predicted.
    y_true = np.array([0, 0, 0, 1, 1])
    y_pred = np.array([0, 0, 1, 1, 2])
    m = classification_metrics(y_true, y_pred, labels)
    assert m.n == 5 and m.accuracy == pytest.approx(3 / 5)
    # blues: tp 2, fn 1, fp 0; jazz: tp 1, fn 1, fp 1; rock: tp 0, fp 1, no true clip.
    assert m.recall["blues"] == pytest.approx(2 / 3) and m.recall["jazz"] == pytest.approx(1 / 2)
    assert math.isnan(m.recall["rock"]) and math.isnan(m.recall["pop"])
    f1_blues, f1_jazz = 2 * 2 / (2 * 2 + 0 + 1), 2 * 1 / (2 * 1 + 1 + 1)
    assert m.f1["blues"] == pytest.approx(f1_blues) and m.f1["jazz"] == pytest.approx(f1_jazz)
    assert m.f1["rock"] == 0.0 and math.isnan(m.f1["pop"])
    assert m.macro_f1 == pytest.approx((f1_blues + f1_jazz + 0.0) / 3)
    assert m.balanced_accuracy == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert m.support == {"blues": 3, "jazz": 2, "rock": 0, "pop": 0}
    flat = m.flat("test/")
    assert flat["test/acc"] == m.accuracy and set(flat) >= {"test/recall/pop", "test/f1/rock", "test/macro_f1"}


def test_metrics_refuse_mismatched_or_out_of_range_labels() -> None:
    with pytest.raises(ValueError, match=r"^y_pred: 2 predictions for 3"):
        classification_metrics([0, 1, 1], [0, 1], ["a", "b"])
    with pytest.raises(ValueError, match=r"^y_true: label ids must be in 0..1"):
        classification_metrics([0, 2], [0, 1], ["a", "b"])


def test_bootstrap_interval_matches_the_binomial_width_and_is_seeded() -> None:
    # The example: 290 test clips at about 78 %: a 95 % interval of about ±4.8 points.
    n, right = 290, 226
    y_true = np.zeros(n, dtype=int)
    y_pred = np.where(np.arange(n) < right, 0, 1)
    interval = bootstrap_accuracy(y_true, y_pred, seed=1)
    p = right / n
    normal_half = stats.norm.ppf(0.975) * math.sqrt(p * (1 - p) / n)
    assert interval.estimate == pytest.approx(p)
    assert interval.low < p < interval.high
    assert interval.half_width == pytest.approx(normal_half, abs=0.006)
    assert bootstrap_accuracy(y_true, y_pred, seed=1) == interval
    assert bootstrap_accuracy(y_true, y_pred, seed=2) != interval


@pytest.mark.parametrize(
    "y_true,y_pred,accuracy",
    [([3], [3], 1.0), ([3], [1], 0.0), ([0, 1, 2], [0, 1, 2], 1.0), ([0, 1, 2], [1, 2, 0], 0.0)],
)
def test_bootstrap_degenerate_cases_give_a_zero_width_interval(
    y_true: list[int], y_pred: list[int], accuracy: float
) -> None:
    interval = bootstrap_accuracy(y_true, y_pred)
    assert (interval.estimate, interval.low, interval.high) == (accuracy, accuracy, accuracy)


# ------------------------------------------------------------------------------------------------
# intervals
# ------------------------------------------------------------------------------------------------


def test_t_interval_against_the_t_table() -> None:
    interval = t_interval([1.0, 2.0, 3.0])
    # mean 2, std 1, t_{0.975, 2} = 4.303 (any t table): half-width 4.303 / sqrt(3).
    assert interval.mean == 2.0 and interval.std == pytest.approx(1.0) and interval.n == 3
    assert interval.half_width == pytest.approx(4.303 / math.sqrt(3), abs=1e-3)
    assert (interval.low, interval.high) == pytest.approx((2 - interval.half_width, 2 + interval.half_width))


def test_t_interval_of_one_value_and_of_identical_values() -> None:
    one = t_interval([0.7])
    assert one.mean == 0.7 and one.n == 1
    assert math.isnan(one.std) and math.isnan(one.low) and math.isnan(one.high) and math.isnan(one.half_width)
    same = t_interval([0.5, 0.5, 0.5])
    assert (same.low, same.high, same.std) == (0.5, 0.5, 0.0)
    with pytest.raises(ValueError, match=r"^values: 1 of 2 values are NaN"):
        t_interval([0.5, float("nan")])


# ------------------------------------------------------------------------------------------------
# significance
# ------------------------------------------------------------------------------------------------


def test_paired_t_test_equals_the_manual_computation() -> None:
    a = np.array([0.81, 0.79, 0.84, 0.80, 0.83])
    b = np.array([0.78, 0.80, 0.79, 0.77, 0.80])
    d = a - b
    t = d.mean() / (d.std(ddof=1) / math.sqrt(d.size))
    p = 2 * stats.t.sf(abs(t), df=d.size - 1)
    result = paired_t_test(a, b)
    assert (result.statistic, result.p_value, result.n) == (pytest.approx(t), pytest.approx(p), 5)


def test_corrected_resampled_t_test_hand_checked() -> None:
    # J = 2, d = [0.5, 1.5]: mean 1, variance 0.5; n_test/n_train = 3/2, so (1/2 + 3/2) * 0.5 = 1 and
    # t = 1 / sqrt(1) = 1. With 1 degree of freedom t is Cauchy: p = 2 (1/2 - atan(1)/pi) = 0.5 exactly.
    result = corrected_resampled_t_test([1.5, 2.5], [1.0, 1.0], n_train=2, n_test=3)
    assert result.statistic == pytest.approx(1.0) and result.p_value == pytest.approx(0.5) and result.n == 2


def test_corrected_resampled_t_test_step_by_step_on_five_folds() -> None:
    a = np.array([0.80, 0.82, 0.78, 0.84, 0.81])
    b = np.array([0.78, 0.79, 0.78, 0.80, 0.79])
    n_train, n_test = 400, 100  # 5 folds: n_test / n_train = 1 / (k - 1)
    d = a - b  # [0.02, 0.03, 0.00, 0.04, 0.02]
    mean = d.sum() / 5  # 0.022
    variance = ((d - mean) ** 2).sum() / 4  # 880e-6 / 4 = 220e-6
    assert mean == pytest.approx(0.022) and variance == pytest.approx(220e-6)
    t = mean / math.sqrt((1 / 5 + n_test / n_train) * variance)  # 0.022 / sqrt(0.45 * 220e-6) = 2.2111
    assert t == pytest.approx(2.2111, abs=1e-4)
    p = 2 * stats.t.sf(t, df=4)
    result = corrected_resampled_t_test(a, b, n_train=[400] * 5, n_test=[100] * 5)
    assert (result.statistic, result.p_value) == (pytest.approx(t), pytest.approx(p))
    # The correction matters: the plain paired t-test calls this difference significant, the corrected one not.
    assert paired_t_test(a, b).p_value < 0.05 < result.p_value


@pytest.mark.parametrize("test", [paired_t_test, lambda a, b: corrected_resampled_t_test(a, b, n_train=80, n_test=20)])
def test_t_tests_edge_cases(test) -> None:
    same = test([0.7, 0.8, 0.75], [0.7, 0.8, 0.75])
    assert (same.statistic, same.p_value) == (0.0, 1.0) and "identical" in same.note
    one = test([0.7], [0.6])
    assert math.isnan(one.p_value) and one.n == 1 and "n >= 2" in one.note
    constant = test([0.8, 0.9, 1.0], [0.7, 0.8, 0.9])
    assert constant.p_value == 0.0 and constant.statistic == math.inf
    with pytest.raises(ValueError, match=r"^b: 2 scores to pair with 3"):
        test([0.1, 0.2, 0.3], [0.1, 0.2])


def _predictions_with(both: int, only_a: int, only_b: int, neither: int, seed: int = 0):
    """True labels and two classifiers' predictions with the given 2x2 table, clips shuffled."""
    n = both + only_a + only_b + neither
    right_a = np.array([1] * both + [1] * only_a + [0] * only_b + [0] * neither, dtype=bool)
    right_b = np.array([1] * both + [0] * only_a + [1] * only_b + [0] * neither, dtype=bool)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    y_true = rng.integers(0, 4, n)
    wrong = (y_true + 1 + rng.integers(0, 3, n)) % 4
    return y_true, np.where(right_a[order], y_true, wrong), np.where(right_b[order], y_true, wrong)


@pytest.mark.parametrize("table", [(50, 2, 9, 10), (30, 7, 7, 3), (10, 0, 6, 1), (80, 13, 4, 3)])
def test_mcnemar_equals_a_binomial_test_on_the_discordant_clips(table: tuple[int, int, int, int]) -> None:
    y_true, pred_a, pred_b = _predictions_with(*table)
    result = mcnemar_exact(y_true, pred_a, pred_b)
    only_a, only_b = table[1], table[2]
    assert result.table == ((table[0], only_a), (only_b, table[3]))
    expected = stats.binomtest(only_a, only_a + only_b, 0.5).pvalue
    assert result.p_value == pytest.approx(min(1.0, expected))
    assert result.statistic == min(only_a, only_b)


def test_mcnemar_on_identical_predictions_is_p_one() -> None:
    y_true, pred, _ = _predictions_with(20, 3, 0, 5)
    result = mcnemar_exact(y_true, pred, pred.copy())
    assert result.p_value == 1.0 and result.only_a_right == result.only_b_right == 0 and result.note


def test_mcnemar_on_clips_matches_by_id_and_refuses_other_clips() -> None:
    y_true, pred_a, pred_b = _predictions_with(40, 2, 9, 4)
    ids = [f"clip{i:03d}.wav" for i in range(y_true.size)]
    a = ClipPredictions(ids, y_true, pred_a)
    order = np.random.default_rng(3).permutation(y_true.size)
    b = ClipPredictions([ids[i] for i in order], y_true[order], pred_b[order])
    assert mcnemar_on_clips(a, b) == mcnemar_exact(y_true, pred_a, pred_b)
    other = ClipPredictions([*ids[:-1], "elsewhere.wav"], y_true, pred_b)
    with pytest.raises(ValueError, match=r"^b: the runs were tested on different clips \(1 only in a, 1 only in b"):
        mcnemar_on_clips(a, other)


def _manual_holm(p: list[float]) -> list[float]:
    order = sorted(range(len(p)), key=lambda i: p[i])
    adjusted, running = [0.0] * len(p), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[index]))
        adjusted[index] = running
    return adjusted


def test_holm_equals_a_manual_step_down_and_skips_untested() -> None:
    p = [0.01, 0.04, 0.03, 0.005, 0.5]
    adjusted, reject = holm(p)
    assert adjusted == pytest.approx(_manual_holm(p))
    assert list(reject) == [a < 0.05 for a in _manual_holm(p)]
    with_nan, reject_nan = holm([0.01, float("nan"), 0.04])
    assert with_nan[[0, 2]] == pytest.approx(_manual_holm([0.01, 0.04])) and math.isnan(with_nan[1])
    assert not reject_nan[1]
    assert holm([])[0].size == 0


# ------------------------------------------------------------------------------------------------
# grouping and comparison with the best
# ------------------------------------------------------------------------------------------------

FOLD = "dataset.split.fold"


def _fold_jobs() -> pd.DataFrame:
    scores = {
        "mel": [0.80, 0.82, 0.78, 0.84, 0.81],
        "mfcc": [0.78, 0.79, 0.78, 0.80, 0.79],
        "chroma": [0.60, 0.61, 0.59, 0.62, 0.60],
    }
    return pd.DataFrame(
        [
            {
                "feature": f,
                "model": "cnn",
                FOLD: k,
                "val/acc": s,
                "test/acc": s - 0.01,
                "n_train": 400,
                "n_test": 100,
                "job": f"{f}-{k}",
            }
            for f, values in scores.items()
            for k, s in enumerate(values)
        ]
    )


def test_configuration_table_groups_folds_with_t_intervals() -> None:
    table = configuration_table(_fold_jobs(), ["feature", "model"], ["val/acc", "test/acc"])
    assert list(table["feature"]) == ["mel", "mfcc", "chroma"] and set(table["n"]) == {5}
    mel = table.iloc[0]
    expected = t_interval([0.80, 0.82, 0.78, 0.84, 0.81])
    assert mel["val/acc mean"] == pytest.approx(0.81) and mel["val/acc ±"] == pytest.approx(expected.half_width)
    assert mel["test/acc mean"] == pytest.approx(0.80)


def test_folds_are_compared_by_the_corrected_test_and_holm_adjusted() -> None:
    table = compare_with_best(_fold_jobs(), ["feature", "model"], "val/acc")
    assert list(table["feature"]) == ["mel", "mfcc", "chroma"]
    assert list(table["test"]) == ["best", "corrected resampled t-test", "corrected resampled t-test"]
    p_mfcc = corrected_resampled_t_test(
        [0.78, 0.79, 0.78, 0.80, 0.79], [0.80, 0.82, 0.78, 0.84, 0.81], 400, 100
    ).p_value
    chroma = np.array([0.60, 0.61, 0.59, 0.62, 0.60]) - np.array([0.80, 0.82, 0.78, 0.84, 0.81])
    t_chroma = chroma.mean() / math.sqrt((1 / 5 + 100 / 400) * chroma.var(ddof=1))
    p_chroma = 2 * stats.t.sf(abs(t_chroma), df=4)
    assert table["p"].iloc[1:].tolist() == pytest.approx([p_mfcc, p_chroma])
    assert table["p (Holm)"].iloc[1:].tolist() == pytest.approx(_manual_holm([p_mfcc, p_chroma]))
    assert table["difference"].iloc[2] == pytest.approx(chroma.mean())
    assert list(table["not worse"]) == [True, True, False]


def test_seeds_on_one_split_use_the_paired_t_test_and_mode_min() -> None:
    losses = {"a": [0.50, 0.52, 0.49], "b": [0.61, 0.60, 0.64]}
    jobs = pd.DataFrame(
        [{"model": m, "seed": s, "val/loss": v} for m, values in losses.items() for s, v in zip((1, 2, 3), values)]
    )
    table = compare_with_best(jobs, ["model"], "val/loss", mode="min")
    assert list(table["model"]) == ["a", "b"] and table["test"].iloc[1] == "paired t-test"
    assert table["p"].iloc[1] == pytest.approx(stats.ttest_rel(losses["b"], losses["a"]).pvalue)
    assert table["not worse"].iloc[1] == (table["p"].iloc[1] >= 0.05)


def test_only_matched_seeds_are_paired() -> None:
    jobs = pd.DataFrame(
        [{"model": "a", "seed": s, "acc": v} for s, v in ((1, 0.9), (2, 0.8), (3, 0.85))]
        + [{"model": "b", "seed": s, "acc": v} for s, v in ((2, 0.7), (3, 0.72), (4, 0.5))]
    )
    table = compare_with_best(jobs, ["model"], "acc")
    assert table["p"].iloc[1] == pytest.approx(stats.ttest_rel([0.7, 0.72], [0.8, 0.85]).pvalue)
    assert table["difference"].iloc[1] == pytest.approx(((0.7 - 0.8) + (0.72 - 0.85)) / 2)


def test_single_runs_use_mcnemar_on_their_predictions() -> None:
    y_true, pred_a, pred_b = _predictions_with(40, 2, 11, 4)
    ids = [f"c{i}" for i in range(y_true.size)]
    jobs = pd.DataFrame(
        [
            {"feature": "mel", "test/acc": float(np.mean(pred_a == y_true)), "job": "run-mel"},
            {"feature": "mfcc", "test/acc": float(np.mean(pred_b == y_true)), "job": "run-mfcc"},
        ]
    )
    predictions = {"run-mel": ClipPredictions(ids, y_true, pred_a), "run-mfcc": ClipPredictions(ids, y_true, pred_b)}
    table = compare_with_best(jobs, ["feature"], "test/acc", predictions=predictions)
    assert list(table["feature"]) == ["mfcc", "mel"] and table["test"].iloc[1] == "McNemar exact"
    assert table["p"].iloc[1] == pytest.approx(stats.binomtest(2, 13, 0.5).pvalue)
    untested = compare_with_best(jobs, ["feature"], "test/acc")
    assert untested["test"].iloc[1] == "none" and untested["not worse"].iloc[1] is None
    assert "McNemar" in untested["note"].iloc[1]


def test_grouping_errors_name_their_parameter() -> None:
    jobs = _fold_jobs()
    with pytest.raises(ValueError, match=r"^config_keys: dataset.split.fold are repeat keys"):
        configurations(jobs, ["feature", FOLD])
    with pytest.raises(ValueError, match=r"^runs: configuration .* more than one run"):
        configurations(pd.concat([jobs, jobs.iloc[:1]]), ["feature", "model"])
    with pytest.raises(ValueError, match=r"^n_train: cross-validated configurations need"):
        compare_with_best(jobs.drop(columns=["n_train"]), ["feature", "model"], "val/acc")
    with pytest.raises(ValueError, match=r"^objective: the runs frame has no column 'val/f1'"):
        compare_with_best(jobs, ["feature"], "val/f1")
    with pytest.raises(ValueError, match=r"^mode: 'best' is not max or min"):
        compare_with_best(jobs, ["feature", "model"], "val/acc", mode="best")

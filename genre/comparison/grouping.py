"""Runs grouped into configurations, and each configuration compared with the best one.

The one home of what a *configuration* is: the runs that differ only in the repeat keys (``seed``,
``dataset.split.fold``). The input is a pandas DataFrame with one row per run (a fold of a
cross-validation job is a run): the config keys that were swept, the repeat keys, the metrics, and, for
cross-validated configurations, each run's training and test clip counts. How the frame was read (run
files, a sweep directory: :mod:`genre.sweeps.results.configurations`) is the caller's business. Each
configuration becomes one row: n, mean, std and the
95 % Student-t interval per metric. Every other configuration is compared with the best by a paired
test on the repeats both have (see :mod:`genre.comparison.significance` for which test when), and the
p-values are Holm-adjusted over those comparisons.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import pandas as pd

from genre.comparison.intervals import CONFIDENCE, t_interval
from genre.comparison.significance import (
    ALPHA,
    ClipPredictions,
    SignificanceResult,
    corrected_resampled_t_test,
    holm,
    mcnemar_on_clips,
    paired_t_test,
)

SEED_KEY = "seed"
FOLD_KEY = "dataset.split.fold"
REPEAT_KEYS: tuple[str, ...] = (SEED_KEY, FOLD_KEY)
MODES = ("max", "min")
# One sentence for summaries: what the "not worse" column means, and what it does not.
NOT_WORSE_MEANING = (
    "'not worse' marks configurations whose difference from the best could be chance: "
    "a paired test on the same seeds/folds/clips, Holm-adjusted over all comparisons, "
    f"does not reject 'equally good' at alpha {ALPHA}; it does not say they are equal."
)


def _check_columns(runs: pd.DataFrame, names: Sequence[str], parameter: str) -> None:
    missing = [name for name in names if name not in runs.columns]
    if missing:
        raise ValueError(
            f"{parameter}: the runs frame has no column {', '.join(map(repr, missing))} "
            f"(columns: {', '.join(map(str, runs.columns))})"
        )


def configurations(
    runs: pd.DataFrame, config_keys: Sequence[str], repeat_keys: Sequence[str] = REPEAT_KEYS
) -> list[tuple[tuple, pd.DataFrame]]:
    """The runs grouped by ``config_keys``: (the keys' values, that configuration's runs), in first-seen order.

    ValueError when a config key is also a repeat key, or when two runs of one configuration have the
    same repeat values (they would be paired twice).
    """
    _check_columns(runs, config_keys, "config_keys")
    overlap = [key for key in config_keys if key in repeat_keys]
    if overlap:
        raise ValueError(f"config_keys: {', '.join(overlap)} are repeat keys, which configurations group over")
    if runs.empty:
        raise ValueError("runs: the frame has no rows")
    present = [key for key in repeat_keys if key in runs.columns]
    frame = runs.assign(_all=0) if not config_keys else runs
    groups = []
    for values, rows in frame.groupby(list(config_keys) if config_keys else ["_all"], sort=False, dropna=False):
        values = values if isinstance(values, tuple) else (values,)
        repeats = rows[present].astype(str).agg("/".join, axis=1) if present else pd.Series("", index=rows.index)
        if repeats.duplicated().any():
            raise ValueError(
                f"runs: configuration {dict(zip(config_keys, values))} has more than one run for "
                f"{', '.join(present) or 'its single run'} = {repeats[repeats.duplicated()].iloc[0]}"
            )
        groups.append((values if config_keys else (), rows.drop(columns="_all", errors="ignore")))
    return groups


def one_run_each(runs: pd.DataFrame, config_keys: Sequence[str]) -> bool:
    """Whether every configuration of ``runs`` is a single run: then there is nothing to pair them on,
    whatever their seeds (McNemar's test pairs their clips instead)."""
    return not bool(runs.duplicated(subset=list(config_keys)).any()) if config_keys else len(runs) == 1


def metric_columns(metric: str, rows: pd.DataFrame, confidence: float = CONFIDENCE) -> dict[str, float]:
    """``{metric} mean``, ``std``, ``low``, ``high`` and ``±`` (t interval) of one metric over ``rows``."""
    interval = t_interval(rows[metric].to_numpy(dtype=float), confidence)
    return {
        f"{metric} mean": interval.mean,
        f"{metric} std": interval.std,
        f"{metric} low": interval.low,
        f"{metric} high": interval.high,
        f"{metric} ±": interval.half_width,
    }


def configuration_table(
    runs: pd.DataFrame,
    config_keys: Sequence[str],
    metrics: Sequence[str],
    repeat_keys: Sequence[str] = REPEAT_KEYS,
    confidence: float = CONFIDENCE,
) -> pd.DataFrame:
    """One row per configuration: its config keys, n (runs) and, per metric, mean/std/low/high/±."""
    _check_columns(runs, metrics, "metrics")
    rows = []
    for values, group in configurations(runs, config_keys, repeat_keys):
        row: dict[str, object] = dict(zip(config_keys, values))
        row["n"] = len(group)
        for metric in metrics:
            row.update(metric_columns(metric, group, confidence))
        rows.append(row)
    return pd.DataFrame(rows)


def _matched(best: pd.DataFrame, other: pd.DataFrame, present: Sequence[str], columns: Sequence[str]) -> pd.DataFrame:
    """The runs of ``best`` and ``other`` paired on the repeat keys both have (``<column>_best``/``_other``)."""
    keep = [c for c in columns if c in best.columns]
    left, right = best[[*present, *keep]], other[[*present, *keep]]
    if present:
        return left.merge(right, on=list(present), suffixes=("_best", "_other"))
    # No repeat keys: one run per configuration (configurations() checked), paired with the best's one.
    return left.add_suffix("_best").merge(right.add_suffix("_other"), how="cross")


def _pair_test(
    best: pd.DataFrame,
    other: pd.DataFrame,
    objective: str,
    present: Sequence[str],
    n_train: str,
    n_test: str,
    job_key: str,
    predictions: Mapping[Hashable, ClipPredictions] | None,
) -> tuple[SignificanceResult, float]:
    """The right paired test of ``other`` against ``best`` on their shared repeats, and the mean difference."""
    matched = _matched(best, other, present, [objective, job_key, n_train, n_test])
    if matched.empty:
        return SignificanceResult("none", math.nan, math.nan, 0, "no seed/fold in common with the best"), math.nan
    a, b = matched[f"{objective}_other"].to_numpy(float), matched[f"{objective}_best"].to_numpy(float)
    difference = float(np.mean(a - b))
    if FOLD_KEY in present and matched[FOLD_KEY].nunique() > 1:
        if f"{n_train}_best" not in matched or f"{n_test}_best" not in matched:
            raise ValueError(
                f"n_train: cross-validated configurations need the columns {n_train!r} and {n_test!r} "
                "(each run's training and test clip counts) for the corrected t-test"
            )
        return corrected_resampled_t_test(
            a, b, matched[f"{n_train}_best"].to_numpy(float), matched[f"{n_test}_best"].to_numpy(float)
        ), difference
    if len(matched) > 1:
        return paired_t_test(a, b), difference
    jobs = (
        (matched[f"{job_key}_other"].iloc[0], matched[f"{job_key}_best"].iloc[0])
        if f"{job_key}_best" in matched
        else None
    )
    if predictions is None or jobs is None or not all(job in predictions for job in jobs):
        return SignificanceResult(
            "none", math.nan, math.nan, 1, "single runs: McNemar's test needs their predictions"
        ), difference
    return mcnemar_on_clips(predictions[jobs[0]], predictions[jobs[1]]), difference


def compare_with_best(
    runs: pd.DataFrame,
    config_keys: Sequence[str],
    objective: str,
    mode: str = "max",
    *,
    repeat_keys: Sequence[str] = REPEAT_KEYS,
    n_train: str = "n_train",
    n_test: str = "n_test",
    job_key: str = "job",
    predictions: Mapping[Hashable, ClipPredictions] | None = None,
    alpha: float = ALPHA,
    confidence: float = CONFIDENCE,
    compared: str | None = None,
    compared_mode: str | None = None,
) -> pd.DataFrame:
    """One row per configuration, best first: config keys, n, the objective's mean/std/interval, and the
    comparison with the best configuration (by mean objective, ``mode`` max or min).

    The best is chosen on ``objective`` alone (what the runs optimised: a validation score). The paired
    comparison is on ``compared`` (default: the objective; e.g. ``test/acc``, mode ``compared_mode``),
    whose mean/std/interval are added: test scores are reported and tested, but never pick the best.

    Comparison columns: ``difference`` (mean of this minus the best over the paired repeats), ``test``
    (corrected resampled t-test when the pairs span several folds, else paired t-test over seeds,
    McNemar's exact test for two single runs whose ``predictions`` — keyed by the ``job_key`` column —
    are given, "none" otherwise), ``p``, ``p (Holm)`` (adjusted over all tested comparisons), ``not worse``
    (True unless the adjusted test rejects at ``alpha`` with the difference on the worse side; None when
    untested; True for the best) and ``note``. See :data:`NOT_WORSE_MEANING`.
    """
    if mode not in MODES:
        raise ValueError(f"mode: '{mode}' is not max or min")
    compared, compared_mode = compared or objective, compared_mode or mode
    if compared_mode not in MODES:
        raise ValueError(f"compared_mode: '{compared_mode}' is not max or min")
    _check_columns(runs, [objective], "objective")
    _check_columns(runs, [compared], "compared")
    groups = configurations(runs, config_keys, repeat_keys)
    present = [key for key in repeat_keys if key in runs.columns]
    means = [float(rows[objective].mean()) for _, rows in groups]
    order = sorted(range(len(groups)), key=lambda i: -means[i] if mode == "max" else means[i])
    best_rows = groups[order[0]][1]
    table = []
    for rank, index in enumerate(order):
        values, rows = groups[index]
        row: dict[str, object] = {
            **dict(zip(config_keys, values)),
            "n": len(rows),
            **metric_columns(objective, rows, confidence),
            **(metric_columns(compared, rows, confidence) if compared != objective else {}),
        }
        if rank == 0:
            result, difference = SignificanceResult("best", math.nan, math.nan, len(rows)), 0.0
        else:
            result, difference = _pair_test(best_rows, rows, compared, present, n_train, n_test, job_key, predictions)
        row.update({"difference": difference, "test": result.test, "p": result.p_value, "note": result.note})
        table.append(row)
    return _holm_adjusted(pd.DataFrame(table), alpha, compared_mode)


def _holm_adjusted(frame: pd.DataFrame, alpha: float, mode: str) -> pd.DataFrame:
    """``frame`` with ``p (Holm)`` and ``not worse`` (the difference on ``mode``'s worse side and rejected),
    the best (first row) not worse by definition, and ``note`` last."""
    adjusted, reject = holm(frame["p"].to_numpy(float), alpha)
    worse_side = frame["difference"] < 0 if mode == "max" else frame["difference"] > 0
    frame["p (Holm)"] = adjusted
    frame["not worse"] = [None if math.isnan(p) else not (r and w) for p, r, w in zip(adjusted, reject, worse_side)]
    frame.loc[0, "not worse"] = True
    columns = [c for c in frame.columns if c != "note"] + ["note"]
    return frame[columns]

"""The configurations table of finished runs, read from their run files: the honest half of a sweep's summary.

What a configuration is, and how its runs are grouped and compared with the best, is
:mod:`genre.comparison.grouping`'s (the runs that differ only in ``seed`` or ``dataset.split.fold``;
the folds of a cross-validation job, ``cv.folds=k``, too). This module feeds it and shows its answer:
:func:`run_rows` lists every finished run (a fold of a cross-validation job is a run) with its
configuration, seed, fold, training/test clip counts and scores, read from the run files alone
(``metrics.json``, ``predictions.csv``); :func:`compare_configurations` hands them to the grouping
(n, mean, std, 95 % t-interval per metric; Nadeau-Bengio over folds, paired t over seeds, McNemar's
exact test on the test predictions of single runs). ``sweep summary`` and ``genre.cli.compare`` both print
:func:`configurations_markdown`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from genre.comparison.grouping import (
    FOLD_KEY,
    NOT_WORSE_MEANING,
    REPEAT_KEYS,
    SEED_KEY,
    compare_with_best,
    configuration_table,
    one_run_each,
)
from genre.comparison.significance import ClipPredictions
from genre.core.objective import mode_of
from genre.run_files import Predictions, RunMetrics
from genre.sweeps.jobs.status import COMPLETED
from genre.sweeps.results.runs import CHOICE_COLUMNS, JobRun, scalar_at

log = logging.getLogger(__name__)

CONFIGURATIONS_FILE = "configurations.csv"
# What configurations are compared on once the best is chosen on the runs' objective (validation): the
# held-out test clips (McNemar's test is on their predictions); the objective where runs report no test
# accuracy. A test score never picks the best: that would be selection on the test set.
COMPARED_METRIC = "test/acc"
# Columns of run_rows besides the configuration keys and the scores (the objective the run optimised, by name).
RUN_DIR, N_TRAIN, N_TEST, RUN_OBJECTIVE = "run_dir", "n_train", "n_test", "run objective"


def run_row(run_dir: Path, label: str, metrics: RunMetrics, keys: dict[str, Any]) -> dict[str, Any]:
    """One run's row: ``job`` (its label), the given keys (configuration, seed, fold), clip counts and scores."""
    return {
        "job": label,
        **keys,
        N_TRAIN: metrics.n_clips.get("train"),
        N_TEST: metrics.n_clips.get("test"),
        RUN_DIR: str(run_dir),
        RUN_OBJECTIVE: metrics.objective,
        **metrics.scores,
    }


def job_params(job: JobRun) -> dict[str, Any]:
    """The job's configuration choices and command-line overrides (as the jobs table shows them)."""
    params: dict[str, Any] = {key: job.choices[key] for key in CHOICE_COLUMNS if key in job.choices}
    params.update(job.params)
    return params


def run_rows(jobs: Sequence[JobRun], config_keys: Sequence[str]) -> pd.DataFrame:
    """Every finished run of the completed ``jobs``: a plain job is one run, a cross-validation job one
    per finished fold (its fold number under ``dataset.split.fold``)."""
    rows = []
    for job in jobs:
        if job.status != COMPLETED or job.metrics is None:
            continue
        params = job_params(job)
        # The stored config is plain data, looked up, never resolved (it may come from anyone's run dir).
        keys = {key: params.get(key) for key in config_keys}
        keys[SEED_KEY] = params.get(SEED_KEY, scalar_at(job.config, SEED_KEY))
        if job.folds is None:
            keys[FOLD_KEY] = params.get(FOLD_KEY, scalar_at(job.config, FOLD_KEY))
            rows.append(run_row(job.run_dir, str(job.num), job.metrics, keys))
            continue
        for fold, metrics in sorted(job.folds.items()):
            rows.append(run_row(job.fold_dir(fold), f"{job.num}/fold{fold}", metrics, {**keys, FOLD_KEY: fold}))
    frame = pd.DataFrame(rows)
    for key in (SEED_KEY, FOLD_KEY):
        if key in frame and frame[key].isna().all():
            frame = frame.drop(columns=key)  # not a repeat of these runs (e.g. no fold without k-fold)
    return frame


def clip_predictions(run_dir: str | Path) -> ClipPredictions | None:
    """A run's test predictions per clip from ``predictions.csv``; None without one, or when its rows are
    segments (``eval.aggregate=none``: segments of one clip are no independent trials for McNemar)."""
    predictions = Predictions.read(run_dir)
    if predictions is None or predictions.per_segment:
        return None
    test = predictions.of_split("test")
    return ClipPredictions(clip_ids=test.clip_id, y_true=test.y_true, y_pred=test.y_pred)


def same_test_clips(predictions: Mapping[Hashable, ClipPredictions]) -> bool:
    """Whether every run was tested on the same clips."""
    sets = {frozenset(p.clip_ids) for p in predictions.values()}
    return len(sets) <= 1


def single_run_predictions(runs: pd.DataFrame) -> dict[Hashable, ClipPredictions] | None:
    """Each run's test predictions, keyed by ``job``, when every run has them and all share the test clips."""
    predictions = {job: clip_predictions(run_dir) for job, run_dir in zip(runs["job"], runs[RUN_DIR])}
    found: dict[Hashable, ClipPredictions] = {job: p for job, p in predictions.items() if p is not None}
    if len(found) < len(predictions) or not same_test_clips(found):
        log.info("Single runs without clip-level test predictions on the same clips: no McNemar test")
        return None
    return found


def compare_configurations(
    runs: pd.DataFrame,
    config_keys: Sequence[str],
    objective: str,
    mode: str,
    metrics: Sequence[str] = (),
    compared: str | None = COMPARED_METRIC,
    compared_mode: str | None = None,
) -> pd.DataFrame | None:
    """One row per configuration, best first by the mean ``objective`` (what the runs optimised): n, the
    objective's and ``metrics``' mean/std/interval, and the paired comparison with the best on ``compared``
    (:data:`COMPARED_METRIC` when the runs report it, ``compared_mode`` following its name unless given;
    else the objective; see
    :func:`~genre.comparison.grouping.compare_with_best`). None when the runs cannot be grouped (no run,
    or two runs of one configuration with the same seed and fold)."""
    if runs.empty or objective not in runs:
        return None
    on_test = compared is not None and compared in runs and runs[compared].notna().all()
    single = one_run_each(runs, config_keys)
    repeats = [] if single else [key for key in REPEAT_KEYS if key in runs]
    runs = runs.assign(**{key: _numbers(runs[key]) for key in repeats})  # seed "1" (an override) pairs with 1
    try:
        table = compare_with_best(
            runs,
            list(config_keys),
            objective,
            mode,
            repeat_keys=repeats,
            n_train=N_TRAIN,
            n_test=N_TEST,
            predictions=single_run_predictions(runs) if single else None,
            compared=compared if on_test else None,
            compared_mode=(compared_mode or mode_of(str(compared)) or "max") if on_test else None,
        )
        others = [m for m in metrics if m in runs and m not in (objective, compared)]
        if others:
            extra = configuration_table(runs, list(config_keys), others, repeat_keys=repeats)
            table = (
                table.merge(extra.drop(columns="n"), on=list(config_keys), how="left")
                if config_keys
                else pd.concat([table, extra.drop(columns="n")], axis=1)
            )
    except ValueError as exc:
        log.warning("Configurations not compared: %s", exc)
        return None
    return table


def _numbers(values: pd.Series) -> pd.Series:
    """``values`` as numbers where every given one is a number, else unchanged."""
    numeric = pd.to_numeric(values, errors="coerce")
    return numeric if numeric.notna().sum() == values.notna().sum() else values


def _mean_pm(row: pd.Series, metric: str) -> str:
    mean, half = row.get(f"{metric} mean"), row.get(f"{metric} ±")
    if mean is None or pd.isna(mean):
        return ""
    return f"{mean:.4f}" if half is None or pd.isna(half) else f"{mean:.4f} ± {half:.4f}"


def _p(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3g}"


def configurations_markdown(
    table: pd.DataFrame, config_keys: Sequence[str], objective: str, metrics: Sequence[str] = ()
) -> str:
    """The grouped table as markdown (mean ± 95 % half-interval per metric, the test and its p-values,
    which configurations are not significantly worse), followed by what "not worse" means."""
    shown = [m for m in dict.fromkeys([objective, *metrics]) if f"{m} mean" in table]
    rows = []
    for _, row in table.iterrows():
        item: dict[str, Any] = {key: row[key] for key in config_keys}
        item["n"] = int(row["n"])
        item.update({m: _mean_pm(row, m) for m in shown})
        not_worse = row["not worse"]
        item.update(
            {
                "difference": _p(row["difference"]),
                "test": row["test"],
                "p": _p(row["p"]),
                "p (Holm)": _p(row["p (Holm)"]),
                "not worse": "" if not_worse is None or pd.isna(not_worse) else ("yes" if not_worse else "no"),
            }
        )
        rows.append(item)
    text = pd.DataFrame(rows).to_markdown(index=False)
    notes = [f"- {_label(row, config_keys)}: {row['note']}" for _, row in table.iterrows() if row.get("note")]
    return (
        "\n".join(
            [
                text,
                "",
                f"mean ± half-width of the 95 % Student-t interval over the n runs; {NOT_WORSE_MEANING}",
                *(["", *notes] if notes else []),
            ]
        )
        + "\n"
    )


def _label(row: pd.Series, config_keys: Sequence[str]) -> str:
    return ", ".join(f"{key}={row[key]}" for key in config_keys) or "all runs"


def per_job_comparison(table: pd.DataFrame, runs: pd.DataFrame, config_keys: Sequence[str]) -> pd.DataFrame:
    """For configurations of one run each: per job number, the Holm-adjusted p-value and the "not worse" mark."""
    jobs = runs[[*config_keys, "job"]].merge(
        table[[*config_keys, "test", "p (Holm)", "not worse"]], on=list(config_keys), how="left"
    )
    jobs["job"] = jobs["job"].astype(int).astype("Int64")
    jobs["not worse"] = jobs["not worse"].map(lambda v: "" if v is None or pd.isna(v) else ("yes" if v else "no"))
    return jobs[["job", "test", "p (Holm)", "not worse"]]

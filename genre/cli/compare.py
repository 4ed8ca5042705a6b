"""``python -m genre.cli.compare <run or sweep dirs...>``: the paired comparison table for runs that were not one sweep.

Each argument is a run dir (``metrics.json``), a cross-validation job dir (``cv.json``: its folds are
the repeats) or a sweep dir (its jobs, grouped as the sweep summary groups them). Every configuration
is compared with the best on the test accuracy by the paired test that fits — Nadeau-Bengio over
matched folds, paired t over matched seeds, McNemar's exact test for single runs (with its 2x2 table)
— Holm-adjusted, from the run files alone. Runs whose test clips differ (for the same fold) are refused
with exit status 2: a paired test over different clips means nothing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from genre.comparison.grouping import FOLD_KEY, REPEAT_KEYS
from genre.comparison.significance import mcnemar_on_clips
from genre.core.errors import UserInputError
from genre.run_files import CROSS_VALIDATION_FILE, METRICS_FILE, CrossValidationMetrics, Predictions
from genre.sweeps.results.configurations import (
    COMPARED_METRIC,
    RUN_DIR,
    clip_predictions,
    compare_configurations,
    configurations_markdown,
    run_row,
    run_rows,
)
from genre.sweeps.results.runs import find_job_dirs, read_metrics, read_sweep, read_yaml, scalar_at
from genre.sweeps.results.summary import TABLE_METRICS, jobs_frame

CONFIGURATION = "run"


def read_runs(path: Path) -> pd.DataFrame:
    """The runs of one argument, with the ``run`` column naming the configuration each belongs to."""
    if (path / METRICS_FILE).is_file() or (path / CROSS_VALIDATION_FILE).is_file():
        metrics, folds = read_metrics(path)  # a damaged file: DamagedFileError naming it
        if metrics is None:
            raise ValueError(f"dirs: {path} has no finished run (no readable metrics.json)")
        repeats = _repeats(path)
        if folds is None:
            return pd.DataFrame([run_row(path, str(path), metrics, {CONFIGURATION: str(path), **repeats})])
        return pd.DataFrame(
            [
                run_row(
                    path / CrossValidationMetrics.fold_dir(fold),
                    f"{path}/fold{fold}",
                    run,
                    {CONFIGURATION: str(path), **repeats, FOLD_KEY: fold},
                )
                for fold, run in sorted(folds.items())
            ]
        )
    if not find_job_dirs(path):
        raise ValueError(
            f"dirs: {path} is neither a run dir (metrics.json), a cross-validation job (cv.json) nor a sweep dir"
        )
    jobs = read_sweep(path)  # a job dir with a damaged file is skipped, with a warning naming it
    _, swept = jobs_frame(jobs)
    keys = [key for key in swept if key not in REPEAT_KEYS]
    runs = run_rows(jobs, keys)
    if runs.empty:
        raise ValueError(f"dirs: the sweep {path} has no finished job")
    names = [
        " ".join(f"{key}={value}" for key, value in zip(keys, values)) for values in runs[keys].itertuples(index=False)
    ]
    runs[CONFIGURATION] = [f"{path} {name}".strip() for name in names]
    runs["job"] = [f"{path}:{job}" for job in runs["job"]]
    return runs.drop(columns=keys)


def _repeats(run_dir: Path) -> dict[str, object]:
    """The seed and fold of a run from its Hydra config (none for a run dir without one), read as plain data:
    nothing in it is resolved."""
    config_file = run_dir / ".hydra" / "config.yaml"
    if not config_file.is_file():
        return {}
    config = read_yaml(config_file, "mapping")
    return {key: scalar_at(config, key) for key in REPEAT_KEYS}


def check_test_clips(runs: pd.DataFrame) -> None:
    """ValueError naming two runs tested on different clips: any two when every configuration is one run
    (McNemar pairs their clips), else two of the same fold."""
    single = runs[CONFIGURATION].nunique() == len(runs)
    by_fold = runs.groupby(FOLD_KEY, dropna=False) if FOLD_KEY in runs and not single else [(None, runs)]
    for _, rows in by_fold:
        reference: tuple[str, frozenset[str]] | None = None
        for job, run_dir in zip(rows["job"], rows[RUN_DIR]):
            predictions = Predictions.read(run_dir)
            if predictions is None:
                raise ValueError(
                    f"dirs: {run_dir} has no readable predictions.csv (runs of an older genre cannot "
                    "be compared clip by clip)"
                )
            clips = frozenset(predictions.of_split("test").clip_id)
            if reference is None:
                reference = (str(job), clips)
            elif clips != reference[1]:
                raise ValueError(
                    f"dirs: {reference[0]} and {job} were tested on different clips "
                    f"({len(clips ^ reference[1])} differ); compare runs on the same test split "
                    "(same dataset, dataset.split and fold)"
                )


def mcnemar_lines(runs: pd.DataFrame, table: pd.DataFrame) -> list[str]:
    """McNemar's 2x2 table and exact p-value of each single-run configuration against the best."""
    if (table["n"] > 1).any():
        return []
    run_of = dict(zip(runs[CONFIGURATION], runs[RUN_DIR]))
    best = table[CONFIGURATION].iloc[0]
    lines = []
    for other in table[CONFIGURATION].iloc[1:]:
        a, b = clip_predictions(run_of[other]), clip_predictions(run_of[best])
        if a is None or b is None:
            lines.append(f"{other}: no clip-level test predictions (eval.aggregate=none?): no McNemar test")
            continue
        result = mcnemar_on_clips(a, b)
        (both, only_a), (only_b, neither) = result.table
        lines += [
            "",
            f"McNemar's exact test on {result.n} test clips: {other} (a) vs the best, {best} (b)",
            pd.DataFrame(
                {"b right": [both, only_b], "b wrong": [only_a, neither]}, index=["a right", "a wrong"]
            ).to_markdown(),
            f"p = {result.p_value:.4g} (two-sided; only the {only_a + only_b} clips exactly one run got right count)",
        ]
    return lines


def compare(dirs: Sequence[Path], metric: str = COMPARED_METRIC) -> str:
    """The comparison text of the runs in ``dirs`` (ValueError for runs that cannot be compared)."""
    runs = pd.concat([read_runs(path) for path in dirs], ignore_index=True)
    if runs[CONFIGURATION].nunique() < 2:
        raise ValueError("dirs: give at least two runs or configurations to compare")
    if metric not in runs or runs[metric].isna().any():
        raise ValueError(f"--metric: not every run reports {metric}")
    check_test_clips(runs)
    mode = "min" if metric.endswith("loss") else "max"
    table = compare_configurations(runs, [CONFIGURATION], metric, mode, TABLE_METRICS)
    if table is None:
        raise ValueError("dirs: the runs could not be grouped (two runs of one configuration share a seed and fold)")
    title = f"{len(runs)} runs in {len(table)} configurations, compared on {metric} ({mode}imised), best first"
    return (
        "\n".join(
            [
                title,
                "",
                configurations_markdown(table, [CONFIGURATION], metric, TABLE_METRICS),
                *mcnemar_lines(runs, table),
            ]
        )
        + "\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Print the comparison of the dirs named on the command line. Returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m genre.cli.compare", description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=Path, help="run dirs, cross-validation job dirs or sweep dirs")
    parser.add_argument("--metric", default=COMPARED_METRIC, help=f"the score compared (default {COMPARED_METRIC})")
    args = parser.parse_args(argv)
    missing = [path for path in args.dirs if not path.is_dir()]
    try:
        if missing:
            raise ValueError(f"dirs: {missing[0]} is not a directory")
        print(compare(args.dirs, args.metric), end="")
    except (ValueError, UserInputError) as exc:  # a damaged run file is a UserInputError naming the file
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

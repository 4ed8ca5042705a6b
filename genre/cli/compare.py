"""``python -m genre.cli.compare <run or sweep dirs...>``: the paired comparison table for runs that were not one sweep.

Each argument is a run dir (``metrics.json``), a cross-validation job dir (``cv.json``: its folds are
the repeats) or a sweep dir (its jobs, grouped as the sweep summary groups them). The best is chosen on
the objective the runs optimised (a validation score: they must share it); every configuration is
compared with it on the test accuracy (``--metric``) by the paired test that fits — Nadeau-Bengio over
matched folds, paired t over matched seeds, McNemar's exact test for single runs (with its 2x2 table)
— Holm-adjusted, from the run files alone. Runs whose test clips differ (for the same fold) are refused
with exit status 2: a paired test over different clips means nothing.

Each configuration is labelled by what differs among them (``feature=mel`` vs ``feature=mfcc``), read from
the stored configs as plain data (:mod:`genre.comparison.labels`; the folder only where nothing differs).
``--format`` prints the grouped table as markdown with the McNemar tables (``table``, the default), ``csv``
(every column, full precision), ``json`` (the configurations and the McNemar tables) or ``latex`` (the sweep
report's booktabs table: configuration, n, objective and compared metric with 95 % intervals, difference
and Holm-adjusted p).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from genre.comparison.grouping import FOLD_KEY, REPEAT_KEYS
from genre.comparison.labels import Described, differing_labels
from genre.comparison.significance import mcnemar_on_clips
from genre.core.errors import UserInputError
from genre.core.objective import mode_of
from genre.run_files import CROSS_VALIDATION_FILE, METRICS_FILE, CrossValidationMetrics, Predictions
from genre.sweeps.results.configurations import (
    COMPARED_METRIC,
    RUN_DIR,
    RUN_OBJECTIVE,
    clip_predictions,
    compare_configurations,
    configurations_markdown,
    run_row,
    run_rows,
)
from genre.sweeps.results.runs import find_job_dirs, read_metrics, read_sweep, read_yaml, scalar_at, select
from genre.sweeps.results.summary import TABLE_METRICS, jobs_frame
from genre.sweeps.results.tables import booktabs, interval_note, narrow_table

CONFIGURATION = "configuration"
FORMATS = ("table", "csv", "json", "latex")


def read_runs(path: Path) -> tuple[pd.DataFrame, dict[str, Described]]:
    """The runs of one argument, with the ``configuration`` column naming (by its folder) the configuration each
    belongs to, and each configuration's stored config and choices under that name."""
    if (path / METRICS_FILE).is_file() or (path / CROSS_VALIDATION_FILE).is_file():
        metrics, folds = read_metrics(path)  # a damaged file: DamagedFileError naming it
        if metrics is None:
            raise ValueError(f"dirs: {path} has no finished run (no readable metrics.json)")
        described = describe_run(path)
        repeats = {key: scalar_at(described.config, key) for key in REPEAT_KEYS}
        if folds is None:
            return pd.DataFrame([run_row(path, str(path), metrics, {CONFIGURATION: str(path), **repeats})]), {
                str(path): described
            }
        rows = [
            run_row(
                path / CrossValidationMetrics.fold_dir(fold),
                f"{path}/fold{fold}",
                run,
                {CONFIGURATION: str(path), **repeats, FOLD_KEY: fold},
            )
            for fold, run in sorted(folds.items())
        ]
        return pd.DataFrame(rows), {str(path): described}
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
    # A configuration of the sweep is described by its first job (its jobs differ in seed or fold alone).
    job_of = {str(job.num): job for job in jobs}
    first = {name: job_of[str(job).partition("/")[0]] for name, job in zip(runs[CONFIGURATION], runs["job"])}
    runs["job"] = [f"{path}:{job}" for job in runs["job"]]
    return runs.drop(columns=keys), {
        name: Described(config=job.config or {}, choices=job.choices) for name, job in first.items()
    }


def describe_run(run_dir: Path) -> Described:
    """A run's (or cross-validation job's) stored config and config-group choices, read as plain data: its
    ``.hydra/`` files, else a cross-validation job's ``cv.json`` (its own, or the job's a fold dir sits in);
    nothing for a run dir holding neither."""
    hydra_dir = run_dir / ".hydra"
    if (hydra_dir / "config.yaml").is_file():
        choices = {}
        if (hydra_dir / "hydra.yaml").is_file():
            found = select(read_yaml(hydra_dir / "hydra.yaml", "mapping"), "hydra.runtime.choices")
            choices = {str(k): str(v) for k, v in found.items() if v is not None} if isinstance(found, dict) else {}
        return Described(config=read_yaml(hydra_dir / "config.yaml", "mapping"), choices=choices)
    for job_dir in (run_dir, run_dir.parent):
        record = (
            CrossValidationMetrics.read(job_dir, strict=True) if (job_dir / CROSS_VALIDATION_FILE).is_file() else None
        )
        if record is not None:
            return describe_run(job_dir) if job_dir != run_dir else Described(config=record.config)
    return Described()


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


@dataclass
class Comparison:
    """The comparison of the given runs: the grouped table (best first by ``objective``, compared on
    ``metric``), the runs themselves and McNemar's tables."""

    objective: str
    metric: str
    mode: str
    n_runs: int
    table: pd.DataFrame
    mcnemar: list[dict[str, Any]]
    runs: pd.DataFrame


def mcnemar_tables(runs: pd.DataFrame, table: pd.DataFrame) -> list[dict[str, Any]]:
    """McNemar's 2x2 table and exact p-value of each single-run configuration against the best (``a`` is the
    other configuration, ``b`` the best); a table of None where a run has no clip-level test predictions."""
    if (table["n"] > 1).any():
        return []
    run_of = dict(zip(runs[CONFIGURATION], runs[RUN_DIR]))
    best = table[CONFIGURATION].iloc[0]
    found: list[dict[str, Any]] = []
    for other in table[CONFIGURATION].iloc[1:]:
        a, b = clip_predictions(run_of[other]), clip_predictions(run_of[best])
        if a is None or b is None:
            found.append({"a": other, "b": best, "n": None, "table": None, "p": None})
            continue
        result = mcnemar_on_clips(a, b)
        rows = [[int(value) for value in row] for row in result.table]
        found.append({"a": other, "b": best, "n": int(result.n), "table": rows, "p": float(result.p_value)})
    return found


def mcnemar_lines(tables: list[dict[str, Any]]) -> list[str]:
    """:func:`mcnemar_tables` as text: each 2x2 table and its p-value."""
    lines = []
    for item in tables:
        if item["table"] is None:
            lines.append(f"{item['a']}: no clip-level test predictions (eval.aggregate=none?): no McNemar test")
            continue
        (both, only_a), (only_b, neither) = item["table"]
        lines += [
            "",
            f"McNemar's exact test on {item['n']} test clips: {item['a']} (a) vs the best, {item['b']} (b)",
            pd.DataFrame(
                {"b right": [both, only_b], "b wrong": [only_a, neither]}, index=["a right", "a wrong"]
            ).to_markdown(),
            f"p = {item['p']:.4g} (two-sided; only the {only_a + only_b} clips exactly one run got right count)",
        ]
    return lines


def compare_runs(dirs: Sequence[Path], metric: str = COMPARED_METRIC) -> Comparison:
    """The comparison of the runs in ``dirs``, each configuration labelled by what differs (ValueError for runs
    that cannot be compared)."""
    read = [read_runs(path) for path in dirs]
    runs = pd.concat([frame for frame, _ in read], ignore_index=True)
    described = {name: item for _, found in read for name, item in found.items()}
    labels = differing_labels(described, {name: name for name in described}, REPEAT_KEYS)
    runs[CONFIGURATION] = runs[CONFIGURATION].map(labels)
    if runs[CONFIGURATION].nunique() < 2:
        raise ValueError("dirs: give at least two runs or configurations to compare")
    if metric not in runs or runs[metric].isna().any():
        raise ValueError(f"--metric: not every run reports {metric}")
    check_test_clips(runs)
    objectives = sorted(set(runs[RUN_OBJECTIVE]))
    if len(objectives) != 1:
        raise ValueError(
            f"dirs: the runs chose their best checkpoints on different objectives ({', '.join(objectives)}). "
            "Compare runs that optimised the same one"
        )
    objective = objectives[0]
    mode = "min" if metric.endswith("loss") else "max"
    table = compare_configurations(
        runs,
        [CONFIGURATION],
        objective,
        mode_of(objective) or "max",
        TABLE_METRICS,
        compared=metric,
        compared_mode=mode,
    )
    if table is None:
        raise ValueError("dirs: the runs could not be grouped (two runs of one configuration share a seed and fold)")
    return Comparison(objective, metric, mode, len(runs), table, mcnemar_tables(runs, table), runs)


def compare(dirs: Sequence[Path], metric: str = COMPARED_METRIC, output: str = "table") -> str:
    """The comparison of the runs in ``dirs`` in the ``output`` format, one of :data:`FORMATS` (ValueError for runs
    that cannot be compared)."""
    if output not in FORMATS:
        raise ValueError(f"output: '{output}' is not one of {', '.join(FORMATS)}")
    found = compare_runs(dirs, metric)
    if output == "csv":
        return str(found.table.to_csv(index=False))
    if output == "json":
        return comparison_json(found)
    if output == "latex":
        return comparison_latex(found)
    title = (
        f"{found.n_runs} runs in {len(found.table)} configurations, best first by {found.objective} (what the runs "
        f"optimised), compared with the best on {metric} ({found.mode}imised)"
    )
    lines = [
        title,
        "",
        configurations_markdown(found.table, [CONFIGURATION], found.objective, [metric, *TABLE_METRICS]),
        *mcnemar_lines(found.mcnemar),
    ]
    return "\n".join(lines) + "\n"


def comparison_json(found: Comparison) -> str:
    """The comparison as JSON: the metric, its mode, the run count, one object per configuration (best first;
    every column of the CSV, NaN as null) and McNemar's tables."""
    rows = json.loads(found.table.to_json(orient="records"))  # pandas writes NaN as null
    document = {
        "objective": found.objective,
        "metric": found.metric,
        "mode": found.mode,
        "runs": found.n_runs,
        "configurations": rows,
        "mcnemar": found.mcnemar,
    }
    return json.dumps(document, indent=2) + "\n"


def comparison_latex(found: Comparison) -> str:
    """The comparison as the sweep report's booktabs table (``\\usepackage{booktabs}``)."""
    narrow = narrow_table(found.table, found.runs, [CONFIGURATION], found.objective, found.metric)
    caption = (
        f"{found.n_runs} runs in {len(found.table)} configurations. {interval_note(found.objective, found.metric)}"
    )
    return booktabs(narrow, caption)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the comparison of the dirs named on the command line. Returns the exit status."""
    parser = argparse.ArgumentParser(prog="genre-compare", description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=Path, help="run dirs, cross-validation job dirs or sweep dirs")
    parser.add_argument("--metric", default=COMPARED_METRIC, help=f"the score compared (default {COMPARED_METRIC})")
    parser.add_argument(
        "--format", choices=FORMATS, default="table", help="markdown table (default), csv, json or latex (booktabs)"
    )
    args = parser.parse_args(argv)
    missing = [path for path in args.dirs if not path.is_dir()]
    try:
        if missing:
            raise ValueError(f"dirs: {missing[0]} is not a directory")
        print(compare(args.dirs, args.metric, args.format), end="")
    except (ValueError, UserInputError) as exc:  # a damaged run file is a UserInputError naming the file
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

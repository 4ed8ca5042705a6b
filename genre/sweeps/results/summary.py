"""A sweep's answer on disk and on screen: ``summary.csv``, ``configurations.csv``, ``summary.md``,
``heatmap.png`` and a table.

Built from the run folders alone (:mod:`genre.sweeps.results.runs`), so the callback at the end of a sweep and
``python -m genre.cli.report <sweep dir>`` produce the same files. ``summary.csv`` has one row per job (a
cross-validation job's row: its folds' mean); ``configurations.csv`` groups the runs that differ only in
seed or fold (and the folds of cross-validation jobs) and compares each configuration with the best
(:mod:`genre.sweeps.results.configurations`). Where runs repeat, the printed table and ``summary.md`` end with
that grouped table; where every configuration is one run, the jobs table itself gains McNemar's
Holm-adjusted p-value and the "not worse" mark.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from genre.comparison.grouping import NOT_WORSE_MEANING, REPEAT_KEYS
from genre.sweeps.jobs.status import COMPLETED, FAILED, KILLED, PRUNED, RUNNING
from genre.sweeps.results.configurations import (
    COMPARED_METRIC,
    CONFIGURATIONS_FILE,
    compare_configurations,
    per_job_comparison,
    run_rows,
)
from genre.sweeps.results.figures import write_figures
from genre.sweeps.results.pareto import pareto_optimal
from genre.sweeps.results.runs import CHOICE_COLUMNS, INCOMPLETE, JobRun, SkippedJob, read_sweep
from genre.sweeps.results.tables import best_line, booktabs, interval_note, narrow_table

log = logging.getLogger(__name__)

CSV_FILE = "summary.csv"
MARKDOWN_FILE = "summary.md"
LATEX_FILE = "summary.tex"
# Completed jobs first (best first), then the ones that need a look.
STATUS_ORDER = (COMPLETED, PRUNED, FAILED, KILLED, RUNNING, INCOMPLETE)
# Facts of a run (RunMetrics fields) shown beside the split/metric values, in table order.
RUN_FACTS = ("best_epoch", "epochs", "n_parameters", "train_seconds")
INTEGER_FACTS = ("best_epoch", "epochs", "n_parameters", "epochs_done")
# What the printed and markdown tables show besides the swept keys (the CSV has every column).
TABLE_METRICS = ("val/acc", "test/acc", "val/loss", "test/loss")


@dataclass
class Summary:
    """The summary of one sweep: one row per job, best first, and the files written."""

    frame: pd.DataFrame
    swept: list[str]
    table: str
    files: list[Path] = field(default_factory=list)
    # One row per configuration, best first, with the comparison with the best (None: nothing to group).
    configurations: pd.DataFrame | None = None
    # Job dirs left out because a file in them is damaged, each with its reason.
    skipped: list[SkippedJob] = field(default_factory=list)


def jobs_frame(jobs: list[JobRun]) -> tuple[pd.DataFrame, list[str]]:
    """One row per job, best first, and the keys that vary across the jobs (the swept ones)."""
    rows, param_keys, metric_keys = [], {}, {}
    for job in jobs:
        params = {key: job.choices[key] for key in CHOICE_COLUMNS if key in job.choices}
        params.update(job.params)
        metrics = {**job.metrics.scores, **job.metrics.perf} if job.metrics else {}
        param_keys.update(dict.fromkeys(params))
        metric_keys.update(dict.fromkeys(metrics))
        record = job.record
        trial = {"trial": job.trial} if job.trial is not None else {}
        rows.append(
            {
                "job": job.num,
                **trial,
                "status": job.status,
                **params,
                **metrics,
                **{key: getattr(job.metrics, key) if job.metrics else None for key in RUN_FACTS},
                "epochs_done": job.epochs_done,
                "wall_seconds": record.wall_seconds if record else None,
                "error": record.error if record else None,
                "detail": record.detail if record else None,
                "overrides": " ".join(job.overrides),
                "output_dir": str(job.run_dir.resolve()),
            }
        )
    if not rows:
        return pd.DataFrame(), []
    frame = pd.DataFrame(rows)
    swept = [key for key in param_keys if frame[key].astype(str).nunique(dropna=False) > 1]
    for key in param_keys:
        numeric = pd.to_numeric(frame[key], errors="coerce")
        if numeric.notna().all():
            frame[key] = numeric
    for key in (*INTEGER_FACTS, "job", *(["trial"] if "trial" in frame else [])):
        frame[key] = frame[key].astype("Int64")  # counts stay integers beside jobs that have none
    # val/ before test/ before train/: the order a reader compares them in.
    ordered = sorted(metric_keys, key=lambda c: ({"val": 0, "test": 1}.get(c.split("/")[0], 2), c))
    first = ["job", *(["trial"] if "trial" in frame else []), "status"]
    rest = [c for c in frame.columns if c not in {*first, *param_keys, *ordered}]
    frame = frame[[*first, *param_keys, *ordered, *rest]]
    objectives = next((job.metrics for job in jobs if job.metrics and job.metrics.objectives), None)
    if objectives is not None and objectives.objective_modes:
        # A multi-objective sweep: which completed jobs no other one beats in every objective.
        completed = frame["status"] == COMPLETED
        frame["pareto"] = pareto_optimal(
            frame.where(completed), objectives.objectives or [], objectives.objective_modes
        )
    return _best_first(frame, jobs), swept


def summarise_sweep(sweep_dir: str | Path, heatmap_metric: str = "test/acc") -> Summary:
    """Read every job of ``sweep_dir``; write ``summary.csv``, ``configurations.csv``, ``summary.md``,
    ``summary.tex`` and the figures (PNG and PDF) there. The best configuration is chosen on the runs'
    objective everywhere; test scores are reported and compared, never ranked on."""
    sweep_dir = Path(sweep_dir)
    skipped: list[SkippedJob] = []
    jobs = read_sweep(sweep_dir, skipped)
    frame, swept = jobs_frame(jobs)
    objective, mode = (jobs[0].objective, jobs[0].objective_mode) if jobs else ("val/acc", "max")
    config_keys = [key for key in swept if key not in REPEAT_KEYS]
    runs = run_rows(jobs, config_keys)
    compared = COMPARED_METRIC if COMPARED_METRIC in runs and runs[COMPARED_METRIC].notna().all() else objective
    grouped = compare_configurations(runs, config_keys, objective, mode, TABLE_METRICS, compared=compared)
    single = None if grouped is None or len(grouped) < 2 or (grouped["n"] > 1).any() else grouped
    comparison = None if single is None else per_job_comparison(single, runs, config_keys)
    table = format_table(frame, swept, sweep_dir, objective=objective if jobs else None, comparison=comparison)
    narrow = None if grouped is None else narrow_table(grouped, runs, config_keys, objective, compared)
    if narrow is not None and grouped is not None:
        table += (
            f"\nConfigurations: {len(runs)} runs in {len(grouped)} configurations (jobs differing only in "
            f"seed or fold, and the folds of cross-validation jobs), best first by {objective}\n\n"
            f"{narrow.to_markdown(index=False)}\n\n{interval_note(objective, compared)} {NOT_WORSE_MEANING}\n"
        )
    if skipped:
        table += f"\nSkipped {len(skipped)} job dir(s) holding a damaged file:\n\n" + "".join(
            f"- {job.run_dir}: {job.reason}\n" for job in skipped
        )
    if grouped is not None and len(grouped):
        table += "\n" + best_line(grouped, runs, config_keys, objective, compared) + "\n"
    summary = Summary(frame=frame, swept=swept, table=table, configurations=grouped, skipped=skipped)
    if frame.empty:
        log.warning("No jobs under %s", sweep_dir)
        return summary
    caption = f"Configurations of sweep {sweep_dir.name}. {interval_note(objective, compared)}"
    summary.files = _write_files(sweep_dir, frame, table, grouped, narrow, caption)
    cells = _heatmap_frame(frame, runs)
    summary.files += write_figures(sweep_dir, cells, grouped, runs, config_keys, objective, heatmap_metric)
    return summary


def _write_files(
    sweep_dir: Path,
    frame: pd.DataFrame,
    table: str,
    grouped: pd.DataFrame | None,
    narrow: pd.DataFrame | None,
    caption: str,
) -> list[Path]:
    """``summary.csv``, ``summary.md`` and, with configurations, ``configurations.csv`` and ``summary.tex``."""
    frame.to_csv(sweep_dir / CSV_FILE, index=False)
    (sweep_dir / MARKDOWN_FILE).write_text(_markdown(frame, table))
    files = [sweep_dir / CSV_FILE, sweep_dir / MARKDOWN_FILE]
    if grouped is not None and narrow is not None:
        grouped.to_csv(sweep_dir / CONFIGURATIONS_FILE, index=False)
        (sweep_dir / LATEX_FILE).write_text(booktabs(narrow, caption))
        files += [sweep_dir / CONFIGURATIONS_FILE, sweep_dir / LATEX_FILE]
    return files


def _heatmap_frame(frame: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per finished run (each fold of a cross-validation job), plus the unfinished jobs, for the heatmap."""
    if runs.empty or frame.empty:
        return frame
    finished = runs.assign(status=COMPLETED, job=runs["job"].map(lambda label: int(str(label).split("/")[0])))
    cells = pd.concat([finished, frame[frame["status"] != COMPLETED]], ignore_index=True)
    for key in frame.columns.intersection(finished.columns):
        numeric = pd.to_numeric(cells[key], errors="coerce")
        if key != "status" and numeric.notna().all():
            cells[key] = numeric
    return cells


def format_table(
    frame: pd.DataFrame,
    swept: list[str],
    sweep_dir: Path,
    objective: str | None = None,
    comparison: pd.DataFrame | None = None,
) -> str:
    """A markdown table of the jobs (swept keys, the objective and the main metrics, size, time, status), with a
    title line; ``comparison`` (per job: ``p (Holm)``, ``not worse``) adds those columns."""
    if frame.empty:
        return f"Sweep {sweep_dir}: no jobs"
    counts = frame["status"].value_counts()
    tally = ", ".join(f"{counts[status]} {status}" for status in STATUS_ORDER if status in counts)
    title = f"Sweep {sweep_dir}: {len(frame)} jobs ({tally})"
    keys = swept or ["overrides"]
    shown_metrics = list(dict.fromkeys([*([objective] if objective else []), *TABLE_METRICS]))
    columns = [
        "job",
        "trial",
        *keys,
        *[m for m in shown_metrics if m in frame.columns],
        "n_parameters",
        "epochs",
        "wall_seconds",
        "pareto",
        "status",
    ]
    shown = frame[[c for c in columns if c in frame.columns]].copy()
    unfinished = frame["status"] != COMPLETED
    if unfinished.any() and "epochs_done" in frame:
        # A killed or failed job shows how far it got.
        done = frame["epochs_done"].map(lambda n: "" if pd.isna(n) else f" after {int(n)} epoch(s)")
        shown.loc[unfinished, "status"] = frame.loc[unfinished, "status"] + done[unfinished]
        pruned = frame["status"] == PRUNED
        shown.loc[pruned, "status"] = frame.loc[pruned, "epochs_done"].map(lambda n: f"pruned at epoch {n}")
    if comparison is not None:
        shown = shown.merge(comparison, on="job", how="left")
    shown = shown.rename(columns={"n_parameters": "params", "wall_seconds": "wall s"})
    # tabulate leaves None cells empty but prints NaN as "nan".
    text = shown.astype(object).where(shown.notna(), None).to_markdown(index=False, floatfmt=".4g", missingval="")
    return f"{title}\n\n{text}\n"


def _markdown(frame: pd.DataFrame, table: str) -> str:
    title, _, body = table.partition("\n")
    lines = [f"# {title}", "", body.strip()]
    errors = frame[frame["error"].notna()] if "error" in frame else frame.iloc[0:0]
    if not errors.empty:
        lines += ["", "## Failed jobs", ""]
        lines += [f"- job {row.job} (`{row.overrides}`): {row.error}" for row in errors.itertuples()]
    return "\n".join(lines) + "\n"


def _best_first(frame: pd.DataFrame, jobs: list[JobRun]) -> pd.DataFrame:
    """Completed jobs by the sweep's objective (best first), then failed, killed, running, incomplete."""
    objective, mode = (jobs[0].objective, jobs[0].objective_mode) if jobs else ("val/acc", "max")
    rank = frame["status"].map({status: index for index, status in enumerate(STATUS_ORDER)})
    score = frame[objective] if objective in frame else pd.Series(0.0, index=frame.index)
    key = -score if mode == "max" else score
    order = pd.DataFrame({"rank": rank, "key": key.fillna(float("inf")), "job": frame["job"]})
    return frame.loc[order.sort_values(["rank", "key", "job"]).index].reset_index(drop=True)

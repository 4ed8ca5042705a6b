"""``heatmap.png`` / ``.pdf``: one metric over two swept keys of a sweep (feature x model when both vary).

Where a cell holds several runs (seeds, folds) it shows their mean ± the half-width of the 95 %
Student-t interval, and n. The caller keeps only the configurations that share every other swept key
(with the best one), so a cell never averages, say, different learning rates; the best configuration
(chosen on the objective, not on the drawn metric) is outlined.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # sweeps end on headless machines
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from genre.comparison.intervals import t_interval
from genre.sweeps.jobs.status import COMPLETED
from genre.sweeps.results.figure_files import save_png_and_pdf

PREFERRED_AXES = ("feature", "model")


def heatmap_axes(frame: pd.DataFrame, swept: list[str]) -> tuple[str | None, str] | None:
    """The (row key, column key) to draw: feature x model when both vary, else the two swept keys with
    most distinct values (one swept key: a single row; none: no heatmap)."""
    if all(key in swept for key in PREFERRED_AXES):
        return PREFERRED_AXES
    if not swept:
        return None
    by_count = sorted(swept, key=lambda key: -frame[key].nunique())
    if len(by_count) == 1:
        return None, by_count[0]
    return by_count[0], by_count[1]


def plot_heatmap(
    frame: pd.DataFrame,
    rows: str | None,
    columns: str,
    metric: str,
    path: Path,
    best: dict[str, Any] | None = None,
    title: str = "",
) -> list[Path]:
    """Mean ``metric`` of the completed runs per cell (± 95 % half-interval and n), annotated; a cell without
    any says so; the cell of ``best`` (its ``rows``/``columns`` values) outlined. Writes ``path`` (PNG)
    and the same as PDF; returns both paths."""
    jobs = frame.sort_values("job")
    row_values = _levels(jobs[rows]) if rows else [""]
    column_values = _levels(jobs[columns])
    means = np.full((len(row_values), len(column_values)), np.nan)
    counts = np.zeros_like(means, dtype=int)
    halves = np.full_like(means, np.nan)
    unfinished: dict[tuple[int, int], str] = {}
    for i, row_value in enumerate(row_values):
        for j, column_value in enumerate(column_values):
            cell = jobs[(jobs[columns] == column_value) & ((jobs[rows] == row_value) if rows else True)]
            done = cell[(cell["status"] == COMPLETED) & cell[metric].notna()]
            counts[i, j] = len(done)
            if len(done):
                interval = t_interval(done[metric].to_numpy(dtype=float))
                means[i, j], halves[i, j] = interval.mean, interval.half_width
            else:  # failed, killed, running: what a reader should look at in summary.md
                unfinished[i, j] = "/".join(sorted(set(cell["status"]))) or "no job"
    figure, axes = plt.subplots(figsize=(1.6 + 1.3 * len(column_values), 1.4 + 0.7 * len(row_values)))
    # Accuracies on a fixed 0-1 scale, so heatmaps of different sweeps compare by colour.
    vmin, vmax = (0.0, 1.0) if metric.endswith("acc") else (None, None)  # None: the data's range
    image = axes.imshow(np.ma.masked_invalid(means), cmap="viridis", aspect="auto", vmin=vmin, vmax=vmax)
    axes.set_xticks(range(len(column_values)), [str(v) for v in column_values], rotation=30, ha="right")
    axes.set_yticks(range(len(row_values)), [str(v) for v in row_values])
    axes.set_xlabel(columns)
    if rows:
        axes.set_ylabel(rows)
    low, high = image.get_clim()
    middle = (low + high) / 2
    for i in range(len(row_values)):
        for j in range(len(column_values)):
            if counts[i, j]:
                spread = f" ± {halves[i, j]:.3f}" if counts[i, j] > 1 else ""
                text = f"{means[i, j]:.3f}{spread}\n(n={counts[i, j]})"
                colour = "black" if means[i, j] > middle else "white"
            else:
                text, colour = unfinished[i, j], "red"
            axes.text(j, i, text, ha="center", va="center", color=colour, fontsize=9)
    if best is not None and best.get(columns) in column_values and (not rows or best.get(rows) in row_values):
        i, j = (row_values.index(best[rows]) if rows else 0), column_values.index(best[columns])
        axes.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2.5))
    figure.colorbar(image, ax=axes, label=metric)
    axes.set_title(f"{metric}: mean ± 95 % t half-interval, n runs" + (f"\n{title}" if title else ""), fontsize=9)
    return save_png_and_pdf(figure, path, f"{metric}; {title}")


def _levels(values: pd.Series) -> list:
    """Distinct values in a readable order: numbers ascending, anything else in job order."""
    unique = list(dict.fromkeys(values.dropna()))
    if all(isinstance(v, (int, float, np.number)) for v in unique):
        return sorted(unique)
    return unique

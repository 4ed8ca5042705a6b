"""The sweep's figures, chosen by how many keys were swept: a dot plot with intervals for one
(:mod:`genre.sweeps.results.dot_plot`), a heatmap for two or more (:mod:`genre.sweeps.results.heatmap`,
feature x model when both vary, over the configurations that share every other swept key with the
best). Each is written as PNG and PDF; the best configuration is the one chosen on the objective.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from genre.sweeps.results.dot_plot import plot_intervals
from genre.sweeps.results.heatmap import heatmap_axes, plot_heatmap
from genre.sweeps.results.tables import configuration_label, interval_of

log = logging.getLogger(__name__)

HEATMAP_FILE = "heatmap.png"
INTERVALS_FILE = "intervals.png"


def _sharing(cells: pd.DataFrame, best: dict[str, Any], others: Sequence[str]) -> pd.DataFrame:
    """The rows of ``cells`` whose ``others`` keys equal the best configuration's (compared as text)."""
    keep = pd.Series(True, index=cells.index)
    for key in others:
        keep &= cells[key].astype(str) == str(best[key])
    return cells[keep]


def write_figures(
    sweep_dir: Path,
    cells: pd.DataFrame,
    grouped: pd.DataFrame | None,
    runs: pd.DataFrame,
    config_keys: Sequence[str],
    objective: str,
    metric: str,
) -> list[Path]:
    """Draw ``metric`` of the sweep (``cells``: one row per run and unfinished job; ``grouped``: the
    configurations, best first by ``objective``) into ``sweep_dir``; return the files written."""
    if metric not in cells.columns:
        log.info("No job reported %s: no figure", metric)
        return []
    best = dict(grouped.iloc[0][list(config_keys)]) if grouped is not None and len(grouped) else None
    chosen = f"outlined: the best on {objective}" + (f", {configuration_label(best, config_keys)}" if best else "")
    if len(config_keys) == 1 and grouped is not None:
        key = config_keys[0]
        points = pd.DataFrame(
            [
                {"label": row[key], **dict(zip(("mean", "low", "high"), interval_of(row, runs, config_keys, metric)))}
                | {"n": int(row["n"]), "best": rank == 0}
                for rank, (_, row) in enumerate(grouped.iterrows())
            ]
        )
        title = f"red: the best on {objective}, {configuration_label(best or {}, config_keys)}"
        return plot_intervals(points, key, metric, sweep_dir / INTERVALS_FILE, title=title)
    axes = heatmap_axes(cells, list(config_keys))
    if axes is None:
        log.info("No swept key to draw a figure over")
        return []
    others = [key for key in config_keys if key not in axes]
    if others and best is not None:
        cells = _sharing(cells, best, others)
        chosen += "; other keys as the best's: " + ", ".join(f"{key}={best[key]}" for key in others)
    return plot_heatmap(cells, *axes, metric=metric, path=sweep_dir / HEATMAP_FILE, best=best, title=chosen)

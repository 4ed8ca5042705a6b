"""``intervals.png`` / ``.pdf``: one metric per value of the one swept key, each a dot with its 95 % interval.

The paper figure of a one-key sweep (a heatmap of one row says less): per configuration its mean and
interval (Student's t over its runs, or a single run's bootstrap interval over its test clips), the
best configuration (chosen on the objective, not on the drawn metric) in red.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # sweeps end on headless machines
import matplotlib.pyplot as plt
import pandas as pd

from genre.sweeps.results.figure_files import save_png_and_pdf


def plot_intervals(points: pd.DataFrame, key: str, metric: str, path: Path, title: str = "") -> list[Path]:
    """Draw ``points`` (columns ``label``, ``mean``, ``low``, ``high``, ``n``, ``best``; in order) as dots with
    interval bars; write ``path`` (PNG) and the same as PDF; return both paths."""
    figure, axes = plt.subplots(figsize=(1.8 + 0.9 * len(points), 3.4))
    for x, point in enumerate(points.to_dict("records")):
        mean, low, high = (float(point[name]) for name in ("mean", "low", "high"))
        colour = "red" if point["best"] else "black"
        if math.isnan(low) or math.isnan(high):
            axes.plot(x, mean, "o", color=colour)
        else:
            axes.errorbar(x, mean, yerr=[[mean - low], [high - mean]], fmt="o", color=colour, capsize=4)
        axes.annotate(f"n={point['n']}", (x, mean), textcoords="offset points", xytext=(6, -3), fontsize=8)
    axes.set_xticks(range(len(points)), [str(label) for label in points["label"]], rotation=30, ha="right")
    axes.set_xlim(-0.6, len(points) - 0.4)
    axes.set_xlabel(key)
    axes.set_ylabel(metric)
    axes.grid(axis="y", alpha=0.3)
    axes.set_title(f"{metric}: mean and 95 % interval" + (f"\n{title}" if title else ""), fontsize=9)
    return save_png_and_pdf(figure, path, f"{metric}; {title}")

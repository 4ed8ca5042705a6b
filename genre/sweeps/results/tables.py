"""The paper-ready tables of a sweep: one narrow row per configuration, as markdown and as LaTeX (booktabs).

Rows come from the grouped table (:func:`genre.sweeps.results.configurations.compare_configurations`),
best first by the objective the runs optimised (a validation score). Each row shows the configuration,
n, the objective and the test accuracy as mean with its 95 % interval, the test accuracy's difference
from the best configuration and the Holm-adjusted p-value of that paired comparison. The interval is
Student's t over the n runs; for a single run, the run's own bootstrap interval over its test clips
(``<metric>_low`` / ``_high`` in its metrics).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

CONFIGURATION = "configuration"
# LaTeX's special characters in text mode, each with its escape.
_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    # Unicode the tables use, for pdflatex.
    "±": r"$\pm$",
    "Δ": r"$\Delta$",
}


def configuration_label(row: pd.Series | dict[str, Any], config_keys: Sequence[str]) -> str:
    """``key=value`` of each config key, comma-separated ("all runs" when nothing was swept); a key named
    ``configuration`` (genre-compare's labels, already ``key=value``) shows its value alone."""
    return (
        ", ".join(str(row[key]) if key == CONFIGURATION else f"{key}={row[key]}" for key in config_keys) or "all runs"
    )


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number


def interval_of(
    row: pd.Series, runs: pd.DataFrame, config_keys: Sequence[str], metric: str
) -> tuple[float, float, float]:
    """(mean, low, high) of ``metric`` for one grouped configuration row: the t-interval over its runs, or
    for a single run its bootstrap interval (NaN bounds where the run recorded none)."""
    mean = _number(row.get(f"{metric} mean"))
    if int(row["n"]) > 1:
        return mean, _number(row.get(f"{metric} low")), _number(row.get(f"{metric} high"))
    match = runs
    for key in config_keys:
        match = match[match[key].astype(str) == str(row[key])]
    if len(match) != 1:
        return mean, math.nan, math.nan
    run = match.iloc[0]
    return mean, _number(run.get(f"{metric}_low")), _number(run.get(f"{metric}_high"))


def _with_interval(mean: float, low: float, high: float, symmetric: bool) -> str:
    """``mean ± half`` for a symmetric (t) interval, ``mean [low, high]`` for a bootstrap one."""
    if math.isnan(mean):
        return ""
    if math.isnan(low) or math.isnan(high):
        return f"{mean:.3f}"
    if symmetric:
        return f"{mean:.3f} ± {(high - low) / 2:.3f}"
    return f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def interval_text(row: pd.Series, runs: pd.DataFrame, config_keys: Sequence[str], metric: str) -> str:
    """``metric`` of one grouped configuration row with its 95 % interval, as the tables print it."""
    return _with_interval(*interval_of(row, runs, config_keys, metric), symmetric=int(row["n"]) > 1)


def _signed(value: Any) -> str:
    number = _number(value)
    return "" if math.isnan(number) else f"{number:+.3f}"


def _p(value: Any) -> str:
    number = _number(value)
    return "" if math.isnan(number) else f"{number:.3g}"


def narrow_table(
    grouped: pd.DataFrame, runs: pd.DataFrame, config_keys: Sequence[str], objective: str, compared: str
) -> pd.DataFrame:
    """One row per configuration, best first: configuration, n, the objective and ``compared`` with their
    95 % intervals, the difference in ``compared`` from the best, and the Holm-adjusted p-value."""
    metrics = list(dict.fromkeys([objective, compared]))
    rows = []
    for rank, (_, row) in enumerate(grouped.iterrows()):
        item: dict[str, Any] = {CONFIGURATION: configuration_label(row, config_keys), "n": int(row["n"])}
        for metric in metrics:
            item[metric] = interval_text(row, runs, config_keys, metric)
        item[f"Δ {compared} vs best"] = "best" if rank == 0 else _signed(row.get("difference"))
        item["p (Holm)"] = "" if rank == 0 else _p(row.get("p (Holm)"))
        rows.append(item)
    return pd.DataFrame(rows)


def interval_note(objective: str, compared: str) -> str:
    """What the narrow table's figures are, in one sentence."""
    return (
        f"Best first by {objective} (what the runs optimised; test scores never pick the best). "
        "mean ± half-width of the 95 % Student-t interval over the n runs; for a single run, "
        f"[its 95 % bootstrap interval over its clips]. Δ and p (Holm): the paired comparison with the "
        f"best on {compared}."
    )


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped (for text mode)."""
    return "".join(_LATEX_ESCAPES.get(char, char) for char in str(text))


def booktabs(table: pd.DataFrame, caption: str) -> str:
    """``table`` as a LaTeX ``table`` with a booktabs ``tabular`` (needs ``\\usepackage{booktabs}``)."""
    numeric = {column: column != CONFIGURATION for column in table.columns}
    spec = "".join("r" if numeric[column] else "l" for column in table.columns)
    header = " & ".join(latex_escape(column) for column in table.columns) + r" \\"
    body = [" & ".join(latex_escape(str(value)) for value in row) + r" \\" for row in table.itertuples(index=False)]
    return (
        "\n".join(
            [
                r"\begin{table}[t]",
                r"  \centering",
                f"  \\begin{{tabular}}{{{spec}}}",
                r"    \toprule",
                f"    {header}",
                r"    \midrule",
                *(f"    {line}" for line in body),
                r"    \bottomrule",
                r"  \end{tabular}",
                f"  \\caption{{{latex_escape(caption)}}}",
                r"\end{table}",
            ]
        )
        + "\n"
    )


def best_line(
    grouped: pd.DataFrame, runs: pd.DataFrame, config_keys: Sequence[str], objective: str, compared: str
) -> str:
    """The one line naming the best configuration, chosen on the objective, with its scores."""
    best = grouped.iloc[0]
    scores = []
    for metric in dict.fromkeys([objective, compared]):
        text = interval_text(best, runs, config_keys, metric)
        if text:
            scores.append(f"{metric} {text}")
    n = int(best["n"])
    return (
        f"Best configuration, chosen on {objective}: {configuration_label(best, config_keys)} "
        f"({'; '.join(scores)}; n = {n} run{'s' if n != 1 else ''})"
    )

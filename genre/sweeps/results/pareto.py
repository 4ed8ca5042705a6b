"""Which jobs of a multi-objective sweep are Pareto-optimal: no other completed job is at least as good
in every objective and better in one."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def pareto_optimal(frame: pd.DataFrame, objectives: Sequence[str], modes: Sequence[str]) -> pd.Series:
    """A boolean per row of ``frame``: whether its values of ``objectives`` (``max``/``min`` each) are
    dominated by no other row's. Rows missing a value (unfinished jobs) are never optimal."""
    if len(objectives) != len(modes):
        raise ValueError(f"modes: {len(modes)} for {len(objectives)} objectives")
    values = frame[list(objectives)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    # Minimise everything: a maximised objective counts negated.
    costs = values * np.array([-1.0 if mode == "max" else 1.0 for mode in modes])
    finite = np.isfinite(costs).all(axis=1)
    optimal = np.zeros(len(frame), dtype=bool)
    for row in np.flatnonzero(finite):
        others = costs[finite]
        dominated = ((others <= costs[row]).all(axis=1) & (others < costs[row]).any(axis=1)).any()
        optimal[row] = not dominated
    return pd.Series(optimal, index=frame.index, name="pareto")

"""Mean, standard deviation and Student-t confidence interval of a metric over repeated runs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """An estimate with a confidence interval ``[low, high]``; NaN bounds when there is none (n = 1)."""

    estimate: float
    low: float
    high: float
    confidence: float = CONFIDENCE

    @property
    def half_width(self) -> float:
        """Half the interval's width: the "±" of ``estimate ± half_width`` (exact for symmetric intervals)."""
        return (self.high - self.low) / 2


@dataclass(frozen=True)
class MeanInterval(Interval):
    """The mean of ``n`` values with their sample standard deviation (ddof = 1) and a t interval."""

    n: int = 0
    std: float = math.nan

    @property
    def mean(self) -> float:
        """The mean of the values (the same as ``estimate``)."""
        return self.estimate


def as_values(values: Sequence[float] | np.ndarray, name: str = "values") -> np.ndarray:
    """``values`` as a 1-D float array with at least one element and no NaN; ValueError naming ``name``."""
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name}: expected a non-empty 1-D sequence of numbers, got shape {array.shape}")
    if np.isnan(array).any():
        raise ValueError(f"{name}: {int(np.isnan(array).sum())} of {array.size} values are NaN")
    return array


def t_interval(values: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE) -> MeanInterval:
    """The mean of ``values`` with its Student-t ``confidence`` interval: mean ± t_{n-1} · std / √n.

    One value has no spread to estimate, so std, low and high are NaN (not an error: a single run is
    still a result). Identical values give a zero-width interval.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence: {confidence} is not in (0, 1)")
    array = as_values(values)
    n, mean = array.size, float(array.mean())
    if n == 1:
        return MeanInterval(mean, math.nan, math.nan, confidence, n=1, std=math.nan)
    std = float(array.std(ddof=1))
    if std == 0.0:
        # scipy's t.interval needs scale > 0; the interval of identical values is the value itself.
        return MeanInterval(mean, mean, mean, confidence, n=n, std=0.0)
    low, high = stats.t.interval(confidence, df=n - 1, loc=mean, scale=std / math.sqrt(n))
    return MeanInterval(mean, float(low), float(high), confidence, n=n, std=std)

"""Hydra's sweep grammar as Optuna distributions: what ``hydra.sweeper.params`` and sweep overrides mean.

=====================================  ===========================================================
``key=choice(a, b, c)``                ``CategoricalDistribution([a, b, c])``
``key=range(1, 10, 2)``                ``IntDistribution(1, 9, step=2)`` (floats: ``FloatDistribution``
                                       with ``step``; Hydra's ``range`` excludes its end)
``key=interval(0.0, 0.5)``             ``FloatDistribution(0.0, 0.5)`` (always floats, as Hydra parses them)
``key=tag(log, interval(1e-4, 1e-2))`` the same with ``log=True``
``key=value``                          a fixed value, passed to every trial unchanged
=====================================  ===========================================================

``shuffle(range(...))`` becomes the categorical distribution of the range's values. A form Optuna cannot
search (an empty range, an interval whose end is below its start, a log interval from 0) is a
:class:`~genre.core.errors.ConfigError` naming the key as the user wrote it: ``hydra.sweeper.params.<key>`` for
an entry of ``hydra.sweeper.params``, ``<key>`` for a sweep override on the command line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep, Transformer
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from genre.core.errors import ConfigError

PARAMS_KEY = "hydra.sweeper.params"


@dataclass
class SearchSpace:
    """The searched keys with their distributions, and the keys every trial gets as they are."""

    distributions: dict[str, BaseDistribution] = field(default_factory=dict)
    fixed: dict[str, str] = field(default_factory=dict)

    def overrides(self, params: dict[str, Any]) -> list[str]:
        """One trial's command-line overrides: its sampled ``params``, then the fixed keys."""
        return [
            *(f"{name}={_as_override_value(value)}" for name, value in params.items()),
            *(f"{name}={value}" for name, value in self.fixed.items()),
        ]

    def grid(self) -> dict[str, list[Any]]:
        """Every value of every searched key, for Optuna's ``GridSampler``; continuous ranges have none."""
        return {name: grid_values(name, dist) for name, dist in self.distributions.items()}


def parse_search_space(arguments: Sequence[str], params: Mapping[Any, Any] | None = None) -> SearchSpace:
    """The search space of ``hydra.sweeper.params`` entries (``params``), then sweep overrides (``arguments``;
    later ones win). Raises :class:`~genre.core.errors.ConfigError` for a sweep Optuna cannot search."""
    space = SearchSpace()
    entries = [(f"{key!s}={value}", PARAMS_KEY) for key, value in (params or {}).items()]
    entries += [(str(argument), "") for argument in arguments]
    parser = OverridesParser.create()
    for line, prefix in entries:
        (override,) = parser.parse_overrides([line])
        name = override.get_key_element()
        distribution = distribution_of(override, key=f"{prefix}.{name}" if prefix else name)
        space.distributions.pop(name, None)
        space.fixed.pop(name, None)
        if distribution is None:
            space.fixed[name] = override.get_value_element_as_str()
        else:
            space.distributions[name] = distribution
    return space


def distribution_of(override: Override, key: str | None = None) -> BaseDistribution | None:
    """The Optuna distribution of one parsed override; None for a fixed value. ``key`` names the override in
    errors (default: its own key)."""
    if not override.is_sweep_override():
        return None
    key = key or override.get_key_element()
    value = override.value()
    written = (override.input_line or "").partition("=")[2].strip()  # as the user wrote it
    if isinstance(value, RangeSweep):
        _check_range(key, written, value)  # before iterating: Hydra's range(1, 10, 0) never ends
    if isinstance(value, ChoiceSweep) or (isinstance(value, RangeSweep) and value.shuffle):
        return CategoricalDistribution(list(override.sweep_iterator(transformer=Transformer.encode)))  # type: ignore[arg-type]  # encoded: str/int/float
    if isinstance(value, RangeSweep):
        return _range_distribution(value)
    if isinstance(value, IntervalSweep):
        assert value.start is not None and value.end is not None
        # Hydra parses interval bounds as floats, ints included: integers are searched with range().
        low, high, log = float(value.start), float(value.end), "log" in value.tags
        if not low <= high:
            raise ConfigError(
                key, f"{written} ends below its start", f"Write the smaller bound first: interval({high:g}, {low:g})"
            )
        if log and low <= 0:
            raise ConfigError(
                key, f"{written} searches a log scale from {low:g}", "A log interval needs a start above 0, e.g. 1e-5"
            )
        return FloatDistribution(low, high, log=log)
    raise ConfigError(
        key, f"{written} is a sweep Optuna cannot search", "Use choice, range, interval or tag(log, interval)"
    )


def _check_range(key: str, written: str, value: RangeSweep) -> None:
    start, stop, step = value.start, value.stop, value.step
    assert start is not None and stop is not None and step is not None
    if step <= 0:
        raise ConfigError(key, f"{written} has step {step}", "Use a step above 0, e.g. range(8, 33, 8)")
    if stop <= start:
        raise ConfigError(
            key,
            f"{written} is empty (it stops at or below its start)",
            "Use range(start, stop, step) with start < stop",
        )


def _range_distribution(value: RangeSweep) -> BaseDistribution:
    start, stop, step = value.start, value.stop, value.step
    assert start is not None and stop is not None and step is not None
    # range() excludes its stop, as Python's does: the last value is the largest start + k * step below it.
    count = math.ceil((stop - start) / step - 1e-9)
    if all(isinstance(x, int) for x in (start, stop, step)):
        return IntDistribution(int(start), int(start + (count - 1) * step), step=int(step))
    return FloatDistribution(float(start), float(start + (count - 1) * step), step=float(step))


def grid_values(name: str, distribution: BaseDistribution) -> list[Any]:
    """Every value ``distribution`` can take, for a grid; raises for a continuous one."""
    if isinstance(distribution, CategoricalDistribution):
        return list(distribution.choices)
    step = getattr(distribution, "step", None)
    if isinstance(distribution, (IntDistribution, FloatDistribution)) and step is not None and not distribution.log:
        count = int(round((distribution.high - distribution.low) / step)) + 1
        return [distribution.low + index * step for index in range(count)]
    raise ValueError(f"params: {name} is continuous; the grid sampler needs choice(...) or range(...)")


def _as_override_value(value: Any) -> str:
    """A sampled value as an override value (choices are already in Hydra's encoding)."""
    return "null" if value is None else str(value)

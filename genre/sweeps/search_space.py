"""Hydra's sweep grammar as Optuna distributions: what ``hydra.sweeper.params`` and sweep overrides mean.

=====================================  ===========================================================
``key=choice(a, b, c)``                ``CategoricalDistribution([a, b, c])``
``key=range(1, 10, 2)``                ``IntDistribution(1, 9, step=2)`` (floats: ``FloatDistribution``
                                       with ``step``; Hydra's ``range`` excludes its end)
``key=interval(0.0, 0.5)``             ``FloatDistribution(0.0, 0.5)`` (always floats, as Hydra parses them)
``key=tag(log, interval(1e-4, 1e-2))`` the same with ``log=True``
``key=value``                          a fixed value, passed to every trial unchanged
=====================================  ===========================================================

``shuffle(range(...))`` becomes the categorical distribution of the range's values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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


def parse_search_space(arguments: Sequence[str]) -> SearchSpace:
    """The search space of ``hydra.sweeper.params`` entries and sweep overrides (later ones win)."""
    space = SearchSpace()
    for override in OverridesParser.create().parse_overrides(list(arguments)):
        name = override.get_key_element()
        distribution = distribution_of(override)
        space.distributions.pop(name, None)
        space.fixed.pop(name, None)
        if distribution is None:
            space.fixed[name] = override.get_value_element_as_str()
        else:
            space.distributions[name] = distribution
    return space


def distribution_of(override: Override) -> BaseDistribution | None:
    """The Optuna distribution of one parsed override; None for a fixed value."""
    if not override.is_sweep_override():
        return None
    value = override.value()
    if override.is_choice_sweep() or (isinstance(value, RangeSweep) and value.shuffle):
        assert isinstance(value, (ChoiceSweep, RangeSweep))
        return CategoricalDistribution(list(override.sweep_iterator(transformer=Transformer.encode)))  # type: ignore[arg-type]  # encoded: str/int/float
    if isinstance(value, RangeSweep):
        return _range_distribution(override.get_key_element(), value)
    if isinstance(value, IntervalSweep):
        assert value.start is not None and value.end is not None
        # Hydra parses interval bounds as floats, ints included: integers are searched with range().
        return FloatDistribution(float(value.start), float(value.end), log="log" in value.tags)
    raise ValueError(
        f"params: {override.input_line!r} is a sweep Optuna cannot search "
        f"(use choice, range, interval or tag(log, interval))"
    )


def _range_distribution(name: str, value: RangeSweep) -> BaseDistribution:
    start, stop, step = value.start, value.stop, value.step
    assert start is not None and stop is not None and step is not None
    if step <= 0 or stop <= start:
        raise ValueError(f"params: {name}=range({start}, {stop}, {step}) is empty (it needs start < stop, step > 0)")
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

"""Samplers of our own: a seeded TPE whose random draws depend on the trial number, not on the process
drawing them, and Optuna's grid sampler made safe to drive with ask/tell."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import GridSampler, TPESampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from genre.core.upstream import reseed_tpe_sampler


class TrialSeededTPESampler(TPESampler):
    """``TPESampler`` that reseeds its random state from ``(seed, trial number, parameter)`` per draw.

    A plain seeded sampler replays the same random sequence in every process: two workers sharing a
    study would run the same configurations, and a resumed study would repeat its first trials (TPE
    draws at random for its first ``n_startup_trials``). Trial numbers are unique within a study, so
    draws keyed on them differ across workers and resumptions, and a fresh study is still reproducible.
    With ``seed=None`` it is a plain, unseeded ``TPESampler``.
    """

    def __init__(self, *args: Any, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, seed=seed, **kwargs)
        self._base_seed = seed

    def _reseed(self, trial: FrozenTrial, key: str) -> None:
        if self._base_seed is None:
            return
        entropy = [int(self._base_seed), int(trial.number), zlib.crc32(key.encode())]
        state = int(np.random.SeedSequence(entropy).generate_state(1)[0])
        reseed_tpe_sampler(self, state)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        self._reseed(trial, "")
        return super().sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        self._reseed(trial, param_name)
        return super().sample_independent(study, trial, param_name, param_distribution)


class SweepGridSampler(GridSampler):
    """``GridSampler`` that leaves stopping to the sweeper (which asks :meth:`is_exhausted`).

    Optuna's calls ``study.stop()`` after the last grid point's trial, which outside ``study.optimize``
    raises before the trial's state is stored: the last point's result would be lost.
    """

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState, values: Any) -> None:
        return None

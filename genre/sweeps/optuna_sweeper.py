"""The Optuna sweeper of ``hparams_search=optuna``: hydra-optuna-sweeper's, with three additions.

- ``max_failure_rate`` counts over the whole search (:class:`~genre.sweeps.failures.FailureBudget`),
  not per batch of ``n_jobs`` trials; a failed trial is told to the study as FAIL either way.
- A SQLite study's folder is created first, so ``sqlite:///optuna/<study>.db`` works on a fresh checkout.
- At the end, Optuna's own plots of the whole study go into the sweep dir beside the sweeper's
  ``optimization_results.yaml`` (:mod:`genre.sweeps.optuna_plots`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn
from hydra.types import HydraContext, TaskFunction
from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper as UpstreamOptunaSweeper
from omegaconf import DictConfig

from genre.sweeps.failures import FailureBudget

log = logging.getLogger(__name__)


class OptunaSweeper(UpstreamOptunaSweeper):
    """hydra-optuna-sweeper 1.3's sweeper with a sweep-wide failure budget, SQLite set-up and plots."""

    def __init__(self, *, max_failure_rate: float, **kwargs: Any) -> None:
        super().__init__(max_failure_rate=max_failure_rate, **kwargs)
        self.budget = FailureBudget(max_failure_rate)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        impl = self.sweeper
        impl.launcher = _BudgetedLauncher(impl.launcher, impl, self.budget)

    def sweep(self, arguments: list[str]) -> None:
        impl = self.sweeper
        _create_sqlite_folder(impl.storage)
        Path(impl.config.hydra.sweep.dir).mkdir(parents=True, exist_ok=True)
        super().sweep(arguments)
        from genre.sweeps.optuna_plots import write_study_plots

        write_study_plots(impl.study_name, impl.storage, Path(impl.config.hydra.sweep.dir))


class _BudgetedLauncher:
    """Wraps the sweeper's launcher to count failures over the whole search.

    The upstream sweeper tells each trial's outcome to the study, then raises a failed trial's
    exception if ``failures / batch size > max_failure_rate``. Setting that rate to 1 (go on) or 0
    (stop) after each batch makes it follow the sweep-wide budget instead, without copying its loop.
    """

    def __init__(self, launcher: Any, impl: Any, budget: FailureBudget) -> None:
        self.launcher = launcher
        self.impl = impl
        self.budget = budget
        impl.max_failure_rate = 1.0

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        returns = self.launcher.launch(job_overrides, initial_job_idx=initial_job_idx)
        # impl.n_trials is the planned count (upstream lowers it to the grid's size for the grid sampler).
        self.impl.max_failure_rate = 0.0 if self.budget.record(returns, int(self.impl.n_trials)) else 1.0
        return returns

    def __getattr__(self, name: str) -> Any:
        return getattr(self.launcher, name)


def _create_sqlite_folder(storage: Any) -> None:
    """SQLite creates the database file but not its folder."""
    if not isinstance(storage, str) or not storage.startswith("sqlite"):
        return
    from sqlalchemy.engine import make_url

    database = make_url(storage).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)

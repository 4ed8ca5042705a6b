"""The Optuna sweeper of ``hparams_search=optuna``: hydra-optuna-sweeper's, with three additions.

- ``max_failure_rate`` counts over the whole search (:class:`~genre.sweeps.failures.FailureBudget`),
  not per batch of ``n_jobs`` trials; a failed trial is told to the study as FAIL either way.
- The storage is prepared first: a SQLite study's folder is created, so ``sqlite:///optuna/<study>.db``
  works on a fresh checkout, and a new database's tables are created with retries, since sweep
  processes started together against one server race to create them.
- At the end, Optuna's own plots of the whole study go into the sweep dir beside the sweeper's
  ``optimization_results.yaml`` (:mod:`genre.sweeps.optuna_plots`).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn
from hydra.types import HydraContext, TaskFunction
from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper as UpstreamOptunaSweeper
from omegaconf import DictConfig

from genre.errors import ConfigError, exit_with_one_line
from genre.sweeps.failures import FailureBudget
from genre.sweeps.storage_url import check_reachable, mask_logger, with_password_from_environment
from genre.upstream import (
    optuna_planned_trials,
    optuna_study,
    optuna_sweep_dir,
    set_optuna_batch_failure_rate,
    wrap_optuna_launcher,
)

# The upstream sweeper logs its storage URL ("Storage: ..."): never with the password.
mask_logger("hydra_plugins.hydra_optuna_sweeper._impl")

log = logging.getLogger(__name__)


class OptunaSweeper(UpstreamOptunaSweeper):
    """hydra-optuna-sweeper 1.3's sweeper with a sweep-wide failure budget, SQLite set-up and plots."""

    def __init__(self, *, max_failure_rate: float, **kwargs: Any) -> None:
        super().__init__(max_failure_rate=max_failure_rate, **kwargs)
        self.budget = FailureBudget(max_failure_rate)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        wrap_optuna_launcher(self, lambda launcher, impl: _BudgetedLauncher(launcher, impl, self.budget))

    def sweep(self, arguments: list[str]) -> None:
        impl = self.sweeper
        if isinstance(impl.storage, str):
            impl.storage = with_password_from_environment(impl.storage)
            try:
                check_reachable(impl.storage)
            except ConfigError as exc:
                exit_with_one_line(exc)  # one line naming the key, not a driver traceback
        study_name, storage = optuna_study(self)
        _prepare_storage(storage)
        sweep_dir = optuna_sweep_dir(self)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        super().sweep(arguments)
        from genre.sweeps.optuna_plots import write_study_plots

        write_study_plots(study_name, storage, sweep_dir)


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
        set_optuna_batch_failure_rate(impl, 1.0)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        returns = self.launcher.launch(job_overrides, initial_job_idx=initial_job_idx)
        # impl.n_trials is the planned count (upstream lowers it to the grid's size for the grid sampler).
        stop = self.budget.record(returns, optuna_planned_trials(self.impl))
        set_optuna_batch_failure_rate(self.impl, 0.0 if stop else 1.0)
        return returns

    def __getattr__(self, name: str) -> Any:
        return getattr(self.launcher, name)


def _prepare_storage(storage: Any, attempts: int = 6) -> None:
    """Create a SQLite study's folder, and the study database's tables if it has none yet.

    Optuna creates missing tables whenever it opens a storage; two processes doing that at once on
    a fresh PostgreSQL database collide (a unique violation on ``alembic_version`` or ``pg_type``).
    The loser retries and then finds the tables in place. (Two processes creating the same study is
    handled by Optuna itself: ``load_if_exists``.)
    """
    if not isinstance(storage, str):
        return  # None: in memory; or a storage object someone built
    import optuna
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    url = make_url(storage)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, attempts + 1):
        try:
            optuna.storages.RDBStorage(storage)
            return
        except SQLAlchemyError as exc:
            if attempt == attempts:
                raise
            log.info(
                "Preparing the study storage failed (%s: %s); retrying", type(exc).__name__, str(exc).splitlines()[0]
            )
            time.sleep(random.uniform(0.2, 1.0) * attempt)

"""The Optuna sweeper of ``hparams_search=optuna``: our own, on Optuna 5's ask-and-tell interface.

It keeps hydra-optuna-sweeper's config surface (``params`` in Hydra's sweep grammar, ``storage``,
``study_name``, ``n_trials``, ``n_jobs``, ``direction``, ``max_failure_rate``, a ``sampler`` group) and adds:

- ``pruner`` (a group): each job reports its objective after every epoch to its own trial
  (:mod:`genre.sweeps.pruning`) and stops when the pruner says so; the trial is PRUNED, not FAIL.
- ``schedule``: ``async`` trials (a new one starts as soon as any ends) or ``batch``
  (:mod:`genre.sweeps.trial_scheduler`).
- Heartbeats: a trial left RUNNING by a killed sweep is failed by the next one, and re-run with its
  parameters when ``retry_failed`` allows (:mod:`genre.sweeps.study_storage`).
- ``max_failure_rate`` counts over the whole search (:class:`~genre.sweeps.failures.FailureBudget`).
- At the end: ``optimization_results.yaml`` and Optuna's plots of the whole study in the sweep dir.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any, cast

import optuna
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, ListConfig, OmegaConf

from genre.errors import ConfigError, exit_with_one_line
from genre.sweeps.failures import FailureBudget
from genre.sweeps.search_space import SearchSpace, parse_search_space
from genre.sweeps.storage_url import check_reachable, masked, with_password_from_environment
from genre.sweeps.study_storage import Heartbeats, prepare_storage, sweeper_storage
from genre.sweeps.trial_scheduler import SCHEDULES, TrialScheduler

log = logging.getLogger(__name__)

RESULTS_FILE = "optimization_results.yaml"
DIRECTIONS = ("minimize", "maximize")


class OptunaSweeper(Sweeper):
    """Hydra sweeper running an Optuna study: ask a trial, launch its job, tell the study its result."""

    def __init__(
        self,
        *,
        sampler: Any,
        pruner: Any = None,
        direction: Any = "minimize",
        storage: str | None = None,
        study_name: str | None = None,
        n_trials: int = 20,
        n_jobs: int = 1,
        max_failure_rate: float = 0.0,
        params: DictConfig | None = None,
        schedule: str = "async",
        retry_failed: int = 0,
        heartbeat_interval: int = 60,
        grace_period: int | None = None,
    ) -> None:
        if schedule not in SCHEDULES:
            raise ConfigError(
                "hydra.sweeper.schedule",
                f"'{schedule}' is not one of {', '.join(SCHEDULES)}",
                "Use async (a new trial as soon as one ends) or batch (n_jobs trials at a time)",
            )
        self.sampler = sampler
        self.pruner = pruner if pruner is not None else optuna.pruners.NopPruner()
        self.directions = _directions(direction)
        self.storage = storage
        self.study_name = study_name
        self.n_trials = int(n_trials)
        self.n_jobs = int(n_jobs)
        self.budget = FailureBudget(max_failure_rate)
        self.params = params
        self.schedule = schedule
        self.retry_failed = int(retry_failed)
        self.heartbeat_interval = int(heartbeat_interval)
        self.grace_period = grace_period
        self._storage: Any = None
        self.config: DictConfig | None = None
        self.launcher: Any = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )

    def sweep(self, arguments: list[str]) -> None:
        assert self.config is not None and self.launcher is not None
        space = parse_search_space([*(f"{key!s}={value}" for key, value in (self.params or {}).items()), *arguments])
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        self._check_objectives()
        study = self._open_study(space)
        scheduler = TrialScheduler(
            study,
            space,
            self.launcher,
            n_trials=self._planned(space),
            n_jobs=self.n_jobs,
            schedule=self.schedule,
            budget=self.budget,
            heartbeats=Heartbeats(self._storage, max(1, self.heartbeat_interval)),
            retried=self.retry_failed > 0,
            validate=self.validate_batch_is_legal,
        )
        try:
            scheduler.run()
        finally:
            write_results(study, sweep_dir)
            from genre.sweeps.optuna_plots import write_study_plots

            write_study_plots(study, sweep_dir)

    # --- set-up -------------------------------------------------------------------------------------------

    def _open_study(self, space: SearchSpace) -> optuna.Study:
        if self._prunes() and self.storage is None:
            raise ConfigError(
                "hydra.sweeper.pruner",
                "pruning needs a study storage: each job reports its epochs to its trial through it",
                "Set hydra.sweeper.storage (e.g. sqlite:///optuna/study.db) or hydra/sweeper/pruner=none",
            )
        if self._prunes() and len(self.directions) > 1:
            log.warning("Optuna prunes single-objective studies only: hydra.sweeper.pruner is ignored")
        if isinstance(self.sampler, functools.partial):  # the grid sampler takes the search space
            self.sampler = self.sampler(space.grid())
        if isinstance(self.storage, str):
            # The password may come from GENRE_STUDY_PASSWORD or ~/.pgpass; it is masked wherever the URL is shown.
            self.storage = with_password_from_environment(self.storage)
            try:
                check_reachable(self.storage)
            except ConfigError as exc:
                exit_with_one_line(exc)  # one line naming the key, not a driver traceback
        prepare_storage(self.storage)
        self._storage = sweeper_storage(self.storage, self.heartbeat_interval, self.grace_period, self.retry_failed)
        study = optuna.create_study(
            study_name=self.study_name,
            storage=self._storage,
            sampler=self.sampler,
            pruner=self.pruner,
            directions=cast(list[Any], self.directions),
            load_if_exists=True,
        )
        log.info(
            "Study %s (%d trials so far) in %s | sampler %s | pruner %s | directions %s | %d trials, %d at a time (%s)",
            study.study_name,
            len(study.trials),
            masked(self.storage) if self.storage else "memory",
            type(self.sampler).__name__,
            type(self.pruner).__name__,
            ", ".join(self.directions),
            self.n_trials,
            self.n_jobs,
            self.schedule,
        )
        return study

    def _prunes(self) -> bool:
        return not isinstance(self.pruner, optuna.pruners.NopPruner)

    def _planned(self, space: SearchSpace) -> int:
        """``n_trials``, or fewer for a grid that has fewer points."""
        if isinstance(self.sampler, optuna.samplers.GridSampler):
            size = 1
            for values in space.grid().values():
                size *= len(values)
            if size < self.n_trials:
                log.info("The grid has %d points: running %d trials, not n_trials=%d", size, size, self.n_trials)
                return size
        return self.n_trials

    def _check_objectives(self) -> None:
        """The run's objectives and modes must match the study's directions (one each, same sense)."""
        assert self.config is not None
        objective, mode = self.config.get("objective"), self.config.get("objective_mode")
        objectives = list(objective) if isinstance(objective, ListConfig) else [objective]
        modes = list(mode) if isinstance(mode, ListConfig) else [mode] * len(objectives)
        if len(objectives) != len(self.directions):
            raise ConfigError(
                "hydra.sweeper.direction",
                f"{len(self.directions)} direction(s) for "
                f"{len(objectives)} objective(s) ({', '.join(map(str, objectives))})",
                "Give one direction per objective, e.g. [maximize,minimize] for [val/acc,n_parameters]",
            )
        for name, run_mode, direction in zip(objectives, modes, self.directions):
            if run_mode is not None and f"{run_mode}imize" != direction:
                raise ConfigError(
                    "hydra.sweeper.direction",
                    f"{direction} for {name}, whose objective_mode is {run_mode}",
                    "Make objective_mode and hydra.sweeper.direction agree",
                )


def _directions(direction: Any) -> list[str]:
    directions = [str(d) for d in direction] if isinstance(direction, (list, ListConfig, tuple)) else [str(direction)]
    for value in directions:
        if value not in DIRECTIONS:
            raise ConfigError(
                "hydra.sweeper.direction",
                f"'{value}' is not minimize or maximize",
                "Use maximize or minimize (a list of them for several objectives)",
            )
    return directions


def write_results(study: optuna.Study, sweep_dir: Path) -> Path:
    """``optimization_results.yaml``: the best parameters and value of the whole study (several
    objectives: every Pareto-optimal trial's parameters and values)."""
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    results: dict[str, Any] = {
        "name": "optuna",
        "study_name": study.study_name,
        "n_trials": len(study.trials),
        "n_complete": len(complete),
    }
    if len(study.directions) == 1:
        best = study.best_trial if complete else None
        results.update(
            best_params=best.params if best else None,
            best_value=best.value if best else None,
            best_trial=best.number if best else None,
        )
        if best:
            log.info("Best trial %d: value %s, parameters %s", best.number, best.value, best.params)
    else:
        front = study.best_trials if complete else []
        results["solutions"] = [{"trial": t.number, "params": t.params, "values": t.values} for t in front]
        log.info("%d Pareto-optimal trial(s): %s", len(front), ", ".join(str(t.number) for t in front))
    if not complete:
        log.warning("No completed trial in study %s", study.study_name)
    path = sweep_dir / RESULTS_FILE
    OmegaConf.save(OmegaConf.create(results), path)
    return path

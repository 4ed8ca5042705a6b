"""The Optuna sweeper of ``hparams_search=optuna``: our own, on Optuna 5's ask-and-tell interface.

It keeps hydra-optuna-sweeper's config surface (``params`` in Hydra's sweep grammar, ``storage``,
``study_name``, ``n_trials``, ``n_jobs``, ``direction``, ``max_failure_rate``, a ``sampler`` group) and adds:

- ``pruner`` (a group): each job reports its objective after every epoch to its own trial
  (:mod:`genre.sweeps.optuna.pruning`) and stops when the pruner says so; the trial is PRUNED, not FAIL.
- ``schedule``: ``async`` trials (a new one starts as soon as any ends) or ``batch``
  (:mod:`genre.sweeps.optuna.trial_scheduler`).
- Heartbeats: a trial left RUNNING by a killed sweep is failed by the next one, and re-run with its
  parameters when ``retry_failed`` allows (:mod:`genre.sweeps.optuna.study_storage`).
- ``max_failure_rate`` counts over the whole search (:class:`~genre.sweeps.jobs.failures.FailureBudget`).
- A study is one setup (:mod:`genre.sweeps.optuna.study_setup`): resuming it with other fixed overrides,
  search space, objective or dataset is refused unless ``on_setup_change=continue``. Each trial stores its
  ``run_dir``; the study its metric names.
- At the end: ``optimization_results.yaml`` and Optuna's plots of the whole study (titled so) in the sweep dir.
- A password in ``storage`` never reaches a file: it is taken out of the URL before anything is written
  and handed to the jobs in their environment (:func:`keep_password_out_of_files`).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import optuna
from hydra.core.hydra_config import HydraConfig
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict, read_write

from genre.core.errors import ConfigError, exit_with_one_line
from genre.sweeps.jobs.failures import FailureBudget
from genre.sweeps.optuna.search_space import SearchSpace, parse_search_space
from genre.sweeps.optuna.storage_url import (
    PASSWORD_VARIABLE,
    check_reachable,
    masked,
    move_password_to_environment,
    with_password_from_environment,
)
from genre.sweeps.optuna.study_setup import (
    ON_CHANGE,
    ON_CHANGE_KEY,
    check_setup,
    objective_names,
    study_setup,
)
from genre.sweeps.optuna.study_storage import Heartbeats, check_storage_url, prepare_storage, sweeper_storage
from genre.sweeps.optuna.trial_scheduler import SCHEDULES, TrialScheduler

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
        on_setup_change: str = "refuse",
    ) -> None:
        if schedule not in SCHEDULES:
            raise ConfigError(
                "hydra.sweeper.schedule",
                f"'{schedule}' is not one of {', '.join(SCHEDULES)}",
                "Use async (a new trial as soon as one ends) or batch (n_jobs trials at a time)",
            )
        if on_setup_change not in ON_CHANGE:
            raise ConfigError(
                ON_CHANGE_KEY,
                f"'{on_setup_change}' is not one of {', '.join(ON_CHANGE)}",
                "Use refuse (a resumed study must keep its setup) or continue (add trials despite a change)",
            )
        self.on_setup_change = on_setup_change
        self.sampler = sampler
        self.pruner = pruner if pruner is not None else optuna.pruners.NopPruner()
        self.directions = _directions(direction)
        if isinstance(storage, str):
            check_storage_url(storage)  # not a URL, or its driver missing: one line now, not a traceback later
        self.storage = storage
        self.study_name = study_name
        self.n_trials = _count("n_trials", n_trials, 1, "the number of trials to run, e.g. 20")
        self.n_jobs = _count("n_jobs", n_jobs, 1, "how many trials run at a time, e.g. 1")
        self.budget = FailureBudget(_failure_rate(max_failure_rate))
        self.params = params
        self.schedule = schedule
        self.retry_failed = _count("retry_failed", retry_failed, 0, "0 (never) or how often a trial is re-run")
        self.heartbeat_interval = _count("heartbeat_interval", heartbeat_interval, 1, "seconds, e.g. 60")
        self.grace_period = (
            None if grace_period is None else _count("grace_period", grace_period, 1, "seconds, or null")
        )
        self._storage: Any = None
        self.config: DictConfig | None = None
        self.launcher: Any = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        if isinstance(self.storage, str):
            # Before anything is written or launched: multirun.yaml, the jobs' configs, their pickles.
            self.storage = keep_password_out_of_files(self.storage, config)
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )

    def sweep(self, arguments: list[str]) -> None:
        assert self.config is not None and self.launcher is not None
        space = parse_search_space(arguments, params=self.params)
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
            run_dir=_run_dir_of(self.config),
        )
        try:
            scheduler.run()
        finally:
            write_results(study, sweep_dir)
            from genre.sweeps.optuna.plots import write_study_plots

            write_study_plots(study, sweep_dir, trials=scheduler.numbers)

    # --- set-up -------------------------------------------------------------------------------------------

    def _open_study(self, space: SearchSpace) -> optuna.Study:
        assert self.config is not None
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
        setup = study_setup(self.config, space, self.directions)
        # A stored study is checked before Optuna logs that it resumes it, so the refusal is the only line on
        # stderr; a new one is checked (its setup recorded) once made, by then perhaps by a sweep started beside.
        resuming = self._storage is not None and self.study_name in optuna.get_all_study_names(self._storage)
        if resuming:
            self._check_setup(optuna.load_study(study_name=self.study_name, storage=self._storage), setup)
        study = optuna.create_study(
            study_name=self.study_name,
            storage=self._storage,
            sampler=self.sampler,
            pruner=self.pruner,
            directions=cast(list[Any], self.directions),
            load_if_exists=True,
        )
        if not resuming:
            self._check_setup(study, setup)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(objective_names(self.config))  # plots and the dashboard name the metric
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

    def _check_setup(self, study: optuna.Study, setup: dict[str, str]) -> None:
        try:
            check_setup(study, setup, self.on_setup_change)
        except ConfigError as exc:
            exit_with_one_line(exc)  # before any trial is asked: the study keeps only its own setup

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
        objectives, mode = objective_names(self.config), self.config.get("objective_mode")
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


def _run_dir_of(config: DictConfig) -> Callable[[int], str] | None:
    """Job number -> its run dir, when the sweep's subdir is Hydra's default (the job number); else None
    (the run dir is then known once the job has ended, from its return)."""
    subdir = OmegaConf.to_container(config.hydra.sweep, resolve=False).get("subdir")  # type: ignore[union-attr]
    if subdir != "${hydra.job.num}":
        return None
    sweep_dir = Path(os.path.abspath(str(config.hydra.sweep.dir)))  # as Hydra makes the job's output_dir
    return lambda job_num: str(sweep_dir / str(job_num))


# --- the study password: in the environment, never in a file ---------------------------------------------

STORAGE_KEY = "hydra.sweeper.storage"


def keep_password_out_of_files(storage: str, config: DictConfig) -> str:
    """``storage`` without its password, which moves to the environment the jobs inherit.

    Each job's config is composed again from ``hydra.overrides.hydra`` (Hydra's ``load_sweep_config``),
    so the URL is replaced there too -- in the sweep's config and in Hydra's own copy of it (pickled
    for every job) -- and with it in ``multirun.yaml``, the jobs' ``.hydra/``, their resolved
    ``optuna_trial.storage`` and so in their checkpoints and TensorBoard text.
    """
    clean, had_password = move_password_to_environment(storage)
    if not had_password:
        return storage
    if any(os.environ[PASSWORD_VARIABLE] in argument for argument in sys.argv):
        log.warning(
            "The study password in %s is on this sweep's command line, which every local user can read (ps) "
            "while it runs; put it in ~/.pgpass or PGPASSFILE (PostgreSQL) or %s instead",
            STORAGE_KEY,
            PASSWORD_VARIABLE,
        )
    override = f"{STORAGE_KEY}={_quoted(clean)}"
    configs = [config] + ([cast(DictConfig, HydraConfig.instance().cfg)] if HydraConfig.initialized() else [])
    for node in configs:
        hydra_node = node.hydra
        with read_write(hydra_node), open_dict(hydra_node):
            hydra_node.sweeper.storage = clean
            kept = [item for item in hydra_node.overrides.hydra if _override_key(str(item)) != STORAGE_KEY]
            hydra_node.overrides.hydra = [*kept, override]
    return clean


def _override_key(override: str) -> str:
    return override.partition("=")[0].lstrip("+~")


def _quoted(value: str) -> str:
    """``value`` as a quoted string in Hydra's override grammar (a URL's ``?``, ``&`` or ``=`` stay literal)."""
    # Backslashes are literal except in a run before a quote (an inner one, or the closing one).
    escaped = re.sub(r"(\\*)'", lambda match: match.group(1) * 2 + "\\'", value)
    return "'" + re.sub(r"(\\+)$", lambda match: match.group(1) * 2, escaped) + "'"


# --- validation of the sweeper's values: each bad one is a ConfigError, one line naming its key -------------


def _count(name: str, value: Any, minimum: int, meaning: str) -> int:
    """``hydra.sweeper.<name>`` as a whole number of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        problem = f"{value!r} is not a whole number" + (f" of at least {minimum}" if minimum else " of 0 or more")
        raise ConfigError(f"hydra.sweeper.{name}", problem, f"Set it to {meaning}")
    return value


def _failure_rate(value: Any) -> float:
    """``hydra.sweeper.max_failure_rate`` as a fraction in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ConfigError(
            "hydra.sweeper.max_failure_rate",
            f"{value!r} is not a fraction between 0 and 1",
            "Use e.g. 0.2 (a fifth of the trials may fail), or 0 to stop at the first failure",
        )
    return float(value)


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

"""The Optuna sweeper's pieces without training: the sweep grammar's distributions, trial outcomes,
the asynchronous schedule, stale trials, the Pareto marking and the presets."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.utils import JobReturn, JobStatus
from hydra.utils import instantiate
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from genre.core.errors import ConfigError
from genre.sweeps.jobs.failures import FailureBudget
from genre.sweeps.optuna.pruning import RunPruned
from genre.sweeps.optuna.search_space import parse_search_space
from genre.sweeps.optuna.study_storage import Heartbeats, fail_stale_trials, sweeper_storage
from genre.sweeps.optuna.trial_scheduler import TrialScheduler, outcome_of
from genre.sweeps.results.pareto import pareto_optimal
from helpers import REPO
from helpers.waiting import SAFETY_TIMEOUT


def _compose(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(REPO / "genre" / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=overrides, return_hydra_config=True)


@pytest.mark.parametrize(
    "expression,expected",
    [
        ("choice(mel, mfcc, 3)", CategoricalDistribution(["mel", "mfcc", 3])),
        ("range(8, 33, 8)", IntDistribution(8, 32, step=8)),
        ("range(1, 10)", IntDistribution(1, 9, step=1)),
        ("range(0.0, 1.0, 0.25)", FloatDistribution(0.0, 0.75, step=0.25)),
        ("interval(0.0, 0.5)", FloatDistribution(0.0, 0.5)),
        ("interval(1, 8)", FloatDistribution(1.0, 8.0)),
        ("tag(log, interval(1e-4, 1e-2))", FloatDistribution(1e-4, 1e-2, log=True)),
    ],
)
def test_each_sweep_grammar_form_maps_to_its_optuna_distribution(expression: str, expected) -> None:
    space = parse_search_space([f"key={expression}"])
    assert space.distributions == {"key": expected} and space.fixed == {}


def test_fixed_values_pass_through_and_later_entries_win() -> None:
    space = parse_search_space(
        ["model=choice(cnn, crnn)", "optimizer.lr=interval(0.1, 0.2)", "model=cnn", "trainer.epochs=3"]
    )
    assert space.distributions == {"optimizer.lr": FloatDistribution(0.1, 0.2)}
    assert space.fixed == {"model": "cnn", "trainer.epochs": "3"}
    assert space.overrides({"optimizer.lr": 0.15}) == ["optimizer.lr=0.15", "model=cnn", "trainer.epochs=3"]


def test_grid_lists_every_point_and_refuses_a_continuous_key() -> None:
    assert parse_search_space(["a=choice(x, y)", "b=range(1, 4)"]).grid() == {"a": ["x", "y"], "b": [1, 2, 3]}
    with pytest.raises(ValueError, match="continuous"):
        parse_search_space(["lr=interval(0.1, 0.2)"]).grid()


def _job(value=None, error: BaseException | None = None) -> JobReturn:
    ret = JobReturn(overrides=["seed=1"], hydra_cfg=OmegaConf.create({"hydra": {"job": {"num": 0}}}))
    ret.status = JobStatus.FAILED if error is not None else JobStatus.COMPLETED
    ret.return_value = error if error is not None else value
    return ret


def test_job_outcomes_become_trial_states() -> None:
    assert outcome_of(_job(0.5), 1).values == [0.5]
    assert outcome_of(_job([0.5, 1000]), 2).values == [0.5, 1000.0]
    assert outcome_of(_job(float("nan")), 1).state == TrialState.FAIL
    assert outcome_of(_job(0.5), 2).state == TrialState.FAIL  # one value for two directions
    assert outcome_of(_job(error=RuntimeError("boom")), 1).state == TrialState.FAIL
    pruned = outcome_of(_job(error=RunPruned(3, 7)), 1)
    assert pruned.state == TrialState.PRUNED and pruned.reason == "pruned at epoch 3 (trial 7)"


def test_a_pruned_job_is_not_counted_against_the_failure_budget() -> None:
    budget = FailureBudget(0.0)
    assert budget.record([_job(error=RunPruned(2))], planned=4) is False
    assert budget.record([_job(error=RuntimeError("boom"))], planned=4) is True


class _SleepingLauncher:
    """Runs each job as a sleep of ``trainer.epochs`` x 0.3 s in the calling thread, as a parallel launcher's
    launch call blocks until its jobs end elsewhere; records when each job started and ended.

    With ``hold``, job 0 instead runs until the jobs in ``hold`` have started (however slow the machine).
    """

    def __init__(self, hold: tuple[int, ...] = ()) -> None:
        self.spans: dict[int, tuple[float, float]] = {}
        self.lock = threading.Lock()
        self.hold = hold
        self.started = {job: threading.Event() for job in hold}

    def launch(self, job_overrides, initial_job_idx: int):
        returns = []
        for offset, overrides in enumerate(job_overrides):
            epochs = int(dict(item.split("=", 1) for item in overrides)["trainer.epochs"])
            job = initial_job_idx + offset
            started = time.monotonic()
            if job in self.started:
                self.started[job].set()
            if job == 0 and self.hold:
                assert all(self.started[other].wait(SAFETY_TIMEOUT) for other in self.hold), "job 0 ran alone"
            else:
                time.sleep(0.3 * epochs)
            with self.lock:
                self.spans[initial_job_idx + offset] = (started, time.monotonic())
            returns.append(_job(float(epochs)))
        return returns


@pytest.mark.parametrize("schedule", ["async", "batch"])
def test_async_schedule_starts_a_trial_as_soon_as_one_ends(schedule: str) -> None:
    study = optuna.create_study(direction="maximize")
    for epochs in (4, 1, 1, 1):  # one long trial, then short ones
        study.enqueue_trial({"trainer.epochs": epochs})
    # Async: the long job 0 runs until jobs 2 and 3 have started (which they do only beside it).
    launcher = _SleepingLauncher(hold=(2, 3) if schedule == "async" else ())
    TrialScheduler(
        study,
        parse_search_space(["trainer.epochs=choice(1, 4)"]),
        launcher,
        n_trials=4,
        n_jobs=2,
        schedule=schedule,
        budget=FailureBudget(0.0),
        heartbeats=Heartbeats(None, 1),
        retried=False,
    ).run()
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
    long_end = launcher.spans[0][1]
    later_starts = [launcher.spans[job][0] for job in (2, 3)]
    if schedule == "async":
        # Jobs 2 and 3 ran beside the long job 0, each as soon as a slot was free.
        assert all(start < long_end for start in later_starts)
    else:
        assert all(start >= long_end - 0.01 for start in later_starts)  # they waited for the batch's slowest


def test_a_trial_whose_heartbeats_stopped_is_failed_and_requeued(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    storage = sweeper_storage(url, heartbeat_interval=1, grace_period=1, retry_failed=1)
    study = optuna.create_study(study_name="s", storage=storage)
    trial = study.ask({"x": FloatDistribution(0.0, 1.0)})
    storage.record_heartbeat(trial._trial_id)  # then its sweep "dies"
    assert fail_stale_trials(study, retried=True) == []  # still within its grace period
    time.sleep(2.2)
    assert fail_stale_trials(study, retried=True) == [trial.number]
    states = [(t.state, t.params) for t in study.trials]
    assert states == [(TrialState.FAIL, trial.params), (TrialState.WAITING, trial.params)]


def test_pareto_marks_the_jobs_no_other_beats_in_every_objective() -> None:
    frame = pd.DataFrame({"val/acc": [0.5, 0.6, 0.4, 0.6, None], "n_parameters": [100, 200, 50, 300, 10]})
    assert pareto_optimal(frame, ["val/acc", "n_parameters"], ["max", "min"]).tolist() == [
        True,
        True,
        True,
        False,
        False,
    ]


def test_pruning_needs_a_storage(tmp_path: Path) -> None:
    from genre.sweeps.optuna.sweeper import OptunaSweeper

    cfg = _compose(
        [
            "hparams_search=optuna",
            "hydra/sweeper/pruner=median",
            "hydra.sweeper.storage=null",
            f"hydra.sweep.dir={tmp_path}",
        ]
    )
    sweeper = OptunaSweeper(
        **{
            key: instantiate(value) if OmegaConf.is_dict(value) else value
            for key, value in cfg.hydra.sweeper.items()
            if key != "_target_"
        }
    )
    sweeper.config, sweeper.launcher = cfg, object()
    with pytest.raises(ConfigError, match=r"hydra\.sweeper\.pruner: pruning needs a study storage"):
        sweeper.sweep([])


@pytest.mark.parametrize("sampler", ["tpe", "trial_seeded_tpe", "random", "cmaes", "gp", "nsgaii", "qmc", "grid"])
def test_every_sampler_preset_instantiates(sampler: str) -> None:
    node = _compose(["hparams_search=optuna", f"hydra/sweeper/sampler={sampler}"]).hydra.sweeper.sampler
    made = instantiate(node)
    assert isinstance(made if sampler != "grid" else made({"a": [1, 2]}), optuna.samplers.BaseSampler)


@pytest.mark.parametrize(
    "pruner", ["none", "median", "percentile", "successive_halving", "hyperband", "patient", "threshold"]
)
def test_every_pruner_preset_instantiates_and_reaches_each_job(pruner: str) -> None:
    cfg = _compose(["hparams_search=optuna", f"hydra/sweeper/pruner={pruner}"])
    assert isinstance(instantiate(cfg.hydra.sweeper.pruner), optuna.pruners.BasePruner)
    from hydra.core.hydra_config import HydraConfig

    HydraConfig.instance().set_config(cfg)
    # A job resolves the study it reports to from the sweeper's config.
    trial = OmegaConf.to_container(cfg.optuna_trial, resolve=True)
    assert trial["storage"] == cfg.hydra.sweeper.storage and trial["study_name"] == "genre-demo"
    assert trial["pruner"]["_target_"] == cfg.hydra.sweeper.pruner._target_


def test_pareto_preset_has_two_objectives_with_matching_directions() -> None:
    cfg = _compose(["hparams_search=optuna_pareto"])
    assert list(cfg.objective) == ["val/acc", "n_parameters"] and list(cfg.objective_mode) == ["max", "min"]
    assert list(cfg.hydra.sweeper.direction) == ["maximize", "minimize"]

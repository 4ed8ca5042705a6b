"""A study is one setup: what the sweeper records about a study, the differences it refuses on resuming, the
opt-in that continues anyway, and what each trial carries (its run dir, the metric's name)."""

from __future__ import annotations

import logging
from pathlib import Path

import optuna
import pytest
from hydra.core.utils import JobReturn, JobStatus
from hydra.utils import instantiate
from omegaconf import OmegaConf
from optuna.trial import TrialState

from genre.core.errors import ConfigError
from genre.sweeps.jobs.failures import FailureBudget
from genre.sweeps.optuna.search_space import parse_search_space
from genre.sweeps.optuna.study_setup import (
    CHANGES_ATTR,
    SETUP_ATTR,
    check_setup,
    setup_differences,
    study_setup,
)
from genre.sweeps.optuna.study_storage import Heartbeats
from genre.sweeps.optuna.sweeper import OptunaSweeper
from genre.sweeps.optuna.trial_scheduler import RUN_DIR_ATTR, TrialScheduler
from helpers import TINY_RUN
from helpers.runs import compose_config

SEARCH = "optimizer.lr=tag(log, interval(1e-3, 1e-2))"


def _setup(*overrides: str, search: str = SEARCH) -> dict[str, str]:
    """The setup a sweep of ``hparams_search=optuna`` with these command-line overrides records."""
    arguments = ["hparams_search=optuna", *TINY_RUN, "model=cnn", *overrides]
    cfg = compose_config(arguments)
    space = parse_search_space([*arguments, search])  # hydra.sweeper.params left out, as with params=null
    return study_setup(cfg, space, ["maximize"])


def _changed(before: dict[str, str], after: dict[str, str]) -> list[tuple[str, str, str]]:
    return [item for item in setup_differences(before, after) if not item[0].startswith("code.")]


def test_the_setup_differs_exactly_where_a_result_changing_override_does() -> None:
    base = _setup()
    assert _changed(base, _setup()) == []
    assert _changed(base, _setup("trainer.epochs=2")) == [("override.trainer.epochs", "1", "2")]
    assert _changed(base, _setup("feature=mfcc")) == [("override.feature", "mel", "mfcc")]
    assert _changed(base, _setup(search="optimizer.lr=tag(log, interval(1e-4, 1e-2))")) == [
        ("search.optimizer.lr", "float [0.001, 0.01] log", "float [0.0001, 0.01] log")
    ]
    # The dataset's identity is recorded from the composed config, not only from overrides.
    more_clips = _changed(base, _setup("dataset.source.clips_per_genre=8"))
    assert ("dataset.source.clips_per_genre", "4", "8") in more_clips
    assert ("override.dataset.source.clips_per_genre", "4", "8") in more_clips
    # (The direction is the sweeper's, given to study_setup; the objective is the run's.)
    assert _changed(base, _setup("objective=val/loss")) == [
        ("objective", "val/acc", "val/loss"),
        ("override.objective", "-", "val/loss"),  # a key the first sweep left at its default
    ]


def test_overrides_that_do_not_change_results_are_no_part_of_the_setup(tmp_path: Path) -> None:
    base = _setup()
    quiet = _setup("trainer.progress=true", "trainer.num_workers=2", f"paths.cache_dir={tmp_path}")
    assert _changed(base, quiet) == []
    assert not any(key.startswith(("override.paths", "override.trainer.progress")) for key in quiet)
    assert base["dataset.name"] == "demo" and base["dataset.clip_seconds"] == "4.0"
    assert base["code.genre"] and base["objective"] == "val/acc"


def _study(tmp_path: Path) -> optuna.Study:
    return optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / 's.db'}", direction="maximize")


def test_a_changed_setup_is_refused_in_one_line_naming_the_key_and_both_ways_on(tmp_path: Path) -> None:
    study = _study(tmp_path)
    check_setup(study, _setup(), "refuse")  # a new study records its setup
    assert study.user_attrs[SETUP_ATTR] == _setup()
    check_setup(study, _setup(), "refuse")  # the same setup resumes
    with pytest.raises(ConfigError) as refused:
        check_setup(study, _setup("trainer.epochs=2"), "refuse")
    message = str(refused.value)
    assert "\n" not in message and message.startswith("hydra.sweeper.study_name: study s was made with another setup")
    assert "override.trainer.epochs: 1 -> 2" in message
    assert "hydra.sweeper.study_name=..." in message and "hydra.sweeper.on_setup_change=continue" in message


def test_continuing_on_a_changed_setup_keeps_the_recorded_one_and_lists_the_change(tmp_path: Path) -> None:
    study = _study(tmp_path)
    check_setup(study, _setup(), "refuse")
    study.add_trial(optuna.trial.create_trial(value=0.5))
    check_setup(study, _setup("trainer.epochs=2"), "continue")
    stored = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 's.db'}").user_attrs
    assert stored[SETUP_ATTR]["override.trainer.epochs"] == "1"
    assert stored[CHANGES_ATTR] == [{"from_trial": 1, "changes": "override.trainer.epochs: 1 -> 2"}]


def test_other_code_only_warns_and_an_unrecorded_study_records_this_setup(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    study = _study(tmp_path)
    study.add_trial(optuna.trial.create_trial(value=0.5))  # made by an older genre: no setup recorded
    with caplog.at_level(logging.WARNING, logger="genre"):
        check_setup(study, _setup(), "refuse")
    assert "has 1 trial(s) but no recorded setup" in caplog.text
    assert study.user_attrs[SETUP_ATTR] == _setup()
    caplog.clear()
    newer = {**_setup(), "code.genre": "9.9.9"}
    with caplog.at_level(logging.WARNING, logger="genre"):
        check_setup(study, newer, "refuse")
    assert "made by other code (code.genre:" in caplog.text and "-> 9.9.9" in caplog.text


def _sweeper(tmp_path: Path, *overrides: str) -> OptunaSweeper:
    """The sweeper ``hparams_search=optuna`` makes, on a SQLite study in ``tmp_path``."""
    cfg = compose_config(
        [
            "hparams_search=optuna",
            *TINY_RUN,
            *overrides,
            f"hydra.sweeper.storage=sqlite:///{tmp_path / 'optuna' / 'study.db'}",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
        ]
    )
    sweeper = OptunaSweeper(
        **{
            key: instantiate(value) if OmegaConf.is_dict(value) else value
            for key, value in cfg.hydra.sweeper.items()
            if key != "_target_"
        }
    )
    sweeper.config = cfg
    return sweeper


def test_the_sweeper_names_the_metric_and_exits_with_one_line_on_a_changed_setup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweeper = _sweeper(tmp_path)
    study = sweeper._open_study(parse_search_space(["trainer.epochs=1", SEARCH]))
    assert study.metric_names == ["val/acc"] and SETUP_ATTR in study.user_attrs
    capsys.readouterr()
    changed = _sweeper(tmp_path)
    with pytest.raises(SystemExit) as exited:
        changed._open_study(parse_search_space(["trainer.epochs=2", SEARCH]))
    assert exited.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: hydra.sweeper.study_name: ") and "override.trainer.epochs: 1 -> 2" in line
    opted_in = _sweeper(tmp_path, "hydra.sweeper.on_setup_change=continue")
    assert len(opted_in._open_study(parse_search_space(["trainer.epochs=2", SEARCH])).user_attrs[CHANGES_ATTR]) == 1


def test_an_unknown_on_setup_change_is_one_line_naming_its_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^hydra\.sweeper\.on_setup_change: 'ask' is not one of refuse, continue"):
        _sweeper(tmp_path, "hydra.sweeper.on_setup_change=ask")


class _Launcher:
    """Ends each job at once with value 0.5, as if it had run in ``<root>/ran-<job number>``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.seen: list[dict[str, str]] = []

    def launch(self, job_overrides, initial_job_idx: int):
        returns = []
        for offset, _ in enumerate(job_overrides):
            out = self.root / f"ran-{initial_job_idx + offset}"
            ret = JobReturn(overrides=[], hydra_cfg=OmegaConf.create({"hydra": {"runtime": {"output_dir": str(out)}}}))
            ret.status, ret.return_value = JobStatus.COMPLETED, 0.5
            returns.append(ret)
        return returns


def _scheduler(study: optuna.Study, launcher, run_dir) -> TrialScheduler:
    return TrialScheduler(
        study,
        parse_search_space(["x=choice(1, 2)"]),
        launcher,
        n_trials=2,
        n_jobs=1,
        schedule="batch",
        budget=FailureBudget(0.0),
        heartbeats=Heartbeats(None, 1),
        retried=False,
        run_dir=run_dir,
    )


def test_each_trial_carries_its_run_dir_from_launch_and_from_where_its_job_ran(tmp_path: Path) -> None:
    study = optuna.create_study(direction="maximize")
    study.add_trial(optuna.trial.create_trial(params={}, distributions={}, value=0.1))  # an earlier sweep's
    seen_at_launch: list[str | None] = []

    class Watching(_Launcher):
        def launch(self, job_overrides, initial_job_idx: int):
            seen_at_launch.append(study.trials[-1].user_attrs.get(RUN_DIR_ATTR))
            return super().launch(job_overrides, initial_job_idx)

    scheduler = _scheduler(study, Watching(tmp_path), lambda job: str(tmp_path / "sweep" / str(job)))
    scheduler.run()
    assert seen_at_launch == [str(tmp_path / "sweep" / "0"), str(tmp_path / "sweep" / "1")]
    assert [t.user_attrs.get(RUN_DIR_ATTR) for t in study.trials] == [
        None,
        str(tmp_path / "ran-0"),
        str(tmp_path / "ran-1"),
    ]
    assert scheduler.numbers == [1, 2] and [t.state for t in study.trials[1:]] == [TrialState.COMPLETE] * 2


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_study_plots_are_titled_as_the_whole_studys_and_name_the_metric(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    from genre.sweeps.optuna.plots import (
        _history,
        _intermediate_values,
        _parallel_coordinate,
        plot_title,
        write_study_plots,
    )

    study = optuna.create_study(study_name="s", direction="maximize")
    study.set_metric_names(["val/acc"])
    for value in (0.2, 0.4, 0.3):
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0.0, 1.0)})
        trial.report(value, step=1)
        study.tell(trial, value)
    assert plot_title(study, [1, 2]) == "Study s: all 3 trials of every sweep on it (this sweep: 2, trials 1-2)"
    assert _history(study).get_ylabel() == "val/acc"
    assert _intermediate_values(study).get_ylabel() == "val/acc after each epoch"
    assert "val/acc" in [label.get_text() for label in _parallel_coordinate(study).get_xticklabels()]
    plt.close("all")
    assert (tmp_path / "optuna_history.png") in write_study_plots(study, tmp_path, trials=[1, 2])

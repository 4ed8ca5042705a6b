"""Sweep pieces without training: config presets, the failure budget, the trial-seeded sampler, status files."""

from __future__ import annotations

import os
from pathlib import Path

import optuna
import pytest
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from genre.sweeps.jobs.failures import FailureBudget
from genre.sweeps.optuna.sampler import TrialSeededTPESampler
from helpers import RUN_PY, compose_config
from helpers.waiting import SAFETY_TIMEOUT

SEARCHED_FEATURES = ("midi", "chroma", "mel", "mfcc")


def _choices(expression: str) -> list[str]:
    assert expression.startswith("choice(") and expression.endswith(")"), expression
    return [item.strip() for item in expression[len("choice(") : -1].split(",")]


def test_default_sweeper_is_the_failure_tolerant_grid_with_summary_callbacks() -> None:
    cfg = compose_config([])
    assert cfg.hydra.sweeper._target_ == "hydra_plugins.genre_sweepers.GridSweeper"
    targets = {node._target_ for node in cfg.hydra.callbacks.values()}
    assert {
        "genre.sweeps.jobs.callbacks.JobStatusRecorder",
        "genre.sweeps.jobs.callbacks.SweepSummary",
        "genre.sweeps.jobs.callbacks.JobEnvironment",
    } <= targets


@pytest.mark.parametrize("mode,direction", [("max", "maximize"), ("min", "minimize")])
def test_optuna_preset_stores_the_study_by_name_and_follows_the_objective(mode: str, direction: str) -> None:
    cfg = compose_config(["hparams_search=optuna", f"objective_mode={mode}", "objective=val/loss"])
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == "hydra_plugins.genre_sweepers.OptunaSweeper"
    assert sweeper.direction == direction
    assert sweeper.storage == f"sqlite:///optuna/{sweeper.study_name}.db"
    assert sweeper.sampler._target_ == "genre.sweeps.optuna.sampler.TrialSeededTPESampler"
    assert sweeper.sampler.seed == cfg.seed
    assert 0.0 < sweeper.max_failure_rate < 1.0
    assert set(sweeper.params) >= {
        "feature",
        "model",
        "optimizer.lr",
        "optimizer.weight_decay",
        "model.dropout",
        "trainer.batch_size",
        "feature.transform.hop_length",
    }
    assert "log" in sweeper.params["optimizer.lr"]


def test_every_searched_choice_has_the_searched_keys() -> None:
    """A trial overrides model.dropout and feature.transform.hop_length: a model or feature without them
    would fail at composition and end the whole search, not one trial."""
    params = compose_config(["hparams_search=optuna"]).hydra.sweeper.params
    assert set(_choices(params["feature"])) == set(SEARCHED_FEATURES)
    for feature in _choices(params["feature"]):
        cfg = compose_config([f"feature={feature}"])
        assert OmegaConf.select(cfg, "feature.transform.hop_length") is not None, feature
    for model in _choices(params["model"]):
        assert OmegaConf.select(compose_config([f"model={model}"]), "model.dropout") is not None, model


def test_slurm_preset_has_the_cluster_keys() -> None:
    launcher = compose_config(["hydra/launcher=slurm", "hydra.launcher.partition=gpu"]).hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert launcher.partition == "gpu"
    for key in ("gpus_per_node", "cpus_per_task", "mem_gb", "timeout_min"):
        assert launcher[key] is not None and int(launcher[key]) > 0, key


def _returns(*failed: bool) -> list[JobReturn]:
    returns = []
    for num, fails in enumerate(failed):
        ret = JobReturn(overrides=[f"seed={num}"], hydra_cfg=OmegaConf.create({"hydra": {"job": {"num": num}}}))
        ret.status = JobStatus.FAILED if fails else JobStatus.COMPLETED
        ret.return_value = RuntimeError("boom") if fails else 0.5
        returns.append(ret)
    return returns


def test_failure_budget_counts_over_the_whole_sweep_not_per_batch() -> None:
    budget = FailureBudget(0.5)
    # One trial per batch (n_jobs=1): a single failure must not stop a 6-trial search ...
    assert budget.record(_returns(True), planned=6) is False
    assert budget.record(_returns(False), planned=6) is False
    assert budget.record(_returns(True), planned=6) is False
    assert budget.record(_returns(True), planned=6) is False
    # ... but a fourth one must: 3 of 6 is the most max_failure_rate=0.5 allows.
    assert budget.record(_returns(True), planned=6) is True
    assert (budget.failed, budget.finished) == (4, 5)


def test_failure_budget_rejects_rates_outside_zero_to_one() -> None:
    with pytest.raises(ValueError, match="max_failure_rate"):
        FailureBudget(1.5)


def _sample(study: optuna.Study) -> dict:
    trial = study.ask()
    params = {
        "lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True),
        "feature": trial.suggest_categorical("feature", ["midi", "chroma", "mel", "mfcc"]),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
    }
    study.tell(trial, 0.5)
    return params


def _shared_workers(sampler_class) -> tuple[list[dict], list[dict]]:
    """Two workers (their own sampler, same seed) taking turns on one study, as processes sharing a URL do."""
    storage = optuna.storages.InMemoryStorage()
    studies = [
        optuna.create_study(study_name="shared", storage=storage, load_if_exists=True, sampler=sampler_class(seed=7))
        for _ in range(2)
    ]
    first, second = [], []
    for _ in range(3):
        first.append(_sample(studies[0]))
        second.append(_sample(studies[1]))
    return first, second


def test_plain_seeded_tpe_repeats_configurations_across_workers() -> None:
    """Why TrialSeededTPESampler exists: the plain sampler's workers run the same trials."""
    first, second = _shared_workers(optuna.samplers.TPESampler)
    assert first == second


def test_trial_seeded_tpe_gives_workers_different_trials_and_stays_reproducible() -> None:
    first, second = _shared_workers(TrialSeededTPESampler)
    drawn = [tuple(sorted(p.items())) for p in first + second]
    assert len(set(drawn)) == len(drawn)
    # A fresh study with the same seed draws the same trials again.
    again = optuna.create_study(sampler=TrialSeededTPESampler(seed=7))
    assert [_sample(again) for _ in range(2)] == [first[0], second[0]]


@pytest.mark.parametrize("make_dir,expected", [(False, "is not a directory"), (True, "no job dirs")])
def test_report_on_a_wrong_dir_is_a_one_line_error(
    make_dir: bool, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from genre.cli.report import main

    target = tmp_path / "multirun"
    if make_dir:
        target.mkdir()
    assert main([str(target)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: sweep_dir: ") and expected in error and error.count("\n") == 1


@pytest.mark.parametrize("device,num,expected", [("auto", 4, 1), ("cuda", 2, 2), ("cuda:0", 4, None), ("cpu", 4, None)])
def test_job_environment_spreads_jobs_over_visible_gpus(
    device: str, num: int, expected: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from genre.sweeps.jobs.callbacks import JobEnvironment

    chosen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    config = OmegaConf.create(
        {"trainer": {"device": device}, "hydra": {"job": {"num": num}, "launcher": {"n_jobs": 3}}}
    )
    JobEnvironment().on_job_start(config)
    assert chosen == ([] if expected is None else [expected])


def test_job_environment_gives_torch_the_launchers_cpus_per_task(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from genre.sweeps.jobs.callbacks import JobEnvironment

    threads = torch.get_num_threads()
    try:
        config = {"trainer": {"device": "cpu"}, "hydra": {"job": {"num": 0}, "launcher": {"cpus_per_task": 1}}}
        JobEnvironment().on_job_start(OmegaConf.create(config))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
def test_slurm_preset_reaches_sbatch_with_its_resources(tmp_path: Path) -> None:
    """Up to the cluster: a stand-in ``sbatch`` keeps the batch script submitit writes from the preset."""
    import os
    import stat
    import subprocess
    import sys

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # submitit looks for srun, then submits with `sbatch <script>`.
    sbatch = f'cp "$1" {tmp_path}/submitted.sh; echo "no cluster" >&2; exit 1'
    for name, body in (("srun", "exit 1"), ("sbatch", sbatch)):
        fake = bin_dir / name
        fake.write_text(f"#!/bin/sh\n{body}\n")
        fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "HYDRA_FULL_ERROR": "0"}
    result = subprocess.run(
        [
            sys.executable,
            str(RUN_PY),
            "-m",
            "hydra/launcher=slurm",
            "hydra.launcher.partition=gpu",
            "hydra.launcher.timeout_min=600",
            "model=cnn,crnn",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
        ],
        cwd=tmp_path,
        env=env,
        text=True,
        capture_output=True,
        timeout=SAFETY_TIMEOUT,
    )
    assert result.returncode != 0  # the stand-in refuses the job
    script = (tmp_path / "submitted.sh").read_text()
    for directive in (
        "--partition=gpu",
        "--gpus-per-node=1",
        "--cpus-per-task=8",
        "--mem=32GB",
        "--time=600",
        "--array=0-1%2",
    ):
        assert f"#SBATCH {directive}" in script, (directive, script)


def test_job_status_is_replaced_whole_and_reads_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from genre.sweeps.jobs.status import FAILED, RUNNING, JobStatus

    record = JobStatus.start()
    record.write(tmp_path)
    assert JobStatus.read(tmp_path) == record and record.status == RUNNING
    try:
        raise ValueError("lr must be positive,\n got -1")
    except ValueError as exc:
        record.finish(exc)
    record.write(tmp_path)
    again = JobStatus.read(tmp_path)
    assert again is not None and again.status == FAILED
    assert again.error == "ValueError: lr must be positive, got -1" and "Traceback" in (again.traceback or "")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["status.json"]  # no temporary left

    # A write that fails at the last step (the rename) keeps the previous record and leaves no temporary.
    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        JobStatus.start().write(tmp_path)
    monkeypatch.undo()
    assert JobStatus.read(tmp_path) == again
    assert sorted(p.name for p in tmp_path.iterdir()) == ["status.json"]

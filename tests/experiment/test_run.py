"""End-to-end runs on a tiny demo corpus: logs are complete, seeds reproduce, sweeps give one dir per
job, and bad input gets a one-line error. (Every model x feature trains in test_zoo_training.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import api_pb2
from tensorboard.plugins.hparams import metadata as hparams_metadata

from genre.experiment import run_experiment
from helpers import TINY_DEMO, TINY_RUN, TINY_TRAINING, compose_run, run_cli, run_script


def _single_run_dir(cwd: Path) -> Path:
    runs = [p for p in (cwd / "outputs").glob("*/*") if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


@pytest.mark.slow
def test_run_logs_scalars_image_text_and_hparams(tmp_path: Path, cache_dir: Path) -> None:
    result = run_cli([*TINY_RUN, "feature=chroma", "model=crnn", "trainer.epochs=2"], tmp_path, cache_dir)
    assert "test accuracy:" in result.stdout
    run_dir = _single_run_dir(tmp_path)
    events = list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1, "one event file in the run's own tensorboard dir"
    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"tensors": 0, "images": 0, "scalars": 0})
    acc.Reload()
    tags = acc.Tags()
    for scalar in ("train/loss", "train/acc", "train/lr", "val/loss", "val/acc", "test/acc", "test/loss"):
        assert scalar in tags["scalars"], scalar
    assert [e.step for e in acc.Scalars("val/acc")] == [1, 2]
    assert "test/confusion_matrix" in tags["images"]
    assert {"config/text_summary", "test/classification_report/text_summary"} <= set(tags["tensors"])
    report = acc.Tensors("test/classification_report/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "precision" in report and "recall" in report
    # HPARAMS: a single run lists what its command line set, plus its seed; the metrics are the scalars.
    plugins = acc.PluginTagToContent("hparams")
    start = hparams_metadata.parse_session_start_info_plugin_data(plugins["_hparams_/session_start_info"])
    assert start.hparams["feature"].string_value == "chroma" and start.hparams["model"].string_value == "crnn"
    assert start.hparams["trainer.epochs"].number_value == 2 and "seed" in start.hparams
    assert "optimizer.lr" not in start.hparams, "a key the command line did not set is no column"
    experiment = hparams_metadata.parse_experiment_plugin_data(plugins["_hparams_/experiment"])
    assert {info.name.tag for info in experiment.metric_infos} <= set(tags["scalars"])
    end = hparams_metadata.parse_session_end_info_plugin_data(plugins["_hparams_/session_end_info"])
    assert end.status == api_pb2.STATUS_SUCCESS
    assert not [tag for tag in tags["scalars"] if tag.startswith("hparams/")], "no one-point copies of the scores"


@pytest.mark.slow
def test_same_seed_gives_identical_metrics(tmp_path: Path, cache_dir: Path) -> None:
    results = []
    for name in ("a", "b"):
        cfg = compose_run(
            [*TINY_RUN, "feature=mel", "model=cnn", "trainer.epochs=2", "seed=7"], tmp_path / name, cache_dir
        )
        run_experiment(cfg)
        results.append(json.loads((tmp_path / name / "metrics.json").read_text()))
    for key in ("val/acc", "val/loss", "test/acc", "test/loss", "train/loss"):
        assert results[0][key] == results[1][key], key


@pytest.mark.parametrize(
    "args,expected",
    [
        ([*TINY_DEMO, "feature=nope"], "Could not find 'feature/nope'"),
        ([*TINY_DEMO, "model=transformerxl"], "Could not find 'model/transformerxl'"),
        (["dataset=folder", "dataset.root=/does/not/exist"], "dataset.root: '/does/not/exist' is not a directory"),
        ([*TINY_DEMO, "trainer.segment_seconds=10"], "trainer.segment_seconds: 10 s is longer than the 4.0 s clips"),
        ([*TINY_DEMO, "objective=test/acc"], "objective: 'test/acc' is not one of"),
        # Library ValueErrors from objects the run builds itself (outside instantiate) name their config key too.
        ([*TINY_DEMO, "scheduler=exponential", "scheduler.gamma=2"], "scheduler.gamma: 2"),
        ([*TINY_DEMO, "trainer.early_stopping.patience=0"], "trainer.early_stopping.patience: 0"),
        ([*TINY_DEMO, "trainer.device=tpu9"], "trainer.device: "),
    ],
)
@pytest.mark.slow
def test_bad_input_is_a_clear_error_not_a_traceback(
    args: list[str], expected: str, tmp_path: Path, cache_dir: Path
) -> None:
    # The first case in a real child process; the others run the same script in process (no torch import each).
    if args == [*TINY_DEMO, "feature=nope"]:
        result = run_cli([*TINY_TRAINING, *args], tmp_path, cache_dir, check=False)
    else:
        result = run_script([*TINY_TRAINING, *args], tmp_path, cache_dir)
    assert result.returncode != 0
    assert expected in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.slow
def test_readme_sweep_gives_one_output_and_tensorboard_dir_per_job(tmp_path: Path, cache_dir: Path) -> None:
    result = run_cli(["-m", *TINY_RUN, "feature=midi,mel,mfcc"], tmp_path, cache_dir)
    sweeps = list((tmp_path / "multirun").glob("*/*"))
    assert len(sweeps) == 1, sweeps
    jobs = sorted(p for p in sweeps[0].iterdir() if p.is_dir() and p.name.isdigit())
    assert [p.name for p in jobs] == ["0", "1", "2"]
    features = set()
    for job in jobs:
        assert len(list((job / "tensorboard").glob("events.out.tfevents.*"))) == 1
        assert (job / "metrics.json").is_file() and (job / "best.pt").is_file()
        features.add((job / ".hydra" / "overrides.yaml").read_text())
    assert len(features) == 3 and result.stdout.count("test accuracy:") == 3

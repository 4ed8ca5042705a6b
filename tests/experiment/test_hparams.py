"""The HPARAMS session of a run: how each way of ending is recorded, and which keys a sweep varies."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import api_pb2
from tensorboard.plugins.hparams import metadata as hparams_metadata

from genre.core.errors import TrainingInterrupted
from genre.experiment.cross_validation import fold_config
from genre.experiment.hparams import hparams_session, swept_keys
from genre.experiment.spec import build_spec
from genre.tracking.tensorboard import RunLogger
from genre.training.callbacks import StoppedByCallback
from helpers import TINY_RUN, compose_run

END = "_hparams_/session_end_info"


def _hparams_tags(log_dir: Path) -> dict[str, bytes]:
    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return acc.PluginTagToContent("hparams")


def _session(log_dir: Path, error: Exception | None) -> dict[str, bytes]:
    logger = RunLogger(log_dir)
    params, objectives = {"model": "cnn", "seed": 1}, ["val/acc", "n_parameters"]
    with (
        contextlib.suppress(*([type(error)] if error is not None else [])),
        hparams_session(logger, params, {"model"}, objectives, fresh=True),
    ):
        if error is not None:
            raise error
    logger.close()
    return _hparams_tags(log_dir)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (None, api_pb2.STATUS_SUCCESS),
        (StoppedByCallback(2), api_pb2.STATUS_UNKNOWN),  # pruned: TensorBoard has no status of its own for it
        (RuntimeError("boom"), api_pb2.STATUS_FAILURE),
    ],
)
def test_the_session_opens_first_and_ends_with_how_the_run_ended(
    tmp_path: Path, error: Exception | None, status: int
) -> None:
    tags = _session(tmp_path, error)
    start = hparams_metadata.parse_session_start_info_plugin_data(tags["_hparams_/session_start_info"])
    assert start.hparams["model"].string_value == "cnn" and start.hparams["seed"].number_value == 1
    experiment = hparams_metadata.parse_experiment_plugin_data(tags["_hparams_/experiment"])
    assert [(info.name, info.differs) for info in experiment.hparam_infos] == [("model", True), ("seed", False)]
    # Only scalar tags are metrics (n_parameters is no scalar).
    assert [info.name.tag for info in experiment.metric_infos] == ["val/acc", "val/loss", "test/acc", "test/loss"]
    assert hparams_metadata.parse_session_end_info_plugin_data(tags[END]).status == status


def test_an_interrupted_run_stays_open_for_its_resume(tmp_path: Path) -> None:
    tags = _session(tmp_path, TrainingInterrupted(15, "stopped by SIGTERM"))
    assert "_hparams_/session_start_info" in tags and END not in tags


def test_the_swept_keys_are_the_sweeps_lists_and_searched_params(tmp_path: Path) -> None:
    record = {
        "hydra": {
            "overrides": {"task": ["feature=mel,mfcc", "trainer.epochs=2", "+model=choice(cnn,fcn)", "seed=1"]},
            "sweeper": {"params": {"optimizer.lr": "tag(log, interval(1e-4, 1e-2))", "trainer.batch_size": 8}},
        }
    }
    (tmp_path / "multirun.yaml").write_text(yaml.safe_dump(record))
    job = tmp_path / "3"
    job.mkdir()
    assert swept_keys(job) == {"feature", "model", "optimizer.lr"}
    (tmp_path / "multirun.yaml").write_text("hydra: {overrides: {task: ['feature=mel,']}}")  # not an override
    assert swept_keys(job) is None
    (tmp_path / "multirun.yaml").unlink()
    assert swept_keys(job) is None


def test_a_single_run_lists_what_its_command_line_set_and_its_fold(tmp_path: Path) -> None:
    cfg = compose_run([*TINY_RUN, "cv.folds=3", "model=fcn"], tmp_path / "job", tmp_path / "cache")
    job = OmegaConf.create(OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])))
    spec = build_spec(fold_config(job, 3, 2))
    assert spec.hparams["model"] == "fcn" and spec.hparams["cv.folds"] == 3
    assert spec.hparams["fold"] == 2 and "fold" in spec.varying and "optimizer.lr" not in spec.hparams
    # The grid form of a fold: the fold is one column, not two.
    grid = ["dataset/split=kfold", "dataset.split.fold=1"]
    spec = build_spec(compose_run([*TINY_RUN, *grid], tmp_path / "grid", tmp_path / "cache"))
    assert spec.hparams["fold"] == 1 and "dataset.split.fold" not in spec.hparams
    assert spec.hparams["dataset/split"] == "kfold"

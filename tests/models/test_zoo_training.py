"""Every model trains one epoch on every feature (tiny corpus, small widths), end to end through
run_experiment: features, augmentation-free training step, clip-level evaluation, checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genre.experiment import run_experiment
from helpers import TINY_DEMO, TINY_TRAINING, compose_run

pytestmark = pytest.mark.slow  # every test here trains a model or spawns a process

FEATURES = ("midi", "chroma", "mel", "mfcc")
# Small widths per model: the point is that each architecture handles each feature's shape.
SMALL: dict[str, list[str]] = {
    "cnn": ["model.channels=[8,16]"],
    "crnn": ["model.channels=[8,16]", "model.rnn_hidden=8"],
    "resnet": ["model.widths=[8,16]", "model.blocks_per_stage=[1,1]"],
    "cnn1d": ["model.channels=[16,16]"],
    "fcn": ["model.channels=[8,16]"],
    "shortchunk": ["model.channels=[8,8,16]"],
    "linear": [],
}
# TINY_TRAINING's settings without its model and feature (each test names its own) or their widths.
TRAINING = [arg for arg in TINY_TRAINING if not arg.startswith(("model", "feature"))]


@pytest.mark.parametrize("model", sorted(SMALL))
@pytest.mark.parametrize("feature", FEATURES)
def test_every_model_trains_on_every_feature(feature: str, model: str, tmp_path: Path, cache_dir: Path) -> None:
    cfg = compose_run(
        [f"feature={feature}", f"model={model}", *TINY_DEMO, *TRAINING, *SMALL[model]], tmp_path, cache_dir
    )
    value = run_experiment(cfg)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert 0.0 <= value <= 1.0 and value == metrics["val/acc"]
    assert (tmp_path / "best.pt").is_file() and (tmp_path / "last.pt").is_file()
    assert metrics["n_clips"] == {"train": 12, "val": 6, "test": 6}
    assert metrics["n_parameters"] > 0 and metrics["epochs_run"] == 1


# Model-level tests cover every 2-D model with freq_as_channel; two end-to-end runs check the plumbing.
@pytest.mark.parametrize("model", ["cnn", "crnn"])
def test_freq_as_channel_trains(model: str, tmp_path: Path, cache_dir: Path) -> None:
    cfg = compose_run(
        ["feature=mfcc", f"model={model}", "model.freq_as_channel=true", *TINY_DEMO, *TRAINING, *SMALL[model]],
        tmp_path,
        cache_dir,
    )
    run_experiment(cfg)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["epochs_run"] == 1 and 0.0 <= metrics["test/acc"] <= 1.0

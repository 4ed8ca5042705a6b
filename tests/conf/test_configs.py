"""Every config of every group composes with the root config and instantiates."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from genre import CONFIG_DIR
from genre.experiment.pipeline import build_pipeline
from helpers import compose_config

CONF = CONFIG_DIR
# Groups whose options are whole components the run instantiates.
GROUPS = sorted(p.name for p in CONF.iterdir() if p.is_dir() and p.name != "hydra" and not p.name.startswith("_"))
OPTIONS = [(group, path.stem) for group in GROUPS for path in sorted((CONF / group).glob("*.yaml"))]


def test_every_group_has_options() -> None:
    for group in ("dataset", "feature", "model", "optimizer", "scheduler", "trainer", "paths"):
        assert group in GROUPS
    assert {"midi", "chroma", "mel", "mfcc"} <= {o for g, o in OPTIONS if g == "feature"}
    assert {"cnn", "crnn"} <= {o for g, o in OPTIONS if g == "model"}
    assert {"adam", "adamw", "sgd"} <= {o for g, o in OPTIONS if g == "optimizer"}
    assert {"none", "cosine"} <= {o for g, o in OPTIONS if g == "scheduler"}


@pytest.mark.parametrize("group,option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes_and_instantiates(group: str, option: str, tmp_path: Path) -> None:
    overrides = [f"{group}={option}", "hydra.runtime.output_dir=" + str(tmp_path)]
    if group == "dataset" and option != "demo":
        # Real datasets need a location; any path composes (existence is checked when the run starts).
        overrides += [f"++dataset.{key}={tmp_path}" for key in ("root", "metadata_root", "audio_root")]
    if (group, option) == ("model", "late_fusion"):
        overrides.append("feature=fusion")  # one probe per part of a fused feature
    cfg = compose_config(overrides)
    # Every interpolation of the run's own config resolves (hydra's node is Hydra's business).
    OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True)
    assert cfg.hydra.runtime.choices[group] == option
    model = build_pipeline(cfg, n_classes=6).model
    optimizer = instantiate(cfg.optimizer)(params=model.parameters())
    scheduler = instantiate(cfg.scheduler)(optimizer, epochs=3, steps_per_epoch=4)
    for _ in range(12):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] > 0
    instantiate(cfg.dataset.split)
    assert isinstance(model, torch.nn.Module)


def _recipe(cfg) -> dict:
    """What makes a recipe: the feature and model nodes and the segment lengths, resolved."""
    own = OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True)
    assert isinstance(own, dict)
    return {
        "feature": own["feature"],
        "model": own["model"],
        "segments": (own["trainer"]["segment_seconds"], own["eval"]["segment_seconds"]),
    }


def test_the_root_default_is_the_transfer_preset() -> None:
    """``python run.py`` runs the recipe real music favours (README, "On real music"), which
    ``experiment=transfer`` names: the two must not drift apart."""
    default = compose_config([])
    assert default.hydra.runtime.choices.feature == "fusion" and default.hydra.runtime.choices.model == "logreg"
    assert _recipe(default) == _recipe(compose_config(["experiment=transfer"]))
    assert list(default.feature.transform.parts) == ["MTT_musicnn/max_pool", "note_stats"]
    assert default.trainer.segment_seconds == default.dataset.clip_seconds, "a closed-form probe sees whole clips"


TRAINED = ["cnn", "cnn1d", "crnn", "fcn", "linear", "mlp", "resnet", "shortchunk"]


@pytest.mark.parametrize("model", TRAINED)
def test_a_model_trained_by_gradient_reads_mel_unless_a_feature_is_given(model: str) -> None:
    alone = compose_config([f"model={model}"])
    assert alone.hydra.runtime.choices.feature == "mel" and alone.trainer.segment_seconds == 5.0
    for overrides in ([f"model={model}", "feature=chroma"], ["feature=chroma", f"model={model}"]):
        assert compose_config(overrides).hydra.runtime.choices.feature == "chroma", overrides


def test_every_model_is_trained_or_closed_form_and_the_closed_form_ones_keep_the_root_feature() -> None:
    models = sorted(path.stem for path in (CONF / "model").glob("*.yaml"))
    closed_form = [m for m in models if m not in TRAINED]
    assert closed_form == ["late_fusion", "linear_svm", "logreg"], "a new model: list it in TRAINED or here"
    for model in closed_form:
        assert compose_config([f"model={model}"]).hydra.runtime.choices.feature == "fusion"
    # A preset's own feature beats its model's pairing: experiment=finetune is musicnn with model=linear.
    assert compose_config(["experiment=finetune"]).hydra.runtime.choices.feature == "musicnn"

"""Fine-tuning a pretrained network: the network inside the model, its blocks, batch norm, the head epochs
and the ramp, and end to end on the tiny demo corpus (predict, exact resume, data-parallel, a search)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
from pathlib import Path

import pandas as pd
import pytest
import torch

from genre.core.errors import ConfigError
from genre.experiment.pipeline import assemble
from genre.experiment.spec import build_spec
from genre.features import FeatureExtractor
from genre.models import LinearBaseline
from genre.training.finetuned import FineTuned
from genre.training.param_groups import optimizer_groups
from genre.training.unfreezing import Unfreezing
from helpers import TINY_DEMO, compose_run, run_cli
from helpers.cuda import needs_gpus

pytest.importorskip("musicnn", reason="the musicnn wheel is not installed (pip install --no-deps musicnn==0.1.0)")

from genre.features import Musicnn
from genre.pretrained.weights import load_network

RATE = 16000
# experiment=finetune on the tiny corpus: 3-s crops (one musicnn patch), a head epoch, then fine-tuning.
FINETUNE = [
    *TINY_DEMO,
    "experiment=finetune",
    "trainer.segment_seconds=3.0",
    "trainer.epochs=2",
    "trainer.finetune.head_epochs=1",
    "trainer.batch_size=8",
    "trainer.progress=false",
]


def _pipeline(**musicnn: object):
    transform = Musicnn(sample_rate=RATE, trainable=True, **musicnn)  # type: ignore[arg-type]
    features = FeatureExtractor(transform, log="none")
    pipeline = assemble(features, LinearBaseline(transform.n_bands, 3))
    audio = 0.1 * torch.randn(6, 3 * RATE + 64, generator=torch.Generator().manual_seed(0))
    assert isinstance(pipeline.model, FineTuned)
    pipeline.model.fit_normalization([pipeline.features(audio)])
    return pipeline, audio


def _train_one_step(pipeline, audio: torch.Tensor) -> None:
    optimizer = torch.optim.SGD(optimizer_groups(pipeline.model, backbone_lr=0.5), lr=0.5)
    pipeline.model.train()
    loss = torch.nn.functional.cross_entropy(pipeline.model(pipeline.features(audio)), torch.arange(6) % 3)
    loss.backward()
    optimizer.step()


def _changed_blocks(net: torch.nn.Module, before: dict[str, torch.Tensor], kind: str) -> set[str]:
    """The blocks of ``net`` with a parameter (``kind='param'``) or a batch-norm statistic that moved."""
    changed = set()
    for name in net.BLOCKS:
        for module in net.block(name):
            state = module.state_dict(prefix=_prefix(net, module))
            for key, value in state.items():
                is_stat = key.endswith(("running_mean", "running_var"))
                if (kind == "stat") == is_stat and not torch.equal(value, before[key]):
                    changed.add(name)
    return changed


def _prefix(net: torch.nn.Module, module: torch.nn.Module) -> str:
    return next(name for name, m in net.named_modules() if m is module) + "."


def test_fine_tuning_trains_the_blocks_after_the_frozen_ones_up_to_the_layer_only() -> None:
    pipeline, audio = _pipeline(model="MSD_musicnn", layer="max_pool", freeze_blocks=2)
    net = pipeline.model.backbone.net
    before = {k: v.clone() for k, v in net.state_dict().items()}
    _train_one_step(pipeline, audio)
    # input and frontend frozen; cnn1-cnn3 train; backend and output do not feed max_pool.
    assert _changed_blocks(net, before, "param") == {"cnn1", "cnn2", "cnn3"}
    assert _changed_blocks(net, before, "stat") == set(), "batch_norm=frozen keeps the pretrained statistics"
    assert [p.requires_grad for p in net.output.parameters()] == [False, False]


def test_batch_norm_update_moves_the_statistics_of_the_trainable_blocks_only() -> None:
    pipeline, audio = _pipeline(model="MTT_vgg", layer="pool5", freeze_blocks=3, batch_norm="update")
    net = pipeline.model.backbone.net
    before = {k: v.clone() for k, v in net.state_dict().items()}
    _train_one_step(pipeline, audio)
    assert _changed_blocks(net, before, "stat") == {"conv3", "conv4", "conv5"}
    assert _changed_blocks(net, before, "param") == {"conv3", "conv4", "conv5"}


def test_a_frozen_backbone_gets_no_gradient_and_the_head_still_trains() -> None:
    pipeline, audio = _pipeline()
    pipeline.model.freeze_backbone(True)
    pipeline.model.train()
    assert not pipeline.model.backbone.net.training
    loss = pipeline.model(pipeline.features(audio)).square().mean()
    loss.backward()
    assert all(p.grad is None for p in pipeline.model.backbone.parameters())
    assert all(p.grad is not None for p in pipeline.model.head.parameters())


def test_the_ramp_scales_only_the_network_groups_for_one_step_and_follows_the_step() -> None:
    schedule = Unfreezing(head_epochs=2, warmup_steps=4, steps_per_epoch=10)
    assert [schedule.frozen_in(epoch) for epoch in (1, 2, 3)] == [True, True, False]
    assert [schedule.factor(step) for step in (20, 21, 23, 24, 99)] == [0.25, 0.5, 1.0, 1.0, 1.0]
    head, network = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(
        [{"params": head.parameters()}, {"params": network.parameters(), "lr": 0.1, "backbone": True}], lr=1.0
    )
    with schedule.applied(optimizer, 20):
        assert [group["lr"] for group in optimizer.param_groups] == [1.0, pytest.approx(0.025)]
    assert [group["lr"] for group in optimizer.param_groups] == [1.0, 0.1]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["model=logreg"],
            r"^feature.transform.trainable: a closed-form model is solved on a frozen network's features",
        ),
        (["trainer.finetune.head_epochs=2"], r"^trainer.finetune.head_epochs: 2 head epochs leave none of the 2-epoch"),
        (["trainer.finetune.backbone_lr_scale=0"], r"^trainer.finetune.backbone_lr_scale: 0 is not above 0"),
        (
            ["feature.transform.trainable=false"],
            r"^trainer.finetune.head_epochs: applies only to a trainable network",
        ),
    ],
)
def test_a_bad_fine_tuning_setting_is_one_line_naming_its_key(
    overrides: list[str], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=message):
        build_spec(compose_run([*FINETUNE, *overrides], tmp_path / "run", tmp_path / "cache"))


def test_freezing_every_block_the_layer_needs_is_refused_naming_freeze_blocks() -> None:
    with pytest.raises(ValueError, match=r"^freeze_blocks: 5 is outside 0\.\.4: layer cnn3 is computed by 5 blocks"):
        Musicnn(sample_rate=RATE, layer="cnn3", trainable=True, freeze_blocks=5)
    with pytest.raises(ValueError, match=r"^freeze_blocks: a frozen network has nothing to unfreeze"):
        Musicnn(sample_rate=RATE, freeze_blocks=1)


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.mark.slow
def test_a_fine_tuned_run_changes_the_trained_blocks_only_and_predicts(tmp_path: Path, cache_dir: Path) -> None:
    from genre.cli.predict import main as predict_main
    from genre.data.prepare import prepare_data
    from genre.experiment import run_experiment

    run_dir = tmp_path / "finetune"
    # Waveform augmentation works on a fine-tuned network: its front end runs in every step.
    args = [*FINETUNE, "feature.transform.freeze_blocks=2", "augment=waveform"]
    run_experiment(compose_run(args, run_dir, cache_dir))
    best = torch.load(run_dir / "best.pt", weights_only=True)
    pretrained = load_network("MTT_musicnn").state_dict()
    saved = {key.removeprefix("features.transform.net."): value for key, value in best["model"].items()}
    changed = {key.split(".")[0] for key, value in pretrained.items() if not torch.equal(value, saved[key])}
    assert changed == {"midend", "midend_bn"}, "cnn1-cnn3 fine-tuned; input, frontend and backend as pretrained"
    epochs = [(h["train/backbone_lr"], h["train/lr"]) for h in best["history"]]
    assert epochs[0][0] == 0 and 0 < epochs[1][0] < epochs[1][1], "head epoch, then the network at a scaled rate"

    clips = prepare_data(compose_run(FINETUNE, run_dir, cache_dir).dataset, cache_dir, progress=False)
    test_paths = clips.splits["test"].paths
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert predict_main([str(run_dir), *map(str, test_paths), "--format", "json"]) == 0
    predicted = [p["predictions"][0]["genre"] for p in json.loads(buffer.getvalue())]
    rows = pd.read_csv(run_dir / "predictions.csv")
    assert predicted == list(rows[rows["split"] == "test"]["predicted"])


@pytest.mark.slow
def test_an_interrupted_fine_tuning_resumes_to_the_uninterrupted_result(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from genre.core.errors import TrainingInterrupted
    from genre.experiment import run_experiment
    from genre.training.trainer import Trainer

    # 2 crops per clip, batches of 4: several steps per epoch; the signal lands inside the ramp (epoch 2).
    args = [*FINETUNE, "trainer.crops_per_clip=2", "trainer.batch_size=4", "trainer.epochs=3", "seed=3"]
    reference = tmp_path / "reference"
    run_experiment(compose_run(args, reference, cache_dir))
    optimise = Trainer._optimise

    def step_then_signal(self, audio, targets):
        out = optimise(self, audio, targets)
        if self.unfreezing is not None and self.step == self.unfreezing.steps_per_epoch + 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return out

    interrupted = tmp_path / "interrupted"
    monkeypatch.setattr(Trainer, "_optimise", step_then_signal)
    with pytest.raises(TrainingInterrupted):
        run_experiment(compose_run(args, interrupted, cache_dir))
    monkeypatch.undo()
    saved = torch.load(interrupted / "last.pt", weights_only=True)
    assert saved["position"]["epoch"] == 2 and saved["position"]["batch"] == 2
    run_cli([f"resume={interrupted}"], tmp_path, cache_dir)
    expected, actual = _metrics(reference), _metrics(interrupted)
    assert actual["resumed"]
    for key in ("val/acc", "val/loss", "test/acc", "test/loss", "train/loss", "train/acc"):
        assert actual[key] == pytest.approx(expected[key], rel=1e-6, abs=1e-7), key
    final = torch.load(interrupted / "last.pt", weights_only=True)["model"]
    uninterrupted = torch.load(reference / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(final[key], uninterrupted[key]) for key in uninterrupted)


@pytest.mark.slow
def test_two_gloo_processes_fine_tune_identical_replicas(tmp_path: Path, cache_dir: Path) -> None:
    from genre.training.distributed import state_fingerprint

    run_dir = tmp_path / "ddp"
    run_cli([*FINETUNE, "trainer.devices=2", "trainer.device=cpu", f"hydra.run.dir={run_dir}"], tmp_path, cache_dir)
    metrics = _metrics(run_dir)
    per_rank = metrics["final_state_sha256_per_rank"]
    assert metrics["world_size"] == 2 and len(per_rank) == 2 and per_rank[0] == per_rank[1]
    last = torch.load(run_dir / "last.pt", weights_only=True)
    assert per_rank[0] == state_fingerprint(last["model"])
    pretrained = load_network("MTT_musicnn").state_dict()
    assert not torch.equal(last["model"]["features.transform.net.midend.0.weight"], pretrained["midend.0.weight"])


@pytest.mark.slow
def test_the_fine_tuning_search_preset_runs_cross_validated_trials(tmp_path: Path, cache_dir: Path) -> None:
    sweep = tmp_path / "search"
    run_cli(
        [
            "-m",
            *FINETUNE,
            "hparams_search=finetune",
            "hydra.sweeper.n_trials=1",
            "cv.folds=2",
            "trainer.finetune.head_epochs=0",
            f"hydra.sweep.dir={sweep}",
            f"hydra.sweeper.storage=sqlite:///{tmp_path / 'study.db'}",
        ],
        tmp_path,
        cache_dir,
    )
    summary = pd.read_csv(sweep / "summary.csv")
    assert list(summary["status"]) == ["completed"], summary
    [trial] = [p for p in sweep.iterdir() if (p / "cv.json").is_file()]
    assert json.loads((trial / "cv.json").read_text())["folds"] == 2


@needs_gpus(1)
def test_fine_tuning_on_cuda_with_mixed_precision(tmp_path: Path, cache_dir: Path) -> None:
    from genre.experiment import run_experiment

    run_dir = tmp_path / "cuda"
    value = run_experiment(
        compose_run([*FINETUNE, "trainer.device=cuda", "trainer.precision=auto"], run_dir, cache_dir)
    )
    assert value == _metrics(run_dir)["val/acc"]
    # last.pt: best.pt can be the head-only epoch's, whose network is still the pretrained one.
    last = torch.load(run_dir / "last.pt", weights_only=True, map_location="cpu")
    pretrained = load_network("MTT_musicnn").state_dict()
    assert not torch.equal(last["model"]["features.transform.net.midend.0.weight"], pretrained["midend.0.weight"])


@pytest.mark.slow
def test_waveform_augmentation_of_a_frozen_network_is_refused_in_one_line(tmp_path: Path, cache_dir: Path) -> None:
    result = run_cli(
        [*TINY_DEMO, "feature=musicnn", "model=linear", "trainer.segment_seconds=3.0", "augment=pitch_shift"],
        tmp_path,
        cache_dir,
        check=False,
    )
    assert result.returncode != 0
    assert "augment: waveform augmentations cannot apply to a precomputed feature's activations" in result.stderr

"""End to end on the tiny demo corpus: probes on musicnn activations, a mixed sweep, predict and resume."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import signal
from pathlib import Path

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from helpers import TINY_DEMO, compose_run, run_cli
from helpers.cuda import needs_gpus

pytest.importorskip("musicnn", reason="the musicnn wheel is not installed (pip install --no-deps musicnn==0.1.0)")

# musicnn reads 3-s patches: the tiny corpus's 4-s clips hold one, training and evaluation crops are 3 s.
PROBE = [
    *TINY_DEMO,
    "feature=musicnn",
    "trainer.segment_seconds=3.0",
    "trainer.epochs=2",
    "trainer.batch_size=8",
    "trainer.progress=false",
]


# The closed-form probe's inner cross-validation needs >= 2 training clips of each genre: 6 clips per genre.
PROBE_DEMO = [
    "dataset.source.clips_per_genre=6",
    "dataset.source.clip_seconds=4.0",
    "dataset.clip_seconds=4.0",
    "experiment=probe",
    "trainer.progress=false",
]


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def _embedding_caches(cache: Path) -> list[Path]:
    return [p for p in (cache / "embeddings").iterdir() if p.is_dir() and not p.name.startswith(".")]


@pytest.fixture
def own_embeddings(tmp_path: Path, cache_dir: Path) -> Path:
    """A cache dir whose embeddings are this test's alone, its demo corpus and decoded audio the session's.

    A test that counts embedding caches, or which parts were computed, must not see what other tests
    (in this worker or another one sharing the session cache) happened to extract before it.
    """
    own = tmp_path / "cache"
    own.mkdir()
    for shared in ("demo", "audio"):
        (cache_dir / shared).mkdir(exist_ok=True)
        (own / shared).symlink_to(cache_dir / shared, target_is_directory=True)
    return own


@pytest.mark.slow
def test_linear_and_mlp_probes_share_one_embedding_cache_and_predict(tmp_path: Path, own_embeddings: Path) -> None:
    cache_dir = own_embeddings
    accuracies = {}
    for model in ("linear", "mlp"):
        run_dir = tmp_path / model
        result = run_cli([*PROBE, f"model={model}", f"hydra.run.dir={run_dir}"], tmp_path, cache_dir)
        assert "test accuracy:" in result.stdout
        accuracies[model] = _metrics(run_dir)["test/acc"]
        log = (run_dir / "run.log").read_text()
        assert "features Musicnn: 753 bands" in log
    assert "(reused)" in log, "the second probe reads the first one's embeddings"
    assert len(_embedding_caches(cache_dir)) == 1
    print("test accuracies:", accuracies)

    from genre.cli.predict import main

    clips = sorted((cache_dir / "demo").glob("*/*/*.wav"))[:4]
    assert main([str(tmp_path / "mlp"), *map(str, clips), "--format", "json"]) == 0


@pytest.mark.slow
def test_sweep_mel_and_musicnn_with_cnn_and_mlp_ends_with_its_summary(tmp_path: Path, cache_dir: Path) -> None:
    sweep = tmp_path / "sweep"
    run_cli(
        ["-m", *PROBE, "trainer.epochs=1", "feature=mel,musicnn", "model=cnn,mlp", f"hydra.sweep.dir={sweep}"],
        tmp_path,
        cache_dir,
    )
    summary = pd.read_csv(sweep / "summary.csv")
    assert len(summary) == 4 and set(summary["status"]) == {"completed"}, summary
    print(summary[["job", "test/acc"]].to_string())
    assert "musicnn" in (sweep / "summary.md").read_text()


@pytest.mark.slow
def test_an_interrupted_probe_resumes_to_the_uninterrupted_result(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from genre.core.errors import TrainingInterrupted
    from genre.experiment import run_experiment
    from genre.training.trainer import Trainer

    args = [*PROBE, "model=mlp", "trainer.crops_per_clip=4", "trainer.batch_size=4", "augment=mixup", "seed=5"]
    reference = tmp_path / "reference"
    run_cli([*args, f"hydra.run.dir={reference}"], tmp_path, cache_dir)

    interrupted = tmp_path / "interrupted"
    optimise = Trainer._optimise

    def step_then_signal(self, audio, targets):
        out = optimise(self, audio, targets)
        if self.step == 18:  # inside epoch 2: a SIGTERM as from a cluster's scheduler
            os.kill(os.getpid(), signal.SIGTERM)
        return out

    monkeypatch.setattr(Trainer, "_optimise", step_then_signal)
    with pytest.raises(TrainingInterrupted):
        run_experiment(compose_run(args, interrupted, cache_dir))
    monkeypatch.undo()
    saved = torch.load(interrupted / "last.pt", weights_only=True)
    assert saved["position"]["epoch"] == 2 and saved["position"]["batch"] > 0
    run_cli([f"resume={interrupted}"], tmp_path, cache_dir)
    expected, actual = _metrics(reference), _metrics(interrupted)
    assert actual["resumed"]
    for key in ("val/acc", "val/loss", "test/acc", "test/loss", "train/loss", "train/acc"):
        assert actual[key] == pytest.approx(expected[key], rel=1e-6, abs=1e-7), key
    assert OmegaConf.create(saved["config"]).feature.transform.model == "MSD_musicnn"


@needs_gpus()
def test_musicnn_on_cuda_matches_cpu_and_a_probe_trains_there(tmp_path: Path, cache_dir: Path) -> None:
    from genre.experiment import run_experiment
    from genre.features import Musicnn

    feature = Musicnn(sample_rate=22050, layer="max_pool")
    audio = 0.05 * torch.randn(2, 22050 * 7, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        cpu = feature(audio)
        feature.to("cuda")
        with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
            exact = feature(audio.to("cuda")).cpu()
        gpu = feature(audio.to("cuda")).cpu()
    # In float32 the GPU gives the CPU's values up to summation order; with cuDNN's default TF32
    # convolutions (Ampere and later; 10-bit mantissa) about 1e-3 of the largest value (H200: 1.1e-3).
    assert (exact - cpu).abs().max() <= 1e-4 * cpu.abs().max()
    assert (gpu - cpu).abs().max() <= 5e-3 * cpu.abs().max()
    run_dir = tmp_path / "cuda"
    value = run_experiment(
        compose_run([*PROBE, "model=mlp", "trainer.device=cuda", "feature.transform.cache=false"], run_dir, cache_dir)
    )
    assert value == _metrics(run_dir)["val/acc"]


@pytest.mark.slow
def test_the_probe_preset_solves_once_keeps_the_run_contract_and_predicts(
    tmp_path: Path, cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # experiment=probe: musicnn, whole-clip segments, a closed-form logistic regression.
    from genre.cli.predict import main as predict_main
    from genre.data.prepare import prepare_data
    from genre.experiment import run_experiment

    run_dir = tmp_path / "probe"
    caplog.set_level(logging.INFO, logger="genre.training.closed_form")
    run_experiment(compose_run(PROBE_DEMO, run_dir, cache_dir))
    best = torch.load(run_dir / "best.pt", weights_only=True)
    assert best["config"]["model"]["_target_"] == "genre.models.ClosedFormProbe"
    [epoch] = best["history"]  # one solve, no epochs
    assert epoch["epoch"] == 1 and epoch["train/C"] in best["config"]["model"]["c_grid"]
    # The solved model is in the checkpoint: the scaler's statistics are not their untouched 0 and 1.
    assert best["model"]["scale"].ne(1).any() and best["model"]["center"].ne(0).any()
    metrics = _metrics(run_dir)
    predictions = pd.read_csv(run_dir / "predictions.csv")
    test_rows = predictions[predictions["split"] == "test"]
    assert metrics["test/acc"] == pytest.approx((test_rows["true"] == test_rows["predicted"]).mean())
    assert "Closed-form fit: C=" in caplog.text

    # genre.predict rebuilds the probe from the checkpoint and classifies the held-back clips as the run did.
    config = OmegaConf.create(best["config"])
    clips = prepare_data(config.dataset, cache_dir, progress=False).splits["test"].paths
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert predict_main([str(run_dir), *map(str, clips), "--format", "json"]) == 0
    predicted = [p["predictions"][0]["genre"] for p in json.loads(buffer.getvalue())]
    assert predicted == list(test_rows["predicted"])


@pytest.mark.slow
def test_a_cross_validated_svm_probe_reports_every_fold(tmp_path: Path, cache_dir: Path) -> None:
    from genre.experiment import run_experiment

    job = tmp_path / "cv"
    mean = run_experiment(compose_run([*PROBE_DEMO, "model=linear_svm", "cv.folds=2"], job, cache_dir))
    folds = [_metrics(job / f"fold{k}") for k in range(2)]
    assert mean == pytest.approx(sum(f["val/acc"] for f in folds) / 2)
    assert json.loads((job / "cv.json").read_text())["folds"] == 2


# --- fusion -------------------------------------------------------------------------------------------


def test_fusion_is_its_parts_side_by_side_and_refuses_bad_parts() -> None:
    from genre.features import Fusion, Musicnn

    fusion = Fusion(sample_rate=22050, parts=["MTT_musicnn/max_pool", "MSD_musicnn/mean_pool"])
    audio = 0.05 * torch.randn(2, 22050 * 7, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        fused = fusion.embed(audio)
        parts = [
            Musicnn(22050, model=m, layer=layer).embed(audio)
            for m, layer in (("MTT_musicnn", "max_pool"), ("MSD_musicnn", "mean_pool"))
        ]
    assert fusion.part_bands == (753, 753) and torch.equal(fused, torch.cat(parts, dim=1))
    for parts_value, message in (
        (["MTT_musicnn/max_pool"], r"^parts: fusion needs two or more parts"),
        (["MTT_musicnn/max_pool", "MTT_musicnn/max_pool"], r"names a part twice"),
        (["MTT_musicnn/max_pool", "jukebox/layer36"], r"^parts: 'jukebox/layer36' is not <model>/<layer>"),
        (["MTT_musicnn/cnn1", "note_stats"], r"mixes pooled layers .* with frame layers"),
        (["MTT_musicnn/max_pool", "MSD_musicnn/pool5"], r"^parts: 'MSD_musicnn/pool5': layer: 'pool5' is not a layer"),
        (["MTT_musicnn/max_pool", "MSD_musicnn/cnn1"], r"mixes pooled layers .* with frame layers"),
    ):
        with pytest.raises(ValueError, match=message):
            Fusion(sample_rate=22050, parts=parts_value)


@pytest.mark.slow
def test_fused_note_statistics_sit_beside_the_musicnn_patches_they_span() -> None:
    from genre.features import Fusion, Musicnn, NoteStatistics

    fusion = Fusion(sample_rate=22050, parts=["MTT_musicnn/max_pool", "note_stats"])
    assert fusion.patch_seconds > 8 and fusion.part_bands == (753, 69), "a segment must hold a note patch"
    audio = 0.05 * torch.randn(2, 22050 * 20, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        fused = fusion.embed(audio)
        patches = Musicnn(22050, model="MTT_musicnn").embed(audio)
        notes = NoteStatistics(22050).embed(audio)
    # 20 s: six 2.99-s musicnn patches (centres 1.5 ... 16.5 s) and two 8.2-s note patches (0-8.2 s,
    # 8.2-16.4 s): patches 0-2 lie in the first, 3-4 in the second, 5 past its end takes the last.
    assert patches.shape[-1] == 6 and notes.shape[-1] == 2
    torch.testing.assert_close(fused, torch.cat([patches, notes[..., [0, 0, 0, 1, 1, 1]]], dim=1))
    assert fusion.steps_in(22050 * 8) == 0, "no whole note patch in 8 s"


@pytest.mark.slow
def test_the_default_run_is_the_transfer_recipe_and_predicts_what_it_evaluated(tmp_path: Path, cache_dir: Path) -> None:
    """``python run.py`` with nothing but a small corpus: musicnn (MTT) beside note statistics, whole clips,
    the closed-form probe (``experiment=transfer``'s recipe, tests/conf checks they agree), end to end."""
    from genre.cli.predict import main as predict_main
    from genre.experiment import run_experiment

    run_dir = tmp_path / "notes"
    clips = ["dataset.source.clips_per_genre=4", "dataset.source.clip_seconds=9.0", "dataset.clip_seconds=9.0"]
    config = compose_run([*clips, "trainer.progress=false"], run_dir, cache_dir)
    assert list(config.feature.transform.parts) == ["MTT_musicnn/max_pool", "note_stats"], "the default parts"
    run_experiment(config)
    best = torch.load(run_dir / "best.pt", weights_only=True)
    assert best["config"]["model"]["_target_"] == "genre.models.ClosedFormProbe"
    assert best["config"]["eval"]["segment_seconds"] == 9.0, "whole clips"
    rows = pd.read_csv(run_dir / "predictions.csv")
    test = rows[rows["split"] == "test"]
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):  # predict embeds the audio itself: the same steps as the cache
        assert predict_main([str(run_dir), *map(str, test["path"]), "--format", "json"]) == 0
    assert [p["predictions"][0]["genre"] for p in json.loads(buffer.getvalue())] == list(test["predicted"])


@pytest.mark.slow
def test_fusion_probes_cache_each_part_share_it_with_single_part_runs_and_predict(
    tmp_path: Path, own_embeddings: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache_dir = own_embeddings
    from genre.cli.predict import main as predict_main
    from genre.data.prepare import prepare_data
    from genre.experiment import run_experiment

    single = tmp_path / "single"
    run_experiment(compose_run([*PROBE_DEMO, "feature.transform.model=MTT_musicnn"], single, cache_dir))
    fused = tmp_path / "fused"
    parts = "feature.transform.parts=[MTT_musicnn/max_pool,MSD_musicnn/max_pool]"
    caplog.clear()
    caplog.set_level(logging.INFO, logger="genre")
    # experiment=transfer is experiment=probe on feature=fusion: the preset runs end to end here.
    transfer = [o if o != "experiment=probe" else "experiment=transfer" for o in PROBE_DEMO]
    run_experiment(compose_run([*transfer, parts], fused, cache_dir))
    log = caplog.text
    assert "x 1506 dims" in log and log.count("Computing max_pool for") == 1, "the MTT part was reused"
    assert len(_embedding_caches(cache_dir)) == 2, "one cache per part, none for the fusion itself"
    best = torch.load(fused / "best.pt", weights_only=True)
    assert best["config"]["feature"]["transform"]["_target_"] == "genre.features.Fusion"

    # Late fusion on the same parts (read from their caches): one probe per part, each its own C.
    late = tmp_path / "late"
    run_experiment(compose_run([*PROBE_DEMO, "feature=fusion", parts, "model=late_fusion"], late, cache_dir))
    history = torch.load(late / "best.pt", weights_only=True)["history"]
    assert {"train/C_part0", "train/C_part1"} <= set(history[0])
    config = OmegaConf.create(best["config"])
    clips = prepare_data(config.dataset, cache_dir, progress=False).splits["test"].paths
    for run_dir in (fused, late):
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            assert predict_main([str(run_dir), *map(str, clips), "--format", "json"]) == 0
        predicted = [p["predictions"][0]["genre"] for p in json.loads(buffer.getvalue())]
        rows = pd.read_csv(run_dir / "predictions.csv")
        assert predicted == list(rows[rows["split"] == "test"]["predicted"]), run_dir.name


@pytest.mark.slow
def test_a_pretrained_network_with_hand_made_statistics_runs_caches_each_part_and_predicts(
    tmp_path: Path, own_embeddings: Path
) -> None:
    from genre.cli.predict import main as predict_main
    from genre.experiment import run_experiment

    run_dir = tmp_path / "hand"
    parts = "feature.transform.parts=[MTT_musicnn/max_pool,mfcc_stats,chroma_stats]"
    run_experiment(compose_run([*PROBE_DEMO, "feature=fusion", parts], run_dir, own_embeddings))
    best = torch.load(run_dir / "best.pt", weights_only=True)
    assert best["model"]["center"].numel() == 2 * (753 + 80 + 24), "mean ‖ max of every part's dims"
    assert len(_embedding_caches(own_embeddings)) == 3, "one cache per part"
    test = pd.read_csv(run_dir / "predictions.csv").query("split == 'test'")
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert predict_main([str(run_dir), *map(str, test["path"]), "--format", "json"]) == 0
    assert [p["predictions"][0]["genre"] for p in json.loads(buffer.getvalue())] == list(test["predicted"])

"""The embedding cache, the datasets over it, the loaders a feature's "precomputed" declaration picks,
the musicnn feature's contract and the MLP probe."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

from genre.augment import Augmentations
from genre.data.cache import AudioCache, open_cache
from genre.data.decode import ClipFormat, int16_to_float
from genre.data.embedding_cache import DATA_FILE, open_embeddings
from genre.data.embeddings import EmbeddingDataset
from genre.data.prepare import PreparedData, SplitClips
from genre.features.extractor import FeatureExtractor
from genre.models import MLP
from genre.training.device import resolve_precision
from genre.training.distributed import DistContext
from genre.training.loaders import LoaderSettings, RunLoaders, run_loaders
from genre.training.schedules import warmup_cosine
from genre.training.segments import split_segments
from genre.training.trainer import Trainer

RATE = 8000


def _audio(tmp_path: Path, n: int = 5):
    paths = []
    for i in range(n):
        t = np.arange(int(2.0 * RATE)) / RATE
        path = tmp_path / f"clip{i}.wav"
        sf.write(path, 0.1 * (1 + t) * np.sin(2 * np.pi * (200 + 100 * i) * t), RATE, subtype="PCM_16")
        paths.append(path)
    return open_cache(
        paths, ClipFormat(sample_rate=RATE, clip_seconds=2.0), tmp_path / "cache", workers=1, progress=False
    )


class FrameEnergies:
    """A deterministic stand-in feature for the cache's own tests: per-frame [mean, rms] of 4 samples."""

    calls = 0

    def __call__(self, waveform: torch.Tensor) -> torch.Tensor:
        FrameEnergies.calls += 1
        frames = waveform.unflatten(-1, (-1, 4000))  # 4 steps of 4000 samples per 2-s clip
        return torch.stack([frames.mean(-1), frames.square().mean(-1).sqrt()], dim=1)  # (batch, 2, 4)


def _open(audio, root: Path, identity=None, persist=True):
    return open_embeddings(
        audio,
        FrameEnergies(),
        identity or {"layer": "energy"},
        steps=4,
        dims=2,
        cache_root=root,
        device=torch.device("cpu"),
        persist=persist,
        batch_clips=2,
        progress=False,
    )


def test_embedding_cache_is_built_once_then_reused_and_matches_memory(tmp_path):
    audio = _audio(tmp_path)
    FrameEnergies.calls = 0
    first = _open(audio, tmp_path / "cache")
    assert first.stats.built and first.directory is not None and FrameEnergies.calls == 3  # 5 clips, 2 at a time
    again = _open(audio, tmp_path / "cache")
    assert not again.stats.built and again.directory == first.directory and FrameEnergies.calls == 3
    memory = _open(audio, tmp_path / "cache", persist=False)
    assert memory.directory is None and FrameEnergies.calls == 6
    for row in range(5):
        np.testing.assert_array_equal(again.read(row), memory.read(row))
    expected = FrameEnergies()(torch.from_numpy(audio.read(2)).float().div(32768).unsqueeze(0))[0].T.numpy()
    np.testing.assert_allclose(again.read(2), expected, rtol=1e-6)
    np.testing.assert_array_equal(again.read(2, 1, 2), expected[1:3])
    assert first.directory.parent == audio.directory.parent.parent / "embeddings"


def test_changed_feature_damaged_data_and_stale_builds_rebuild(tmp_path):
    audio = _audio(tmp_path)
    table = _open(audio, tmp_path / "cache")
    other = _open(audio, tmp_path / "cache", identity={"layer": "energy", "weights": "new"})
    assert other.stats.built and other.directory != table.directory
    data = table.directory / DATA_FILE
    data.write_bytes(data.read_bytes()[:-8])  # a damaged cache is never read
    stale = table.directory.parent / f".{table.directory.name}.tmp-123-abcd"
    stale.mkdir()
    rebuilt = _open(audio, tmp_path / "cache")
    assert rebuilt.stats.built and rebuilt.directory == table.directory
    assert os.path.getsize(data) == 5 * 4 * 2 * 4 and not stale.exists()
    assert not list(table.directory.parent.glob(".*tmp-*")), "no staging folder is left behind"


def test_a_failed_build_leaves_nothing_that_looks_finished(tmp_path):
    audio = _audio(tmp_path)

    def broken(waveform):
        raise RuntimeError("backbone failed")

    with pytest.raises(RuntimeError, match="backbone failed"):
        open_embeddings(
            audio,
            broken,
            {"layer": "x"},
            steps=4,
            dims=2,
            cache_root=tmp_path / "cache",
            device=torch.device("cpu"),
            progress=False,
        )
    root = tmp_path / "cache" / "embeddings"
    assert [p.name for p in root.iterdir() if not p.name.endswith(".lock")] == []


def test_training_windows_start_on_the_patch_grid_and_are_reproducible(tmp_path):
    audio = _audio(tmp_path)
    table = _open(audio, tmp_path / "cache")
    # Pretend each patch is 2 steps: windows of one patch start at step 0 or 2.
    crops = EmbeddingDataset(table, [0, 1, 2], [0, 1, 0], window_steps=2, steps_per_patch=2, seed=7, crops_per_clip=3)
    starts = set()
    for index in range(len(crops)):
        window, label = crops[index]
        assert window.shape == (2, 2) and label == [0, 1, 0][index // 3]
        full = table.read(int(crops.rows[index // 3]))
        matches = [s for s in (0, 2) if np.array_equal(full[s : s + 2].T, window.numpy())]
        assert matches, "every window is a whole patch"
        starts.add(matches[0])
        assert torch.equal(window, crops[index][0])
    assert starts == {0, 2}
    whole = EmbeddingDataset(table, [4], [1])
    assert whole[0][0].shape == (2, 4)
    with pytest.raises(ValueError, match="multiple"):
        EmbeddingDataset(table, [0], [0], window_steps=3, steps_per_patch=2)


def test_segments_of_activations_split_the_time_axis():
    x = torch.arange(2 * 3 * 7, dtype=torch.float32).reshape(2, 3, 7)
    segments = split_segments(x, 3)
    assert segments.shape == (2, 2, 3, 3)
    assert torch.equal(segments[1, 1], x[1, :, 3:6])
    audio = torch.arange(20.0).reshape(2, 10)
    assert torch.equal(split_segments(audio, 4), audio[:, :8].reshape(2, 2, 4))


def test_mlp_probe_pools_over_time_and_validates():
    torch.manual_seed(0)
    x = torch.randn(4, 10, 5)
    for pool in ("mean", "max", "mean_max"):
        for norm in ("batch", "layer", "none"):
            model = MLP(10, 3, hidden=[8, 6], dropout=0.1, norm=norm, pool=pool).eval()
            assert model(x).shape == (4, 3)
    linear = MLP(10, 3, hidden=[], dropout=0.0, pool="mean").eval()
    # A linear probe on the mean over time: the frame order cannot matter.
    assert torch.allclose(linear(x), linear(x.flip(2)), atol=1e-6)
    with pytest.raises(ValueError, match=r"^pool: "):
        MLP(10, 3, pool="median")
    with pytest.raises(ValueError, match=r"^hidden: "):
        MLP(10, 3, hidden=[0])


needs_wheel = pytest.mark.skipif(importlib.util.find_spec("musicnn") is None, reason="musicnn wheel not installed")


@needs_wheel
def test_musicnn_feature_contract():
    from genre.features import Musicnn

    feature = Musicnn(sample_rate=22050, model="MTT_musicnn", layer="penultimate").train()
    assert feature.frozen and not any(p.requires_grad for p in feature.parameters())
    assert not feature.net.training, "batch norm keeps its pretrained statistics"
    x = 0.05 * torch.randn(2, int(22050 * 6.5))
    out = feature(x)
    assert out.shape == (2, 200, feature.patches_in(x.shape[1])) and out.shape[2] == 2
    assert feature.precomputed and feature.steps_in(x.shape[1]) == out.shape[2]
    for seconds in (2.9, 3.0, 3.05, 5.99, 6.02, 30.0):
        samples = int(seconds * 22050)
        if feature.patches_in(samples) == 0:
            with pytest.raises(ValueError, match="at least 3 s"):
                feature(torch.zeros(1, samples))
        else:
            assert feature(torch.zeros(1, samples)).shape[2] == feature.patches_in(samples)
    frames = Musicnn(sample_rate=16000, layer="cnn2")
    assert frames.steps_per_patch == 187 and frames(torch.zeros(1, 16000 * 3)).shape == (1, 64, 187)
    with pytest.raises(ValueError, match=r"^layer: "):
        Musicnn(sample_rate=16000, model="MSD_vgg", layer="max_pool")


@needs_wheel
def test_musicnn_takes_float_waveforms_only():
    from genre.features import Musicnn

    feature = Musicnn(sample_rate=16000, layer="penultimate")
    audio = 0.05 * torch.randn(2, 16000 * 3, generator=torch.Generator().manual_seed(0))
    activations = feature(audio)
    assert activations.shape == (2, 200, 1)
    int16 = (audio * 32768).to(torch.int16)
    for other in (activations, int16, audio[0]):
        with pytest.raises(ValueError, match=r"^waveform: Musicnn takes float waveforms \(batch, samples\)"):
            feature(other)


def test_missing_wheel_says_how_to_install_it(monkeypatch):
    from genre.pretrained import weights

    monkeypatch.setattr(weights.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match=r"^model: .*pip install --no-deps musicnn==0.1.0") as error:
        weights.load_network("MSD_musicnn")
    assert "\n" not in str(error.value)


def test_int16_to_float_takes_int16_samples_only():
    clip = torch.tensor([[-32768, 0, 16384]], dtype=torch.int16)
    assert torch.equal(int16_to_float(clip), torch.tensor([[-1.0, 0.0, 0.5]]))
    for other in (clip.float() / 32768, torch.zeros(1, 3, 2), clip.to(torch.int32)):
        with pytest.raises(ValueError, match=r"^audio: .*int16"):
            int16_to_float(other)


CPU = torch.device("cpu")
# 2-s clips at 8 kHz; the stand-in feature's patches are 2 steps of 1000 samples.
PATCH = 2000
SETTINGS = LoaderSettings(
    train_segment=PATCH,
    eval_segment=2 * PATCH,
    batch_size=2,
    eval_batch_size=2,
    crops_per_clip=2,
    num_workers=0,
    seed=3,
)


class WindowEnergies(nn.Module):
    """A feature transform that is no musicnn: [mean, rms] of every 1000 samples, in patches of 2 steps.
    It declares itself precomputed or not as asked, and counts what it computes."""

    n_bands = 2
    steps_per_patch = 2
    patch_seconds = PATCH / RATE
    cache = True

    def __init__(self, precomputed: bool) -> None:
        super().__init__()
        self.precomputed = precomputed
        self.embedded = self.transformed = 0

    def embed(self, waveform: torch.Tensor) -> torch.Tensor:
        self.embedded += len(waveform)
        frames = waveform[:, : waveform.shape[1] // PATCH * PATCH].unflatten(-1, (-1, PATCH // 2))
        return torch.stack([frames.mean(-1), frames.square().mean(-1).sqrt()], dim=1)

    def identity(self) -> dict[str, object]:
        return {"layer": "window energies"}

    def steps_in(self, samples: int) -> int:
        return samples // PATCH * self.steps_per_patch

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        self.transformed += len(waveform)
        return self.embed(waveform)


def _prepared(tmp_path: Path) -> PreparedData:
    cache = _audio(tmp_path, n=6)
    splits = {
        name: SplitClips(np.array(rows), np.array([row % 2 for row in rows]), [cache.paths[r] for r in rows])
        for name, rows in (("train", [0, 1, 2, 3]), ("val", [4]), ("test", [5]))
    }
    return PreparedData(cache=cache, labels=["low", "high"], splits=splits)


def _loaders(tmp_path: Path, precomputed: bool, reads: list[int]) -> tuple[RunLoaders, WindowEnergies, PreparedData]:
    """run_loaders for the stand-in feature; ``reads`` counts the audio cache's reads while the dataset is
    prepared, while the loaders are made, then after."""
    prepared = _prepared(tmp_path)
    transform = WindowEnergies(precomputed)
    reads.append(0)
    loaders = run_loaders(
        prepared,
        FeatureExtractor(transform, log="none"),
        SETTINGS,
        ctx=DistContext(),
        device=CPU,
        cache_dir=tmp_path / "cache",
        progress=False,
    )
    reads.append(0)
    return loaders, transform, prepared


@pytest.fixture
def audio_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every read of an audio cache's clips, counted (the loaders run in this process: num_workers=0)."""
    reads = [0]
    read = AudioCache.read

    def counted(self, *args, **kwargs):
        reads[-1] += 1
        return read(self, *args, **kwargs)

    monkeypatch.setattr(AudioCache, "read", counted)
    return reads


def _batches(loaders: RunLoaders) -> dict[str, list[torch.Tensor]]:
    return {name: [batch for batch, _ in getattr(loaders, name)] for name in ("crops", "val", "test", "train_clips")}


def test_a_feature_declaring_precomputed_gets_loaders_of_its_activations_and_no_audio(tmp_path, audio_reads):
    loaders, transform, prepared = _loaders(tmp_path, True, audio_reads)
    assert audio_reads[1] == 6 and transform.embedded == 6, "every clip is read and embedded once, up front"
    batches = _batches(loaders)
    assert audio_reads[2] == 0, "no loader reads audio"
    assert transform.transformed == 0
    assert loaders.precomputed and loaders.eval_segment == 4, "an evaluation segment is 2 patches of 2 steps"
    for name, steps in (("crops", 2), ("val", 16), ("test", 16), ("train_clips", 16)):
        for batch in batches[name]:
            assert batch.dtype == torch.float32 and batch.shape[1:] == (2, steps), name
    clip = int16_to_float(torch.from_numpy(prepared.cache.read(4))).unsqueeze(0)
    torch.testing.assert_close(batches["val"][0], WindowEnergies(True).embed(clip))
    assert loaders.table is not None and loaders.table.directory is not None


def test_the_same_feature_not_declaring_precomputed_gets_audio_loaders_only(tmp_path, audio_reads):
    loaders, transform, _ = _loaders(tmp_path, False, audio_reads)
    assert audio_reads[1] == 0 and transform.embedded == 0, "nothing is embedded"
    batches = _batches(loaders)
    assert audio_reads[2] == 2 * 4 + 1 + 1 + 4, "every loader reads audio: 2 crops of each training clip, clips"
    assert not loaders.precomputed and loaders.table is None and loaders.eval_segment == 2 * PATCH
    assert not (tmp_path / "cache" / "embeddings").exists()
    for name, samples in (("crops", PATCH), ("val", 8 * PATCH), ("train_clips", 8 * PATCH)):
        for batch in batches[name]:
            assert batch.dtype == torch.int16 and batch.shape[1:] == (samples,), name


@pytest.mark.parametrize(("name", "samples"), [("train_segment", PATCH - 1), ("eval_segment", PATCH // 2)])
def test_a_length_without_a_whole_patch_is_refused_naming_it_before_embedding(tmp_path, name, samples):
    prepared = _prepared(tmp_path)
    transform = WindowEnergies(True)
    settings = LoaderSettings(**{**SETTINGS.__dict__, name: samples})
    with pytest.raises(ValueError, match=rf"^{name}: .* s holds no whole WindowEnergies patch \(0.25 s\)"):
        run_loaders(
            prepared,
            FeatureExtractor(transform),
            settings,
            ctx=DistContext(),
            device=CPU,
            cache_dir=tmp_path,
            progress=False,
        )
    assert transform.embedded == 0


def test_training_on_precomputed_activations_never_transforms_or_reads_audio(tmp_path, audio_reads):
    loaders, transform, prepared = _loaders(tmp_path, True, audio_reads)
    features = FeatureExtractor(transform, log="none")
    features.fit_normalization((batch for batch, _ in loaders.train_clips), transformed=True)
    torch.manual_seed(0)
    model = MLP(2, 2, hidden=[4], dropout=0.0, pool="mean")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = Trainer(
        model,
        features,
        optimizer,
        warmup_cosine(optimizer, epochs=1, steps_per_epoch=len(loaders.crops)),
        device=CPU,
        precision=resolve_precision("32", CPU),
        loss_fn=nn.CrossEntropyLoss(),
        augment=Augmentations([], 2),
        segment_samples=loaders.eval_segment,
        aggregate="mean",
        precomputed=loaders.precomputed,
        progress=False,
    )
    for batch, targets in loaders.crops:
        trainer._optimise(batch, targets)
    result = trainer.evaluate(loaders.val)
    assert trainer.step == 4 and len(result.targets) == 1 and np.isfinite(result.loss)
    assert transform.transformed == 0 and audio_reads[2] == 0, "the prediction side saw activations only"
    # The stages after the transform are the extractor's own: on audio, forward gives the same features.
    clip = int16_to_float(torch.from_numpy(prepared.cache.read(4))).unsqueeze(0)
    torch.testing.assert_close(features.forward_transformed(transform.embed(clip)), features(clip))


def test_a_fused_table_reads_a_part_on_another_grid_through_its_step_map() -> None:
    from genre.data.embedding_cache import EmbeddingTable
    from genre.data.fused_embeddings import FusedTable

    fine = np.arange(2 * 6 * 2, dtype=np.float32).reshape(2, 6, 2)
    coarse = 100 + np.arange(2 * 2 * 3, dtype=np.float32).reshape(2, 2, 3)  # 2 steps, each spanning 3 fine ones
    index = np.array([0, 0, 0, 1, 1, 1])
    table = FusedTable([EmbeddingTable(2, 6, 2, values=fine), EmbeddingTable(2, 2, 3, values=coarse)], [None, index])
    assert (table.rows, table.steps, table.dims) == (2, 6, 5)
    window = table.read(1, 2, 3)  # fine steps 2, 3, 4: the coarse steps 0, 1, 1 beside them
    np.testing.assert_array_equal(window[:, :2], fine[1, 2:5])
    np.testing.assert_array_equal(window[:, 2:], coarse[1, [0, 1, 1]])
    for maps in ([None, np.array([0, 0, 2, 1, 1, 1])], [None, index[:4]], [index, None]):
        with pytest.raises(ValueError, match=r"^step_maps:"):
            FusedTable([EmbeddingTable(2, 6, 2, values=fine), EmbeddingTable(2, 2, 3, values=coarse)], maps)


def test_a_fused_table_reads_its_parts_side_by_side_cut_to_the_shortest() -> None:
    from genre.data.embedding_cache import EmbeddingTable
    from genre.data.fused_embeddings import FusedTable

    first = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    second = -np.arange(2 * 2 * 4, dtype=np.float32).reshape(2, 2, 4)
    table = FusedTable([EmbeddingTable(2, 3, 2, values=first), EmbeddingTable(2, 2, 4, values=second)])
    assert (table.rows, table.steps, table.dims) == (2, 2, 6)
    np.testing.assert_array_equal(table.read(1), np.concatenate([first[1, :2], second[1]], axis=1))
    np.testing.assert_array_equal(table.read(0, 1, 1), np.concatenate([first[0, 1:2], second[0, 1:2]], axis=1))
    with pytest.raises(IndexError):
        table.read(0, 1, 2)
    with pytest.raises(ValueError, match=r"^tables:"):
        FusedTable([EmbeddingTable(2, 3, 2, values=first), EmbeddingTable(3, 2, 4, values=np.zeros((3, 2, 4)))])

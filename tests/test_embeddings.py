"""The embedding cache, the datasets over it, the musicnn feature's contract and the MLP probe."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from genre.data.cache import open_cache
from genre.data.decode import ClipFormat
from genre.data.embedding_cache import DATA_FILE, open_embeddings
from genre.data.embeddings import EmbeddingDataset
from genre.models import MLP
from genre.training.segments import split_segments

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
    assert torch.equal(feature(out), out), "its own output passes through (the embedding cache's)"
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


def test_missing_wheel_says_how_to_install_it(monkeypatch):
    from genre.pretrained import weights

    monkeypatch.setattr(weights.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match=r"^model: .*pip install --no-deps musicnn==0.1.0") as error:
        weights.load_network("MSD_musicnn")
    assert "\n" not in str(error.value)

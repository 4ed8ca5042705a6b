"""Our PyTorch musicnn/VGG against the original TensorFlow implementation's outputs.

The references (tests/references/musicnn_references.npz) were written by tests/references/musicnn_references.py
from the original ``musicnn`` 0.1.0 running under TensorFlow in a throw-away environment (versions in
musicnn_references.json), on three quiet 6-s test signals.

* ``graph``: the original graph and checkpoint fed the original's log-mel computed in float32. Our
  whole pipeline (torchaudio mel, log, patches, network) must match it within 1e-4 on the taggram
  and 1e-3 on the embeddings.
* ``extractor``: the original's own ``extractor()`` end to end. It casts the mel power to float16
  before the logarithm (which overflows on loud music, so we do not copy it); on these quiet signals
  it stays finite, and feeding our network the same float16-rounded input reproduces it too.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("musicnn", reason="the musicnn wheel is not installed (pip install --no-deps musicnn==0.1.0)")

from genre.features.pretrained import Musicnn
from genre.pretrained.musicnn import N_MELS, PATCH_FRAMES

DATA = Path(__file__).resolve().parents[1] / "references"
REFERENCES = np.load(DATA / "musicnn_references.npz")
META = json.loads((DATA / "musicnn_references.json").read_text())
FRAME_LAYERS = ("timbral", "temporal", "cnn1", "cnn2", "cnn3")
TAGGRAM_TOLERANCE, EMBEDDING_TOLERANCE = 1e-4, 1e-3


def _signals() -> torch.Tensor:
    return torch.from_numpy(REFERENCES["signals"].astype(np.float32) / 32768)


def _outputs(feature: Musicnn, patches: torch.Tensor, n_signals: int) -> dict[str, np.ndarray]:
    with torch.no_grad():
        out = feature.net(patches)
    result = {}
    for layer, value in out.items():
        value = value.reshape(n_signals, -1, *value.shape[1:])
        if layer in FRAME_LAYERS:  # (signals, patches, channels, frames) -> the reference's (frames, channels)
            value = value.transpose(2, 3)[:, :, :: META["frame_step"]]
        result[layer] = value.numpy()
    return result


def _compare(model: str, source: str, ours: dict[str, np.ndarray]) -> dict[str, float]:
    worst: dict[str, float] = {}
    for key in REFERENCES.files:
        parts = key.split("/")
        if parts[:2] != [model, source]:
            continue
        layer, signal = parts[2], int(parts[3])
        expected = REFERENCES[key]
        got = ours[layer][signal].reshape(expected.shape)
        worst[layer] = max(worst.get(layer, 0.0), float(np.abs(got - expected).max()))
    return worst


@pytest.mark.parametrize("model", META["models"])
def test_matches_the_original_graph(model):
    feature = Musicnn(sample_rate=16000, model=model, layer="taggram")
    signals = _signals()
    patches = feature.log_mel_patches(signals)  # our front end: torchaudio mel at 16 kHz, float32
    worst = _compare(model, "graph", _outputs(feature, patches, len(signals)))
    print(model, "graph:", {k: f"{v:.1e}" for k, v in worst.items()})
    assert "taggram" in worst and len(worst) >= 3
    assert worst.pop("taggram") <= TAGGRAM_TOLERANCE
    for layer, difference in worst.items():
        assert difference <= EMBEDDING_TOLERANCE, (layer, difference)


@pytest.mark.parametrize("model", META["models"])
def test_reproduces_the_original_extractor_given_its_float16_input(model):
    feature = Musicnn(sample_rate=16000, model=model, layer="taggram")
    signals = _signals()
    mel = feature.mel(signals).half()
    # The original's numpy steps in float16: 10000 * x, + 1, log10 (only to check the references agree).
    log_mel = torch.log10(10000 * mel + 1).float()
    n = (log_mel.shape[-1] - PATCH_FRAMES) // PATCH_FRAMES + 1
    patches = log_mel[..., : n * PATCH_FRAMES].reshape(len(signals), N_MELS, n, PATCH_FRAMES)
    patches = patches.permute(0, 2, 3, 1).reshape(-1, PATCH_FRAMES, N_MELS)
    worst = _compare(model, "extractor", _outputs(feature, patches, len(signals)))
    print(model, "extractor:", {k: f"{v:.1e}" for k, v in worst.items()})
    assert worst.pop("taggram") <= TAGGRAM_TOLERANCE
    for layer, difference in worst.items():
        # Our mel and librosa's differ by ~1e-7, which now and then rounds to the next float16 (a step of
        # 4.9e-4 relative); bounded by one such step of the layer's scale (max_pool reaches 26-63 here).
        scale = max(
            np.abs(REFERENCES[k]).max() for k in REFERENCES.files if k.startswith(f"{model}/extractor/{layer}/")
        )
        assert difference <= 4.9e-4 * scale, (layer, difference, scale)


def test_feature_output_is_the_layer_per_patch():
    feature = Musicnn(sample_rate=16000, model="MSD_musicnn", layer="max_pool")
    signals = _signals()
    with torch.no_grad():
        out = feature(signals)
    assert out.shape == (3, 753, 2)
    reference = np.stack([REFERENCES[f"MSD_musicnn/graph/max_pool/{i}"] for i in range(3)])  # (3, patches, 753)
    assert np.abs(out.transpose(1, 2).numpy() - reference).max() <= EMBEDDING_TOLERANCE


@pytest.mark.parametrize("training", [False, True])
def test_the_front_ends_band_maximum_equals_batch_norm_then_maximum_for_either_sign_of_scale(training: bool) -> None:
    """The frozen shortcut (max of the map = map of the max, or of the min where a channel's scale is
    negative) gives exactly what ReLU, batch norm and the band maximum give; batch statistics too."""
    from torch.nn import functional as F

    from genre.pretrained.musicnn import _band_max, _batch_norm_2d, _bn

    torch.manual_seed(0)
    bn = _bn(6)
    assert isinstance(bn, torch.nn.BatchNorm1d)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.5, -0.7, 0.0, -2.0, 0.3, 1.0]))
        bn.bias.copy_(torch.randn(6))
        bn.running_mean.copy_(torch.randn(6))
        bn.running_var.copy_(torch.rand(6) + 0.1)
    bn.train(training)
    x = torch.randn(3, 6, 11, 17)
    expected = _batch_norm_2d(F.relu(x), bn).amax(dim=3)
    torch.testing.assert_close(_band_max(x, bn), expected, rtol=0, atol=1e-6 if training else 0)

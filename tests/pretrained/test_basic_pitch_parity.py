"""Our PyTorch basic-pitch network against the original's ONNX graph run by onnxruntime.

The references (tests/references/basic_pitch_references.npz) were written by
tests/references/basic_pitch_references.py from the ``basic-pitch`` 0.4.0 wheel's ``nmp.onnx`` under
onnxruntime in a throw-away environment (versions in basic_pitch_references.json), on three one-window
signals: an arpeggiated chord, a vibrato glide over noise, and silence. Our network reads the same file
with our own ONNX reader and must give the same posteriorgrams within 1e-5 (measured: 7.7e-7, float32
rounding of a different summation order).
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from genre.pretrained import basic_pitch
from genre.pretrained.basic_pitch import FRAMES, WINDOW_SAMPLES, load_network, onnx_path
from helpers.cuda import needs_gpus

DATA = Path(__file__).resolve().parents[1] / "references"
REFERENCES = np.load(DATA / "basic_pitch_references.npz")
META = json.loads((DATA / "basic_pitch_references.json").read_text())
TOLERANCE = 1e-5

needs_wheel = pytest.mark.skipif(
    importlib.util.find_spec("basic_pitch") is None,
    reason=f"the basic-pitch wheel is not installed ({basic_pitch.INSTALL})",
)


@pytest.fixture(scope="module")
def net() -> basic_pitch.BasicPitchNet:
    return load_network()


def _signals() -> torch.Tensor:
    return torch.from_numpy(REFERENCES["signals"].astype(np.float32) / 32768)


@needs_wheel
def test_the_installed_onnx_file_is_the_one_the_references_ran() -> None:
    assert hashlib.sha256(onnx_path().read_bytes()).hexdigest() == META["onnx_sha256"]


@needs_wheel
def test_posteriorgrams_match_onnxruntime(net: basic_pitch.BasicPitchNet) -> None:
    with torch.no_grad():
        out = net(_signals())
    worst = {name: float(np.abs(out[name].numpy() - REFERENCES[name]).max()) for name in net.LAYERS}
    print("basic-pitch vs onnxruntime, max abs:", {k: f"{v:.1e}" for k, v in worst.items()})
    for name, size in net.LAYERS.items():
        assert out[name].shape == (3, FRAMES, size)
        assert worst[name] <= TOLERANCE, (name, worst[name])


@needs_wheel
def test_each_window_is_computed_on_its_own(net: basic_pitch.BasicPitchNet) -> None:
    """The log normalisation uses each window's own range: a window alone gives what it gives in a batch."""
    signals = _signals()
    with torch.no_grad():
        batched, alone = net(signals), net(signals[1:2])
    # torch's conv algorithms differ with the batch size and the machine: 3e-6 on this project's 2-core
    # CPU, 4.4e-5 on a 16-core one with torch 2.11; a window's range mixed in would move them by far more.
    for name in net.LAYERS:
        torch.testing.assert_close(alone[name][0], batched[name][1], rtol=0, atol=1e-4)


@needs_wheel
def test_audio_of_another_length_is_refused(net: basic_pitch.BasicPitchNet) -> None:
    with pytest.raises(ValueError, match=rf"audio: expected \(windows, {WINDOW_SAMPLES}\)"):
        net(torch.zeros(1, WINDOW_SAMPLES - 1))


def test_a_missing_wheel_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(basic_pitch.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match=r"pip install --no-deps basic-pitch==0\.4\.0"):
        onnx_path()


def test_harmonic_shifts_are_the_originals() -> None:
    # 12 x 3 x log2(h) bins for h = 0.5, 1, ..., 7: the pads of the graph's harmonic-stacking nodes.
    assert basic_pitch.harmonic_shifts() == [-36, 0, 36, 57, 72, 84, 93, 101]


@needs_wheel
@needs_gpus()
def test_posteriorgrams_on_cuda_match_onnxruntime(net: basic_pitch.BasicPitchNet) -> None:
    gpu = copy.deepcopy(net).to("cuda")  # the module's CPU network stays
    assert torch.backends.cudnn.allow_tf32, "the default this test is about: TF32 convolutions allowed"
    with torch.no_grad():
        out = gpu(_signals().to("cuda"))
    assert torch.backends.cudnn.allow_tf32, "the network's float32 setting does not leak out"
    for name in net.LAYERS:
        worst = float(np.abs(out[name].cpu().numpy() - REFERENCES[name]).max())
        print(f"basic-pitch on CUDA vs onnxruntime, {name}: max abs {worst:.1e}")
        # The network turns cuDNN's TF32 off (with it, up to 5e-2 on an H200): float32 up to summation order.
        assert worst <= 1e-4, (name, worst)

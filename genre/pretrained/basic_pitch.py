"""Spotify's basic-pitch polyphonic transcription network (Bittner et al. 2022, "A lightweight
instrument-agnostic model for polyphonic note transcription and multipitch estimation", ICASSP; the
"nmp" model of the ``basic-pitch`` 0.4.0 wheel, Apache-2.0) in PyTorch, with the weights of the
wheel's ONNX file read by :mod:`genre.pretrained.onnx_file` (neither onnx nor onnxruntime needed).

The network reads one window of 43844 samples at 22050 Hz and returns, for 172 frames (hop 256),
posteriorgrams of ``note`` and ``onset`` (88 piano keys, MIDI 21-108) and ``contour`` (264 bins, a
third of a semitone each, from 27.5 Hz). Its stages follow the ONNX graph (tf2onnx of the original
Keras model), in the same order of operations:

1. constant-Q transform (nnAudio's CQT2010v2, as the graph has it frozen): for each of 9 octaves,
   highest first, a reflect-padded strided convolution with 36 complex kernels, then a low-pass
   convolution with stride 2 that halves the sample rate for the next octave; the 324 bins, lowest
   first, keep the top 309, each scaled by the square root of its kernel length, magnitude;
2. normalised log: ``10 log10(|CQT|^2 + 1e-10)`` mapped to [0, 1] by the window's own minimum and
   range (0 where the range is 0, e.g. silence), then the one-channel batch norm (frozen: scale, shift);
3. harmonic stacking: the map shifted by 12 x 3 x log2(h) bins for h = 0.5, 1, ..., 7, first 264 bins;
4. three convolutional heads: contour (two convs), note (from the contour, two convs), onset (from the
   stack, with the note posteriorgram concatenated). Batch norms are folded into the convs in the file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genre.pretrained.onnx_file import OnnxModel, OnnxNode

SAMPLE_RATE = 22050
WINDOW_SAMPLES = 43844  # 2 s less one hop: what the graph's input is fixed to
HOP = 256
FRAMES = WINDOW_SAMPLES // HOP + 1  # 172
OCTAVES, BINS_PER_OCTAVE, CQT_BINS = 9, 36, 309
KERNEL = 256  # taps of each CQT kernel and of the low-pass filter
CONTOUR_BINS, NOTE_BINS = 264, 88
HARMONICS = (0.5, 1, 2, 3, 4, 5, 6, 7)
BATCH_NORM_LAYER = "batch_normalization"
INSTALL = "pip install --no-deps basic-pitch==0.4.0"
ONNX_IN_WHEEL = ("saved_models", "icassp_2022", "nmp.onnx")
# The heads' convs: attribute name -> (the Keras layer the file's node is named after, padding).
_HEADS: dict[str, tuple[str, tuple[int, int]]] = {
    "contour_features": ("re_lu_1", (1, 19)),
    "contour_output": ("contours-reduced", (2, 2)),
    "note_features": ("re_lu_2", (3, 2)),
    "note_output": ("conv2d_3", (3, 1)),
    "onset_features": ("re_lu_3", (2, 1)),
    "onset_output": ("conv2d_5", (1, 1)),
}


def harmonic_shifts(bins_per_semitone: int = 3) -> list[int]:
    """How many CQT bins each harmonic of :data:`HARMONICS` lies above the fundamental."""
    return [round(12 * bins_per_semitone * math.log2(h)) for h in HARMONICS]


class BasicPitchNet(nn.Module):
    """basic-pitch's nmp network. ``forward(audio)`` on ``(windows, 43844)`` float samples returns
    ``note`` and ``onset`` ``(windows, 172, 88)`` and ``contour`` ``(windows, 172, 264)`` (posteriors in
    [0, 1], time-major as the original returns them)."""

    LAYERS: ClassVar[dict[str, int]] = {"note": NOTE_BINS, "onset": NOTE_BINS, "contour": CONTOUR_BINS}
    cqt_kernels: Tensor
    cqt_bias: Tensor
    lowpass: Tensor
    lowpass_bias: Tensor
    cqt_scale: Tensor
    input_norm: Tensor

    def __init__(self) -> None:
        super().__init__()
        # Real and imaginary CQT kernels stacked as one conv's 72 output channels; the graph negates the
        # imaginary part, which the magnitude does not see (negation is exact), so it is not repeated.
        self.register_buffer("cqt_kernels", torch.zeros(2 * BINS_PER_OCTAVE, 1, KERNEL))
        self.register_buffer("cqt_bias", torch.zeros(2 * BINS_PER_OCTAVE))
        self.register_buffer("lowpass", torch.zeros(1, 1, KERNEL))
        self.register_buffer("lowpass_bias", torch.zeros(1))
        self.register_buffer("cqt_scale", torch.zeros(CQT_BINS))
        self.register_buffer("input_norm", torch.tensor([1.0, 0.0]))  # the frozen batch norm: scale, shift
        self.contour_features = nn.Conv2d(len(HARMONICS), 8, (3, 39), padding=_HEADS["contour_features"][1])
        self.contour_output = nn.Conv2d(8, 1, 5, padding=_HEADS["contour_output"][1])
        self.note_features = nn.Conv2d(1, 32, 7, stride=(1, 3), padding=_HEADS["note_features"][1])
        self.note_output = nn.Conv2d(32, 1, (7, 3), padding=_HEADS["note_output"][1])
        self.onset_features = nn.Conv2d(len(HARMONICS), 32, 5, stride=(1, 3), padding=_HEADS["onset_features"][1])
        self.onset_output = nn.Conv2d(33, 1, 3, padding=_HEADS["onset_output"][1])

    def cqt(self, audio: Tensor) -> Tensor:
        """The CQT magnitude of ``audio`` ``(windows, samples)``: ``(windows, 309 bins, frames)``."""
        octave = audio.unsqueeze(1)
        per_octave = []
        for k in range(OCTAVES):
            padded = F.pad(octave, (KERNEL // 2, KERNEL // 2), mode="reflect")
            per_octave.append(F.conv1d(padded, self.cqt_kernels, self.cqt_bias, stride=HOP >> k))
            if k < OCTAVES - 1:  # half the rate for the next (lower) octave
                octave = F.conv1d(F.pad(octave, (KERNEL // 2 - 1,) * 2), self.lowpass, self.lowpass_bias, stride=2)
        # (windows, 72, frames) each -> (windows, 36 bins, 2, frames), the lowest octave first
        parts = [p.reshape(p.shape[0], 2, BINS_PER_OCTAVE, -1).transpose(1, 2) for p in reversed(per_octave)]
        complex_bins = torch.cat(parts, dim=1)[:, -CQT_BINS:] * self.cqt_scale[None, :, None, None]
        return (complex_bins * complex_bins).sum(dim=2).sqrt()

    def normalized_log(self, magnitude: Tensor) -> Tensor:
        """Per window: dB of the power mapped to [0, 1] by its minimum and range, then the batch norm."""
        db = torch.log(magnitude * magnitude + 1e-10) * (1 / math.log(10)) * 10
        offset = db - db.amin(dim=(1, 2), keepdim=True)
        top = offset.amax(dim=(1, 2), keepdim=True)
        normalized = torch.where(top == 0, torch.zeros_like(offset), offset / top)  # TF's divide_no_nan
        return normalized * self.input_norm[0] + self.input_norm[1]

    def forward(self, audio: Tensor) -> dict[str, Tensor]:
        """The three posteriorgrams of ``audio`` ``(windows, 43844)``."""
        if audio.dim() != 2 or audio.shape[1] != WINDOW_SAMPLES:
            raise ValueError(
                f"audio: expected (windows, {WINDOW_SAMPLES}) samples at 22050 Hz, got {list(audio.shape)}"
            )
        # In float32 proper: cuDNN's TF32 convolutions (its default on Ampere and later) moved the
        # posteriors by up to 5e-2 on an H200 (the CQT's 256-tap kernels on raw audio), enough to move notes.
        cudnn = torch.backends.cudnn
        with cudnn.flags(
            enabled=cudnn.enabled, benchmark=cudnn.benchmark, deterministic=cudnn.deterministic, allow_tf32=False
        ):
            return self._posteriorgrams(audio)

    def _posteriorgrams(self, audio: Tensor) -> dict[str, Tensor]:
        spectrum = self.normalized_log(self.cqt(audio)).transpose(1, 2)  # (windows, frames, bins)
        stacked = []
        for shift in harmonic_shifts():
            if shift >= 0:
                stacked.append(F.pad(spectrum[..., shift:], (0, shift)))
            else:
                stacked.append(F.pad(spectrum[..., :shift], (-shift, 0)))
        harmonics = torch.stack(stacked, dim=1)[..., :CONTOUR_BINS]  # (windows, 8, frames, 264)
        contour = torch.sigmoid(self.contour_output(F.relu(self.contour_features(harmonics))))
        note = torch.sigmoid(self.note_output(F.relu(self.note_features(contour))))
        onset_features = F.relu(self.onset_features(harmonics))
        onset = torch.sigmoid(self.onset_output(torch.cat([note, onset_features], dim=1)))
        return {"note": note[:, 0], "onset": onset[:, 0], "contour": contour[:, 0]}

    def load_onnx(self, model: OnnxModel) -> None:
        """Copy the weights of basic-pitch's ``nmp.onnx``, found by the graph's structure and layer names."""
        weights = _GraphWeights(model)
        real, imaginary, lowpass, lowpass_bias, bias = weights.cqt_kernels()
        with torch.no_grad():
            self.cqt_kernels.copy_(torch.cat([real, imaginary]).reshape(-1, 1, KERNEL))
            self.cqt_bias.copy_(torch.cat([bias, bias]))
            self.lowpass.copy_(lowpass.reshape(1, 1, KERNEL))
            self.lowpass_bias.copy_(lowpass_bias)
            self.cqt_scale.copy_(weights.cqt_scale())
            self.input_norm.copy_(weights.input_norm())
            for attribute, (layer, padding) in _HEADS.items():
                conv = getattr(self, attribute)
                assert isinstance(conv, nn.Conv2d) and conv.bias is not None
                weight, conv_bias = weights.conv(layer, conv, padding)
                conv.weight.copy_(weight)
                conv.bias.copy_(conv_bias)
        weights.check_all_used()


def _layer(node: OnnxNode) -> str:
    """The Keras layer a tf2onnx node comes from: ``model_1/<layer>/...`` in the first of its names."""
    parts = node.name.split(";")[0].split("/")
    return parts[1] if len(parts) > 2 and parts[0].startswith("model") else ""


class _GraphWeights:
    """Picks the network's weights from the graph, checking shapes and attributes, remembering the used."""

    def __init__(self, model: OnnxModel) -> None:
        self.model = model
        self.used: set[str] = set()

    def take(self, name: str, shape: tuple[int, ...]) -> Tensor:
        array = self.model.initializers.get(name)
        if array is None or array.shape != shape or array.dtype != np.float32:
            found = None if array is None else (array.shape, str(array.dtype))
            raise ValueError(f"{self.model.path}: initializer {name!r} should be float32 {shape}, is {found}")
        self.used.add(name)
        return torch.from_numpy(array.copy())

    def cqt_kernels(self) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Real and imaginary kernels (36, 256), the low-pass filter (256) and bias, the kernels' bias."""
        convs = [n for n in self.model.nodes if n.op_type == "Conv" and _layer(n).startswith("cq_t")]
        real, imaginary, lowpass = set(), set(), set()
        for node in convs:
            if self.model.initializers[node.inputs[1]].shape[0] == 1:
                lowpass.add(node.inputs[1:])
            elif any(c.op_type == "Neg" for c in self.model.consumers(node.outputs[0])):
                imaginary.add(node.inputs[1:])
            else:
                real.add(node.inputs[1:])
        counts = (len(convs), len(real), len(imaginary), len(lowpass))
        if counts != (3 * OCTAVES - 1, 1, 1, 1) or next(iter(real))[1] != next(iter(imaginary))[1]:
            raise ValueError(f"{self.model.path}: not basic-pitch's CQT (convs, kernels: {counts})")
        (real_kernel, bias), (imaginary_kernel, _), (lowpass_kernel, lowpass_bias) = (
            next(iter(s)) for s in (real, imaginary, lowpass)
        )
        octave = (BINS_PER_OCTAVE, 1, 1, KERNEL)
        return (
            self.take(real_kernel, octave).reshape(BINS_PER_OCTAVE, KERNEL),
            self.take(imaginary_kernel, octave).reshape(BINS_PER_OCTAVE, KERNEL),
            self.take(lowpass_kernel, (1, 1, 1, KERNEL)).reshape(KERNEL),
            self.take(lowpass_bias, (1,)),
            self.take(bias, (BINS_PER_OCTAVE,)),
        )

    def _constant_of(self, op_type: str, layer: str, shape: tuple[int, ...]) -> Tensor:
        nodes = [n for n in self.model.nodes if n.op_type == op_type and _layer(n) == layer]
        names = [i for n in nodes for i in n.inputs if i in self.model.initializers]
        if len(names) != 1:
            raise ValueError(f"{self.model.path}: expected one {op_type} constant in {layer}, found {names}")
        return self.take(names[0], shape)

    def cqt_scale(self) -> Tensor:
        """The square roots of the kernel lengths that scale each of the 309 bins."""
        return self._constant_of("Mul", "cq_t2010v2_1", (CQT_BINS, 1, 1)).reshape(CQT_BINS)

    def input_norm(self) -> Tensor:
        """The frozen one-channel batch norm after the normalised log, as (scale, shift)."""
        scale = self._constant_of("Mul", BATCH_NORM_LAYER, (1,))
        return torch.cat([scale, self._constant_of("Add", BATCH_NORM_LAYER, (1,))])

    def conv(self, layer: str, conv: nn.Conv2d, padding: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """Weight and bias of the head conv of Keras layer ``layer``, checked against ``conv``."""
        nodes = [n for n in self.model.nodes if n.op_type == "Conv" and _layer(n) == layer]
        if len(nodes) != 1:
            raise ValueError(f"{self.model.path}: expected one Conv of layer {layer}, found {len(nodes)}")
        node = nodes[0]
        expected = {
            "strides": tuple(conv.stride),
            "pads": (*padding, *padding),
            "kernel_shape": tuple(conv.kernel_size),
            "group": 1,
        }
        got = {key: node.attributes.get(key, 1 if key == "group" else None) for key in expected}
        if got != expected:
            raise ValueError(f"{self.model.path}: Conv of {layer} has {got}, the network expects {expected}")
        weight = self.take(node.inputs[1], tuple(conv.weight.shape))
        return weight, self.take(node.inputs[2], (conv.out_channels,))

    def check_all_used(self) -> None:
        """Every float initializer of more than one value is a weight the network must have used."""
        unused = sorted(
            name
            for name, array in self.model.initializers.items()
            if array.dtype == np.float32 and array.size > 1 and name not in self.used
        )
        if unused:
            raise ValueError(f"{self.model.path}: weights the network did not use: {unused}")


def onnx_path() -> Path:
    """``nmp.onnx`` of the installed ``basic-pitch`` wheel (located, never imported: it imports
    TensorFlow); a one-line ValueError saying how to install it otherwise."""
    spec = importlib.util.find_spec("basic_pitch")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    path = Path(locations[0]).joinpath(*ONNX_IN_WHEEL) if locations else None
    if path is None or not path.is_file():
        raise ValueError(
            f"model: the basic-pitch weights are not installed (no basic_pitch/{'/'.join(ONNX_IN_WHEEL)}). "
            f"Install them with `{INSTALL}`"
        )
    return path


def onnx_fingerprint(path: str | os.PathLike[str] | None = None) -> str:
    """A short hash of the ONNX file: changes when the weights do."""
    return hashlib.sha256(Path(path or onnx_path()).read_bytes()).hexdigest()[:16]


def load_network(path: str | os.PathLike[str] | None = None) -> BasicPitchNet:
    """The network with the weights of ``path`` (default: the installed wheel's), in eval mode."""
    net = BasicPitchNet()
    net.load_onnx(OnnxModel(path or onnx_path()))
    return net.eval()

"""The musicnn and VGG music-tagging networks of Pons & Serra 2019 ("musicnn: pre-trained convolutional
neural networks for music audio tagging", ISMIR LBD), in PyTorch, with weights from their TF checkpoints.

Both read a 3-s patch of log-mel spectrogram, ``(patches, 187 frames, 96 bands)``, time-major as the
original's TensorFlow graph did, and return every layer the original's ``extractor`` exposes. The
layer structure, padding and order of operations follow the original ``musicnn/models.py`` exactly;
TF's batch normalisation uses eps = 1e-3. Weights are mapped by the checkpoint's own variable names
(TF1 numbers unnamed layers in creation order: ``conv2d``, ``conv2d_1``, ...); every model tensor of
the checkpoint must be used exactly once, so a checkpoint of another shape fails loudly.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genre.pretrained.tf_checkpoint import TFCheckpoint

N_MELS = 96
PATCH_FRAMES = 187
TF_BN_EPS = 1e-3
# Checkpoint entries that are optimizer state, not model weights.
_OPTIMIZER_SUFFIXES = ("/Adam", "/Adam_1")
_OPTIMIZER_NAMES = ("beta1_power", "beta2_power")


def model_tensor_names(checkpoint: TFCheckpoint) -> list[str]:
    """The checkpoint's model weights: every entry except Adam's slots and its beta powers."""
    return [
        name for name in checkpoint.entries if not name.endswith(_OPTIMIZER_SUFFIXES) and name not in _OPTIMIZER_NAMES
    ]


def _bn(channels: int) -> nn.Module:
    return nn.BatchNorm1d(channels, eps=TF_BN_EPS) if channels else nn.Identity()


class _WeightMap:
    """Copies named checkpoint tensors into torch parameters, remembering which were used."""

    def __init__(self, checkpoint: TFCheckpoint) -> None:
        self.checkpoint = checkpoint
        self.used: list[str] = []

    def take(self, name: str) -> Tensor:
        if name in self.used:
            raise ValueError(f"checkpoint tensor {name!r} mapped twice")
        self.used.append(name)
        return torch.from_numpy(np.ascontiguousarray(self.checkpoint.read(name)))

    def conv2d(self, conv: nn.Conv2d, name: str) -> None:
        # TF kernels are (height, width, in, out); torch's are (out, in, height, width).
        conv.weight.data.copy_(self.take(f"{name}/kernel").permute(3, 2, 0, 1))
        assert conv.bias is not None
        conv.bias.data.copy_(self.take(f"{name}/bias"))

    def conv_over_time(self, conv: nn.Conv1d, name: str) -> None:
        # A TF conv2d of kernel (7, C) over a (time, C, 1) image is a conv1d over time with C channels.
        conv.weight.data.copy_(self.take(f"{name}/kernel")[:, :, 0, :].permute(2, 1, 0))
        assert conv.bias is not None
        conv.bias.data.copy_(self.take(f"{name}/bias"))

    def dense(self, linear: nn.Linear, name: str) -> None:
        linear.weight.data.copy_(self.take(f"{name}/kernel").T)
        linear.bias.data.copy_(self.take(f"{name}/bias"))

    def batch_norm(self, bn: nn.Module, name: str) -> None:
        assert isinstance(bn, nn.BatchNorm1d)  # what _bn builds
        bn.weight.data.copy_(self.take(f"{name}/gamma"))
        bn.bias.data.copy_(self.take(f"{name}/beta"))
        assert bn.running_mean is not None and bn.running_var is not None
        bn.running_mean.copy_(self.take(f"{name}/moving_mean"))
        bn.running_var.copy_(self.take(f"{name}/moving_variance"))

    def check_all_used(self) -> None:
        unused = sorted(set(model_tensor_names(self.checkpoint)) - set(self.used))
        if unused:
            raise ValueError(f"checkpoint {self.checkpoint.prefix}: tensors not used by the model: {unused}")


def _bn_name(index: int) -> str:
    return "batch_normalization" if index == 0 else f"batch_normalization_{index}"


def _conv_name(index: int) -> str:
    return "conv2d" if index == 0 else f"conv2d_{index}"


def _batch_norm_2d(x: Tensor, bn: nn.Module) -> Tensor:
    """A TF channels-last BN of a (B, C, H, W) tensor: normalise each channel over B, H, W."""
    assert isinstance(bn, nn.BatchNorm1d)
    batch, channels, height, width = x.shape
    return bn(x.reshape(batch, channels, height * width)).reshape(batch, channels, height, width)


def _band_max(x: Tensor, bn: nn.Module) -> Tensor:
    """``max over bands (dim 3) of bn(relu(x))`` for a front-end conv output ``x`` (B, C, time, bands).

    With frozen statistics the batch norm is a per-channel affine map and ReLU is monotone, so the
    maximum over the bands is the map of the largest band where a channel's scale is >= 0, else of the
    smallest: one min/max pass over the big tensor instead of three element-wise passes (ReLU, batch
    norm, max), and the values are the same. Batch statistics (training mode) need the full tensor.
    """
    assert isinstance(bn, nn.BatchNorm1d)
    if bn.training or bn.running_var is None:
        return _batch_norm_2d(F.relu(x), bn).amax(dim=3)
    if x.requires_grad:  # aminmax has no derivative before torch 2.14 (a GPU image's 2.11): two passes
        low, high = x.amin(dim=3), x.amax(dim=3)
    else:
        low, high = torch.aminmax(x, dim=3)
    increasing = bn.weight >= 0 if bn.weight is not None else torch.ones_like(bn.running_var, dtype=torch.bool)
    return bn(F.relu(torch.where(increasing[None, :, None], high, low)))


class MusicnnNet(nn.Module):
    """musicnn: timbral and temporal front-end, dense-residual 1-D mid-end, pooled dense back-end.

    ``forward(x)`` on log-mel patches ``(patches, frames, 96)`` returns the original's layers:
    ``timbral`` (408 x frames), ``temporal`` (153 x frames), ``cnn1``/``cnn2``/``cnn3`` (64 x frames
    each) as ``(patches, channels, frames)``, and ``max_pool``/``mean_pool`` (753), ``penultimate``
    (200), ``logits`` and ``taggram`` (sigmoid of the logits, 50 tags) as ``(patches, dims)``.
    """

    FRAME_LAYERS: ClassVar[dict[str, int]] = {"timbral": 408, "temporal": 153, "cnn1": 64, "cnn2": 64, "cnn3": 64}
    PATCH_LAYERS: ClassVar[dict[str, int]] = {
        "max_pool": 753,
        "mean_pool": 753,
        "penultimate": 200,
        "logits": 50,
        "taggram": 50,
    }
    # The network's blocks in input-to-output order (fine-tuning freezes the first ones), and the last
    # block each layer needs: the blocks after it do not affect that layer.
    BLOCKS: ClassVar[tuple[str, ...]] = ("input", "frontend", "cnn1", "cnn2", "cnn3", "backend", "output")
    LAYER_BLOCK: ClassVar[dict[str, str]] = {
        "timbral": "frontend",
        "temporal": "frontend",
        "cnn1": "cnn1",
        "cnn2": "cnn2",
        "cnn3": "cnn3",
        "max_pool": "cnn3",
        "mean_pool": "cnn3",
        "penultimate": "backend",
        "logits": "output",
        "taggram": "output",
    }

    def __init__(self, n_tags: int = 50, midend_filters: int = 64, backend_units: int = 200) -> None:
        super().__init__()
        timbral, temporal = int(1.6 * 128), int(1.6 * 32)
        self.input_bn = _bn(1)
        # Timbral filters span 40 % and 70 % of the bands; temporal ones 128, 64 and 32 frames of one band.
        self.timbral = nn.ModuleList([nn.Conv2d(1, timbral, (7, int(f * N_MELS))) for f in (0.4, 0.7)])
        self.timbral_bn = nn.ModuleList([_bn(timbral) for _ in range(2)])
        self.temporal = nn.ModuleList([nn.Conv2d(1, temporal, (k, 1)) for k in (128, 64, 32)])
        self.temporal_bn = nn.ModuleList([_bn(temporal) for _ in range(3)])
        frontend = 2 * timbral + 3 * temporal
        self.midend = nn.ModuleList(
            [
                nn.Conv1d(frontend, midend_filters, 7),
                nn.Conv1d(midend_filters, midend_filters, 7),
                nn.Conv1d(midend_filters, midend_filters, 7),
            ]
        )
        self.midend_bn = nn.ModuleList([_bn(midend_filters) for _ in range(3)])
        pooled = frontend + 3 * midend_filters
        self.pool_bn = _bn(2 * pooled)
        self.dense = nn.Linear(2 * pooled, backend_units)
        self.dense_bn = _bn(backend_units)
        self.output = nn.Linear(backend_units, n_tags)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """All layers of log-mel patches ``x`` of shape ``(patches, frames, 96)``."""
        image = _batch_norm_2d(x.unsqueeze(1), self.input_bn)  # (B, 1, time, freq)
        padded = F.pad(image, (0, 0, 3, 3))
        timbral = [_band_max(conv(padded), bn) for conv, bn in zip(self.timbral, self.timbral_bn)]
        temporal = []
        for conv, bn in zip(self.temporal, self.temporal_bn):
            assert isinstance(conv, nn.Conv2d)
            k = conv.kernel_size[0]
            # TF's "same" padding puts the extra frame of an even kernel after the input.
            same = F.pad(image, (0, 0, (k - 1) // 2, k // 2))
            temporal.append(_band_max(conv(same), bn))
        frontend = torch.cat(timbral + temporal, dim=1)  # (B, 561, time)
        mid = [frontend]
        for i, (conv, bn) in enumerate(zip(self.midend, self.midend_bn)):
            out = bn(F.relu(conv(F.pad(mid[-1], (3, 3)))))
            mid.append(out if i == 0 else out + mid[-1])
        features = torch.cat(mid, dim=1)  # (B, 753, time)
        max_pool, mean_pool = features.amax(dim=2), features.mean(dim=2)
        # TF concatenates (max, mean) on a trailing axis and flattens: the values interleave.
        pooled = torch.stack([max_pool, mean_pool], dim=2).flatten(1)
        penultimate = self.dense_bn(F.relu(self.dense(self.dropout(self.pool_bn(pooled)))))
        logits = self.output(self.dropout(penultimate))
        return {
            "timbral": torch.cat(timbral, dim=1),
            "temporal": torch.cat(temporal, dim=1),
            "cnn1": mid[1],
            "cnn2": mid[2],
            "cnn3": mid[3],
            "max_pool": max_pool,
            "mean_pool": mean_pool,
            "penultimate": penultimate,
            "logits": logits,
            "taggram": torch.sigmoid(logits),
        }

    def block(self, name: str) -> list[nn.Module]:
        """The modules of block ``name`` (one of :attr:`BLOCKS`)."""
        midend = {f"cnn{i + 1}": [self.midend[i], self.midend_bn[i]] for i in range(3)}
        blocks: dict[str, list[nn.Module]] = {
            "input": [self.input_bn],
            "frontend": [self.timbral, self.timbral_bn, self.temporal, self.temporal_bn],
            **midend,
            "backend": [self.pool_bn, self.dense, self.dense_bn],
            "output": [self.output],
        }
        return blocks[name]

    def load_tf(self, checkpoint: TFCheckpoint) -> None:
        """Copy the weights of a musicnn checkpoint (TF1 names in the original's creation order)."""
        weights = _WeightMap(checkpoint)
        weights.batch_norm(self.input_bn, _bn_name(0))
        convs = list(self.timbral) + list(self.temporal)
        bns = list(self.timbral_bn) + list(self.temporal_bn)
        for i, (conv, bn) in enumerate(zip(convs, bns)):
            assert isinstance(conv, nn.Conv2d)
            weights.conv2d(conv, _conv_name(i))
            weights.batch_norm(bn, _bn_name(i + 1))
        for j, (conv1d, bn) in enumerate(zip(self.midend, self.midend_bn)):
            assert isinstance(conv1d, nn.Conv1d)
            weights.conv_over_time(conv1d, _conv_name(len(convs) + j))
            weights.batch_norm(bn, _bn_name(len(convs) + j + 1))
        weights.batch_norm(self.pool_bn, _bn_name(9))
        weights.dense(self.dense, "dense")
        weights.batch_norm(self.dense_bn, _bn_name(10))
        weights.dense(self.output, "dense_1")
        weights.check_all_used()


class VGGNet(nn.Module):
    """The VGG-like baseline of musicnn: five 3x3 conv blocks (128 filters) with max-pooling, dense output.

    ``forward(x)`` on ``(patches, 187, 96)`` returns ``pool1`` ... ``pool4`` in TF's channels-last
    layout ``(patches, time, freq, 128)``, ``pool5`` (256: the (2, 1, 128) map flattened in TF's
    order, what the output layer reads), ``logits`` and ``taggram`` (50 tags).
    """

    PATCH_LAYERS: ClassVar[dict[str, int]] = {"pool5": 256, "logits": 50, "taggram": 50}
    FRAME_LAYERS: ClassVar[dict[str, int]] = {}
    BLOCKS: ClassVar[tuple[str, ...]] = ("input", "conv1", "conv2", "conv3", "conv4", "conv5", "output")
    LAYER_BLOCK: ClassVar[dict[str, str]] = {"pool5": "conv5", "logits": "output", "taggram": "output"}
    _POOLS = (((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4)))

    def __init__(self, n_tags: int = 50, filters: int = 128) -> None:
        super().__init__()
        self.input_bn = _bn(1)
        self.convs = nn.ModuleList([nn.Conv2d(1 if i == 0 else filters, filters, 3, padding=1) for i in range(5)])
        self.bns = nn.ModuleList([_bn(filters) for _ in range(5)])
        self.pools = nn.ModuleList([nn.MaxPool2d(kernel, stride) for kernel, stride in self._POOLS])
        self.dropout, self.output_dropout = nn.Dropout(0.25), nn.Dropout(0.5)
        self.output = nn.Linear(2 * 1 * filters, n_tags)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """All layers of log-mel patches ``x`` of shape ``(patches, 187, 96)``."""
        out = _batch_norm_2d(x.unsqueeze(1), self.input_bn)
        layers: dict[str, Tensor] = {}
        for i, (conv, bn, pool) in enumerate(zip(self.convs, self.bns, self.pools)):
            if i:
                out = self.dropout(out)
            out = pool(_batch_norm_2d(F.relu(conv(out)), bn))
            layers[f"pool{i + 1}"] = out.permute(0, 2, 3, 1)
        layers["pool5"] = layers["pool5"].flatten(1)
        logits = self.output(self.output_dropout(layers["pool5"]))
        return {**layers, "logits": logits, "taggram": torch.sigmoid(logits)}

    def block(self, name: str) -> list[nn.Module]:
        """The modules of block ``name`` (one of :attr:`BLOCKS`)."""
        if name == "input":
            return [self.input_bn]
        if name == "output":
            return [self.output]
        index = int(name.removeprefix("conv")) - 1
        return [self.convs[index], self.bns[index]]

    def load_tf(self, checkpoint: TFCheckpoint) -> None:
        """Copy the weights of a VGG checkpoint (convs named ``1CNN`` ... ``5CNN``)."""
        weights = _WeightMap(checkpoint)
        weights.batch_norm(self.input_bn, _bn_name(0))
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            assert isinstance(conv, nn.Conv2d)
            weights.conv2d(conv, f"{i + 1}CNN")
            weights.batch_norm(bn, _bn_name(i + 1))
        weights.dense(self.output, "dense")
        weights.check_all_used()

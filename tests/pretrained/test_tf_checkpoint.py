"""Our TensorFlow checkpoint reader: a checkpoint written here in the bundle format, and the musicnn wheel's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genre.pretrained.musicnn import model_tensor_names
from genre.pretrained.tf_checkpoint import CheckpointFormatError, TFCheckpoint
from helpers.tf_bundle import write_bundle


def _known_tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {
        "conv2d/kernel": rng.standard_normal((7, 38, 1, 4)).astype(np.float32),
        "conv2d/bias": rng.standard_normal(4).astype(np.float32),
        "conv2d_1/kernel": rng.standard_normal((3, 3, 2, 2)).astype(np.float64),
        "global_step": np.array(123456789012, dtype=np.int64),
        "counts": np.arange(-5, 7, dtype=np.int32).reshape(3, 4),
        "half": rng.standard_normal((5,)).astype(np.float16),
        "mask": np.array([[True, False, True]]),
        "bytes_u8": np.arange(250, 256, dtype=np.uint8),
        "small_i16": np.array([-32768, 0, 32767], dtype=np.int16),
        "empty": np.zeros((0, 3), dtype=np.float32),
    }


@pytest.mark.parametrize("block_entries,restart_interval", [(3, 2), (100, 16), (1, 1)])
def test_reads_back_what_a_bundle_holds(tmp_path, block_entries, restart_interval):
    tensors = _known_tensors()
    prefix = str(tmp_path / "model.ckpt")
    write_bundle(prefix, tensors, block_entries=block_entries, restart_interval=restart_interval)
    checkpoint = TFCheckpoint(prefix)
    assert sorted(checkpoint.entries) == sorted(tensors)
    for name, expected in tensors.items():
        got = checkpoint.read(name)
        assert got.dtype == expected.dtype and got.shape == expected.shape, name
        np.testing.assert_array_equal(got, expected)


def test_rejects_what_is_not_a_bundle(tmp_path):
    prefix = str(tmp_path / "bad")
    (tmp_path / "bad.index").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointFormatError, match="magic"):
        TFCheckpoint(prefix)
    with pytest.raises(FileNotFoundError):
        TFCheckpoint(str(tmp_path / "missing"))


def test_truncated_data_file_is_an_error(tmp_path):
    prefix = str(tmp_path / "cut")
    write_bundle(prefix, {"w": np.ones((10, 10), dtype=np.float32)})
    data = tmp_path / "cut.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:100])
    with pytest.raises(CheckpointFormatError, match="past the end"):
        TFCheckpoint(prefix).read("w")


# The parameter values of each model (weights, biases, BN scales/shifts and moving statistics).
EXPECTED_VALUES = {"MSD_musicnn": 792_079, "MTT_musicnn": 792_079, "MSD_vgg": 607_030, "MTT_vgg": 607_030}


@pytest.mark.parametrize("model", sorted(EXPECTED_VALUES))
def test_loads_every_wheel_model_using_each_tensor_once(model):
    pytest.importorskip("musicnn", reason="the musicnn wheel is not installed (pip install --no-deps musicnn==0.1.0)")
    from genre.pretrained.weights import checkpoint_prefix, load_network

    checkpoint = TFCheckpoint(checkpoint_prefix(model))
    names = model_tensor_names(checkpoint)
    assert len(names) == (64 if "musicnn" in model else 36)
    net = load_network(model)  # raises if any model tensor is left over or taken twice
    values = sum(t.numel() for t in net.state_dict().values() if t.dtype == torch.float32)
    assert values == EXPECTED_VALUES[model]
    assert values == sum(checkpoint.entries[name].size // 4 for name in names)
    # Spot check: the weights are the checkpoint's, transposed from TF's HWIO / (in, out) layouts.
    first = net.timbral[0].weight if "musicnn" in model else net.convs[0].weight
    kernel = checkpoint.read("conv2d/kernel" if "musicnn" in model else "1CNN/kernel")
    np.testing.assert_array_equal(first.detach().numpy(), kernel.transpose(3, 2, 0, 1))

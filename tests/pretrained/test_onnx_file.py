"""Our ONNX reader on messages encoded here by hand (the wire format of onnx/onnx.proto), and on errors.

The reader's agreement with the ``onnx`` package on a whole real file (basic-pitch's ``nmp.onnx``: 102
initializers and 248 nodes, every value and attribute equal) was checked once in a scratch environment;
in the suite the parity test of basic-pitch covers that file end to end.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from genre.pretrained.onnx_file import OnnxFormatError, OnnxModel, read_tensor
from genre.pretrained.protobuf import ProtobufFormatError, fields


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # int64 fields carry negatives as 64-bit two's complement
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, value: int | bytes) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _tensor(name: str, dims: list[int], data_type: int, *payload: bytes, packed_dims: bool = True) -> bytes:
    dims_bytes = _field(1, b"".join(_varint(d) for d in dims)) if packed_dims else b"".join(_field(1, d) for d in dims)
    return dims_bytes + _field(2, data_type) + _field(8, name.encode()) + b"".join(payload)


def test_tensors_from_raw_data_float_data_and_int64_data() -> None:
    weights = np.arange(6, dtype="<f4").reshape(2, 3) / 7
    name, got = read_tensor(_tensor("w", [2, 3], 1, _field(9, weights.tobytes())))
    assert name == "w" and got.dtype == np.float32 and np.array_equal(got, weights)
    _, floats = read_tensor(_tensor("f", [3], 1, _field(4, struct.pack("<3f", 1.5, -2.0, 0.25)), packed_dims=False))
    np.testing.assert_array_equal(floats, [1.5, -2.0, 0.25])
    _, ints = read_tensor(_tensor("i", [4], 7, _field(7, b"".join(_varint(v) for v in (-3, 0, 2**40, -(2**62))))))
    assert ints.dtype == np.int64 and ints.tolist() == [-3, 0, 2**40, -(2**62)]
    _, scalar = read_tensor(_tensor("s", [], 6, _field(5, _varint(-7))))
    assert scalar.shape == () and int(scalar) == -7


def test_a_model_file_gives_nodes_with_attributes_and_initializers(tmp_path: Path) -> None:
    attribute_ints = _field(1, b"pads") + _field(20, 7) + _field(8, b"".join(_varint(v) for v in (1, -2, 1, 2)))
    attribute_mode = _field(1, b"mode") + _field(20, 3) + _field(4, b"reflect")
    node = b"".join(
        [_field(1, b"x"), _field(1, b"w"), _field(2, b"y"), _field(3, b"model_1/conv/Conv2D"), _field(4, b"Conv")]
        + [_field(5, attribute) for attribute in (attribute_ints, attribute_mode)]
    )
    weights = np.ones((1, 1, 3, 3), dtype="<f4")
    graph = _field(1, node) + _field(5, _tensor("w", [1, 1, 3, 3], 1, _field(9, weights.tobytes())))
    path = tmp_path / "tiny.onnx"
    path.write_bytes(_field(1, 8) + _field(7, graph))  # ir_version, graph
    model = OnnxModel(path)
    (conv,) = model.nodes
    assert (conv.op_type, conv.name, conv.inputs, conv.outputs) == ("Conv", "model_1/conv/Conv2D", ("x", "w"), ("y",))
    assert conv.attributes == {"pads": (1, -2, 1, 2), "mode": b"reflect"}
    assert np.array_equal(model.initializers["w"], weights) and model.consumers("w") == [conv]


def test_damaged_or_unsupported_input_raises_one_named_error(tmp_path: Path) -> None:
    with pytest.raises(ProtobufFormatError, match="truncated varint"):
        fields(b"\x08\x80")
    with pytest.raises(OnnxFormatError, match="external file"):
        read_tensor(_tensor("big", [2], 1, _field(14, 1)))
    with pytest.raises(OnnxFormatError, match="data type 8"):
        read_tensor(_tensor("text", [1], 8, _field(6, b"abc")))
    with pytest.raises(OnnxFormatError, match="2 values for shape"):
        read_tensor(_tensor("short", [3], 1, _field(9, np.zeros(2, dtype="<f4").tobytes())))
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(OnnxFormatError, match="not an ONNX model"):
        OnnxModel(tmp_path / "empty.onnx")

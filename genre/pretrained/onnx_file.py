"""Reading an ONNX model file (``ModelProto``, onnx/onnx.proto) without the ``onnx`` package.

Only what a rebuilt network needs is read: the graph's nodes (operator, name, inputs, outputs and
attributes) and its initializers (the weights and constants, as numpy arrays). The graph is never
executed here: a PyTorch module that mirrors it picks its weights from the nodes it expects and checks
their shapes and attributes, so a file of another architecture fails loudly.

Tensors stored outside the file (``data_location = EXTERNAL``), strings and complex numbers are not
supported and raise :class:`OnnxFormatError` naming the tensor.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genre.pretrained.protobuf import ProtobufFormatError, fields, packed_varints, signed64

# onnx.proto TensorProto.DataType -> numpy (little-endian, as ONNX stores raw_data).
DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),
    2: np.dtype("u1"),
    3: np.dtype("i1"),
    4: np.dtype("<u2"),
    5: np.dtype("<i2"),
    6: np.dtype("<i4"),
    7: np.dtype("<i8"),
    9: np.dtype("?"),
    10: np.dtype("<f2"),
    11: np.dtype("<f8"),
    12: np.dtype("<u4"),
    13: np.dtype("<u8"),
}
# The typed repeated field each dtype falls back to when a tensor has no raw_data.
_FLOAT_DATA, _INT32_DATA, _INT64_DATA, _DOUBLE_DATA, _UINT64_DATA = 4, 5, 7, 10, 11

Attribute = int | float | bytes | tuple[int, ...] | tuple[float, ...] | np.ndarray


class OnnxFormatError(ProtobufFormatError):
    """The file is not an ONNX model this reader understands; the message says what is wrong."""


@dataclass(frozen=True)
class OnnxNode:
    """One operator of the graph."""

    op_type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attributes: dict[str, Attribute] = field(default_factory=dict)


def _fields(message: bytes) -> list[tuple[int, int | bytes]]:
    return fields(message, OnnxFormatError)


def _text(value: int | bytes) -> str:
    if not isinstance(value, bytes):
        raise OnnxFormatError("a string field holds a number")
    return value.decode()


def _floats(values: list[int | bytes]) -> list[float]:
    """A repeated ``float`` field: packed (one bytes run of little-endian floats) or one fixed32 each."""
    out: list[float] = []
    for value in values:
        if isinstance(value, bytes):
            out.extend(np.frombuffer(value, dtype="<f4").tolist())
        else:
            out.append(struct.unpack("<f", struct.pack("<I", value))[0])
    return out


def read_tensor(message: bytes) -> tuple[str, np.ndarray]:
    """A ``TensorProto``: its name and its values as a new numpy array of its dtype and shape."""
    by_number: dict[int, list[int | bytes]] = {}
    for number, value in _fields(message):
        by_number.setdefault(number, []).append(value)
    name = _text(by_number.get(8, [b""])[0])
    if by_number.get(14, [0])[0] == 1:
        raise OnnxFormatError(f"tensor {name!r} is stored in an external file; not supported")
    dims = [signed64(d) for d in packed_varints(by_number.get(1, []))]
    data_type = by_number.get(2, [0])[0]
    if not isinstance(data_type, int) or data_type not in DTYPES:
        raise OnnxFormatError(f"tensor {name!r} has data type {data_type!r}, not a numeric type this reader knows")
    dtype = DTYPES[data_type]
    count = int(np.prod(dims, dtype=np.int64))
    if 9 in by_number:
        raw = by_number[9][0]
        assert isinstance(raw, bytes)
        values = np.frombuffer(raw, dtype=dtype)
    elif data_type == 1:
        values = np.asarray(_floats(by_number.get(_FLOAT_DATA, [])), dtype=dtype)
    elif data_type == 11:
        raw_doubles = b"".join(v if isinstance(v, bytes) else struct.pack("<Q", v) for v in by_number.get(10, []))
        values = np.frombuffer(raw_doubles, dtype=dtype)
    elif data_type in (7, 13):
        numbers = packed_varints(by_number.get(_INT64_DATA if data_type == 7 else _UINT64_DATA, []))
        values = np.asarray([signed64(n) if data_type == 7 else n for n in numbers], dtype=dtype)
    else:  # int32_data carries every narrower integer type, bool, and float16 as its bits
        ints = np.asarray([signed64(n) for n in packed_varints(by_number.get(_INT32_DATA, []))])
        values = ints.astype(np.uint16).view(dtype) if data_type == 10 else ints.astype(dtype)
    if values.size != count:
        raise OnnxFormatError(f"tensor {name!r}: {values.size} values for shape {tuple(dims)}")
    return name, values.reshape(dims).astype(dtype.newbyteorder("="))


def _attribute(message: bytes) -> tuple[str, Attribute]:
    """An ``AttributeProto``: its name and value (one of f, i, s, t, floats, ints)."""
    by_number: dict[int, list[int | bytes]] = {}
    for number, value in _fields(message):
        by_number.setdefault(number, []).append(value)
    name = _text(by_number.get(1, [b""])[0])
    kind = by_number.get(20, [0])[0]
    if kind == 1 and 2 in by_number:  # FLOAT
        return name, _floats(by_number[2])[0]
    if kind == 2:  # INT
        value = by_number.get(3, [0])[0]
        assert isinstance(value, int)
        return name, signed64(value)
    if kind == 3:  # STRING
        value = by_number.get(4, [b""])[0]
        assert isinstance(value, bytes)
        return name, value
    if kind == 4:  # TENSOR
        tensor = by_number[5][0]
        assert isinstance(tensor, bytes)
        return name, read_tensor(tensor)[1]
    if kind == 6:  # FLOATS
        return name, tuple(_floats(by_number.get(7, [])))
    if kind == 7:  # INTS
        return name, tuple(signed64(n) for n in packed_varints(by_number.get(8, [])))
    raise OnnxFormatError(f"attribute {name!r} has type {kind!r}, which this reader does not support")


def _node(message: bytes) -> OnnxNode:
    inputs: list[str] = []
    outputs: list[str] = []
    attributes: dict[str, Attribute] = {}
    name = op_type = ""
    for number, value in _fields(message):
        if number == 1:
            inputs.append(_text(value))
        elif number == 2:
            outputs.append(_text(value))
        elif number == 3:
            name = _text(value)
        elif number == 4:
            op_type = _text(value)
        elif number == 5:
            assert isinstance(value, bytes)
            key, attribute = _attribute(value)
            attributes[key] = attribute
    return OnnxNode(op_type, name, tuple(inputs), tuple(outputs), attributes)


class OnnxModel:
    """An ONNX file opened for reading: ``nodes`` in graph order and ``initializers`` by name."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no ONNX file at {self.path}")
        graphs = [value for number, value in _fields(self.path.read_bytes()) if number == 7]
        if len(graphs) != 1 or not isinstance(graphs[0], bytes):
            raise OnnxFormatError(f"{self.path}: not an ONNX model (no single graph field)")
        self.nodes: list[OnnxNode] = []
        self.initializers: dict[str, np.ndarray] = {}
        for number, value in _fields(graphs[0]):
            if number == 1:
                assert isinstance(value, bytes)
                self.nodes.append(_node(value))
            elif number == 5:
                assert isinstance(value, bytes)
                name, array = read_tensor(value)
                self.initializers[name] = array

    def consumers(self, value: str) -> list[OnnxNode]:
        """The nodes that read graph value ``value``, in graph order."""
        return [node for node in self.nodes if value in node.inputs]

"""A minimal writer of TensorFlow checkpoints (tensor bundles) for testing our reader without TensorFlow.

It writes what TensorFlow's ``BundleWriter`` writes: ``<prefix>.index``, an SSTable in LevelDB's format
(prefix-compressed keys, a restart point every ``restart_interval`` entries, several data blocks
indexed by an index block, an empty metaindex block, the 48-byte footer with the table magic) whose
values are ``BundleEntryProto`` messages, and ``<prefix>.data-00000-of-00001`` with the raw bytes.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

MAGIC = 0xDB4775248B80FB57
DTYPE_CODES = {
    np.dtype("float32"): 1,
    np.dtype("float64"): 2,
    np.dtype("int32"): 3,
    np.dtype("uint8"): 4,
    np.dtype("int16"): 5,
    np.dtype("int8"): 6,
    np.dtype("int64"): 9,
    np.dtype("bool"): 10,
    np.dtype("float16"): 19,
}


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number: int, wire: int, payload: bytes | int) -> bytes:
    tag = varint(number << 3 | wire)
    if wire == 0:
        assert isinstance(payload, int)
        return tag + varint(payload)
    if wire == 5:
        assert isinstance(payload, int)
        return tag + struct.pack("<I", payload)
    assert isinstance(payload, bytes)
    return tag + varint(len(payload)) + payload


def entry_proto(dtype: int, shape: tuple[int, ...], offset: int, size: int) -> bytes:
    shape_proto = b"".join(field(2, 2, field(1, 0, d) if d else b"") for d in shape)
    message = field(1, 0, dtype) + field(2, 2, shape_proto) + field(3, 0, 0)
    if offset:
        message += field(4, 0, offset)
    return message + field(5, 0, size) + field(6, 5, 0x12345678)


def block(entries: list[tuple[bytes, bytes]], restart_interval: int) -> bytes:
    out = bytearray()
    restarts: list[int] = []
    previous = b""
    for i, (key, value) in enumerate(entries):
        shared = 0
        if i % restart_interval == 0:
            restarts.append(len(out))
        else:
            while shared < min(len(key), len(previous)) and key[shared] == previous[shared]:
                shared += 1
        out += varint(shared) + varint(len(key) - shared) + varint(len(value)) + key[shared:] + value
        previous = key
    for restart in restarts or [0]:
        out += struct.pack("<I", restart)
    out += struct.pack("<I", len(restarts or [0]))
    return bytes(out)


def write_bundle(
    prefix: str, tensors: dict[str, np.ndarray], *, block_entries: int = 3, restart_interval: int = 2
) -> None:
    """Write ``tensors`` as a checkpoint at ``prefix`` (several data blocks of ``block_entries`` entries)."""
    data = bytearray()
    records: list[tuple[bytes, bytes]] = [(b"", field(1, 0, 1) + field(3, 2, field(1, 0, 1)))]  # header
    for name in sorted(tensors):
        array = np.array(tensors[name], order="C")  # (ascontiguousarray would make a scalar 1-D)
        raw = array.astype(array.dtype.newbyteorder("<")).tobytes()
        records.append((name.encode(), entry_proto(DTYPE_CODES[array.dtype], array.shape, len(data), len(raw))))
        data += raw
    table = bytearray()
    index: list[tuple[bytes, bytes]] = []
    for start in range(0, len(records), block_entries):
        chunk = records[start : start + block_entries]
        body = block(chunk, restart_interval)
        index.append((chunk[-1][0] + b"\xff", varint(len(table)) + varint(len(body))))
        table += body + b"\x00" + struct.pack("<I", 0)
    meta_offset = len(table)
    meta = block([], restart_interval)
    table += meta + b"\x00" + struct.pack("<I", 0)
    index_offset = len(table)
    index_body = block(index, 1)
    table += index_body + b"\x00" + struct.pack("<I", 0)
    handles = varint(meta_offset) + varint(len(meta)) + varint(index_offset) + varint(len(index_body))
    table += handles + b"\x00" * (40 - len(handles)) + struct.pack("<Q", MAGIC)
    Path(prefix + ".index").write_bytes(bytes(table))
    Path(prefix + ".data-00000-of-00001").write_bytes(bytes(data))

"""Reading TensorFlow checkpoints (the "tensor bundle" format of TF 1.x and 2.x) without TensorFlow.

A checkpoint ``<prefix>`` is two kinds of file:

* ``<prefix>.index``: an SSTable (LevelDB's table format: prefix-compressed keys in blocks, an index
  block, a 48-byte footer) mapping each tensor name to a ``BundleEntryProto`` (dtype, shape, shard,
  offset and size of its bytes); the empty key holds the ``BundleHeaderProto`` (shard count, byte order).
* ``<prefix>.data-<shard>-of-<shards>``: the tensors' raw bytes, back to back.

Only what real checkpoints of dense models use is supported: uncompressed blocks, little-endian
numeric tensors, unpartitioned variables. Anything else raises :class:`CheckpointFormatError` naming it.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genre.pretrained.protobuf import ProtobufFormatError, fields, varint

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_BYTES = 48
BLOCK_TRAILER_BYTES = 5  # compression type (1 byte) + masked CRC32C (4 bytes)

# tensorflow/core/framework/types.proto -> numpy, for the dtypes a checkpoint of numbers may hold.
DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),
    2: np.dtype("<f8"),
    3: np.dtype("<i4"),
    4: np.dtype("u1"),
    5: np.dtype("<i2"),
    6: np.dtype("i1"),
    9: np.dtype("<i8"),
    10: np.dtype("?"),
    17: np.dtype("<u2"),
    19: np.dtype("<f2"),
    22: np.dtype("<u4"),
    23: np.dtype("<u8"),
}
DT_STRING = 7


class CheckpointFormatError(ProtobufFormatError):
    """The files are not a tensor bundle this reader understands; the message says what is wrong."""


@dataclass(frozen=True)
class TensorEntry:
    """Where one tensor's bytes are and what they hold."""

    dtype: int
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int


# --- protobuf wire format (genre.pretrained.protobuf), with this format's error ------------------------


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    return varint(data, pos, CheckpointFormatError)


def _fields(message: bytes) -> list[tuple[int, int | bytes]]:
    """``(field number, value)`` of every field of a serialised message."""
    return fields(message, CheckpointFormatError)


def _shape(message: bytes) -> tuple[int, ...]:
    """A ``TensorShapeProto``: repeated ``dim`` (field 2) each with ``size`` (field 1)."""
    dims = []
    for number, value in _fields(message):
        if number == 3 and value:
            raise CheckpointFormatError("a tensor of unknown rank")
        if number == 2:
            assert isinstance(value, bytes)
            size = dict(_fields(value)).get(1, 0)
            assert isinstance(size, int)
            dims.append(size)
    return tuple(dims)


def _entry(name: str, message: bytes) -> TensorEntry:
    fields: dict[int, int | bytes] = {}
    for number, value in _fields(message):
        if number == 7:
            raise CheckpointFormatError(f"tensor {name!r} is a partitioned variable (slices); not supported")
        fields[number] = value
    shape = fields.get(2, b"")
    assert isinstance(shape, bytes)
    values = [fields.get(n, 0) for n in (1, 3, 4, 5)]
    assert all(isinstance(v, int) for v in values)
    dtype, shard, offset, size = (int(v) for v in values)
    return TensorEntry(dtype=dtype, shape=_shape(shape), shard=shard, offset=offset, size=size)


# --- the SSTable ---------------------------------------------------------------------------------------


def _block(table: bytes, offset: int, size: int) -> list[tuple[bytes, bytes]]:
    """The ``(key, value)`` entries of the block at ``offset`` (keys un-prefix-compressed)."""
    if offset + size + BLOCK_TRAILER_BYTES > len(table):
        raise CheckpointFormatError("a block runs past the end of the index file")
    if table[offset + size] != 0:
        raise CheckpointFormatError(
            f"compressed index block (type {table[offset + size]}); only uncompressed is supported"
        )
    block = table[offset : offset + size]
    n_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 * (n_restarts + 1)
    entries: list[tuple[bytes, bytes]] = []
    key = b""
    pos = 0
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        length, pos = _varint(block, pos)
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        entries.append((key, block[pos : pos + length]))
        pos += length
    return entries


def read_table(data: bytes) -> dict[bytes, bytes]:
    """Every key and value of a LevelDB-format SSTable held in ``data``."""
    if len(data) < FOOTER_BYTES:
        raise CheckpointFormatError("the index file is shorter than an SSTable footer")
    footer = data[-FOOTER_BYTES:]
    if struct.unpack_from("<Q", footer, FOOTER_BYTES - 8)[0] != TABLE_MAGIC:
        raise CheckpointFormatError("not an SSTable (wrong magic number in the footer)")
    _, pos = _varint(footer, 0)  # metaindex offset
    _, pos = _varint(footer, pos)  # metaindex size
    index_offset, pos = _varint(footer, pos)
    index_size, pos = _varint(footer, pos)
    table: dict[bytes, bytes] = {}
    for _, handle in _block(data, index_offset, index_size):
        block_offset, at = _varint(handle, 0)
        block_size, _ = _varint(handle, at)
        table.update(_block(data, block_offset, block_size))
    return table


# --- the bundle ---------------------------------------------------------------------------------------


class TFCheckpoint:
    """A TensorFlow checkpoint opened for reading: its tensor names, dtypes, shapes, and their values.

    ``prefix`` is what TensorFlow calls the checkpoint path: the files are ``<prefix>.index`` and
    ``<prefix>.data-*``. (A prefix may end in a slash: musicnn's are ``MSD_musicnn/`` + ``.index``.)
    """

    def __init__(self, prefix: str | os.PathLike[str]) -> None:
        self.prefix = str(prefix)
        index = Path(self.prefix + ".index")
        if not index.is_file():
            raise FileNotFoundError(f"no checkpoint index at {index}")
        table = read_table(index.read_bytes())
        header = dict(_fields(table.pop(b"", b"")))
        if header.get(2, 0) != 0:
            raise CheckpointFormatError("a big-endian checkpoint; only little-endian is supported")
        shards = header.get(1, 1)
        assert isinstance(shards, int)
        self.num_shards = shards
        self.entries = {key.decode(): _entry(key.decode(), value) for key, value in sorted(table.items())}

    def shard_path(self, shard: int) -> Path:
        """The data file of shard ``shard``."""
        return Path(f"{self.prefix}.data-{shard:05d}-of-{self.num_shards:05d}")

    def read(self, name: str) -> np.ndarray:
        """Tensor ``name`` as a new numpy array of its dtype and shape."""
        entry = self.entries[name]
        if entry.dtype == DT_STRING or entry.dtype not in DTYPES:
            raise CheckpointFormatError(
                f"tensor {name!r} has dtype {entry.dtype}, not a numeric dtype this reader knows"
            )
        dtype = DTYPES[entry.dtype]
        count = int(np.prod(entry.shape, dtype=np.int64))
        if count * dtype.itemsize != entry.size:
            raise CheckpointFormatError(f"tensor {name!r}: {entry.size} bytes for shape {entry.shape} of {dtype}")
        with open(self.shard_path(entry.shard), "rb") as handle:
            handle.seek(entry.offset)
            raw = handle.read(entry.size)
        if len(raw) != entry.size:
            raise CheckpointFormatError(f"tensor {name!r} runs past the end of {self.shard_path(entry.shard)}")
        return np.frombuffer(raw, dtype=dtype).reshape(entry.shape).astype(dtype.newbyteorder("="))

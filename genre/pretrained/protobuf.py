"""The protobuf wire format, decoded just far enough to read the messages of TensorFlow checkpoints and
ONNX files without their libraries: varints and each message's ``(field number, value)`` pairs.

A reader that knows its schema then picks fields by number. Unknown fields cost nothing, which is what
lets a reader of a few fields ignore the rest of a large message.
"""

from __future__ import annotations

import struct


class ProtobufFormatError(ValueError):
    """Bytes that are not a well-formed protobuf message; the message says what is wrong."""


def varint(data: bytes, pos: int, error: type[ValueError] = ProtobufFormatError) -> tuple[int, int]:
    """The unsigned varint at ``pos`` of ``data`` and the position after it; ``error`` if truncated."""
    result = shift = 0
    while True:
        if pos >= len(data):
            raise error("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def signed64(value: int) -> int:
    """An ``int64`` field's value: varints carry negative numbers as their 64-bit two's complement."""
    return value - (1 << 64) if value >= 1 << 63 else value


def fields(message: bytes, error: type[ValueError] = ProtobufFormatError) -> list[tuple[int, int | bytes]]:
    """``(field number, value)`` of every field of a serialised message (ints for varint/fixed, bytes for
    length-delimited); ``error`` (a ValueError subclass of the caller's format) on malformed input."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(message):
        tag, pos = varint(message, pos, error)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = varint(message, pos, error)
            out.append((number, value))
        elif wire == 1:
            if pos + 8 > len(message):
                raise error("truncated fixed64 field")
            out.append((number, struct.unpack_from("<Q", message, pos)[0]))
            pos += 8
        elif wire == 2:
            length, pos = varint(message, pos, error)
            if pos + length > len(message):
                raise error("a length-delimited field runs past the end of its message")
            out.append((number, message[pos : pos + length]))
            pos += length
        elif wire == 5:
            if pos + 4 > len(message):
                raise error("truncated fixed32 field")
            out.append((number, struct.unpack_from("<I", message, pos)[0]))
            pos += 4
        else:
            raise error(f"unsupported protobuf wire type {wire}")
    return out


def packed_varints(values: list[int | bytes]) -> list[int]:
    """A repeated integer field's values, whether the writer packed them (one bytes run) or not."""
    out: list[int] = []
    for value in values:
        if isinstance(value, int):
            out.append(value)
            continue
        pos = 0
        while pos < len(value):
            number, pos = varint(value, pos)
            out.append(number)
    return out

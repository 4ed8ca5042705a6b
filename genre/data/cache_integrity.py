"""What lets a cache be trusted, shared by the audio and the embedding cache: its data file's checksum,
and who may build one.

A cache is trusted by its content, never by its size: same-size damage (a block of zeros from a
failing disk or an interrupted copy, a NaN) is otherwise read as data. The index written with the
cache records the data file's checksum, and every open verifies it before one byte is used. The hash
is xxHash's XXH3-128: not cryptographic (it guards against accidents, not against someone who may
write the cache: such a person can also rewrite the index), but it streams at memory speed, so
verifying costs about one read of the file (bench/cache_checksum.py: XXH3 is several times faster
than BLAKE2b).

Reading a finished cache needs no write access (no lock, no temporary file): a cache prepared ahead
on a read-only mount is reused. Only building needs it, and is then refused with one line.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import xxhash

from genre.core.errors import ConfigError

ALGORITHM = "xxh3_128"
# Bytes read at a time: large enough that the per-call overhead vanishes, small enough to stay in cache.
CHUNK_BYTES = 8 << 20
# What an index written before checksums existed is told apart by (one log line, then a rebuild).
PREDATES_CHECKSUMS = "its index predates checksums (written by an older genre)"

Inspect = Callable[[memoryview], None]


def data_checksum(path: str | os.PathLike[str], inspect: Inspect | None = None) -> str:
    """The hex checksum of the file at ``path``, read once in chunks of ``CHUNK_BYTES``.

    Each chunk is also handed to ``inspect`` (which may raise ``ValueError``), so that a check of the
    values (the embeddings' finite check) costs no second read. Every chunk but the last is full.
    """
    hasher = xxhash.xxh3_128()
    buffer = bytearray(CHUNK_BYTES)
    view = memoryview(buffer)
    with open(path, "rb") as handle:
        while True:
            # A buffered readinto fills the whole buffer unless the file ends first.
            got = handle.readinto(buffer)
            if not got:
                break
            hasher.update(view[:got])
            if inspect is not None:
                inspect(view[:got])
    return hasher.hexdigest()


def checksum_record(path: str | os.PathLike[str], inspect: Inspect | None = None) -> dict[str, str]:
    """The ``checksum`` entry of a cache's index for its data file at ``path``."""
    return {"algorithm": ALGORITHM, "value": data_checksum(path, inspect)}


def verify(path: Path, recorded: Any, inspect: Inspect | None = None) -> str | None:
    """None when the file at ``path`` matches the checksum ``recorded`` in its index (and passes
    ``inspect``); otherwise why not, for the log line that says the cache is rebuilt."""
    if not isinstance(recorded, dict) or recorded.get("algorithm") != ALGORITHM:
        return PREDATES_CHECKSUMS
    try:
        actual = data_checksum(path, inspect)
    except OSError as exc:
        return f"{path.name} cannot be read ({exc.strerror or exc})"
    except ValueError as exc:
        return str(exc)
    if actual != recorded.get("value"):
        return f"{path.name} does not match the checksum in its index (damaged since it was written)"
    return None


def refuse_unwritable(root: Path, final: Path, why: str, build_it: str, instead: str | None = None) -> None:
    """Refuse, with one line naming ``paths.cache_dir``, to build ``final`` in ``root`` when this process
    cannot write there (a read-only mount, someone else's folder). ``why``: why it must be built;
    ``build_it``: how to build it ahead where the folder is writable; ``instead``: another way out."""
    # access(2) answers for this process as the kernel would: a read-only mount stops root too.
    if os.access(root, os.W_OK):
        return
    raise ConfigError(
        "paths.cache_dir",
        f"{final} must be built ({why}) but '{root}' is not writable here",
        f"{build_it} where the cache folder is writable, or point paths.cache_dir (or GENRE_CACHE) at a "
        f"writable folder{f', {instead}' if instead else ''}",
    )

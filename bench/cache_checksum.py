"""What verifying a cache's checksum on every open costs: XXH3 (what genre uses) beside BLAKE2b.

Writes one file of random bytes (``--megabytes``, 200 by default: a 1000-clip, 5-s, 22 kHz audio
cache is 220 MB), reads it once to put it in the page cache, then times a whole verify pass
(genre.data.cache_integrity's chunked read + hash) per hash, ``--repeats`` times each, interleaved so
that a busy machine slows all of them alike. The figures are from the page cache, i.e. the hash's own
cost; a cache that is not in memory adds one read of the file, the same for every hash. The
embedding cache also checks every value is finite (``--finite``: that check alone, on float32 values).

    python bench/cache_checksum.py
    python bench/cache_checksum.py --megabytes 1000 --repeats 5
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import xxhash

from genre.data.cache_integrity import CHUNK_BYTES
from genre.data.embedding_cache import check_values

HASHES: dict[str, Callable[[], object]] = {
    "xxh3_128 (genre)": xxhash.xxh3_128,
    "xxh3_64": xxhash.xxh3_64,
    "blake2b": hashlib.blake2b,
    "sha256": hashlib.sha256,
}


def _pass(path: Path, make: Callable[[], object] | None, inspect: Callable[[memoryview], None] | None) -> float:
    """Seconds for one chunked read of ``path`` through the hash ``make`` makes (and ``inspect``)."""
    buffer = bytearray(CHUNK_BYTES)
    view = memoryview(buffer)
    started = time.perf_counter()
    hasher = make() if make else None
    with open(path, "rb") as handle:
        while got := handle.readinto(buffer):
            if hasher is not None:
                hasher.update(view[:got])  # type: ignore[attr-defined]
            if inspect is not None:
                inspect(view[:got])
    return time.perf_counter() - started


def main() -> None:
    """Print one row per hash: median seconds per verify and GB/s."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data"
        size = args.megabytes * 1_000_000
        # Random float32 values in [-1, 1): finite, so the finite check reads everything too.
        rng = np.random.default_rng(0)
        path.write_bytes(rng.uniform(-1, 1, size // 4).astype("<f4").tobytes())
        runs: dict[str, tuple[Callable[[], object] | None, Callable[[memoryview], None] | None]] = {
            "read only": (None, None),
            **{name: (make, None) for name, make in HASHES.items()},
            "finite check (float32)": (None, check_values),
            "xxh3_128 + finite check (embeddings)": (xxhash.xxh3_128, check_values),
        }
        _pass(path, None, None)  # into the page cache
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, (make, inspect) in runs.items():
                times[name].append(_pass(path, make, inspect))
    print(f"verify pass over a {args.megabytes} MB file (page cache), median of {args.repeats}:")
    print(f"| {'what':<38} | seconds | GB/s |")
    print(f"|{'-' * 40}|---------|------|")
    for name, seconds in times.items():
        median = statistics.median(seconds)
        print(f"| {name:<38} | {median:7.3f} | {size / median / 1e9:4.1f} |")


if __name__ == "__main__":
    main()

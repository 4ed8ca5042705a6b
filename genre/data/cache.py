"""The decode-once audio cache shared by every run and sweep job.

Decoding and resampling (MP3 above all) is the slowest part of the pipeline, so each dataset is
decoded once into ``<cache_root>/audio/<key>/``: ``clips.i16`` holds every clip as a fixed-length
row of int16 samples, ``index.json`` says which file is which row and which files were skipped and
why. The key hashes the clip format and every file's path, size and mtime, so a changed dataset
rebuilds and an unchanged one never does.

Runs read rows (or just a crop of one) with ``os.pread``: nothing is held in memory or mapped, so a
run's memory does not grow with the dataset. Builders take an exclusive lock, write into a temporary
directory and rename it into place, so concurrent sweep jobs end with one intact cache and a killed
build leaves nothing that looks finished.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from genre.data.decode import ClipFormat, DecodeError, decode_clip

log = logging.getLogger(__name__)

CACHE_VERSION = 1
DATA_FILE = "clips.i16"
INDEX_FILE = "index.json"


@dataclass
class BuildStats:
    """What the call that opened a cache did: how many files it decoded (0 when the cache existed)."""

    decoded: int = 0
    skipped: int = 0
    seconds: float = 0.0
    built: bool = False


@dataclass
class AudioCache:
    """A finished cache: read-only access to fixed-length int16 clips by file path."""

    directory: Path
    fmt: ClipFormat
    paths: list[str]
    skipped: dict[str, str]
    stats: BuildStats = field(default_factory=BuildStats)

    def __post_init__(self) -> None:
        self.row_of = {p: i for i, p in enumerate(self.paths)}
        self._fd: int | None = None
        self._fd_pid: int | None = None

    @property
    def clip_samples(self) -> int:
        """Samples per row."""
        return self.fmt.clip_samples

    def __len__(self) -> int:
        return len(self.paths)

    def __getstate__(self) -> dict:
        # File descriptors do not survive pickling into DataLoader workers; each process reopens.
        state = self.__dict__.copy()
        state["_fd"] = None
        state["_fd_pid"] = None
        return state

    def _file(self) -> int:
        if self._fd is None or self._fd_pid != os.getpid():
            self._fd = os.open(self.directory / DATA_FILE, os.O_RDONLY)
            self._fd_pid = os.getpid()
        return self._fd

    def read(self, row: int, start: int = 0, length: int | None = None) -> np.ndarray:
        """Samples ``start:start+length`` of clip ``row`` as int16 (the whole clip by default)."""
        n = self.clip_samples
        if length is None:
            length = n - start
        if not (0 <= row < len(self.paths) and 0 <= start and start + length <= n):
            raise IndexError(f"row {row}, samples {start}:{start + length} outside the cache ({len(self)} x {n})")
        buffer = os.pread(self._file(), 2 * length, 2 * (row * n + start))
        return np.frombuffer(buffer, dtype=np.int16)

    def close(self) -> None:
        """Close the data file (it reopens on the next read)."""
        if self._fd is not None and self._fd_pid == os.getpid():
            os.close(self._fd)
        self._fd = None


def cache_key(paths: Sequence[Path], fmt: ClipFormat) -> str:
    """A hash of the clip format and every file's absolute path, size and mtime."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"version": CACHE_VERSION, "format": asdict(fmt)}, sort_keys=True).encode())
    for path in sorted(str(Path(p).resolve()) for p in paths):
        try:
            st = os.stat(path)
            digest.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{path}\0missing\n".encode())
    return digest.hexdigest()[:24]


def open_cache(paths: Sequence[Path], fmt: ClipFormat, cache_root: str | os.PathLike, *, workers: int | None = None,
               progress: bool = True) -> AudioCache:
    """Open the cache of ``paths`` in ``fmt``, building it first if no finished one exists."""
    root = Path(cache_root).expanduser() / "audio"
    root.mkdir(parents=True, exist_ok=True)
    key = cache_key(paths, fmt)
    final = root / key
    if (final / INDEX_FILE).is_file():
        return _load(final)
    with _locked(root / f"{key}.lock"):
        # Another process may have finished the same build while we waited for the lock.
        if (final / INDEX_FILE).is_file():
            return _load(final)
        for stale in root.glob(f".{key}.tmp-*"):
            # Only a killed build leaves these: nobody else can be building this key while we hold the lock.
            shutil.rmtree(stale, ignore_errors=True)
        stats = _build(paths, fmt, root, key, workers=workers, progress=progress)
    cache = _load(final)
    cache.stats = stats
    return cache


class _locked:
    """An exclusive ``flock`` held for the duration of a ``with`` block (released if the process dies)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = -1

    def __enter__(self) -> None:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def _load(directory: Path) -> AudioCache:
    index = json.loads((directory / INDEX_FILE).read_text())
    return AudioCache(directory=directory, fmt=ClipFormat(**index["format"]), paths=index["paths"],
                      skipped=index["skipped"])


def _decode_job(path: str, fmt: ClipFormat) -> tuple[str, bytes | None, str | None]:
    try:
        return path, decode_clip(path, fmt).tobytes(), None
    except DecodeError as exc:
        return path, None, str(exc)


def _decoded(paths: list[str], fmt: ClipFormat, workers: int) -> Iterator[tuple[str, bytes | None, str | None]]:
    """Decode in worker processes, yielding in input order with a bounded number of clips in flight."""
    if workers <= 1:
        for path in paths:
            yield _decode_job(path, fmt)
        return
    window = 4 * workers
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending: list[Future] = []
        for path in paths:
            pending.append(pool.submit(_decode_job, path, fmt))
            if len(pending) >= window:
                yield pending.pop(0).result()
        for future in pending:
            yield future.result()


def _build(paths: Sequence[Path], fmt: ClipFormat, root: Path, key: str, *, workers: int | None,
           progress: bool) -> BuildStats:
    started = time.perf_counter()
    ordered = sorted(str(Path(p).resolve()) for p in paths)
    workers = min(workers or os.cpu_count() or 1, max(1, len(ordered)))
    tmp = root / f".{key}.tmp-{os.getpid()}"
    tmp.mkdir()
    stored: list[str] = []
    skipped: dict[str, str] = {}
    log.info("Decoding %d files into the audio cache %s (%d workers)", len(ordered), root / key, workers)
    with open(tmp / DATA_FILE, "wb") as data:
        bar = tqdm(_decoded(ordered, fmt, workers), total=len(ordered), desc="decoding audio", unit="file",
                   disable=not progress)
        for path, clip, reason in bar:
            if clip is None:
                skipped[path] = reason or "unknown"
            else:
                data.write(clip)
                stored.append(path)
        data.flush()
        os.fsync(data.fileno())
    index = {"version": CACHE_VERSION, "format": asdict(fmt), "paths": stored, "skipped": skipped,
             "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    (tmp / INDEX_FILE).write_text(json.dumps(index, indent=1))
    # The rename is the commit point: before it there is no <key>/ directory at all.
    os.replace(tmp, root / key)
    stats = BuildStats(decoded=len(ordered), skipped=len(skipped), seconds=time.perf_counter() - started, built=True)
    log.info("Audio cache built: %d clips, %d skipped, %.1f s", len(stored), len(skipped), stats.seconds)
    return stats

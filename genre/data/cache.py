"""The decode-once audio cache shared by every run and sweep job.

Decoding and resampling (MP3 above all) is the slowest part of the pipeline, so each dataset is
decoded once into ``<cache_root>/audio/<key>/``: ``clips.i16`` holds every clip as a fixed-length
row of int16 samples, ``index.json`` says which file is which row and which files were skipped and
why. The key hashes the clip format and every file's path, size and mtime, so a changed dataset
rebuilds and an unchanged one never does.

Runs read rows (or just a crop of one) with ``os.pread``: nothing is held in memory or mapped, so a
run's memory does not grow with the dataset. Builders take an exclusive lock, write into a temporary
directory and rename it into place, so concurrent sweep jobs end with one intact cache and a killed
build leaves nothing that looks finished. A finished cache is also checked on opening (index
readable, format as asked, data file exactly rows x clip length): anything else is rebuilt, never read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from genre.data.decode import ClipFormat, DecodeError, decode_clip, warm_up
from genre.errors import ConfigError
from genre.filesystem import exclusive_lock, remove_directory, replace_directory, temporary_sibling
from genre.worker_processes import worker_pool

log = logging.getLogger(__name__)

CACHE_VERSION = 1
DATA_FILE = "clips.i16"
INDEX_FILE = "index.json"
# Bytes per sample of the stored clips (int16).
SAMPLE_BYTES = 2
# Builds write into hidden siblings ``.<key>.tmp-<pid>-<random>`` (see genre.filesystem.temporary_sibling).
_TMP_TAG = "tmp"

Decoded = tuple[str, bytes | None, str | None]


@dataclass
class BuildStats:
    """What the call that opened a cache did: how many files it decoded (0 when the cache existed)."""

    decoded: int = 0
    skipped: int = 0
    seconds: float = 0.0
    built: bool = False
    workers: int = 0
    # Time spent waiting for another process that was building the same cache.
    waited_seconds: float = 0.0


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
        """Samples ``start:start+length`` of clip ``row`` as a new, writable int16 array (whole clip by default)."""
        n = self.clip_samples
        if length is None:
            length = n - start
        if not (0 <= row < len(self.paths) and start >= 0 and start + length <= n):
            raise IndexError(f"row {row}, samples {start}:{start + length} outside the cache ({len(self)} x {n})")
        # Straight from the kernel into the array: one copy, and torch can take the array as it is.
        audio = np.empty(length, dtype=np.int16)
        got = os.preadv(self._file(), [audio.data], SAMPLE_BYTES * (row * n + start))
        if got != audio.nbytes:
            raise OSError(
                f"{self.directory / DATA_FILE} is shorter than its index says (row {row}); "
                "delete that folder to rebuild it"
            )
        return audio

    def close(self) -> None:
        """Close the data file (it reopens on the next read)."""
        if self._fd is not None and self._fd_pid == os.getpid():
            os.close(self._fd)
        self._fd = None


def _resolved(paths: Sequence[str | os.PathLike]) -> list[str]:
    """Absolute, link-free, sorted and unique: one name per file, whatever the listing called it."""
    return sorted({os.path.realpath(p) for p in paths})


def cache_key(paths: Sequence[str | os.PathLike], fmt: ClipFormat) -> str:
    """A hash of the clip format and every file's absolute path, size and mtime."""
    return _key(_resolved(paths), fmt)


def _key(resolved: list[str], fmt: ClipFormat) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps({"version": CACHE_VERSION, "format": asdict(fmt)}, sort_keys=True).encode())
    for path in resolved:
        try:
            st = os.stat(path)
            digest.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{path}\0missing\n".encode())
    return digest.hexdigest()[:24]


def default_workers() -> int:
    """The CPUs this process may use (on a cluster node: its allocation, not the whole machine)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def open_cache(
    paths: Sequence[str | os.PathLike],
    fmt: ClipFormat,
    cache_root: str | os.PathLike,
    *,
    workers: int | None = None,
    progress: bool = True,
) -> AudioCache:
    """Open the cache of ``paths`` in ``fmt``, building it first if no finished one exists.

    Safe to call from many processes at once: one builds, the others wait for its lock and then
    open what it built.
    """
    root = Path(cache_root).expanduser() / "audio"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            "paths.cache_dir",
            f"cannot create the audio cache folder '{root}' ({exc.strerror})",
            "Point GENRE_CACHE or paths.cache_dir at a writable folder",
        ) from exc
    # Resolved once here: for FMA's 100k tracks each pass over the paths costs seconds.
    resolved = _resolved(paths)
    key = _key(resolved, fmt)
    final = root / key
    cache = _load(final, fmt)
    if cache is not None:
        return cache
    with exclusive_lock(root / f"{key}.lock", waiting_for=f"the audio cache {final}") as waited:
        # Another process may have finished the same build while we waited for the lock.
        cache = _load(final, fmt)
        if cache is not None:
            cache.stats.waited_seconds = waited
            return cache
        _clear_leftovers(root, key)
        stats = _build(resolved, fmt, root, key, workers=workers, progress=progress)
    stats.waited_seconds = waited
    cache = _load(final, fmt)
    if cache is None:  # pragma: no cover - would mean the file system lost what we just wrote
        raise RuntimeError(f"the audio cache {final} was built but cannot be opened")
    cache.stats = stats
    return cache


def _clear_leftovers(root: Path, key: str) -> None:
    """Remove what is in the way of building ``key``: a damaged cache and the tmp dirs of killed builds.

    Called under the key's lock, so nobody else can be building it.
    """
    final = root / key
    if final.exists():
        # Only a cache from a broken disk or a foreign hand gets here; never read a wrong one.
        log.warning("Audio cache %s is incomplete or damaged; rebuilding it", final)
        remove_directory(final, "damaged")
    for stale in root.glob(f".{key}.{_TMP_TAG}-*"):
        # Only a killed build leaves these: nobody else can be building this key while we hold the lock.
        log.info("Removing %s, left by a build that did not finish", stale)
        shutil.rmtree(stale, ignore_errors=True)


def _load(directory: Path, fmt: ClipFormat) -> AudioCache | None:
    """The finished cache in ``directory``, or None when there is none or it does not check out."""
    try:
        index = json.loads((directory / INDEX_FILE).read_text())
        data_bytes = (directory / DATA_FILE).stat().st_size
    except (OSError, ValueError):
        return None
    try:
        stored_fmt = ClipFormat(**index["format"])
        paths, skipped = list(index["paths"]), dict(index["skipped"])
        ok = index["version"] == CACHE_VERSION and stored_fmt == fmt
    except (KeyError, TypeError):
        return None
    if not ok or data_bytes != len(paths) * fmt.clip_samples * SAMPLE_BYTES:
        return None
    return AudioCache(directory=directory, fmt=stored_fmt, paths=paths, skipped=skipped)


def _decode_job(path: str, fmt: ClipFormat) -> Decoded:
    try:
        return path, decode_clip(path, fmt).tobytes(), None
    except DecodeError as exc:
        return path, None, str(exc)


def _pool(workers: int) -> ProcessPoolExecutor:
    # Forked workers that die with this process and never hold its lock (see genre.worker_processes).
    return worker_pool(workers)


def _decode_alone(path: str, fmt: ClipFormat) -> Decoded:
    """Decode one file in a process of its own, so a decoder that kills its process costs only this file."""
    with _pool(1) as pool:
        try:
            return pool.submit(_decode_job, path, fmt).result()
        except BrokenProcessPool:
            return path, None, "the decoder crashed on this file (its process died)"


def _decoded(paths: list[str], fmt: ClipFormat, workers: int) -> Iterator[Decoded]:
    """Decode in worker processes, yielding in input order with a bounded number of clips in flight.

    A worker that dies (a decoder segfault, the OOM killer) breaks the whole pool and we cannot tell
    which of the files in flight killed it; those are then decoded one per process, so the culprit
    is skipped with its reason and the rest of the dataset still gets decoded.
    """
    if workers <= 1:
        for path in paths:
            yield _decode_job(path, fmt)
        return
    warm_up(fmt)
    window = 4 * workers
    position = 0  # paths[:position] have been yielded
    while position < len(paths):
        submitted = position  # paths[position:submitted] are in flight
        pool = _pool(workers)
        try:
            pending: list[Future] = []
            while position < len(paths):
                while submitted < len(paths) and len(pending) < window:
                    pending.append(pool.submit(_decode_job, paths[submitted], fmt))
                    submitted += 1
                result = pending.pop(0).result()
                position += 1
                yield result
        except BrokenProcessPool:
            log.warning(
                "A decoder process died; decoding the %d files that were in flight one at a time", submitted - position
            )
            for path in paths[position:submitted]:
                position += 1
                yield _decode_alone(path, fmt)
        finally:
            # A stop (SIGTERM, Ctrl-C) or an error: don't decode the rest of a build that will be discarded.
            pool.shutdown(wait=True, cancel_futures=True)


def _check_space(root: Path, n_files: int, fmt: ClipFormat) -> None:
    """Refuse to start a build that cannot fit, instead of failing hours into it."""
    needed = n_files * fmt.clip_samples * SAMPLE_BYTES
    free = shutil.disk_usage(root).free
    if needed > free:
        raise ConfigError(
            "paths.cache_dir",
            f"'{root}' has {free / 1e9:.1f} GB free but the audio cache of "
            f"{n_files} clips needs up to {needed / 1e9:.1f} GB",
            "Free space there or point GENRE_CACHE / paths.cache_dir at a bigger disk",
        )


def _build(
    ordered: list[str], fmt: ClipFormat, root: Path, key: str, *, workers: int | None, progress: bool
) -> BuildStats:
    """Decode ``ordered`` into a tmp dir next to ``root / key`` and rename it into place when complete."""
    started = time.perf_counter()
    _check_space(root, len(ordered), fmt)
    workers = max(1, min(workers or default_workers(), len(ordered)))
    tmp = temporary_sibling(root / key, _TMP_TAG)
    tmp.mkdir()
    log.info("Decoding %d files into the audio cache %s (%d workers)", len(ordered), root / key, workers)
    try:
        stored, skipped = _write_rows(tmp / DATA_FILE, ordered, fmt, workers, progress)
        index = {
            "version": CACHE_VERSION,
            "format": asdict(fmt),
            "paths": stored,
            "skipped": skipped,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "decode_seconds": time.perf_counter() - started,
        }
        with open(tmp / INDEX_FILE, "w") as handle:
            json.dump(index, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        # The rename is the commit point: before it there is no <key>/ directory at all. It is made
        # durable, so a crash right after cannot lose a cache we reported as built.
        replace_directory(tmp, root / key)
    except BaseException:
        # An error or Ctrl-C: leave nothing behind (a SIGKILL leaves tmp, which the next builder removes).
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    stats = BuildStats(
        decoded=len(ordered), skipped=len(skipped), seconds=time.perf_counter() - started, built=True, workers=workers
    )
    log.info("Audio cache built: %d clips, %d skipped, %.1f s", len(stored), len(skipped), stats.seconds)
    return stats


def _write_rows(
    data_path: Path, ordered: list[str], fmt: ClipFormat, workers: int, progress: bool
) -> tuple[list[str], dict[str, str]]:
    """Decode every file and append its row to ``data_path`` (flushed to disk); return stored and skipped."""
    stored: list[str] = []
    skipped: dict[str, str] = {}
    with open(data_path, "wb") as data:
        bar = tqdm(
            _decoded(ordered, fmt, workers),
            total=len(ordered),
            desc="decoding audio",
            unit="file",
            disable=not progress,
        )
        for path, clip, reason in bar:
            if clip is None:
                skipped[path] = reason or "unknown"
            else:
                data.write(clip)
                stored.append(path)
        data.flush()
        os.fsync(data.fileno())
    return stored, skipped

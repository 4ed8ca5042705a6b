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
readable, format and files as asked, data file exactly rows x clip length and matching the checksum
its index records, see genre.data.cache_integrity): anything else is rebuilt, never read. Reading a
finished cache needs no write access, so one prepared ahead on a read-only mount is reused.

Only what a file holds is recorded as a skip (empty, undecodable, too short), and a file missing
when the key was computed (the key records that too, so its arrival makes a new cache). A file that cannot be
read while the cache is built (gone, no permission, an I/O error) although it was there when the
build started gets a second try at the end; if that fails too the build fails with one line naming
it and nothing is cached: a cached "file missing" would outlive the file's return, and a cache
missing files it should hold would give a sweep's jobs different data.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from genre.core.errors import ConfigError, UserInputError
from genre.core.filesystem import exclusive_lock, remove_directory, replace_directory, temporary_sibling
from genre.data.cache_integrity import checksum_record, refuse_unwritable, verify
from genre.data.decode import ClipFormat, DecodeError, UnreadableFile, decode_clip
from genre.data.decode_workers import Decoded, decoded, default_workers

log = logging.getLogger(__name__)

# Still 1 since checksums came: a cache from before them is found under its key and rebuilt in place
# (one log line), instead of being left behind under an old key.
CACHE_VERSION = 1
DATA_FILE = "clips.i16"
INDEX_FILE = "index.json"
# Bytes per sample of the stored clips (int16).
SAMPLE_BYTES = 2
# Builds write into hidden siblings ``.<key>.tmp-<pid>-<random>`` (see genre.core.filesystem.temporary_sibling).
_TMP_TAG = "tmp"


class UnreadableFilesError(UserInputError):
    """Files of the dataset could not be read while its cache was built (twice), although they were there
    when the build started; nothing was cached. One line naming the first of them."""

    def __init__(self, unread: dict[str, str]) -> None:
        path, reason = next(iter(unread.items()))
        more = f" (and {len(unread) - 1} more files, listed in the log)" if len(unread) > 1 else ""
        super().__init__(
            f"{path}: cannot be read ({reason}){more}, though it was there when the audio cache build started; "
            "it is not recorded as skipped, and nothing was cached. Make it readable again (or take it out "
            "of the dataset) and run again"
        )


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


def _key(resolved: list[str], fmt: ClipFormat, missing: set[str] | None = None) -> str:
    """The key of ``resolved`` in ``fmt``; the paths missing now are added to ``missing`` (the key says so)."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"version": CACHE_VERSION, "format": asdict(fmt)}, sort_keys=True).encode())
    for path in resolved:
        try:
            st = os.stat(path)
            digest.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{path}\0missing\n".encode())
            if missing is not None:
                missing.add(path)
    return digest.hexdigest()[:24]


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
    open what it built. A finished cache is opened without writing anything (a read-only one is reused);
    one that must be built where this process cannot write is refused with one line.
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
    missing: set[str] = set()
    key = _key(resolved, fmt, missing)
    final = root / key
    found = _load(final, fmt, resolved)
    if isinstance(found, AudioCache):
        return found
    refuse_unwritable(
        root, final, found or "there is none yet", "Build it with python -m genre.cli.prepare and the same overrides"
    )
    with exclusive_lock(root / f"{key}.lock", waiting_for=f"the audio cache {final}") as waited:
        # Another process may have finished the same build while we waited for the lock.
        found = _load(final, fmt, resolved)
        if isinstance(found, AudioCache):
            found.stats.waited_seconds = waited
            return found
        _clear_leftovers(root, key, found)
        stats = _build(resolved, fmt, root, key, missing, workers=workers, progress=progress)
    stats.waited_seconds = waited
    # Its checksum was computed from these very bytes a moment ago: reading them all again proves nothing.
    cache = _load(final, fmt, resolved, verify_data=False)
    if not isinstance(cache, AudioCache):  # pragma: no cover - the file system lost what we just wrote
        raise RuntimeError(f"the audio cache {final} was built but cannot be opened ({cache})")
    cache.stats = stats
    return cache


def _clear_leftovers(root: Path, key: str, why: str | None) -> None:
    """Remove what is in the way of building ``key``: a damaged cache (``why``: what is wrong with it) and
    the tmp dirs of killed builds.

    Called under the key's lock, so nobody else can be building it.
    """
    final = root / key
    if final.exists():
        # Only a cache from a broken disk, an older genre or a foreign hand gets here; never read a wrong one.
        log.warning("Audio cache %s: %s; rebuilding it", final, why or "incomplete")
        remove_directory(final, "damaged")
    for stale in root.glob(f".{key}.{_TMP_TAG}-*"):
        # Only a killed build leaves these: nobody else can be building this key while we hold the lock.
        log.info("Removing %s, left by a build that did not finish", stale)
        shutil.rmtree(stale, ignore_errors=True)


def _load(
    directory: Path, fmt: ClipFormat, resolved: list[str], *, verify_data: bool = True
) -> AudioCache | str | None:
    """The finished cache of ``resolved`` in ``directory``; None when there is none; else why it does not check out.

    ``verify_data=False`` skips the checksum pass over the data file, for a cache this process just built."""
    if not directory.is_dir():
        return None
    try:
        index = json.loads((directory / INDEX_FILE).read_text())
        data_bytes = (directory / DATA_FILE).stat().st_size
    except (OSError, ValueError) as exc:
        return f"its index or data file cannot be read ({type(exc).__name__})"
    try:
        stored_fmt = ClipFormat(**index["format"])
        paths, skipped = list(index["paths"]), dict(index["skipped"])
        ok = index["version"] == CACHE_VERSION and stored_fmt == fmt
    except (KeyError, TypeError):
        return "its index is damaged"
    # Every file once, stored or skipped: a damaged index would otherwise give a file another file's row.
    if not ok or len(paths) + len(skipped) != len(resolved) or {*paths, *skipped} != set(resolved):
        return "its index does not describe this dataset in this format"
    if data_bytes != len(paths) * fmt.clip_samples * SAMPLE_BYTES:
        return f"{DATA_FILE} holds {data_bytes} bytes, not the {len(paths)} clips its index lists"
    problem = verify(directory / DATA_FILE, index.get("checksum")) if verify_data else None
    if problem:
        return problem
    return AudioCache(directory=directory, fmt=stored_fmt, paths=paths, skipped=skipped)


def _decode_job(path: str, fmt: ClipFormat) -> Decoded:
    # Here, not in genre.data.decode_workers: tests replace this module's decode_clip (forked workers inherit it).
    try:
        return path, decode_clip(path, fmt).tobytes(), None, False
    except DecodeError as exc:
        return path, None, str(exc), False
    except UnreadableFile as exc:
        return path, None, str(exc), True


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
    ordered: list[str], fmt: ClipFormat, root: Path, key: str, missing: set[str], *, workers: int | None, progress: bool
) -> BuildStats:
    """Decode ``ordered`` into a tmp dir next to ``root / key`` and rename it into place when complete.

    ``missing``: the files the key records as missing (so a "file missing" skip of theirs holds for the key).
    """
    started = time.perf_counter()
    _check_space(root, len(ordered), fmt)
    workers = max(1, min(workers or default_workers(), len(ordered)))
    tmp = temporary_sibling(root / key, _TMP_TAG)
    tmp.mkdir()
    log.info("Decoding %d files into the audio cache %s (%d workers)", len(ordered), root / key, workers)
    try:
        stored, skipped = _write_rows(tmp / DATA_FILE, ordered, fmt, workers, progress, missing)
        index = {
            "version": CACHE_VERSION,
            "format": asdict(fmt),
            "paths": stored,
            "skipped": skipped,
            "checksum": checksum_record(tmp / DATA_FILE),
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
    data_path: Path, ordered: list[str], fmt: ClipFormat, workers: int, progress: bool, missing: set[str]
) -> tuple[list[str], dict[str, str]]:
    """Decode every file and append its row to ``data_path`` (flushed to disk); return stored and skipped.

    Raises :class:`UnreadableFilesError` when files the key saw cannot be read, even on a second try.
    """
    stored: list[str] = []
    skipped: dict[str, str] = {}
    unread: dict[str, str] = {}

    def keep(path: str, clip: bytes | None, reason: str | None, transient: bool) -> None:
        if clip is not None:
            data.write(clip)
            stored.append(path)
        elif transient and path not in missing:
            unread[path] = reason or "unknown"
        else:
            skipped[path] = reason or "unknown"

    with open(data_path, "wb") as data:
        results = decoded(_decode_job, ordered, fmt, workers)
        for result in tqdm(results, total=len(ordered), desc="decoding audio", unit="file", disable=not progress):
            keep(*result)
        if unread:
            # A second try once the rest is done: a network file system's hiccup has usually passed by then.
            log.warning("Retrying %d files that could not be read, e.g. %s", len(unread), next(iter(unread)))
            retry = list(unread)
            unread.clear()
            for result in decoded(_decode_job, retry, fmt, min(workers, len(retry))):
                keep(*result)
        data.flush()
        os.fsync(data.fileno())
    for path, reason in list(unread.items())[:20]:
        log.error("Cannot read %s: %s", path, reason)
    if unread:
        raise UnreadableFilesError(unread)
    return stored, skipped

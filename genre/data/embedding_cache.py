"""The embedding cache: a frozen pretrained feature computed once per audio cache, shared by every run.

A frozen feature (e.g. musicnn's max_pool) is a fixed function of the audio, so recomputing it in every
job of a sweep only burns time. It is computed once, on the patch grid of each whole clip, into
``<cache_root>/embeddings/<key>/`` beside ``<cache_root>/audio/``: ``embeddings.f32`` holds every
clip's activations time-major (``steps x dims`` float32 per clip, so any window of steps is one
read), ``index.json`` says what they are. The key hashes the audio cache (which hashes the files)
and the feature's identity (model, layer, weights, patch grid, code version), so anything that
changes rebuilds it.

Same guarantees as the audio cache: one builder at a time under an exclusive lock, a build written
into a hidden staging folder and renamed into place (a killed build leaves nothing that looks
finished), and a finished cache checked on opening (index readable, identity as asked, data file
exactly rows x steps x dims and matching the checksum its index records, every value finite and within
``VALUE_LIMIT``): anything else is rebuilt, never read; a finished cache on a read-only mount is reused.
A feature that returns such values is refused while building, naming the clip: a NaN cached would
only surface as a NaN loss, blamed on the learning rate.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from genre.core.errors import ConfigError, UserInputError
from genre.core.filesystem import exclusive_lock, remove_directory, replace_directory, temporary_sibling
from genre.data.cache import AudioCache
from genre.data.cache_integrity import checksum_record, refuse_unwritable, verify
from genre.data.decode import int16_to_float

log = logging.getLogger(__name__)

EMBEDDING_CACHE_VERSION = 1
DATA_FILE = "embeddings.f32"
INDEX_FILE = "index.json"
VALUE_BYTES = 4
# The largest magnitude an activation may have: float16's largest value. Beyond it a value turns to inf
# as soon as a run trains in 16-bit mixed precision; no trained feature's activations come near it.
VALUE_LIMIT = float(np.finfo(np.float16).max)

# (batch, samples) float waveforms -> (batch, dims, steps) activations.
Embedder = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class EmbeddingStats:
    """What opening the embeddings did: built them (and how long it took) or found them."""

    built: bool = False
    seconds: float = 0.0
    waited_seconds: float = 0.0
    persisted: bool = True


@dataclass
class EmbeddingTable:
    """Every clip's activations, ``steps x dims`` per audio-cache row: on disk (``directory``) or in memory."""

    rows: int
    steps: int
    dims: int
    directory: Path | None = None
    values: np.ndarray | None = None
    stats: EmbeddingStats = field(default_factory=EmbeddingStats)

    def __post_init__(self) -> None:
        self._fd: int | None = None
        self._fd_pid: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        # File descriptors do not survive pickling into DataLoader workers; each process reopens.
        state = self.__dict__.copy()
        state["_fd"] = state["_fd_pid"] = None
        return state

    def _file(self) -> int:
        assert self.directory is not None
        if self._fd is None or self._fd_pid != os.getpid():
            self._fd = os.open(self.directory / DATA_FILE, os.O_RDONLY)
            self._fd_pid = os.getpid()
        return self._fd

    def read(self, row: int, start: int = 0, length: int | None = None) -> np.ndarray:
        """Steps ``start:start+length`` of clip ``row`` as a new ``(length, dims)`` float32 array."""
        length = self.steps - start if length is None else length
        if not (0 <= row < self.rows and start >= 0 and start + length <= self.steps):
            raise IndexError(
                f"row {row}, steps {start}:{start + length} outside the embeddings ({self.rows} x {self.steps})"
            )
        if self.values is not None:
            return self.values[row, start : start + length].copy()
        out = np.empty((length, self.dims), dtype=np.float32)
        got = os.preadv(self._file(), [out.data], VALUE_BYTES * self.dims * (row * self.steps + start))
        if got != out.nbytes:
            raise OSError(f"{self.directory}: {DATA_FILE} is shorter than its index says; delete the folder")
        return out


class EmbeddingValuesError(UserInputError):
    """The feature returned NaN, infinite or absurd values (beyond ``VALUE_LIMIT``) for a clip; nothing was
    cached. Its weights are the usual suspect."""


def _bad_values(values: np.ndarray) -> bool:
    """Whether ``values`` holds a NaN, an infinity or a magnitude above ``VALUE_LIMIT``."""
    # min/max propagate NaN and every comparison with NaN is false: two reductions, no temporary array.
    return bool(values.size) and not (values.min() >= -VALUE_LIMIT and values.max() <= VALUE_LIMIT)


def check_values(chunk: memoryview) -> None:
    """Raise ``ValueError`` when a chunk of a data file holds values no feature may return."""
    if _bad_values(np.frombuffer(chunk, dtype="<f4")):
        raise ValueError(f"{DATA_FILE} holds NaN, infinite or absurd values (beyond +-{VALUE_LIMIT:g})")


def _checked(batch: np.ndarray, first_row: int, audio: AudioCache) -> np.ndarray:
    """``batch`` (the activations of rows ``first_row``...), refused when a clip's values are not data."""
    for offset, clip in enumerate(batch):
        if _bad_values(clip):
            path = audio.paths[first_row + offset]
            raise EmbeddingValuesError(
                f"{path}: the frozen feature returned NaN, infinite or absurd values (beyond +-{VALUE_LIMIT:g}) "
                "for this clip, so nothing was cached. Check the feature's weights file (download it again), "
                "or take the clip out of the dataset"
            )
    return batch


def embedding_key(audio: AudioCache, identity: dict[str, Any]) -> str:
    """A hash of the audio cache (its own key hashes every file) and the feature's identity."""
    text = json.dumps(
        {"version": EMBEDDING_CACHE_VERSION, "audio": audio.directory.name, "feature": identity}, sort_keys=True
    )
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def compute_embeddings(
    audio: AudioCache,
    embed: Embedder,
    device: torch.device,
    *,
    batch_clips: int,
    write: Callable[[np.ndarray], None],
    progress: bool,
) -> None:
    """Run ``embed`` on every clip of ``audio`` (in row order, ``batch_clips`` at a time) and hand each
    batch's ``(clips, steps, dims)`` float32 activations to ``write``.

    Raises :class:`EmbeddingValuesError` naming the clip whose activations are NaN, infinite or beyond
    ``VALUE_LIMIT``.
    """
    rows = range(len(audio))
    bar = tqdm(range(0, len(audio), batch_clips), desc="embedding clips", unit="batch", disable=not progress)
    for start in bar:
        chunk = np.stack([audio.read(row) for row in rows[start : start + batch_clips]])
        with torch.no_grad():
            out = embed(int16_to_float(torch.from_numpy(chunk).to(device)))
        write(_checked(np.ascontiguousarray(out.transpose(1, 2).float().cpu().numpy()), start, audio))


def _load(directory: Path, expected: dict[str, Any], *, verify_data: bool = True) -> EmbeddingTable | str | None:
    """The finished embeddings in ``directory``; None when there are none; else why they do not check out.

    ``verify_data=False`` skips the pass over the data file (checksum, values), for embeddings this process
    just computed."""
    if not directory.is_dir():
        return None
    try:
        index = json.loads((directory / INDEX_FILE).read_text())
        data_bytes = (directory / DATA_FILE).stat().st_size
        described = {key: index[key] for key in expected}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"its index or data file cannot be read ({type(exc).__name__})"
    if described != expected:
        return "its index describes other embeddings"
    rows, steps, dims = int(index["rows"]), int(index["steps"]), int(index["dims"])
    if data_bytes != rows * steps * dims * VALUE_BYTES:
        return f"{DATA_FILE} holds {data_bytes} bytes, not the {rows} x {steps} x {dims} values its index says"
    problem = verify(directory / DATA_FILE, index.get("checksum"), check_values) if verify_data else None
    if problem:
        return problem
    return EmbeddingTable(rows=rows, steps=steps, dims=dims, directory=directory)


def _build(
    staging: Path,
    audio: AudioCache,
    embed: Embedder,
    device: torch.device,
    description: dict[str, Any],
    *,
    batch_clips: int,
    progress: bool,
) -> None:
    staging.mkdir()
    started = time.perf_counter()
    with open(staging / DATA_FILE, "wb") as data:

        def write(batch: np.ndarray) -> None:
            data.write(batch.tobytes())

        compute_embeddings(audio, embed, device, batch_clips=batch_clips, write=write, progress=progress)
        data.flush()
        os.fsync(data.fileno())
    index = {
        **description,
        "checksum": checksum_record(staging / DATA_FILE),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "seconds": time.perf_counter() - started,
    }
    with open(staging / INDEX_FILE, "w") as handle:
        json.dump(index, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())


def open_embeddings(
    audio: AudioCache,
    embed: Embedder,
    identity: dict[str, Any],
    *,
    steps: int,
    dims: int,
    cache_root: str | os.PathLike[str],
    device: torch.device,
    persist: bool = True,
    batch_clips: int = 4,
    progress: bool = True,
) -> EmbeddingTable:
    """The activations of every clip of ``audio``: from the embedding cache (built first when missing or
    damaged), or with ``persist=False`` computed here into memory.

    ``steps``/``dims``: what ``embed`` returns per clip (checked). Safe to call from many processes at once.
    """
    if not persist:
        return _in_memory(
            audio, embed, steps=steps, dims=dims, device=device, batch_clips=batch_clips, progress=progress
        )
    root = Path(cache_root).expanduser() / "embeddings"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            "paths.cache_dir",
            f"cannot create the embedding cache folder '{root}' ({exc.strerror})",
            "Point GENRE_CACHE or paths.cache_dir at a writable folder",
        ) from exc
    key = embedding_key(audio, identity)
    final = root / key
    description = _description(audio, identity, steps, dims)
    found = _load(final, description)
    if isinstance(found, EmbeddingTable):
        return found
    refuse_unwritable(
        root, final, found or "there is none yet", "Compute them with a run", "or set feature.transform.cache=false"
    )
    with exclusive_lock(root / f"{key}.lock", waiting_for=f"the embedding cache {final}") as waited:
        found = _load(final, description)
        if isinstance(found, EmbeddingTable):
            found.stats.waited_seconds = waited
            return found
        seconds = _build_locked(
            root, key, audio, embed, device, description, found, batch_clips=batch_clips, progress=progress
        )
    # Checksum and values were checked on these very bytes while building: no second pass over them.
    table = _load(final, description, verify_data=False)
    if not isinstance(table, EmbeddingTable):  # pragma: no cover - the file system lost what we just wrote
        raise RuntimeError(f"the embedding cache {final} was built but cannot be opened ({table})")
    table.stats = EmbeddingStats(built=True, seconds=seconds, waited_seconds=waited)
    return table


def _description(audio: AudioCache, identity: dict[str, Any], steps: int, dims: int) -> dict[str, Any]:
    """What the index of these embeddings says they are (checked on every open)."""
    return {
        "version": EMBEDDING_CACHE_VERSION,
        "audio_cache": audio.directory.name,
        "feature": identity,
        "rows": len(audio),
        "steps": steps,
        "dims": dims,
        "layout": "rows x steps x dims, float32 LE",
    }


def _in_memory(
    audio: AudioCache, embed: Embedder, *, steps: int, dims: int, device: torch.device, batch_clips: int, progress: bool
) -> EmbeddingTable:
    """Every clip's activations computed into memory (no cache written)."""
    started = time.perf_counter()
    values = np.empty((len(audio), steps, dims), dtype=np.float32)
    done = [0]

    def keep(batch: np.ndarray) -> None:
        values[done[0] : done[0] + len(batch)] = batch
        done[0] += len(batch)

    compute_embeddings(audio, embed, device, batch_clips=batch_clips, write=keep, progress=progress)
    stats = EmbeddingStats(built=True, seconds=time.perf_counter() - started, persisted=False)
    return EmbeddingTable(rows=len(audio), steps=steps, dims=dims, values=values, stats=stats)


def _build_locked(
    root: Path,
    key: str,
    audio: AudioCache,
    embed: Embedder,
    device: torch.device,
    description: dict[str, Any],
    why: str | None,
    *,
    batch_clips: int,
    progress: bool,
) -> float:
    """Build ``root/key`` (under its lock, held by the caller): clear what a killed or damaged build left
    (``why``: what is wrong with it), compute into a staging folder, rename it into place. Returns the
    seconds it took."""
    final = root / key
    if final.exists():
        log.warning("Embedding cache %s: %s; recomputing it", final, why or "incomplete")
        remove_directory(final)
    for stale in root.glob(f".{key}.tmp-*"):
        # Only a killed build leaves these: nobody else builds this key while we hold the lock.
        shutil.rmtree(stale, ignore_errors=True)
    staging = temporary_sibling(final)
    started = time.perf_counter()
    log.info(
        "Computing %s for %d clips into the embedding cache %s",
        description["feature"].get("layer", "the feature"),
        len(audio),
        final,
    )
    try:
        _build(staging, audio, embed, device, description, batch_clips=batch_clips, progress=progress)
        replace_directory(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return time.perf_counter() - started

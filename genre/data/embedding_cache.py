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
exactly rows x steps x dims): anything else is rebuilt, never read.
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

from genre.data.cache import AudioCache
from genre.data.decode import int16_to_float
from genre.errors import ConfigError
from genre.filesystem import exclusive_lock, remove_directory, replace_directory, temporary_sibling

log = logging.getLogger(__name__)

EMBEDDING_CACHE_VERSION = 1
DATA_FILE = "embeddings.f32"
INDEX_FILE = "index.json"
VALUE_BYTES = 4

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
    batch's ``(clips, steps, dims)`` float32 activations to ``write``."""
    rows = range(len(audio))
    bar = tqdm(range(0, len(audio), batch_clips), desc="embedding clips", unit="batch", disable=not progress)
    for start in bar:
        chunk = np.stack([audio.read(row) for row in rows[start : start + batch_clips]])
        with torch.no_grad():
            out = embed(int16_to_float(torch.from_numpy(chunk).to(device)))
        write(np.ascontiguousarray(out.transpose(1, 2).float().cpu().numpy()))


def _load(directory: Path, expected: dict[str, Any]) -> EmbeddingTable | None:
    """The finished embeddings in ``directory``, or None when there are none or they do not check out."""
    try:
        index = json.loads((directory / INDEX_FILE).read_text())
        data_bytes = (directory / DATA_FILE).stat().st_size
        described = {key: index[key] for key in expected}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if described != expected:
        return None
    rows, steps, dims = int(index["rows"]), int(index["steps"]), int(index["dims"])
    if data_bytes != rows * steps * dims * VALUE_BYTES:
        return None
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
    index = {**description, "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "seconds": time.perf_counter() - started}
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
    description = {
        "version": EMBEDDING_CACHE_VERSION,
        "audio_cache": audio.directory.name,
        "feature": identity,
        "rows": len(audio),
        "steps": steps,
        "dims": dims,
        "layout": "rows x steps x dims, float32 LE",
    }
    table = _load(final, description)
    if table is not None:
        return table
    with exclusive_lock(root / f"{key}.lock", waiting_for=f"the embedding cache {final}") as waited:
        table = _load(final, description)
        if table is not None:
            table.stats.waited_seconds = waited
            return table
        seconds = _build_locked(
            root, key, audio, embed, device, description, batch_clips=batch_clips, progress=progress
        )
    table = _load(final, description)
    if table is None:  # pragma: no cover - would mean the file system lost what we just wrote
        raise RuntimeError(f"the embedding cache {final} was built but cannot be opened")
    table.stats = EmbeddingStats(built=True, seconds=seconds, waited_seconds=waited)
    return table


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
    *,
    batch_clips: int,
    progress: bool,
) -> float:
    """Build ``root/key`` (under its lock, held by the caller): clear what a killed or damaged build left,
    compute into a staging folder, rename it into place. Returns the seconds it took."""
    final = root / key
    if final.exists():
        log.warning("Embedding cache %s is incomplete or damaged; rebuilding it", final)
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

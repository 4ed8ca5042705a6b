"""Writing the demo corpus: idempotent, atomic and safe to call from many processes at once.

``generate_demo_corpus`` renders every clip (in worker processes) into a hidden partial sibling of the
corpus directory, writes the marker file last and renames the directory into place, all under an
exclusive lock next to it (see :mod:`genre.core.filesystem`). A full disk is a
:class:`~genre.core.filesystem.DiskFullError` (one line), whatever libsndfile said. What a clip sounds like is
:mod:`genre.demo.genres`.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import math
import os
import pathlib
import shutil

import soundfile as sf
from tqdm import tqdm

from genre.core.filesystem import DiskFullError, exclusive_lock, free_if_disk_full, replace_directory, temporary_sibling
from genre.core.worker_processes import worker_pool
from genre.demo.genres import DEMO_GENRES, synthesize_clip

# Bump whenever the synthesis changes, so caches made by an older version are not mistaken for ours.
FORMAT_VERSION = 1
MARKER_NAME = ".demo-corpus.json"
# Half-written corpora are hidden siblings named ``.<root>.partial-<pid>-<random>``.
_PARTIAL_TAG = "partial"


def generate_demo_corpus(
    root: str | os.PathLike,
    *,
    clips_per_genre: int = 40,
    clip_seconds: float = 30.0,
    sample_rate: int = 22050,
    seed: int = 0,
    progress: bool = True,
    workers: int | None = None,
) -> pathlib.Path:
    """Write the demo corpus to ``root`` as ``<root>/<genre>/<genre>.NNNNN.wav`` unless it is already there.

    Files are 16-bit PCM mono WAVs, byte-identical for identical arguments (each clip is seeded from
    ``(seed, genre index, clip index)``, so worker scheduling does not matter). A finished corpus is
    recognised by the marker file ``.demo-corpus.json`` holding its parameters; with matching
    parameters the call returns at once. Generation happens in a hidden sibling directory that is
    renamed into place when complete, under an ``flock`` lock next to ``root``, so killed runs leave
    nothing that looks finished and concurrent callers end up sharing one intact corpus.

    Raises ``ValueError`` if ``root`` exists and is not (empty or) a corpus made with these parameters;
    user files are never deleted. Returns ``root`` as an absolute path.
    """
    params = _corpus_params(clips_per_genre, clip_seconds, sample_rate, seed)
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    root = pathlib.Path(root).expanduser().resolve()

    if _corpus_state(root, params) == "done":  # fast path: no lock, nothing written
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(root.with_name(f".{root.name}.lock"), waiting_for=f"the demo corpus {root}"):
        # Another process may have finished it while we waited for the lock.
        if _corpus_state(root, params) == "done":
            return root
        _remove_stale_partials(root)
        partial = temporary_sibling(root, _PARTIAL_TAG)
        partial.mkdir()
        try:
            _render_corpus(partial, params, progress=progress, workers=workers or os.cpu_count() or 1)
            # The marker goes in last: a directory with a marker is always complete.
            (partial / MARKER_NAME).write_text(json.dumps(params, sort_keys=True, indent=1) + "\n")
            replace_directory(partial, root)  # atomic; also replaces an empty pre-made ``root`` directory
        except BaseException as exc:
            # libsndfile reports a full disk as "System error", with no errno: judged by the space left.
            free = free_if_disk_full(root.parent, exc)  # before removing the partial corpus frees its space
            shutil.rmtree(partial, ignore_errors=True)
            if free is not None and not isinstance(exc, DiskFullError):
                raise DiskFullError(root, free) from exc
            raise
    return root


def _corpus_params(clips_per_genre: int, clip_seconds: float, sample_rate: int, seed: int) -> dict:
    """Validate the arguments and return the dict stored in (and compared against) the marker."""
    if not 1 <= clips_per_genre <= 100_000:  # file names have five digits
        raise ValueError(f"clips_per_genre must be in 1..100000, got {clips_per_genre}")
    if not (clip_seconds > 0 and math.isfinite(clip_seconds)):
        raise ValueError(f"clip_seconds must be a positive number, got {clip_seconds}")
    if sample_rate < 8000:
        raise ValueError(f"sample_rate must be >= 8000 Hz, got {sample_rate}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return {
        "format": "genre-demo-corpus",
        "version": FORMAT_VERSION,
        "genres": list(DEMO_GENRES),
        "clips_per_genre": int(clips_per_genre),
        "clip_seconds": float(clip_seconds),
        "sample_rate": int(sample_rate),
        "seed": int(seed),
    }


def _corpus_state(root: pathlib.Path, params: dict) -> str:
    """Return "done" (finished, same params), "missing" or "empty"; raise ValueError for anything else."""
    if not root.exists():
        return "missing"
    problem = "is not a directory"
    if root.is_dir():
        marker = root / MARKER_NAME
        if marker.is_file():
            try:
                found = json.loads(marker.read_text())
            except (OSError, ValueError):
                found = None
            if found == params:
                return "done"
            problem = f"holds a demo corpus made with other parameters ({_describe(found)})"
        elif not any(root.iterdir()):
            return "empty"
        else:
            problem = f"is not empty and has no {MARKER_NAME} marker"
    raise ValueError(f"Demo corpus directory '{root}' {problem}; delete it or choose another cache dir")


def _describe(found: object) -> str:
    """Summarise a marker's parameters for the error message."""
    if not isinstance(found, dict):
        return "unreadable marker"
    keys = ("version", "clips_per_genre", "clip_seconds", "sample_rate", "seed")
    return ", ".join(f"{k}={found.get(k)}" for k in keys)


def _remove_stale_partials(root: pathlib.Path) -> None:
    """Delete half-written siblings of killed runs; safe because we hold the lock they were made under."""
    # The names temporary_sibling(root, _PARTIAL_TAG) gives.
    for stale in root.parent.glob(f".{root.name}.{_PARTIAL_TAG}-*"):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)


def clip_path(root: str | os.PathLike, genre: str, index: int) -> pathlib.Path:
    """GTZAN's file naming: ``<root>/blues/blues.00007.wav``."""
    return pathlib.Path(root) / genre / f"{genre}.{index:05d}.wav"


def _render_corpus(out_dir: pathlib.Path, params: dict, *, progress: bool, workers: int) -> None:
    """Write every clip into ``out_dir``, in parallel processes unless ``workers == 1``."""
    for genre in DEMO_GENRES:
        (out_dir / genre).mkdir()
    jobs = [
        (str(out_dir), genre, i, params["clip_seconds"], params["sample_rate"], params["seed"])
        for genre in DEMO_GENRES
        for i in range(params["clips_per_genre"])
    ]
    workers = min(workers, len(jobs))
    with tqdm(total=len(jobs), desc="Generating demo corpus", unit="clip", disable=not progress) as bar:
        if workers == 1:  # in-process: no start-up cost for tiny corpora
            for job in jobs:
                _write_clip(*job)
                bar.update()
            return
        pool = worker_pool(workers)
        try:
            futures = [pool.submit(_write_clip, *job) for job in jobs]
            for future in cf.as_completed(futures):
                future.result()  # re-raise a worker's error here
                bar.update()
        finally:
            # On error, don't wait for the remaining clips of a corpus that will be discarded.
            pool.shutdown(wait=True, cancel_futures=True)


def _write_clip(out_dir: str, genre: str, index: int, clip_seconds: float, sample_rate: int, seed: int) -> None:
    """Worker task: synthesise one clip and write it as 16-bit PCM WAV."""
    pcm = synthesize_clip(genre, index, clip_seconds=clip_seconds, sample_rate=sample_rate, seed=seed)
    sf.write(clip_path(out_dir, genre, index), pcm, sample_rate, subtype="PCM_16", format="WAV")

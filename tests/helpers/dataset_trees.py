"""Builders of tiny datasets in the exact layouts of the real ones (GTZAN, FMA, a genre folder).

The audio is short and at low sample rates so tests stay fast; names, folders, file formats and the
metadata's layout are the real ones. Every clip is a different tone, so clips can be told apart.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from torchaudio.datasets import gtzan as torchaudio_gtzan

from genre.data.gtzan import GTZAN_GENRES

GTZAN_RATE = 11025  # half the real 22050 Hz: still resampled by the tests' dataset.sample_rate=8000
GTZAN_SECONDS = 3.0
FMA_RATE = 8000
FMA_SECONDS = 11.0  # above FMA's default min_seconds (10 s)


def tone(seconds: float, rate: int, freq: float, channels: int = 1, seed: int = 0) -> np.ndarray:
    """A sine of ``freq`` Hz with a little noise, float32 in [-1, 1], shape (samples,) or (samples, channels)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * rate))) / rate
    audio = 0.4 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)
    if channels > 1:
        audio = np.stack([audio * (1 - 0.3 * c) for c in range(channels)], axis=1)
    return audio.astype(np.float32)


def write_audio(path: Path, audio: np.ndarray, rate: int, fmt: str, subtype: str | None = None) -> Path:
    """Write ``audio`` with soundfile in ``fmt`` (WAV, AU, FLAC, OGG, MP3), creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subtype = (
        subtype or {"WAV": "PCM_16", "AU": "PCM_16", "FLAC": "PCM_16", "OGG": "VORBIS", "MP3": "MPEG_LAYER_III"}[fmt]
    )
    sf.write(path, audio, rate, format=fmt, subtype=subtype)
    return path


# ----------------------------------------------------------------------------------------------
# GTZAN
# ----------------------------------------------------------------------------------------------


def gtzan_names() -> dict[str, list[str]]:
    """Per genre, the clip names of the fixture: 2 train, 1 valid, 1 test of the fault-filtered lists, and
    1 clip the lists leave out (blues and rock have none); plus jazz.00054 (in the train list,
    unreadable in the .wav copy)."""
    lists = (torchaudio_gtzan.filtered_train, torchaudio_gtzan.filtered_valid, torchaudio_gtzan.filtered_test)
    listed = set().union(*lists)
    names: dict[str, list[str]] = {}
    for genre in GTZAN_GENRES:
        chosen = []
        for names_in_list, count in zip(lists, (2, 1, 1)):
            chosen += [n for n in names_in_list if n.startswith(genre + ".") and n != "jazz.00054"][:count]
        chosen += [f"{genre}.{i:05d}" for i in range(100) if f"{genre}.{i:05d}" not in listed][:1]
        names[genre] = chosen
    names["jazz"].append("jazz.00054")
    return names


def make_gtzan(root: Path, ext: str) -> Path:
    """A GTZAN copy at ``root``: ``<genre>/<genre>.000NN.<ext>``; ``.wav`` copies get an unreadable jazz.00054."""
    fmt = {"wav": "WAV", "au": "AU"}[ext]
    for g, (genre, names) in enumerate(gtzan_names().items()):
        for i, name in enumerate(names):
            path = root / genre / f"{name}.{ext}"
            if name == "jazz.00054" and ext == "wav":
                # Like the real one: a file no audio library can open.
                path.write_bytes(b"\x00\x13\x7f" * 3000)
                continue
            write_audio(path, tone(GTZAN_SECONDS, GTZAN_RATE, 200 + 60 * g + 7 * i, seed=g * 100 + i), GTZAN_RATE, fmt)
    return root


@dataclass
class GTZANTrees:
    """Both GTZAN copies, as unpacked from their archives."""

    wav: Path  # .../Data/genres_original
    au: Path  # .../genres


def make_gtzan_trees(base: Path) -> GTZANTrees:
    """The Kaggle copy (``Data/genres_original/*.wav``) and the original archive (``genres/*.au``)."""
    return GTZANTrees(wav=make_gtzan(base / "Data" / "genres_original", "wav"), au=make_gtzan(base / "genres", "au"))


# ----------------------------------------------------------------------------------------------
# FMA
# ----------------------------------------------------------------------------------------------

# tracks.csv's columns, in the file's order: (group, field).
FMA_COLUMNS: list[tuple[str, str]] = (
    [
        ("album", c)
        for c in (
            "comments",
            "date_created",
            "date_released",
            "engineer",
            "favorites",
            "id",
            "information",
            "listens",
            "producer",
            "tags",
            "title",
            "tracks",
            "type",
        )
    ]
    + [
        ("artist", c)
        for c in (
            "active_year_begin",
            "active_year_end",
            "associated_labels",
            "bio",
            "comments",
            "date_created",
            "favorites",
            "id",
            "latitude",
            "location",
            "longitude",
            "members",
            "name",
            "related_projects",
            "tags",
            "website",
            "wikipedia_page",
        )
    ]
    + [("set", "split"), ("set", "subset")]
    + [
        ("track", c)
        for c in (
            "bit_rate",
            "comments",
            "composer",
            "date_created",
            "date_recorded",
            "duration",
            "favorites",
            "genre_top",
            "genres",
            "genres_all",
            "information",
            "interest",
            "language_code",
            "license",
            "listens",
            "lyricist",
            "number",
            "publisher",
            "tags",
            "title",
        )
    ]
)


@dataclass(frozen=True)
class FMATrack:
    """One row of the fixture's tracks.csv and what its audio file is."""

    track_id: int
    subset: str
    split: str
    genre_top: str | None
    # "ok", "zero" (zero-length file), "short" (3 s), "missing" (no file), "truncated" (a cut MP3 header)
    audio: str = "ok"


def fma_tracks() -> list[FMATrack]:
    """The fixture's tracks: small (4 genres), medium-only (2 more), large-only (1 more, 4 without genre)."""
    tracks: list[FMATrack] = []
    next_id = iter(range(2, 200_000, 137))  # ids spread over several NNN/ folders
    for subset, genres, splits in (
        ("small", ("Hip-Hop", "Rock", "Electronic", "Folk"), ("training",) * 3 + ("validation", "test")),
        ("medium", ("Classical", "Jazz"), ("training", "validation", "test")),
        ("large", ("Pop",), ("training", "validation", "test")),
    ):
        for genre in genres:
            for split in splits:
                tracks.append(FMATrack(next(next_id), subset, split, genre))
    tracks += [
        FMATrack(next(next_id), "large", split, None) for split in ("training", "training", "validation", "test")
    ]
    # Bad tracks, all in small's training split; 099134, 108925 and 133297 are FMA's real ids without audio.
    tracks += [
        FMATrack(99134, "small", "training", "Rock", "zero"),
        FMATrack(108925, "small", "training", "Folk", "missing"),
        FMATrack(98567, "small", "training", "Hip-Hop", "short"),
        FMATrack(133297, "small", "training", "Electronic", "truncated"),
    ]
    return sorted(tracks, key=lambda t: t.track_id)


def fma_audio_path(audio_root: Path, track_id: int) -> Path:
    """``<audio_root>/NNN/NNNNNN.mp3``."""
    return audio_root / f"{track_id:06d}"[:3] / f"{track_id:06d}.mp3"


def _fma_row(track: FMATrack) -> list[object]:
    """A plausible row of tracks.csv; text fields with commas, quotes and newlines as in the real file."""
    values = {
        ("album", "title"): f"Album {track.track_id}",
        ("album", "type"): "Album",
        ("album", "tags"): "[]",
        ("album", "information"): '<p>Recorded live, in one "take".</p>\n<p>Second line.</p>',
        ("album", "date_created"): "2008-11-26 01:44:45",
        ("album", "id"): track.track_id // 10,
        ("artist", "name"): f"Artist {track.track_id % 7}",
        ("artist", "bio"): "<p>Bio, with a comma</p>",
        ("artist", "tags"): "['indie', 'lo-fi']",
        ("artist", "id"): track.track_id % 7,
        ("set", "split"): track.split,
        ("set", "subset"): track.subset,
        ("track", "genre_top"): track.genre_top,
        ("track", "genres"): "[21]",
        ("track", "genres_all"): "[21]",
        ("track", "duration"): 30,
        ("track", "bit_rate"): 256000,
        ("track", "title"): f"Track {track.track_id}",
        ("track", "license"): "Attribution-NonCommercial-ShareAlike 3.0 International",
        ("track", "tags"): "[]",
        ("track", "listens"): 1000 + track.track_id % 97,
    }
    return [values.get(column) for column in FMA_COLUMNS]


@dataclass
class FMATree:
    """An unpacked FMA: ``fma_metadata/tracks.csv`` and an audio folder with every track's MP3."""

    metadata: Path
    audio: Path
    tracks: list[FMATrack]


def make_fma_tree(base: Path) -> FMATree:
    """Write tracks.csv as pandas writes FMA's (two header rows plus the ``track_id`` row) and the MP3s."""
    tracks = fma_tracks()
    metadata = base / "fma_metadata"
    metadata.mkdir(parents=True)
    table = pd.DataFrame(
        [_fma_row(t) for t in tracks],
        columns=pd.MultiIndex.from_tuples(FMA_COLUMNS),
        index=pd.Index([t.track_id for t in tracks], name="track_id"),
    )
    table.to_csv(metadata / "tracks.csv")
    audio = base / "fma_large"
    for n, track in enumerate(tracks):
        path = fma_audio_path(audio, track.track_id)
        if track.audio == "missing":
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if track.audio == "zero":
            path.write_bytes(b"")
            continue
        seconds = 3.0 if track.audio == "short" else FMA_SECONDS
        write_audio(path, tone(seconds, FMA_RATE, 150 + 11 * n, seed=n), FMA_RATE, "MP3")
        if track.audio == "truncated":
            path.write_bytes(path.read_bytes()[:100])
    return FMATree(metadata=metadata, audio=audio, tracks=tracks)


# ----------------------------------------------------------------------------------------------
# Any genre folder
# ----------------------------------------------------------------------------------------------


def make_genre_folder(
    root: Path, genres: Iterable[str] = ("ambient", "polka", "techno"), per_genre: int = 4, seconds: float = 2.0
) -> Path:
    """``<root>/<genre>/<file>`` in mixed formats, rates and channel counts (WAV, FLAC, OGG, MP3, AU)."""
    formats = [
        ("wav", "WAV", 44100, 2),
        ("flac", "FLAC", 48000, 1),
        ("ogg", "OGG", 16000, 2),
        ("mp3", "MP3", 22050, 1),
        ("au", "AU", 8000, 1),
    ]
    for g, genre in enumerate(genres):
        for i in range(per_genre):
            ext, fmt, rate, channels = formats[(g + i) % len(formats)]
            write_audio(
                root / genre / f"{genre}_{i}.{ext}",
                tone(seconds, rate, 300 + 50 * g + 13 * i, channels, seed=10 * g + i),
                rate,
                fmt,
            )
    return root


def copy_tree(src: Path, dst: Path) -> Path:
    """A private copy of a session-wide fixture tree, for tests that break it."""
    shutil.copytree(src, dst, symlinks=True)
    return dst

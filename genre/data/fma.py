"""FMA, the Free Music Archive dataset (Defferrard et al. 2017).

``fma_metadata/tracks.csv`` has a two-row header (``album``/``artist``/``set``/``track`` over the
field names, then a row naming the index ``track_id``). A track belongs to the smallest subset it is
in, and subsets nest: small (8,000) < medium (25,000) < large (106,574). Labels are
``('track', 'genre_top')``, empty for many large-only tracks; the official split is
``('set', 'split')``; ``('artist', 'id')`` groups tracks by artist (for k-fold splits).
Audio lives at ``<audio root>/NNN/NNNNNN.mp3`` (the id zero-padded to six
digits, the folder its first three). Some listed tracks have no or very short audio (099134, 108925,
133297, ...): the cache skips those with their reason.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from genre.data.items import AudioItem

FMA_SUBSETS: tuple[str, ...] = ("small", "medium", "large")
OFFICIAL_SPLITS = {"training": "train", "validation": "val", "test": "test"}
SUBSET = ("set", "subset")
SPLIT = ("set", "split")
GENRE_TOP = ("track", "genre_top")
# Optional: a tracks.csv without it still loads, its tracks then have no group.
ARTIST_ID = ("artist", "id")
# Rows parsed at a time: tracks.csv carries long text columns (artist bios) we never keep.
_CHUNK_ROWS = 20_000


def audio_path(audio_root: Path, track_id: int) -> Path:
    """Where FMA keeps a track's MP3: ``<audio_root>/000/000002.mp3``."""
    name = f"{track_id:06d}"
    return audio_root / name[:3] / f"{name}.mp3"


def read_tracks(metadata_root: str | os.PathLike):
    """The subset, split, top genre and artist of every track in ``<metadata_root>/tracks.csv``, indexed by id.

    Returns a pandas DataFrame with the columns ``subset``, ``split``, ``genre_top`` and ``artist_id``
    (a string; NaN where tracks.csv has none or lacks the column). Raises ValueError naming
    ``metadata_root`` and the folder or file when it is not FMA's metadata.
    """
    key = "metadata_root"
    import pandas as pd

    root = Path(metadata_root).expanduser()
    fix = "Point it at the fma_metadata/ folder unpacked from fma_metadata.zip"
    if not root.is_dir():
        raise ValueError(f"{key}: '{root}' is not a directory. {fix}")
    path = root / "tracks.csv"
    if not path.is_file():
        if (root / "fma_metadata" / "tracks.csv").is_file():
            fix = f"Did you mean '{root / 'fma_metadata'}'?"
        elif any(root.glob("[0-9][0-9][0-9]/*.mp3")):
            raise ValueError(
                f"{key}: '{root}' holds FMA audio (NNN/NNNNNN.mp3), not tracks.csv. "
                "That is the audio_root; point metadata_root at fma_metadata/"
            )
        raise ValueError(f"{key}: '{root}' holds no tracks.csv. {fix}")
    wanted = [SUBSET, SPLIT, GENRE_TOP]
    parts = []
    try:
        # header=[0, 1], index_col=0: the layout FMA writes; read in chunks keeping only our columns,
        # so parsing the 100k-row file never holds its text columns all at once.
        for chunk in pd.read_csv(path, header=[0, 1], index_col=0, chunksize=_CHUNK_ROWS, dtype=str):
            missing = [column for column in wanted if column not in chunk.columns]
            if missing:
                raise ValueError(
                    f"{key}: '{path}' lacks the column(s) "
                    f"{', '.join('/'.join(c) for c in missing)}, so it is not FMA's tracks.csv. {fix}"
                )
            parts.append(
                chunk[[*wanted, ARTIST_ID]] if ARTIST_ID in chunk.columns else chunk[wanted].assign(artist_id=None)
            )
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        text = str(exc).strip()
        raise ValueError(
            f"{key}: '{path}' is not FMA's tracks.csv ({text.splitlines()[0] if text else exc!r}). {fix}"
        ) from exc
    if not parts:
        raise ValueError(f"{key}: '{path}' lists no tracks. {fix}")
    tracks = pd.concat(parts)
    tracks.columns = ["subset", "split", "genre_top", "artist_id"]
    ids = pd.to_numeric(tracks.index.to_series(), errors="coerce")
    if ids.isna().any():
        raise ValueError(
            f"{key}: '{path}' has track ids that are not numbers (e.g. '{tracks.index[ids.isna()][0]}'). {fix}"
        )
    tracks.index = ids.astype(int)
    return tracks


def _artist(artist_id: object) -> str | None:
    """A track's group for k-fold splits: its artist id as written in tracks.csv, None where empty."""
    if artist_id is None or (isinstance(artist_id, float) and math.isnan(artist_id)):  # NaN: an empty cell
        return None
    text = str(artist_id).strip()
    return f"artist {text}" if text else None


class FMASource:
    """The tracks of one FMA subset with a top genre, their official split and their MP3 files."""

    def __init__(self, metadata_root: str | os.PathLike, audio_root: str | os.PathLike, subset: str = "small") -> None:
        self.metadata_root = Path(metadata_root).expanduser()
        self.audio_root = Path(audio_root).expanduser()
        self.subset = subset
        self.notes: list[str] = []

    def items(self) -> list[AudioItem]:
        """One item per track of the subset that has a top genre, in track-id order.

        Raises ValueError naming ``subset``, ``audio_root`` or ``metadata_root`` (and the folder or file).
        """
        if self.subset not in FMA_SUBSETS:
            raise ValueError(f"subset: '{self.subset}' is not an FMA subset. Use one of {', '.join(FMA_SUBSETS)}")
        if not self.audio_root.is_dir():
            raise ValueError(
                f"audio_root: '{self.audio_root}' is not a directory. "
                f"Point it at the unpacked fma_{self.subset}/ folder (holding 000/ ... 155/)"
            )
        chosen, labelled, unsplit = self._labelled_tracks()
        items = [
            AudioItem(
                path=audio_path(self.audio_root, int(track_id)),
                label=str(row.genre_top).strip(),
                split=OFFICIAL_SPLITS[row.split],
                group=_artist(row.artist_id),
            )
            for track_id, row in zip(labelled.index, labelled.itertuples(index=False))
        ]
        if not items:
            raise ValueError(
                f"subset: none of the {len(chosen)} tracks of '{self.subset}' has a top genre. "
                "Use another subset (small and medium have one for every track)"
            )
        present = self._count_present(items)
        self.notes.append(
            f"FMA subset '{self.subset}': {len(chosen)} tracks in tracks.csv; {len(chosen) - len(labelled) - unsplit} "
            f"without track/genre_top dropped"
            + (f"; {unsplit} without set/split dropped" if unsplit else "")
            + f"; {len(items)} used"
        )
        if present < len(items):
            self.notes.append(
                f"tracks without a file under {self.audio_root}: {len(items) - present} (skipped below as missing)"
            )
            if present < 0.9 * len(items):
                self.notes.append(
                    f"most tracks are missing: is {self.audio_root} the audio of "
                    f"another subset than '{self.subset}' (dataset.subset)?"
                )
        return items

    def _labelled_tracks(self) -> tuple[Any, Any, int]:
        """The subset's tracks, those of them with a top genre and an official split, and how many lacked a split."""
        tracks = read_tracks(self.metadata_root)
        # Subsets nest: a track is labelled with the smallest subset it belongs to.
        rank = {name: i for i, name in enumerate(FMA_SUBSETS)}
        chosen = tracks[tracks["subset"].map(rank).le(rank[self.subset])].sort_index()
        if chosen.empty:
            raise ValueError(
                f"metadata_root: '{self.metadata_root / 'tracks.csv'}' has no track in the subset "
                f"'{self.subset}'. Use the tracks.csv from fma_metadata.zip"
            )
        labelled = chosen[chosen["genre_top"].notna() & (chosen["genre_top"].str.strip() != "")]
        unsplit = int(labelled["split"].isna().sum())
        labelled = labelled[labelled["split"].notna()]
        bad_splits = sorted(set(labelled["split"]) - set(OFFICIAL_SPLITS))
        if bad_splits:
            raise ValueError(
                f"metadata_root: '{self.metadata_root / 'tracks.csv'}' has set/split values other "
                f"than training, validation, test ({', '.join(bad_splits)}). "
                "Use the tracks.csv from fma_metadata.zip"
            )
        return chosen, labelled, unsplit

    def _count_present(self, items: list[AudioItem]) -> int:
        """How many items' files exist; none at all means ``audio_root`` is the wrong folder (raised)."""
        present = sum(item.path.exists() for item in items)
        if present == 0:
            nested = self.audio_root / f"fma_{self.subset}"
            fix = (
                f"Did you mean {nested}?"
                if nested.is_dir()
                else f"Point it at the unpacked fma_{self.subset}/ folder (holding 000/ ... 155/)"
            )
            raise ValueError(
                f"audio_root: '{self.audio_root}' holds none of the {len(items)} tracks of subset "
                f"'{self.subset}' (e.g. {items[0].path}). {fix}"
            )
        return present

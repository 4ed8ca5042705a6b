"""GTZAN (Tzanetakis & Cook 2002): ten genre folders of 100 thirty-second clips each.

Two copies circulate: the original ``genres/`` with ``<genre>.000NN.au`` files and the common
``genres_original/`` (Kaggle) with ``.wav`` files, in which ``jazz.00054.wav`` is unreadable; the
cache skips it with its reason like any bad file.

Random splits of GTZAN put songs of one artist (and GTZAN's duplicated excerpts) on both sides,
which inflates accuracy. :class:`FaultFilteredSplit` is the artist-filtered split of Kereliuk,
Sturm & Larsen (2015), whose file lists ship with torchaudio.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from genre.data.items import AudioItem
from genre.data.sources import audio_files

GTZAN_GENRES: tuple[str, ...] = (
    "blues",
    "classical",
    "country",
    "disco",
    "hiphop",
    "jazz",
    "metal",
    "pop",
    "reggae",
    "rock",
)
GTZAN_EXTENSIONS: tuple[str, ...] = (".wav", ".au")
# Where people unpack it: the folder above the genre folders, as the archives name it.
_COPIES = ("genres_original", "genres", "Data/genres_original", "gtzan/genres_original", "gtzan/genres")


class GTZANSource:
    """The clips of a GTZAN copy; ``root`` is the folder holding the ten genre folders."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).expanduser()
        self.notes: list[str] = []

    def items(self) -> list[AudioItem]:
        """List ``<root>/<genre>/<genre>.000NN.{wav,au}`` for the ten genres, sorted.

        Raises ValueError naming ``root`` (and the folder) when it is not a complete GTZAN copy.
        """
        if not self.root.is_dir():
            raise ValueError(
                f"root: '{self.root}' is not a directory. "
                "Point it at GTZAN's genres_original/ (WAV) or genres/ (AU) folder"
            )
        missing = [genre for genre in GTZAN_GENRES if not (self.root / genre).is_dir()]
        if len(missing) == len(GTZAN_GENRES):
            nested = next((self.root / copy for copy in _COPIES if (self.root / copy / "blues").is_dir()), None)
            fix = (
                f"Did you mean '{nested}'?"
                if nested is not None
                else "Point it at the folder holding blues/, classical/, ... rock/ (genres_original/ or genres/)"
            )
            raise ValueError(f"root: '{self.root}' holds none of GTZAN's ten genre folders. {fix}")
        if missing:
            raise ValueError(
                f"root: '{self.root}' lacks GTZAN's genre folder(s) {', '.join(missing)}. "
                "Unpack the whole archive again, or use dataset=folder for a subset of genres"
            )
        items: list[AudioItem] = []
        for genre in GTZAN_GENRES:
            folder = self.root / genre
            files = audio_files(folder, GTZAN_EXTENSIONS)
            if not files:
                raise ValueError(
                    f"root: genre folder '{folder}' holds no .wav or .au files. "
                    "Unpack the archive again; GTZAN has 100 clips per genre"
                )
            stems: dict[str, Path] = {}
            for path in files:
                if path.stem in stems:
                    # Both copies merged into one tree: the same clip twice could sit in train and test.
                    raise ValueError(
                        f"root: '{folder}' holds both {stems[path.stem].name} and {path.name}. "
                        "Use one copy of GTZAN (genres_original/ or genres/), not both merged"
                    )
                stems[path.stem] = path
            items.extend(AudioItem(path=path, label=genre) for path in files)
        counts = {genre: sum(item.label == genre for item in items) for genre in GTZAN_GENRES}
        if set(counts.values()) != {100}:
            self.notes.append(
                "GTZAN copy with "
                + ", ".join(f"{g} {n}" for g, n in counts.items() if n != 100)
                + " clips (a complete copy has 100 per genre)"
            )
        return items


def clip_name(path: str | os.PathLike) -> str:
    """GTZAN's name of a clip, as its split lists use it: ``.../jazz/jazz.00054.wav`` -> ``jazz.00054``."""
    return Path(path).stem


class FaultFilteredSplit:
    """The fault-filtered, artist-filtered split: 443 train / 197 valid / 290 test of 930 files.

    Kereliuk, Sturm & Larsen, "Deep learning and music adversaries" (2015); the lists are
    torchaudio's (``torchaudio.datasets.gtzan``). The 70 files the lists leave out (repetitions,
    distortions, mislabelings) are in no split.
    """

    def assign(self, items: Sequence[AudioItem]) -> list[str | None]:
        """Each item's split from the published lists, by clip name; None for files the lists leave out."""
        from torchaudio.datasets import gtzan  # imported only when this split is used

        membership = {
            name: split
            for split, names in (
                ("train", gtzan.filtered_train),
                ("val", gtzan.filtered_valid),
                ("test", gtzan.filtered_test),
            )
            for name in names
        }
        splits = [membership.get(clip_name(item.path)) for item in items]
        if items and not any(splits):
            raise ValueError(
                f"none of the {len(items)} files is named like a GTZAN clip in the fault-filtered "
                f"lists (<genre>.000NN, e.g. {Path(items[0].path).name}). "
                "Use dataset/split=stratified for datasets other than GTZAN"
            )
        return splits

"""Where a dataset's audio files and labels come from.

A *source* lists the dataset as :class:`AudioItem` s (file, genre label, optional predefined split).
Decoding, caching and splitting happen elsewhere, the same way for every source.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from genre.errors import ConfigError

# What librosa.load reads through soundfile or audioread; anything else in a genre folder is ignored.
AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".flac", ".ogg", ".mp3", ".au", ".aiff", ".aif", ".m4a", ".opus")


@dataclass(frozen=True)
class AudioItem:
    """One audio file of a dataset with its genre label and, where the dataset defines one, its split."""

    path: Path
    label: str
    split: str | None = None


class FolderSource:
    """Any directory of ``<genre>/<audio file>``: labels are the sub-folder names."""

    def __init__(self, root: str | os.PathLike, extensions: tuple[str, ...] | list[str] = AUDIO_EXTENSIONS,
                 key: str = "dataset.source.root") -> None:
        self.root = Path(root).expanduser()
        self.extensions = tuple(e.lower() for e in extensions)
        self.key = key

    def items(self) -> list[AudioItem]:
        """List every audio file under ``root/<genre>/``, sorted by genre then file name."""
        if not self.root.is_dir():
            raise ConfigError(self.key, f"'{self.root}' is not a directory",
                              "Point it at the folder that holds one sub-folder per genre")
        genre_dirs = sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not genre_dirs:
            raise ConfigError(self.key, f"'{self.root}' holds no genre sub-folders",
                              "Expected <root>/<genre>/<audio files>")
        items: list[AudioItem] = []
        for genre_dir in genre_dirs:
            files = sorted(p for p in genre_dir.iterdir()
                           if p.is_file() and p.suffix.lower() in self.extensions)
            if not files:
                raise ConfigError(self.key, f"genre folder '{genre_dir}' holds no audio files "
                                  f"({', '.join(self.extensions)})",
                                  "Add audio files to it or remove the empty folder")
            items.extend(AudioItem(path=f, label=genre_dir.name) for f in files)
        return items


class DemoSource:
    """The generated demo corpus: synthesised once into ``root``, then read like any genre folder."""

    def __init__(self, root: str | os.PathLike, clips_per_genre: int = 40, clip_seconds: float = 30.0,
                 sample_rate: int = 22050, seed: int = 0, progress: bool = True) -> None:
        self.root = Path(root).expanduser()
        self.clips_per_genre = clips_per_genre
        self.clip_seconds = clip_seconds
        self.sample_rate = sample_rate
        self.seed = seed
        self.progress = progress

    def items(self) -> list[AudioItem]:
        """Generate the corpus if it is not there yet and list its files."""
        # Imported here so that runs on real datasets never pay for the synthesiser's import.
        from genre.data.demo import generate_demo_corpus

        if self.clips_per_genre < 3:
            raise ConfigError("dataset.source.clips_per_genre", f"{self.clips_per_genre} is too few",
                              "Use at least 3 so every genre has a train, val and test clip")
        generate_demo_corpus(self.root, clips_per_genre=self.clips_per_genre, clip_seconds=self.clip_seconds,
                             sample_rate=self.sample_rate, seed=self.seed, progress=self.progress)
        return FolderSource(self.root, extensions=(".wav",)).items()

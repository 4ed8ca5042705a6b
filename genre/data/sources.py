"""Where a dataset's audio files and labels come from.

A *source* lists the dataset as :class:`~genre.data.items.AudioItem` s (file, genre label, optional predefined split).
Decoding, caching and splitting happen elsewhere, the same way for every source. Sources list files
as they are meant to exist; files that are missing or undecodable are skipped (with their reason)
by the cache, so they are reported instead of silently dropped. What a source leaves out on purpose
(e.g. FMA tracks without a top genre) it says in ``notes``, which the run log and TensorBoard record.
"""

from __future__ import annotations

import os
from pathlib import Path

from genre.data.items import AudioItem

# What librosa.load reads through soundfile or audioread; anything else in a genre folder is ignored.
AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".flac", ".ogg", ".mp3", ".au", ".aiff", ".aif", ".m4a", ".opus")


def audio_files(folder: Path, extensions: tuple[str, ...]) -> list[Path]:
    """The audio files directly in ``folder`` by extension, sorted; hidden files (``._x.wav``) excluded.

    Broken symbolic links are kept: the cache reports them as skipped instead of losing them silently.
    """
    return sorted(
        p for p in folder.iterdir() if p.suffix.lower() in extensions and not p.name.startswith(".") and not p.is_dir()
    )


class FolderSource:
    """Any directory of ``<genre>/<audio file>`` (labels are the sub-folder names), or a CSV manifest.

    With ``manifest`` set, files and labels come from that CSV instead (see
    :class:`genre.data.manifest.ManifestSource`); relative paths in it are taken from ``root`` when
    given, else from the manifest's folder.
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        extensions: tuple[str, ...] | list[str] = AUDIO_EXTENSIONS,
        manifest: str | os.PathLike | None = None,
    ) -> None:
        self.root = Path(root).expanduser() if root is not None else None
        self.extensions = tuple(e.lower() for e in extensions)
        self.manifest = manifest
        self.notes: list[str] = []

    def items(self) -> list[AudioItem]:
        """List every audio file under ``root/<genre>/``, sorted by genre then file name (or the manifest's rows).

        Raises ValueError naming ``root`` or ``manifest`` (and the folder or file) when they do not fit.
        """
        if self.manifest is not None:
            from genre.data.manifest import ManifestSource  # pandas only when a manifest is used

            source = ManifestSource(self.manifest, base=self.root)
            listed = source.items()
            self.notes = source.notes
            return listed
        if self.root is None:
            raise ValueError(
                "root: no dataset folder given. Set it to the folder of genre folders "
                "(or set manifest to a CSV list of files)"
            )
        if not self.root.is_dir():
            raise ValueError(
                f"root: '{self.root}' is not a directory. Point it at the folder that holds one sub-folder per genre"
            )
        genre_dirs = sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not genre_dirs:
            raise ValueError(f"root: '{self.root}' holds no genre sub-folders. Expected <root>/<genre>/<audio files>")
        items: list[AudioItem] = []
        for genre_dir in genre_dirs:
            files = audio_files(genre_dir, self.extensions)
            if not files:
                raise ValueError(
                    f"root: genre folder '{genre_dir}' holds no audio files "
                    f"({', '.join(self.extensions)}). Add audio files to it or remove the empty folder"
                )
            items.extend(AudioItem(path=f, label=genre_dir.name) for f in files)
        return items


class DemoSource:
    """The generated demo corpus: synthesised once into ``root``, then read like any genre folder."""

    def __init__(
        self,
        root: str | os.PathLike,
        clips_per_genre: int = 40,
        clip_seconds: float = 30.0,
        sample_rate: int = 22050,
        seed: int = 0,
        progress: bool = True,
    ) -> None:
        self.root = Path(root).expanduser()
        self.clips_per_genre = clips_per_genre
        self.clip_seconds = clip_seconds
        self.sample_rate = sample_rate
        self.seed = seed
        self.progress = progress
        self.notes: list[str] = []

    def items(self) -> list[AudioItem]:
        """Generate the corpus if it is not there yet and list its files."""
        # Imported here so that runs on real datasets never pay for the synthesiser's import.
        from genre.demo import generate_demo_corpus

        if self.clips_per_genre < 3:
            raise ValueError(
                f"clips_per_genre: {self.clips_per_genre} is too few. "
                "Use at least 3 so every genre has a train, val and test clip"
            )
        generate_demo_corpus(
            self.root,
            clips_per_genre=self.clips_per_genre,
            clip_seconds=self.clip_seconds,
            sample_rate=self.sample_rate,
            seed=self.seed,
            progress=self.progress,
        )
        return FolderSource(self.root, extensions=(".wav",)).items()

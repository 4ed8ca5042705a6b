"""Turn a dataset config into labelled, split clips backed by the audio cache.

``python -m genre.data.prepare dataset=...`` builds the cache ahead of time (e.g. on a login node
before a sweep), with the same config overrides a run takes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig

from genre.data.cache import AudioCache, open_cache
from genre.data.decode import ClipFormat
from genre.data.sources import AudioItem
from genre.data.splits import SPLITS, label_names
from genre.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class SplitClips:
    """The clips of one split: cache rows, label ids and source paths, aligned."""

    rows: np.ndarray
    targets: np.ndarray
    paths: list[str]

    def __len__(self) -> int:
        return len(self.rows)


@dataclass
class PreparedData:
    """Everything a run needs from its dataset."""

    cache: AudioCache
    labels: list[str]
    splits: dict[str, SplitClips]
    skipped: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        """One human-readable paragraph: cache, counts per split, skipped files."""
        counts = ", ".join(f"{name} {len(clips)}" for name, clips in self.splits.items())
        text = (f"audio cache: {self.cache.directory}\n"
                f"{len(self.labels)} genres ({', '.join(self.labels)}); clips: {counts}\n"
                f"skipped files: {len(self.skipped)}")
        for path, reason in sorted(self.skipped.items()):
            text += f"\n  {path}: {reason}"
        return text


def clip_format(dataset: DictConfig) -> ClipFormat:
    """The clip format of a dataset config, validated."""
    fmt = ClipFormat(sample_rate=int(dataset.sample_rate), clip_seconds=float(dataset.clip_seconds),
                     min_seconds=float(dataset.get("min_seconds", 0.0)),
                     short_clips=str(dataset.get("short_clips", "pad")))
    if fmt.sample_rate <= 0:
        raise ConfigError("dataset.sample_rate", f"{fmt.sample_rate} is not a positive rate", "Use e.g. 22050")
    if fmt.clip_seconds <= 0:
        raise ConfigError("dataset.clip_seconds", f"{fmt.clip_seconds} is not positive", "Use e.g. 30.0")
    if fmt.short_clips not in ("pad", "skip"):
        raise ConfigError("dataset.short_clips", f"'{fmt.short_clips}' is not pad or skip", "Use pad or skip")
    return fmt


def prepare_data(dataset: DictConfig, cache_dir: str | Path, *, progress: bool = True) -> PreparedData:
    """List the dataset's files, open (or build) their audio cache and split the usable clips."""
    fmt = clip_format(dataset)
    source = instantiate(dataset.source)
    items: list[AudioItem] = source.items()
    cache = open_cache([item.path for item in items], fmt, cache_dir,
                       workers=dataset.get("decode_workers"), progress=progress)
    usable = [item for item in items if str(Path(item.path).resolve()) in cache.row_of]
    skipped = {path: reason for path, reason in cache.skipped.items()}
    for path, reason in skipped.items():
        log.warning("Skipped %s: %s", path, reason)
    if not usable:
        raise ConfigError("dataset", f"none of the {len(items)} files could be decoded "
                          f"(e.g. {next(iter(skipped.items()), ('?', '?'))})", "Check the dataset's audio files")
    labels = label_names(usable)
    label_id = {name: i for i, name in enumerate(labels)}
    assignment = instantiate(dataset.split).assign(usable)
    splits: dict[str, SplitClips] = {}
    for name in SPLITS:
        chosen = [item for item, split in zip(usable, assignment) if split == name]
        if not chosen:
            raise ConfigError("dataset.split", f"the {name} split is empty", "Adjust the split ratios")
        paths = [str(Path(item.path).resolve()) for item in chosen]
        splits[name] = SplitClips(rows=np.array([cache.row_of[p] for p in paths], dtype=np.int64),
                                  targets=np.array([label_id[item.label] for item in chosen], dtype=np.int64),
                                  paths=paths)
    return PreparedData(cache=cache, labels=labels, splits=splits, skipped=skipped)

"""Turn a dataset config into labelled, split clips backed by the audio cache (``genre-prepare``,
:mod:`genre.cli.prepare`, builds it ahead of a sweep)."""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from genre.core.errors import ConfigError, config_keys
from genre.data.cache import AudioCache, open_cache
from genre.data.decode import ClipFormat
from genre.data.items import AudioItem
from genre.data.splits import SPLITS, label_names

log = logging.getLogger(__name__)

# Skipped files listed one by one in the log and the summary; beyond this, counts per reason
# (the full list is always in the cache's index.json).
SKIPPED_LISTED = 50


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
    # What the source left out on purpose (e.g. FMA tracks without a top genre), one line each.
    notes: list[str] = field(default_factory=list)
    # Decodable files the split puts in no split (GTZAN's fault-filtered split leaves out 70).
    unsplit: int = 0

    def summary(self) -> str:
        """A human-readable report: which cache, what it holds, counts per split, what was skipped and why."""
        stats, fmt = self.cache.stats, self.cache.fmt
        if stats.built:
            how = (
                f"built by this run: {stats.decoded} files decoded in {stats.seconds:.1f} s by {stats.workers} workers"
            )
        else:
            how = "reused: nothing decoded"
            if stats.waited_seconds:
                how += f" (waited {stats.waited_seconds:.1f} s for the process that built it)"
        short = "shorter files zero-padded" if fmt.short_clips == "pad" else "shorter files skipped"
        if fmt.min_seconds > 0:
            short += f", files under min_seconds={fmt.min_seconds:g} s skipped"
        counts = ", ".join(f"{name} {len(clips)}" for name, clips in self.splits.items())
        lines = [
            f"audio cache: {self.cache.directory} ({how})",
            f"clips: {fmt.sample_rate} Hz mono, {fmt.clip_seconds:g} s; {short}",
            *self.notes,
            f"{len(self.labels)} genres ({', '.join(self.labels)}); clips: {counts}",
        ]
        if self.unsplit:
            lines.append(f"in no split: {self.unsplit} files (left out by dataset.split)")
        lines.append(f"skipped files: {len(self.skipped)}")
        if len(self.skipped) > SKIPPED_LISTED:
            reasons = Counter(reason.split(" (")[0] for reason in self.skipped.values())
            lines += [f"  {n} x {reason}" for reason, n in reasons.most_common()]
            lines.append(f"  first {SKIPPED_LISTED} (all in {self.cache.directory / 'index.json'}):")
        lines += [f"  {path}: {reason}" for path, reason in sorted(self.skipped.items())[:SKIPPED_LISTED]]
        return "\n".join(lines)


def clip_format(dataset: DictConfig) -> ClipFormat:
    """The clip format of a dataset config, validated."""
    fmt = ClipFormat(
        sample_rate=int(dataset.sample_rate),
        clip_seconds=float(dataset.clip_seconds),
        min_seconds=float(dataset.get("min_seconds", 0.0)),
        short_clips=str(dataset.get("short_clips", "pad")),
    )
    if fmt.sample_rate <= 0:
        raise ConfigError("dataset.sample_rate", f"{fmt.sample_rate} is not a positive rate", "Use e.g. 22050")
    if fmt.clip_seconds <= 0:
        raise ConfigError("dataset.clip_seconds", f"{fmt.clip_seconds} is not positive", "Use e.g. 30.0")
    if fmt.min_seconds < 0:
        raise ConfigError(
            "dataset.min_seconds", f"{fmt.min_seconds} is negative", "Use 0 for the default (half the clip)"
        )
    if fmt.short_clips not in ("pad", "skip"):
        raise ConfigError("dataset.short_clips", f"'{fmt.short_clips}' is not pad or skip", "Use pad or skip")
    return fmt


def _splitter(dataset: DictConfig):
    split = dataset.get("split")
    if not isinstance(split, DictConfig) or "_target_" not in split:
        # `dataset.split=fault_filtered` replaces the split's config by a string; the group wants a slash.
        raise ConfigError(
            "dataset.split",
            f"'{split}' is not a split config",
            "Choose a split with dataset/split=<name> (a slash: stratified, fault_filtered, official, kfold)",
        )
    return instantiate(split)


def _resolve_unique(items: Sequence[AudioItem]) -> list[str]:
    """Each item's absolute, link-free path (the cache's name for it); two items for one file are refused:
    they would get one cache row but could land in two splits."""
    seen: dict[str, Path] = {}
    for item in items:
        resolved = os.path.realpath(item.path)
        if resolved in seen:
            raise ConfigError(
                "dataset",
                f"'{seen[resolved]}' and '{item.path}' are the same file",
                "List every file once (check for links or duplicate manifest rows)",
            )
        seen[resolved] = Path(item.path)
    return list(seen)


def _source_keys(dataset: DictConfig) -> dict[str, str]:
    """The dataset keys the user sets for the source's parameters: ``dataset.root`` for its ``root``.

    Dataset configs hand them over as ``root: ${dataset.root}``; a run's config arrives resolved, so
    the key is recognised by name and value, not by the interpolation.
    """
    source = dataset.source
    return {
        str(name): f"dataset.{name}"
        for name in source
        if name != "source" and name in dataset and dataset.get(str(name)) == source.get(str(name))
    }


def prepare_data(dataset: DictConfig, cache_dir: str | Path, *, progress: bool = True) -> PreparedData:
    """List the dataset's files, open (or build) their audio cache and split the usable clips."""
    # Mandatory keys (???) the user did not give; OmegaConf.missing_keys trips over interpolations to them.
    missing = [str(key) for key in dataset if OmegaConf.is_missing(dataset, key)]
    if missing:
        raise ConfigError(
            f"dataset.{missing[0]}",
            "is not set",
            f"Add dataset.{missing[0]}=... to the command line (see the README's Datasets section)",
        )
    fmt = clip_format(dataset)
    splitter = _splitter(dataset)
    source = instantiate(dataset.source)
    # The source and the split name their own parameters; the user sets e.g. dataset.root, which the
    # source's root interpolates.
    with config_keys("dataset.source", _source_keys(dataset)):
        items: list[AudioItem] = source.items()
    resolved = _resolve_unique(items)
    cache = open_cache(resolved, fmt, cache_dir, workers=dataset.get("decode_workers"), progress=progress)
    usable = [(item, path) for item, path in zip(items, resolved) if path in cache.row_of]
    skipped = {path: cache.skipped[path] for path in resolved if path in cache.skipped}
    for path, reason in sorted(skipped.items())[:SKIPPED_LISTED]:
        log.warning("Skipped %s: %s", path, reason)
    if len(skipped) > SKIPPED_LISTED:
        log.warning(
            "Skipped %d more files; every one with its reason is in %s",
            len(skipped) - SKIPPED_LISTED,
            cache.directory / "index.json",
        )
    if not usable:
        raise ConfigError(
            "dataset",
            f"none of the {len(items)} files could be decoded (e.g. {next(iter(skipped.items()), ('?', '?'))})",
            "Check the dataset's audio files",
        )
    with config_keys("dataset.split"):
        assignment = splitter.assign([item for item, _ in usable])
    in_split = [(item, path, split) for (item, path), split in zip(usable, assignment) if split is not None]
    labels = label_names([item for item, _, _ in in_split])
    label_id = {name: i for i, name in enumerate(labels)}
    splits: dict[str, SplitClips] = {}
    for name in SPLITS:
        chosen = [(item, path) for item, path, split in in_split if split == name]
        if not chosen:
            raise ConfigError("dataset.split", f"the {name} split is empty", "Adjust the split ratios")
        splits[name] = SplitClips(
            rows=np.array([cache.row_of[path] for _, path in chosen], dtype=np.int64),
            targets=np.array([label_id[item.label] for item, _ in chosen], dtype=np.int64),
            paths=[path for _, path in chosen],
        )
    _check_labels(labels, splits["train"])
    return PreparedData(
        cache=cache,
        labels=labels,
        splits=splits,
        skipped=skipped,
        notes=list(getattr(source, "notes", [])),
        unsplit=len(usable) - len(in_split),
    )


def _check_labels(labels: list[str], train: SplitClips) -> None:
    """Refuse label sets a classifier cannot learn: one genre (any model scores 1.0), or a genre the
    training split holds no clip of (it could never be predicted, yet counts in the test scores)."""
    if len(labels) < 2:
        raise ConfigError(
            "dataset",
            f"the usable clips hold one genre only ({', '.join(labels)})",
            "A genre classifier needs at least two genres: add the others' folders or files",
        )
    counts = np.bincount(train.targets, minlength=len(labels))
    missing = [label for label, count in zip(labels, counts) if count == 0]
    if missing:
        raise ConfigError(
            "dataset.split",
            f"genre(s) {', '.join(missing)} have no clip in the training split",
            "Add clips of them, or move some into training (dataset.split ratios or manifest)",
        )

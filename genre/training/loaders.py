"""DataLoaders of a run: shuffled training crops sharded over ranks, whole clips for evaluation.

:func:`run_loaders` decides, once, what they deliver: int16 audio from the audio cache, or, for a
feature that declares itself precomputed (a frozen pretrained network), that feature's float32
activations, computed once per clip into the embedding cache. Never both: on the precomputed path
nothing after the embedding sees audio (training windows and evaluation segments are cut on the
activations' patch grid, and only the feature's stages after its transform run in a step).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sized
from dataclasses import dataclass
from typing import cast

import torch
from torch.utils.data import DataLoader, Dataset

from genre.data.clips import ClipDataset
from genre.data.decode import int16_to_float
from genre.data.embedding_cache import EmbeddingTable, open_embeddings
from genre.data.embeddings import EmbeddingDataset
from genre.data.fused_embeddings import FusedTable
from genre.data.prepare import PreparedData
from genre.features.base import FusedTransform, PrecomputedTransform
from genre.features.extractor import FeatureExtractor
from genre.run_files import Position
from genre.training.distributed import DistContext
from genre.training.sampling import EpochSampler

log = logging.getLogger(__name__)


def train_loader(
    dataset: Dataset, *, batch_size: int, seed: int, ctx: DistContext, device: torch.device, num_workers: int
) -> DataLoader:
    """Batches of this rank's shard, in an order that depends only on (seed, epoch)."""
    sampler = EpochSampler(dataset, num_replicas=ctx.world_size, rank=ctx.rank, seed=seed)
    # Workers are started per epoch (not persistent), so they see the dataset's new epoch for crops.
    # A ragged last batch is dropped: a batch of one breaks BatchNorm.
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(seed),
        drop_last=len(sampler) > batch_size,
    )


def eval_loader(
    dataset: Dataset, *, batch_size: int, ctx: DistContext, device: torch.device, num_workers: int, shard: bool = True
) -> DataLoader:
    """Whole clips in order; with ``shard``, only this rank's clips ``rank::world_size``."""
    size = len(cast(Sized, dataset))
    indices = range(ctx.rank, size, ctx.world_size) if shard else range(size)
    return DataLoader(
        dataset, batch_size=batch_size, sampler=list(indices), num_workers=num_workers, pin_memory=device.type == "cuda"
    )


def position_loader(loader: DataLoader, position: Position) -> None:
    """Set the epoch of the loader's sampler and dataset (crops), skipping the batches ``position`` has done."""
    sampler, dataset = loader.sampler, loader.dataset
    if isinstance(sampler, EpochSampler):
        sampler.set_epoch(position.epoch)
        sampler.set_start(position.batch * int(loader.batch_size or 1))
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(position.epoch)


def batch_on_device(batch: torch.Tensor, device: torch.device, *, precomputed: bool) -> torch.Tensor:
    """A loader's batch on ``device`` as float32: int16 audio scaled by :func:`int16_to_float`, or, from
    ``precomputed`` loaders, the activations as they are (float32 already)."""
    # int16 travels (pinned, asynchronously) and becomes float only on the device.
    batch = batch.to(device, non_blocking=True)
    return batch if precomputed else int16_to_float(batch)


@dataclass(frozen=True)
class LoaderSettings:
    """How a run cuts and batches its clips; lengths in samples at the dataset's sample rate."""

    train_segment: int  # a training crop
    eval_segment: int  # an evaluation segment
    batch_size: int
    eval_batch_size: int  # also the clips a precomputed feature embeds at once
    crops_per_clip: int
    num_workers: int
    seed: int


@dataclass
class RunLoaders:
    """A run's loaders, all of one kind: int16 audio, or (``precomputed``) a feature's float32 activations."""

    crops: DataLoader
    val: DataLoader
    test: DataLoader
    # Whole training clips, read once for the feature standardisation statistics.
    train_clips: DataLoader
    # An evaluation segment in the loaders' time unit: samples, or activation steps.
    eval_segment: int
    precomputed: bool
    # The activations the loaders read (precomputed only).
    table: EmbeddingTable | FusedTable | None = None


def run_loaders(
    prepared: PreparedData,
    features: FeatureExtractor,
    settings: LoaderSettings,
    *,
    ctx: DistContext,
    device: torch.device,
    cache_dir: str | os.PathLike[str],
    progress: bool,
) -> RunLoaders:
    """The run's loaders, as the feature declares: over the audio cache for a feature computed in every
    step; over the activations of one that declares itself precomputed (computed once per clip into the
    embedding cache under ``cache_dir``, on ``device``), whose training crops and evaluation segments
    are then whole patches.

    Raises ValueError naming ``train_segment``, ``eval_segment`` or ``clip_samples`` (the dataset's
    clips) when it holds no whole patch of a precomputed feature.
    """
    transform = features.precomputed_transform
    if transform is None:
        return _audio_loaders(prepared, settings, ctx=ctx, device=device)
    # Every length is checked before the (possibly long) embedding.
    cache = prepared.cache
    rate = cache.fmt.sample_rate
    _steps(transform, "clip_samples", cache.clip_samples, rate)
    window = _steps(transform, "train_segment", settings.train_segment, rate)
    segment = _steps(transform, "eval_segment", settings.eval_segment, rate)
    # A fusion: each part has its own embedding cache.
    fused = transform if isinstance(transform, FusedTransform) else None
    opened = [
        _shared_table(
            prepared, part, part.steps_in(cache.clip_samples), settings,
            ctx=ctx, device=device, cache_dir=cache_dir, progress=progress,
        )
        for part in (fused.components if fused is not None else [transform])
    ]  # fmt: skip
    table = FusedTable(opened, fused.step_maps([t.steps for t in opened])) if fused is not None else opened[0]
    return _embedding_loaders(prepared, transform, table, settings, window, segment, ctx=ctx, device=device)


def _audio_loaders(
    prepared: PreparedData, settings: LoaderSettings, *, ctx: DistContext, device: torch.device
) -> RunLoaders:
    """Random crops of the training clips, whole clips of every split (int16 audio)."""
    splits, cache = prepared.splits, prepared.cache
    crops = ClipDataset(
        cache,
        splits["train"].rows,
        splits["train"].targets,
        segment_samples=settings.train_segment,
        seed=settings.seed,
        crops_per_clip=settings.crops_per_clip,
    )

    return _loaders_of(
        crops,
        lambda name: ClipDataset(cache, splits[name].rows, splits[name].targets),
        settings,
        settings.eval_segment,
        ctx=ctx,
        device=device,
    )


def _embedding_loaders(
    prepared: PreparedData,
    transform: PrecomputedTransform,
    table: EmbeddingTable | FusedTable,
    settings: LoaderSettings,
    window: int,
    segment: int,
    *,
    ctx: DistContext,
    device: torch.device,
) -> RunLoaders:
    """Random windows of ``window`` steps (whole patches) of the training clips' activations, every patch
    of every split's; evaluation segments of ``segment`` steps."""
    if ctx.is_main:
        where = _location(table)
        how = f"computed in {table.stats.seconds:.1f} s" if table.stats.built else "reused"
        log.info(
            "Embeddings %s: %d clips x %d steps x %d dims (%s); training on windows of %d steps",
            where,
            table.rows,
            table.steps,
            table.dims,
            how,
            window,
        )
    splits, per_patch = prepared.splits, transform.steps_per_patch
    crops = EmbeddingDataset(
        table,
        splits["train"].rows,
        splits["train"].targets,
        window_steps=window,
        steps_per_patch=per_patch,
        seed=settings.seed,
        crops_per_clip=settings.crops_per_clip,
    )

    return _loaders_of(
        crops,
        lambda name: EmbeddingDataset(table, splits[name].rows, splits[name].targets, steps_per_patch=per_patch),
        settings,
        segment,
        ctx=ctx,
        device=device,
        table=table,
    )


def _loaders_of(
    crops: Dataset,
    whole_clips: Callable[[str], Dataset],
    settings: LoaderSettings,
    eval_segment: int,
    *,
    ctx: DistContext,
    device: torch.device,
    table: EmbeddingTable | FusedTable | None = None,
) -> RunLoaders:
    """The training crops' loader and whole-clip loaders of every split (``whole_clips(split)``: its
    dataset); activations when ``table`` is given, else audio."""

    def clips(name: str, shard: bool = True) -> DataLoader:
        return _eval_loader(whole_clips(name), settings, ctx=ctx, device=device, shard=shard)

    return RunLoaders(
        crops=_train_loader(crops, settings, ctx=ctx, device=device),
        val=clips("val"),
        test=clips("test"),
        train_clips=clips("train", shard=False),
        eval_segment=eval_segment,
        precomputed=table is not None,
        table=table,
    )


def _train_loader(dataset: Dataset, settings: LoaderSettings, *, ctx: DistContext, device: torch.device) -> DataLoader:
    return train_loader(
        dataset,
        batch_size=settings.batch_size,
        seed=settings.seed,
        ctx=ctx,
        device=device,
        num_workers=settings.num_workers,
    )


def _eval_loader(
    dataset: Dataset, settings: LoaderSettings, *, ctx: DistContext, device: torch.device, shard: bool
) -> DataLoader:
    return eval_loader(
        dataset,
        batch_size=settings.eval_batch_size,
        ctx=ctx,
        device=device,
        num_workers=settings.num_workers,
        shard=shard,
    )


def _steps(transform: PrecomputedTransform, name: str, samples: int, sample_rate: int) -> int:
    """Activation steps of ``samples`` samples of audio; ValueError naming ``name`` when not one whole patch."""
    steps = transform.steps_in(samples)
    if steps < 1:
        patch = transform.patch_seconds
        raise ValueError(
            f"{name}: {samples / sample_rate:g} s holds no whole {type(transform).__name__} patch ({patch:.3g} s). "
            f"Use {math.ceil(patch * 10) / 10:g} s or more"
        )
    return steps


def _location(table: EmbeddingTable | FusedTable) -> str:
    """Where the activations are, for the log: the embedding cache folder(s), or memory."""
    tables = table.tables if isinstance(table, FusedTable) else [table]
    return ", ".join(str(t.directory) if t.directory is not None else "memory (cache=false)" for t in tables)


def _shared_table(
    prepared: PreparedData,
    transform: PrecomputedTransform,
    steps: int,
    settings: LoaderSettings,
    *,
    ctx: DistContext,
    device: torch.device,
    cache_dir: str | os.PathLike[str],
    progress: bool,
) -> EmbeddingTable:
    """Every clip's activations (``steps`` per clip); rank 0 builds the shared embedding cache first, the
    others then only open it."""
    cache = prepared.cache

    def open_table(persist: bool, show: bool) -> EmbeddingTable:
        return open_embeddings(
            cache,
            transform.embed,
            transform.identity(),
            steps=steps,
            dims=transform.n_bands,
            cache_root=cache_dir,
            device=device,
            persist=persist,
            batch_clips=settings.eval_batch_size,
            progress=show,
        )

    persist = bool(transform.cache)
    table = open_table(persist, progress) if ctx.is_main or not persist else None
    ctx.barrier()
    return table or open_table(persist, False)

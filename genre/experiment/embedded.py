"""A run on a frozen pretrained feature: its activations computed once per clip, training on their patch grid.

A frozen feature is a fixed function of the audio, so the run computes it once for every clip of the
audio cache (into the shared embedding cache, or into memory with ``feature.transform.cache=false``)
and the loaders then deliver activations instead of audio: random windows of whole patches for
training, every patch of a clip for evaluation. The backbone never runs inside a training step.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TypeGuard

import torch
from hydra.utils import get_class
from omegaconf import DictConfig
from torch import nn
from torch.utils.data import DataLoader

from genre.data.embedding_cache import EmbeddingTable, open_embeddings
from genre.data.embeddings import EmbeddingDataset
from genre.data.prepare import PreparedData
from genre.errors import ConfigError
from genre.features.pretrained import Musicnn
from genre.training.distributed import DistContext
from genre.training.loaders import eval_loader, train_loader

log = logging.getLogger(__name__)


def is_frozen_embedding(transform: nn.Module) -> TypeGuard[Musicnn]:
    """Whether a feature transform is a frozen pretrained network (its output is a fixed function of the audio)."""
    return isinstance(transform, Musicnn) and transform.frozen


@dataclass
class EmbeddedLoaders:
    """The run's loaders over the activations, and an evaluation segment's length in steps."""

    crops: DataLoader
    val: DataLoader
    test: DataLoader
    train_clips: DataLoader
    eval_segment: int
    table: EmbeddingTable


def _steps(transform: Musicnn, key: str, seconds: float, sample_rate: int) -> int:
    patches = transform.patches_in(round(seconds * sample_rate))
    if patches < 1:
        raise ConfigError(
            key, f"{seconds:g} s holds no whole {type(transform).__name__} patch (3 s)", f"Set {key}=3.0 or more"
        )
    return patches * transform.steps_per_patch


def _shared_table(
    cfg: DictConfig, prepared: PreparedData, transform: Musicnn, *, ctx: DistContext, device: torch.device, steps: int
) -> EmbeddingTable:
    """The clips' activations; rank 0 builds the shared cache first, the others then only open it."""

    def open_table(persist: bool, progress: bool) -> EmbeddingTable:
        return open_embeddings(
            prepared.cache,
            transform.embed,
            transform.identity(),
            steps=steps,
            dims=transform.n_bands,
            cache_root=cfg.paths.cache_dir,
            device=device,
            persist=persist,
            batch_clips=int(cfg.trainer.eval_batch_size),
            progress=progress,
        )

    persist = bool(getattr(transform, "cache", True))
    table = open_table(persist, bool(cfg.trainer.progress)) if ctx.is_main or not persist else None
    ctx.barrier()
    return table or open_table(persist, False)


def embedded_loaders(
    cfg: DictConfig, prepared: PreparedData, transform: Musicnn, *, ctx: DistContext, device: torch.device, seed: int
) -> EmbeddedLoaders:
    """Open (or compute) the activations of every clip and make the run's loaders over them."""
    if any(getattr(get_class(node._target_), "stage", None) == "waveform" for node in cfg.augment.values()):
        raise ConfigError(
            "augment",
            "waveform augmentations cannot apply to a frozen feature's cached activations",
            "Use augment=none (or feature.transform.trainable=true)",
        )
    trainer_cfg, rate = cfg.trainer, int(cfg.dataset.sample_rate)
    cache = prepared.cache
    steps = _steps(transform, "dataset.clip_seconds", cache.clip_samples / rate, rate)
    window = _steps(transform, "trainer.segment_seconds", float(trainer_cfg.segment_seconds), rate)
    segment = _steps(transform, "eval.segment_seconds", float(cfg.eval.segment_seconds), rate)

    table = _shared_table(cfg, prepared, transform, ctx=ctx, device=device, steps=steps)
    if ctx.is_main:
        where = table.directory if table.directory is not None else "memory (feature.transform.cache=false)"
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
    splits, workers, batch = prepared.splits, int(trainer_cfg.num_workers), int(trainer_cfg.eval_batch_size)
    per_patch = transform.steps_per_patch

    def clips(name: str, shard: bool = True) -> DataLoader:
        dataset = EmbeddingDataset(table, splits[name].rows, splits[name].targets, steps_per_patch=per_patch)
        return eval_loader(dataset, batch_size=batch, ctx=ctx, device=device, num_workers=workers, shard=shard)

    crops = EmbeddingDataset(
        table,
        splits["train"].rows,
        splits["train"].targets,
        window_steps=window,
        steps_per_patch=per_patch,
        seed=seed,
        crops_per_clip=int(trainer_cfg.crops_per_clip),
    )
    return EmbeddedLoaders(
        crops=train_loader(
            crops, batch_size=int(trainer_cfg.batch_size), seed=seed, ctx=ctx, device=device, num_workers=workers
        ),
        val=clips("val"),
        test=clips("test"),
        train_clips=clips("train", shard=False),
        eval_segment=segment,
        table=table,
    )

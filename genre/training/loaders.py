"""DataLoaders of a run: shuffled training crops sharded over ranks, whole clips for evaluation."""

from __future__ import annotations

from collections.abc import Sized
from typing import cast

import torch
from torch.utils.data import DataLoader, Dataset

from genre.run_files import Position
from genre.training.distributed import DistContext
from genre.training.sampling import EpochSampler


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

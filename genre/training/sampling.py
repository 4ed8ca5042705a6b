"""The training sampler: an order that depends only on (seed, epoch), sharded over processes, resumable."""

from __future__ import annotations

from collections.abc import Iterator

from torch.utils.data import Dataset, DistributedSampler


class EpochSampler(DistributedSampler):
    """``DistributedSampler`` (permutation seeded by ``seed + epoch``, one shard per rank) that can start
    part-way through an epoch.

    Used with one process too (``num_replicas=1``): because the order is a function of (seed, epoch)
    alone, a resumed run draws exactly the batches the interrupted one would have, and
    :meth:`set_start` skips the ones it had already trained on.
    """

    def __init__(self, dataset: Dataset, *, num_replicas: int, rank: int, seed: int, shuffle: bool = True) -> None:
        # Shards are padded to equal length, so every rank runs the same number of steps (DDP needs that).
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=False)
        self.start = 0

    def set_start(self, start: int) -> None:
        """Skip the first ``start`` samples of this rank's shard in the current epoch."""
        self.start = start

    def __iter__(self) -> Iterator[int]:
        return iter(list(super().__iter__())[self.start :])

    def __len__(self) -> int:
        return self.num_samples - self.start

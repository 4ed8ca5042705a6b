"""Data-parallel training over processes: who this process is, the process group, the collectives a run needs.

Two launches lead here. ``trainer.devices=N`` makes the run spawn N worker processes itself
(:func:`run_spawned`); a ``torchrun`` launch starts one process per device and describes it in the
environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``). Either way each
process trains a DistributedDataParallel replica on its own shard; NCCL connects GPUs, gloo CPUs.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from genre.core.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    """This process's place in the run: global rank, number of processes, rank on this machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """Whether there is more than one process (and so a process group)."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone logs, writes checkpoints and metrics."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait until every process gets here."""
        if self.enabled:
            dist.barrier()

    def gather(self, value: Any) -> list[Any]:
        """Every rank's ``value`` (picklable), in rank order, on every rank."""
        if not self.enabled:
            return [value]
        values: list[Any] = [None] * self.world_size
        dist.all_gather_object(values, value)
        return values

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank."""
        if not self.enabled:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over ranks, in place."""
        if self.enabled:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def any(self, flag: bool, device: torch.device) -> bool:
        """Whether ``flag`` is true on any rank (so every rank takes the same branch)."""
        if not self.enabled:
            return flag
        value = torch.tensor([1 if flag else 0], device=device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())


def gather_clips(ctx: DistContext, logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every rank's evaluation outputs of its shard (clips ``rank::world_size``), back in the split's clip order."""
    shards = ctx.gather((logits, targets))
    if len(shards) == 1:
        return logits, targets
    filled = [(rank, lg, t) for rank, (lg, t) in enumerate(shards) if len(t)]
    order = torch.cat(
        [torch.arange(rank, rank + ctx.world_size * len(t), ctx.world_size) for rank, _, t in filled]
    ).argsort()
    return torch.cat([lg for _, lg, _ in filled])[order], torch.cat([t for _, _, t in filled])[order]


def launched_by_torchrun() -> bool:
    """Whether this process is one of several started by ``torchrun`` (or another env:// launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def torchrun_context() -> DistContext:
    """This process's place as described by torchrun's environment variables."""
    return DistContext(
        rank=int(os.environ["RANK"]),
        world_size=int(os.environ["WORLD_SIZE"]),
        local_rank=int(os.environ.get("LOCAL_RANK", os.environ["RANK"])),
    )


def replica_device(device: torch.device, ctx: DistContext) -> torch.device:
    """The device of this rank: GPU number ``local_rank`` on CUDA, else the given device (CPU)."""
    if not ctx.enabled or device.type != "cuda":
        return device
    if ctx.local_rank >= torch.cuda.device_count():
        raise ConfigError(
            "trainer.devices",
            f"local rank {ctx.local_rank} has no GPU ({torch.cuda.device_count()} visible)",
            "Start at most one process per GPU",
        )
    return torch.device("cuda", ctx.local_rank)


def init_process_group(ctx: DistContext, device: torch.device, init_method: str = "env://") -> None:
    """Join the process group: NCCL between GPUs, gloo between CPU processes."""
    if device.type == "cuda":
        torch.cuda.set_device(device)  # NCCL collectives (and all_gather_object) use the current device
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, init_method=init_method, rank=ctx.rank, world_size=ctx.world_size)
    log.info("Process group: rank %d of %d, backend %s, device %s", ctx.rank, ctx.world_size, backend, device)


def destroy_process_group() -> None:
    """Leave the process group, if one was joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def state_fingerprint(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of a state dict's names, dtypes, shapes and bytes: equal exactly when the tensors are."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}\n".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _spawned(
    index: int, worker: Callable[..., None], world_size: int, init_method: str, results: Any, args: tuple[Any, ...]
) -> None:
    # A process group of its own: a terminal's Ctrl-C then reaches only the parent, which forwards it
    # once (two signals would mean "stop now, without saving").
    os.setpgrp()
    worker(DistContext(rank=index, world_size=world_size, local_rank=index), init_method, results, *args)


def run_spawned(worker: Callable[..., None], world_size: int, *args: Any) -> Any:
    """Run ``worker(ctx, init_method, results, *args)`` in ``world_size`` new processes; return what they
    put into ``results`` (``None`` if nothing).

    The worker must be a module-level function (it is pickled into the new processes). SIGINT and
    SIGTERM sent to this process are forwarded to the workers, which save and exit; an exception in
    a worker ends the others and is raised here.
    """
    context = mp.get_context("spawn")
    results = context.SimpleQueue()
    init_method = f"tcp://127.0.0.1:{_free_port()}"
    processes = mp.start_processes(
        _spawned,
        args=(worker, world_size, init_method, results, args),
        nprocs=world_size,
        join=False,
        start_method="spawn",
    )

    def forward(signum: int, frame: object) -> None:
        log.warning("%s received: forwarding it to the %d training processes", signal.Signals(signum).name, world_size)
        for pid in processes.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        previous = {signum: signal.signal(signum, forward) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not processes.join():
            pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return None if results.empty() else results.get()

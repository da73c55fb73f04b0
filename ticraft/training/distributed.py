"""Data parallelism across processes (torchrun / ``accelerate launch``), without wrapping any module.

The only trainable tensors are a few rows of shape ``[1, D]``, so DistributedDataParallel's bucketing
machinery buys nothing: after each backward the gradients are concatenated and averaged with a
single ``all_reduce``. Every process draws the same *global* batch from identically seeded
generators and computes the loss of its own slice, so N processes produce the same vectors as one
process with the same global batch.

Launchers set ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR``/``MASTER_PORT``; a process group
created by the caller is reused as is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import torch

from ticraft.errors import TicraftError


@dataclass
class DistInfo:
    """Where this process sits in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owned: bool = False  # we created the process group, so we tear it down

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def slice(self, batch: int) -> slice:
        """This process's part of a global batch of ``batch`` samples."""
        if batch % self.world_size:
            raise TicraftError(
                f"the batch size {batch} must be divisible by the number of processes {self.world_size}"
            )
        per = batch // self.world_size
        return slice(self.rank * per, (self.rank + 1) * per)


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the launcher's process group (gloo on CPU, nccl on CUDA) or return a one-process info."""
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), local, owned=False)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_available():
        raise TicraftError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        torch.cuda.set_device(local)
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), local, owned=True)


def shutdown_distributed(info: DistInfo, *, completed: bool) -> None:
    """Tear down the process group this run opened; after a completed run, wait for every rank first.

    Without the barrier a rank that finished early destroyed the group while its peer (rank 0, still
    writing files) had gloo threads in flight, and the peer aborted ("terminate called without an active
    exception"). ``completed`` means every rank finished the collective part (training): a rank that fails after
    it (rank 0 writing the result) still meets the others at the barrier. After an error during training there
    is no barrier: the other ranks may never reach it.
    """
    import torch.distributed as dist

    if info.owned and dist.is_initialized():
        if completed:
            dist.barrier()
        dist.destroy_process_group()


def pick_device(preference: str, info: DistInfo) -> torch.device:
    """``auto`` → this process's CUDA device (``LOCAL_RANK``) when there is one, else CPU.

    The same words as everywhere else: :func:`ticraft.devices.resolve_device` (the config file is not read here).
    """
    from ticraft.devices import resolve_device

    return resolve_device(preference, use_config=False)


def average_gradients(params: Sequence[torch.nn.Parameter], info: DistInfo) -> None:
    """Average the gradients of ``params`` over all processes with one ``all_reduce`` (no host sync)."""
    if not info.enabled:
        return
    import torch.distributed as dist

    with_grad = [p.grad for p in params if p.grad is not None]  # the tensors themselves: updated in place
    if not with_grad:
        return
    flat = torch.cat([g.reshape(-1) for g in with_grad])
    dist.all_reduce(flat)
    flat /= info.world_size
    offset = 0
    for g in with_grad:
        n = g.numel()
        g.copy_(flat[offset:offset + n].view_as(g))
        offset += n


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        import torch.distributed as dist

        dist.all_reduce(t)
    return t


def broadcast_from_first(params: Sequence[torch.Tensor], info: DistInfo) -> None:
    """Overwrite ``params`` (in place) with the first process's values, so that every process starts alike."""
    if not info.enabled or not params:
        return
    import torch.distributed as dist

    flat = torch.cat([p.detach().reshape(-1) for p in params])
    dist.broadcast(flat, src=0)
    offset = 0
    with torch.no_grad():
        for p in params:
            n = p.numel()
            p.copy_(flat[offset:offset + n].view_as(p))
            offset += n

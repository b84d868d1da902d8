"""DistributedDataParallel plumbing for ``torchrun --nproc_per_node=N -m styleforge.train ...``.

torchrun sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``; with
``WORLD_SIZE`` > 1 we join a process group (NCCL on CUDA, gloo on the CPU). Without them every
function here is a no-op, so the same loop serves one process and many.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_from_env(device: str = "auto") -> DistInfo:
    """Join the torchrun process group if there is one (backend chosen from ``device``)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    import torch.distributed as dist

    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(rank=rank, local_rank=local_rank, world_size=world_size)


def cleanup(info: DistInfo) -> None:
    if info.enabled:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        import torch.distributed as dist

        dist.barrier()


def wrap(module: nn.Module, info: DistInfo, device: torch.device) -> nn.Module:
    """``module`` itself in a single process, else a DDP wrapper sharing its parameters."""
    if not info.enabled or not any(p.requires_grad for p in module.parameters()):
        return module
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [device.index] if device.type == "cuda" else None
    # broadcast_buffers=False: BatchNorm statistics stay per rank (as in SyncBN-less CycleGAN DDP)
    # and the raw module can be called between DDP forwards without a buffer-version clash.
    return DistributedDataParallel(module, device_ids=device_ids, broadcast_buffers=False)


def mean(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Average a scalar tensor over ranks (for logging); identity in a single process."""
    if not info.enabled:
        return value
    import torch.distributed as dist

    value = value.detach().clone().float()
    dist.all_reduce(value)
    return value / info.world_size

"""Scale-out under torchrun: DistributedDataParallel over gloo (CPU) or nccl (GPU).

`torchrun --nproc_per_node N -m unifork_rt.cli train ...` sets RANK / WORLD_SIZE /
LOCAL_RANK; a plain `unifork-rt train` is a world of one and needs no process group. Only
rank 0 writes files and shows progress; every rank draws its own data (seeded by rank) and
DDP averages the gradients, so the weights stay identical on all ranks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as tdist

from ..errors import InputError


@dataclass(frozen=True)
class Dist:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    # --- collectives that are no-ops in a world of one --------------------------------
    def barrier(self) -> None:
        if self.enabled:
            tdist.barrier()

    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return t.clone()
        out = t.to(self.device).clone()
        tdist.all_reduce(out)
        return out.to(t.device)

    def broadcast(self, t: torch.Tensor) -> torch.Tensor:
        """Rank 0's value of t on every rank (same shape and dtype everywhere)."""
        if not self.enabled:
            return t
        out = t.to(self.device).contiguous()
        tdist.broadcast(out, 0)
        return out.to(t.device)

    def broadcast_int(self, value: int) -> int:
        return int(self.broadcast(torch.tensor([value], dtype=torch.int64)).item())

    def gather_objects(self, obj) -> list:
        """[obj of rank 0, obj of rank 1, ...] on every rank (JSON-like objects only)."""
        if not self.enabled:
            return [obj]
        out = [None] * self.world
        tdist.all_gather_object(out, obj)
        return out

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """DDP around the module that computes the loss (it must be called through forward)."""
        if not self.enabled:
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.local_rank] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)


def setup() -> Dist:
    """Join the torchrun process group if there is one (idempotent: the group is torch's)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if world > 1:
        cuda = torch.cuda.is_available()
        if cuda and local >= torch.cuda.device_count():
            raise InputError(f"process {local} of {os.environ.get('LOCAL_WORLD_SIZE', world)} on this node has no GPU of its own "
                             f"({torch.cuda.device_count()} visible; NCCL needs one per process): run torchrun with "
                             f"--nproc_per_node {torch.cuda.device_count()}, or CUDA_VISIBLE_DEVICES= to train on CPU over gloo")
        if cuda:
            torch.cuda.set_device(local)
        if not tdist.is_initialized():
            tdist.init_process_group(backend="nccl" if cuda else "gloo")
        device = torch.device("cuda", local) if cuda else torch.device("cpu")
    else:
        device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    return Dist(rank, world, local, device)


def teardown() -> None:
    if tdist.is_initialized():
        tdist.destroy_process_group()

"""Distributed encoding under ``torchrun`` (torch.distributed): every rank encodes its share of the corpus
shards into the shared embedding cache, then rank 0 searches, scores and writes the results.

    torchrun --nproc_per_node 8 -m llara_bench.harness.cli run --suite beir-local --data-root /data
    torchrun --nnodes 2 --nproc_per_node 8 --rdzv-endpoint host:29500 -m llara_bench.harness.cli run ...

NCCL on GPUs, gloo on CPUs (so it runs, and is tested, on a CPU machine with two processes). Across
nodes the cache (``LLARA_BENCH_CACHE``) must be a shared filesystem: ranks meet there, not over the wire.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from typing import Any

# Encoding a large corpus with a 7B model takes days; a rank waits at the barrier that long.
TIMEOUT = dt.timedelta(hours=float(os.environ.get("LLARA_BENCH_DIST_TIMEOUT_HOURS", "168")))


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def leader(self) -> bool:
        return self.rank == 0

    def owns(self, shard: int) -> bool:
        """Shards are dealt round-robin."""
        return shard % self.size == self.rank

    def barrier(self) -> None:
        if self.size > 1:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        """Wait for every rank, then leave the process group: a rank that exits while the others still use
        gloo or NCCL can abort ("terminate called without an active exception")."""
        if self.size > 1:
            import torch.distributed as dist

            dist.barrier()
            dist.destroy_process_group()

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if self.size == 1:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        if self.size == 1:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.size
        dist.all_gather_object(out, obj)
        return out


SINGLE = World()


def world() -> World:
    """This process's place: joins the process group when launched by torchrun (WORLD_SIZE > 1)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return SINGLE
    import torch
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank)  # NCCL's object collectives use the current device
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo", timeout=TIMEOUT)
    return World(rank=dist.get_rank(), size=dist.get_world_size(), local_rank=local_rank)

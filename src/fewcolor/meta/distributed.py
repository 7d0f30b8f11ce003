"""Data-parallel helpers for torchrun (gloo on CPU, nccl on GPU).

We average gradients ourselves (all-reduce after each phase's backward) instead of wrapping nets in
DistributedDataParallel: methods yield several phases with different optimisers (GANs, Reptile's
outer step), and one explicit all-reduce serves all of them. Buffers (BatchNorm statistics, memory
slots) are broadcast from rank 0 after every step, as DDP's ``broadcast_buffers`` does.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def init_from_env(device: torch.device) -> bool:
    """Initialise the process group when launched by torchrun (``WORLD_SIZE`` > 1)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or is_distributed():
        return is_distributed()
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend)
    return True


def broadcast_module(module: torch.nn.Module, src: int = 0) -> None:
    """Make every rank hold rank ``src``'s parameters and buffers."""
    if not is_distributed():
        return
    with torch.no_grad():
        tensors = [*module.parameters(), *module.buffers()]
        for t in tensors:
            dist.broadcast(t.data, src)
        # Collectives bypass the in-place version counter; bump it so caches derived from a tensor
        # (the colour memory's int8 key index) see the change.
        torch.autograd.graph.increment_version(tensors)


def broadcast_buffers(module: torch.nn.Module, src: int = 0) -> None:
    if not is_distributed():
        return
    with torch.no_grad():
        buffers = list(module.buffers())
        for b in buffers:
            dist.broadcast(b.data, src)
        torch.autograd.graph.increment_version(buffers)


def average_gradients(params: Iterable[torch.nn.Parameter]) -> None:
    """All-reduce and average ``.grad`` over ranks (missing grads count as zeros)."""
    if not is_distributed():
        return
    ws = float(world_size())
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
        p.grad.div_(ws)


def all_true(flag: bool) -> bool:
    """True only if ``flag`` is true on every rank (so all ranks skip a bad step together)."""
    if not is_distributed():
        return flag
    # NCCL reduces CUDA tensors only; gloo CPU ones
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


def barrier() -> None:
    if is_distributed():
        dist.barrier()

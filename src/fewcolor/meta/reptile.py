"""Reptile (Nichol, Achiam & Schulman 2018, Algorithm 1 / batched version Algorithm 2).

After ``N`` inner steps on a task from the meta-weights θ to fast weights θ̃, Reptile moves θ towards θ̃::

    θ ← θ + λ_ML · (θ̃ − θ)                                     (plain update, :func:`reptile_update_`)

The same update runs through any outer optimiser by treating ``θ − θ̃`` as a gradient: SGD with
``lr = λ_ML`` gives exactly the plain update (θ − λ_ML·(θ − θ̃)); Adam gives the "Reptile with Adam"
variant. :func:`reptile_grad` writes that gradient; a method then yields ``Phase(opt, None)`` and the
training loop averages ``.grad`` across ranks — averaging the deltas of the ranks' tasks is batched
Reptile (Algorithm 2) for free. :func:`meta_step_size` is the optional linear anneal of λ_ML (the
Reptile paper anneals the outer step size linearly to 0).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

from fewcolor.meta import distributed as dist_utils


def reptile_grad(params: Iterable[torch.Tensor], fast_params: Iterable[torch.Tensor], scale: float = 1.0,
                 accumulate: bool = False) -> None:
    """Write ``scale · (θ − θ̃)`` into each ``θ.grad`` (or add it when ``accumulate``).

    ``scale = 1/B`` with ``accumulate=True`` over B tasks gives the mean delta of a meta-batch.
    """
    params, fast_params = list(params), list(fast_params)
    if len(params) != len(fast_params):
        raise ValueError(f"reptile_grad: {len(params)} meta-parameters but {len(fast_params)} fast parameters")
    with torch.no_grad():
        for p, q in zip(params, fast_params, strict=True):
            delta = (p.detach() - q.detach().to(p)).mul_(scale)
            if accumulate and p.grad is not None:
                p.grad.add_(delta)
            else:
                p.grad = delta


def reptile_update_(params: Iterable[torch.Tensor], fast_params: Iterable[torch.Tensor], step_size: float) -> None:
    """The plain update in place: ``θ ← θ + λ_ML·(θ̃ − θ)``."""
    with torch.no_grad():
        for p, q in zip(list(params), list(fast_params), strict=True):
            p.add_(q.detach().to(p) - p, alpha=step_size)


def meta_step_size(step: int, total: int, start: float, end: float | None = None) -> float:
    """λ_ML at ``step``: constant ``start`` when ``end`` is None, else linear from ``start`` (step 0) to
    ``end`` (step ``total``), held at ``end`` afterwards."""
    if end is None or total <= 0:
        return float(start)
    frac = min(max(step / total, 0.0), 1.0)
    return float(start + (end - start) * frac)


def float_buffers(module: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """The floating-point buffers (BatchNorm running mean/var), not counters such as ``num_batches_tracked``."""
    return [(n, b) for n, b in module.named_buffers() if b.is_floating_point()]


def buffer_deltas(module: nn.Module, fast: nn.Module) -> list[torch.Tensor]:
    """``θ̃_buf − θ_buf`` for every floating-point buffer (same order as :func:`float_buffers`)."""
    fast_bufs = dict(fast.named_buffers())
    return [fast_bufs[n].detach().to(b) - b for n, b in float_buffers(module)]


def apply_buffer_deltas_(module: nn.Module, deltas: Sequence[torch.Tensor], step_size: float,
                         average_ranks: bool = True) -> None:
    """Move floating-point buffers by ``step_size · delta`` (the Reptile interpolation of BN statistics).

    With ``average_ranks`` the deltas are first averaged over torchrun ranks, as the loop averages gradients,
    so the buffers equal those of a single process running the ranks' tasks as one meta-batch.
    """
    bufs = float_buffers(module)
    if len(bufs) != len(deltas):
        raise ValueError(f"{len(deltas)} buffer deltas for {len(bufs)} floating-point buffers")
    with torch.no_grad():
        for (_, b), d in zip(bufs, deltas, strict=True):
            d = d.clone()
            if average_ranks and dist_utils.is_distributed():
                torch.distributed.all_reduce(d, op=torch.distributed.ReduceOp.SUM)
                d.div_(dist_utils.world_size())
            b.add_(d, alpha=step_size)

"""``torch.distributed`` helpers: who am I, how many are we, and an all-gather that keeps gradients.

contrastkit runs unchanged without ``torch.distributed``; these helpers answer ``rank() == 0``,
``world_size() == 1`` and ``is_distributed() == False`` when it is unavailable or not initialised.

:func:`gather_with_grad` is how the ``in-batch`` sampler gets every rank's embeddings as candidates
(SimCLR's "global" negatives). ``torch.distributed.all_gather`` has no autograd: the gathered copies
are leaves, so the negatives' part of the gradient would never reach the encoders that produced
them. :class:`GatherWithGrad` fixes that:

- forward: all-gather ``x [B, ...]`` of every rank -> ``[world_size * B, ...]`` in rank order;
- backward: **all-reduce (sum)** the incoming gradient ``[world_size * B, ...]`` over ranks and
  return this rank's slice ``[B, ...]``.

Why sum: rank ``r``'s slice is used by *every* rank's loss ``L_r'`` (as negatives), so its true
gradient is ``sum_r' dL_r' / dx_r`` — and each term lives on rank ``r'``. Summing the gathered
gradients over ranks collects them; slicing keeps the part that belongs to this rank's input. With
that, the gradient each rank computes for the shared parameters is ``d(sum_r' L_r') / d theta``
restricted to its own inputs, and ``DistributedDataParallel``'s *average* over ranks gives exactly
``d(mean_r L_r) / d theta``: the gradient of one process holding the whole global batch (whose loss,
a mean over anchors, is ``mean_r L_r`` when every rank has the same batch size). Without the sum
(returning only the local slice of the local gradient, as some implementations do) the gradient
through the negatives would be too small by a factor ``world_size``.

Every rank must call it the same number of times, in the same order, with tensors of the same shape
(``DistributedSampler`` with ``drop_last=True`` keeps per-rank batches equal). The backward's
all-reduce is a collective too: it runs when autograd reaches the node, which happens in the same
order on every rank because every rank builds the same graph. A reduce-scatter would halve the
backward's traffic; embeddings are small (``[B, D]``), and gloo has no reduce-scatter, so the
all-reduce is used on every backend.

Example:
    >>> import torch
    >>> is_distributed(), rank(), world_size()
    (False, 0, 1)
    >>> x = torch.randn(3, 2, requires_grad=True)
    >>> gathered = gather_with_grad(x)   # one process: an autograd-tracked copy of x
    >>> gathered.shape, bool(torch.equal(gathered, x))
    (torch.Size([3, 2]), True)
    >>> gathered.sum().backward()
    >>> x.grad.tolist() == torch.ones(3, 2).tolist()
    True
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = [
    "GatherWithGrad",
    "all_gather_objects",
    "barrier",
    "gather_stored_rows",
    "gather_with_grad",
    "init_from_environment",
    "is_distributed",
    "launched_by_torchrun",
    "local_rank",
    "rank",
    "shutdown",
    "world_size",
]


def is_distributed() -> bool:
    """Whether ``torch.distributed`` is available and its default process group is initialised.

    Example:
        >>> is_distributed()
        False
    """
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank in the default group (``0`` when not distributed).

    Example:
        >>> rank()
        0
    """
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """The number of processes in the default group (``1`` when not distributed).

    Example:
        >>> world_size()
        1
    """
    return dist.get_world_size() if is_distributed() else 1


def launched_by_torchrun() -> bool:
    """Whether this process was started by ``torchrun`` with more than one process in the job.

    ``torchrun`` sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``.

    Example:
        >>> launched_by_torchrun()
        False
    """
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def local_rank() -> int:
    """This process's rank on its node (``LOCAL_RANK`` from ``torchrun``; ``0`` otherwise).

    Example:
        >>> local_rank()
        0
    """
    return int(os.environ.get("LOCAL_RANK", "0"))


def init_from_environment(device: torch.device) -> torch.device:
    """Join the ``torchrun`` job (if any) and return the device this process trains on.

    Under ``torchrun`` with ``WORLD_SIZE > 1`` the default process group is initialised from the
    environment (``env://``): ``nccl`` for CUDA, ``gloo`` otherwise. A CUDA device becomes
    ``cuda:LOCAL_RANK`` (one GPU per process). Anything else (a plain ``python -m contrastkit``, or
    a group the caller already initialised) leaves the group alone and returns ``device``.

    Example:
        >>> import torch
        >>> init_from_environment(torch.device("cpu"))
        device(type='cpu')
    """
    if device.type == "cuda" and (launched_by_torchrun() or is_distributed()):
        device = torch.device("cuda", local_rank())
        torch.cuda.set_device(device)
    if launched_by_torchrun() and not is_distributed():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", init_method="env://")
    return device


def shutdown() -> None:
    """Leave the process group that :func:`init_from_environment` joined (no-op when not distributed).

    Example:
        >>> shutdown()
    """
    if is_distributed():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every rank (no-op when not distributed).

    Example:
        >>> barrier()
    """
    if is_distributed() and world_size() > 1:
        dist.barrier()


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` in rank order (``[obj]`` when not distributed); picklable objects only.

    Used off the hot path (checkpoints: each rank's RNG state).

    Example:
        >>> all_gather_objects({"rank": 0})
        [{'rank': 0}]
    """
    if not is_distributed() or world_size() == 1:
        return [obj]
    gathered: list[Any] = [None] * world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


class GatherWithGrad(torch.autograd.Function):
    """All-gather along dim 0 whose backward sums the gradient over ranks and returns the local slice.

    Use :func:`gather_with_grad`; the module docstring explains why the backward sums.

    Example:
        >>> import torch
        >>> x = torch.ones(2, 2, requires_grad=True)
        >>> GatherWithGrad.apply(x).mul(3).sum().backward()   # one process: identity
        >>> x.grad.tolist()
        [[3.0, 3.0], [3.0, 3.0]]
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        size = world_size()
        ctx.rank, ctx.world_size, ctx.batch = rank(), size, x.shape[0]
        if size == 1:
            return x.clone()
        parts = [torch.empty_like(x) for _ in range(size)]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        if ctx.world_size == 1:
            return grad
        grad = grad.contiguous().clone()  # all_reduce works in place; autograd's buffer is not ours
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = ctx.rank * ctx.batch
        return grad[start : start + ctx.batch]


def gather_with_grad(x: Tensor) -> Tensor:
    """Every rank's ``x [B, ...]`` concatenated in rank order, ``[world_size * B, ...]``, with gradients.

    Rows ``rank() * B`` to ``(rank() + 1) * B`` are this rank's ``x``. Without ``torch.distributed``
    (or with one process) it returns an autograd-tracked copy of ``x``.

    Example:
        >>> import torch
        >>> gather_with_grad(torch.ones(2, 3)).shape
        torch.Size([2, 3])
    """
    return GatherWithGrad.apply(x)


def gather_stored_rows(rows: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
    """Every rank's ``rows [M, B, D]`` and ``index [B]``, concatenated in rank order (no gradient).

    What stateful samplers (memory bank, queue) write each step, so every rank stores the same
    thing. A no-op without ``torch.distributed`` or with one process.

    Example:
        >>> import torch
        >>> rows, index = gather_stored_rows(torch.zeros(2, 3, 4), torch.arange(3))
        >>> tuple(rows.shape), index.tolist()
        ((2, 3, 4), [0, 1, 2])
    """
    if world_size() == 1:
        return rows, index
    import torch.distributed as dist

    world = world_size()
    rows, index = rows.contiguous(), index.contiguous()
    gathered = [torch.empty_like(rows) for _ in range(world)]
    indices = [torch.empty_like(index) for _ in range(world)]
    dist.all_gather(gathered, rows)
    dist.all_gather(indices, index)
    return torch.cat(gathered, dim=1), torch.cat(indices)

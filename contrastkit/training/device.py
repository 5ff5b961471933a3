"""Device and precision: which device a run uses, its autocast context, determinism switches and DDP.

Example:
    >>> select_device("cpu")
    device(type='cpu')
    >>> with autocast(torch.device("cpu"), "32"):
    ...     pass
"""

from __future__ import annotations

import contextlib
import inspect
import os
from typing import Any, Literal

import torch
from torch import nn

from contrastkit.errors import ConfigError

__all__ = ["autocast", "data_parallel", "select_device", "setup_determinism"]


def select_device(requested: str) -> torch.device:
    """``auto`` -> cuda, then mps, then cpu; an explicit device must be available.

    Example:
        >>> select_device("cpu")
        device(type='cpu')
    """
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device: CUDA is not available on this machine; use 'auto' or 'cpu' (got {requested!r})")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"train.device: no such GPU; this machine has {torch.cuda.device_count()} (got {requested!r})")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"train.device: MPS is not available on this machine; use 'auto' or 'cpu' (got {requested!r})")
    return device


def setup_determinism(device: torch.device, *, deterministic: bool) -> None:
    """Deterministic kernels when asked (only switched where they change kernels), else cuDNN autotuning.

    Example:
        >>> setup_determinism(torch.device("cpu"), deterministic=True)
        >>> torch.backends.cudnn.deterministic
        True
    """
    if deterministic:
        if device.type != "cpu":
            # The CPU kernels contrastkit uses are deterministic already; the switch itself imports
            # torch's compiler stack (seconds), so it is only flipped where it changes kernels.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def autocast(device: torch.device, precision: Literal["32", "bf16", "fp16"] | str) -> contextlib.AbstractContextManager[Any]:
    """The forward pass's autocast context for ``train.precision`` (``"32"``: none).

    Example:
        >>> with autocast(torch.device("cpu"), "bf16"):
        ...     torch.ones(2, 2) @ torch.ones(2, 2)
        tensor([[2., 2.],
                [2., 2.]], dtype=torch.bfloat16)
    """
    if precision == "32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def data_parallel(module: nn.Module, device: torch.device, *, world_size: int) -> nn.Module:
    """``DistributedDataParallel`` around the pipeline under ``torchrun`` (the module itself otherwise).

    One wrapper for the encoders, the critic's heads and a trainable view maker: every parameter
    that needs a gradient is all-reduced (averaged) after each backward. Buffers are not
    broadcast at each forward: the memory bank, the queue and NCE's Z are kept identical by the
    samplers' own all-gathers, and batch norm statistics stay per rank unless
    ``train.sync_batchnorm``. Checkpoints store the unwrapped pipeline, so ``eval`` and ``export``
    read them as a one-process run's.

    Example:
        >>> layer = nn.Linear(2, 2)
        >>> data_parallel(layer, torch.device("cpu"), world_size=1) is layer
        True
    """
    if world_size == 1 or not any(p.requires_grad for p in module.parameters()):
        return module
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [device.index] if device.type == "cuda" else None
    # Buffers are synced once, at wrapping (every rank built the same pipeline anyway), not per forward.
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters:
        return DistributedDataParallel(module, device_ids=device_ids, forward_sync_buffers=False)
    return DistributedDataParallel(module, device_ids=device_ids, broadcast_buffers=False)

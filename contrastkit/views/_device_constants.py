"""Small constant tensors (colour matrices, camera intrinsics) cached on each device.

A training step that builds ``torch.tensor([...], device="cuda")`` copies from the host every
time; the view makers take their constants from here instead, built once per values, device and
dtype.

Example:
    >>> import torch
    >>> a = device_constant((1.0, 2.0), torch.device("cpu"), torch.float32)
    >>> a is device_constant((1.0, 2.0), torch.device("cpu"), torch.float32)
    True
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

__all__ = ["device_constant"]


@functools.lru_cache(maxsize=256)
def device_constant(values: tuple[float, ...], device: torch.device, dtype: torch.dtype) -> Tensor:
    """A 1-D tensor of ``values`` on ``device``, built once and cached (do not modify it in place).

    Built outside inference mode: a cached inference tensor would break a later backward pass
    through it.

    Example:
        >>> import torch
        >>> device_constant((0.5,), torch.device("cpu"), torch.float64).tolist()
        [0.5]
    """
    with torch.inference_mode(False):
        return torch.tensor(values, device=device, dtype=dtype)

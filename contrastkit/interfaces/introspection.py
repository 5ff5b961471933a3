"""What contrastkit reads off any component: its name in messages, and whether it trains.

Example:
    >>> import torch
    >>> describe(torch.nn.ReLU()), is_trainable(torch.nn.ReLU())
    ('ReLU', False)
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["describe", "is_trainable"]


def describe(obj: Any) -> str:
    """A short name for an object in messages: its registered name if it has one, else its class.

    Example:
        >>> describe(3)
        'int'
    """
    return str(getattr(obj, "registered_name", None) or type(obj).__name__)


def is_trainable(module: Any) -> bool:
    """Whether ``module`` is an ``nn.Module`` with at least one parameter that requires grad.

    Example:
        >>> import torch
        >>> is_trainable(torch.nn.Linear(2, 2)), is_trainable(torch.nn.ReLU())
        (True, False)
    """
    return isinstance(module, torch.nn.Module) and any(p.requires_grad for p in module.parameters())

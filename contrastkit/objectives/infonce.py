"""``infonce``: CMC's contrastive loss, InfoNCE, with its mutual-information lower bound.

For an anchor ``v1`` with positive ``v2+`` and ``K`` negatives ``v2-``, with critic logits
``s = cos(z1, z2) / tau``::

    L(V1 -> V2) = -E[ log( exp(s+) / (exp(s+) + sum_k exp(s-_k)) ) ]

and the two-way form (CMC) ``L(V1, V2) = L(V1 -> V2) + L(V2 -> V1)``; contrastkit scores both
directions when ``two_way = true``. Each direction bounds the views' mutual information:
``I(V1; V2) >= log(K + 1) - L(V1 -> V2)``.

Example:
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    >>> round(float(info_nce(logits, torch.tensor([0, 1]))), 4)
    0.2395
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["InfoNCE", "info_nce", "info_nce_mi_bound"]


def info_nce(logits: Tensor, target: Tensor) -> Tensor:
    """InfoNCE of ``logits [B, K+1]`` whose positive is at column ``target [B]``; mean over anchors.

    Computed as a cross-entropy (one fused log-softmax, no copy of the negatives).

    Example:
        >>> import torch
        >>> round(float(info_nce(torch.zeros(3, 4), torch.zeros(3, dtype=torch.long))), 4)  # log 4
        1.3863
    """
    return F.cross_entropy(logits, target)


def info_nce_mi_bound(loss: Tensor, num_negatives: int) -> Tensor:
    """The mutual-information lower bound ``log(K + 1) - L`` (in nats) for one direction.

    Example:
        >>> import torch
        >>> round(float(info_nce_mi_bound(torch.tensor(0.5), 7)), 4)
        1.5794
    """
    return math.log(num_negatives + 1) - loss


class InfoNCE(nn.Module):
    """InfoNCE objective (CMC's ``L_contrast``); ``two_way`` adds the reverse direction.

    Example:
        >>> import torch
        >>> objective = InfoNCE(two_way=True)
        >>> float(objective(torch.tensor([[5.0, -5.0]]), torch.tensor([0]))) < 1e-3
        True
    """

    def __init__(self, *, two_way: bool = True) -> None:
        super().__init__()
        self.two_way = two_way

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Scalar loss for one direction: ``logits [B, K+1]``, ``target [B]``."""
        return info_nce(logits, target)

    def mi_lower_bound(self, loss: Tensor, num_negatives: int) -> Tensor:
        """``log(K + 1) - loss``."""
        return info_nce_mi_bound(loss, num_negatives)

    def extra_repr(self) -> str:
        return f"two_way={self.two_way}"


"""``infonce``: CMC's contrastive loss, InfoNCE, with its mutual-information lower bound.

For an anchor ``v1`` with positive ``v2+`` and ``K`` negatives ``v2-``, with critic logits
``s = cos(z1, z2) / tau``::

    L(V1 -> V2) = -E[ log( exp(s+) / (exp(s+) + sum_k exp(s-_k)) ) ]

and the two-way form (CMC) ``L(V1, V2) = L(V1 -> V2) + L(V2 -> V1)``; contrastkit scores both
directions when ``two_way = true``. Each direction bounds the views' mutual information:
``I(V1; V2) >= log(K + 1) - L(V1 -> V2)``; contrastkit logs the mean of the two directions' bounds.

SimCLR's NT-Xent (Chen et al. 2020) is the same loss with more negatives: each of the ``2N`` views
of a batch of ``N`` images is an anchor whose candidates are the other ``2N - 1`` views — its
positive plus ``2N - 2`` negatives, ``N - 1`` from the *other* view (as in CMC) and ``N - 1`` from
its *own* view::

    l(i, j) = -log( exp(s_ij) / sum_{k != i} exp(s_ik) ),   L_NT-Xent = 1/(2N) sum_k [l(2k-1, 2k) + l(2k, 2k-1)]

``same_view_negatives = true`` asks the negative sampler for these extra candidates (the pipeline
passes ``same_view=True`` to ``pair_logits``; ``in-batch`` supports it, a sampler whose
``pair_logits`` takes no ``same_view`` keyword is refused when the pipeline is built). Then
``K = 2B - 2`` and the reported bound is ``log(2B - 1) - L`` per direction. The bound proper assumes
negatives drawn from the other view's marginal; with same-view negatives it is the same formula
with the true ``K``, as SimCLR-style papers report it.

How the two-way sum maps to SimCLR's mean: ``L(V1 -> V2)`` is the mean of ``l`` over the ``N``
anchors of view 1 and ``L(V2 -> V1)`` over those of view 2, so ``L(V1, V2) = 2 * L_NT-Xent`` (the
loss logged as ``loss/v1-v2``). The factor 2 only scales the gradient (halve the learning rate to
match a SimCLR recipe with plain SGD; Adam/LARS-style optimisers are scale-invariant up to their
epsilon). With ``two_way = false`` only view 1's anchors are scored, half of NT-Xent's anchors.

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

    ``same_view_negatives = True`` makes it SimCLR's NT-Xent: the pipeline then asks the negative
    sampler for the anchor view's other samples as extra negatives (``K = 2B - 2`` in-batch).

    Example:
        >>> import torch
        >>> objective = InfoNCE(two_way=True)
        >>> float(objective(torch.tensor([[5.0, -5.0]]), torch.tensor([0]))) < 1e-3
        True
        >>> InfoNCE(same_view_negatives=True)
        InfoNCE(two_way=True, same_view_negatives=True)
    """

    def __init__(self, *, two_way: bool = True, same_view_negatives: bool = False) -> None:
        super().__init__()
        self.two_way = two_way
        #: Read by the pipeline: pass ``same_view=True`` to the sampler's ``pair_logits`` (NT-Xent).
        self.same_view_negatives = same_view_negatives

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Scalar loss for one direction: ``logits [B, K+1]``, ``target [B]``."""
        return info_nce(logits, target)

    def mi_lower_bound(self, loss: Tensor, num_negatives: int) -> Tensor:
        """``log(K + 1) - loss``."""
        return info_nce_mi_bound(loss, num_negatives)

    def extra_repr(self) -> str:
        return f"two_way={self.two_way}, same_view_negatives={self.same_view_negatives}"


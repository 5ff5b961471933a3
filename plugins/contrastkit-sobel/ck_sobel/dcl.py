"""``dcl``: the Decoupled Contrastive Learning loss (Yeh et al., "Decoupled Contrastive Learning", 2021).

InfoNCE keeps the positive in its own denominator, which couples the gradient of the positive to
how easy the negatives are (the "negative-positive coupling" that makes InfoNCE need large batches).
DCL removes the positive from the denominator. For an anchor with positive logit ``s+`` and
negative logits ``s-_1 .. s-_K`` (the critic's scores, temperature already applied)::

    L = -s+ + log sum_k exp(s-_k)          (mean over anchors)

With contrastkit's :class:`~contrastkit.interfaces.PairLogits` layout (``logits [B, K+1]``, the
positive at column ``target[b]``) that is ``logsumexp`` over the row with the positive column set to
``-inf``, minus the positive logit: one vectorised pass, no copy of the negatives per anchor.

Columns that are ``-inf`` (excluded candidates, e.g. empty memory-bank slots) contribute nothing. An
anchor left with no finite negative has no DCL term; it is dropped from the mean (its gradient is
zero, not NaN), and a batch with no usable anchor gives a loss of 0.

Example:
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    >>> round(float(decoupled_contrastive_loss(logits, torch.tensor([0, 1]))), 4)  # -2 + log 2
    -1.3069
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from contrastkit.errors import ShapeError

__all__ = ["DecoupledContrastiveLoss", "decoupled_contrastive_loss"]


def decoupled_contrastive_loss(logits: Tensor, target: Tensor) -> Tensor:
    """DCL of ``logits [B, K+1]`` whose positive is at column ``target [B]``: ``mean(-s+ + logsumexp(s-))``.

    Unlike InfoNCE the loss can be negative (it is not a cross-entropy): it falls without bound as
    the positive's logit rises above the negatives'.

    Example:
        >>> import torch
        >>> logits = torch.zeros(3, 4)  # every score equal: -0 + log 3 for each anchor
        >>> round(float(decoupled_contrastive_loss(logits, torch.zeros(3, dtype=torch.long))), 4)
        1.0986
        >>> logits[:, 3] = float("-inf")  # an excluded column: -0 + log 2
        >>> round(float(decoupled_contrastive_loss(logits, torch.zeros(3, dtype=torch.long))), 4)
        0.6931
    """
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ShapeError(f"objectives.dcl: logits must be [B, K+1] with K >= 1, got {tuple(logits.shape)}")
    if target.shape != logits.shape[:1]:
        raise ShapeError(f"objectives.dcl: target must be [B] = [{logits.shape[0]}], got {tuple(target.shape)}")
    column = target.long().unsqueeze(1)
    positive = logits.gather(1, column).squeeze(1)  # [B]
    negatives = logits.scatter(1, column, float("-inf"))  # [B, K+1], positive excluded (out of place)
    usable = (negatives > float("-inf")).any(dim=1)  # [B]: anchors with at least one negative
    # Rows with no negative would give logsumexp = -inf and NaN gradients: compute them on zeros
    # and drop them with `where`, whose backward masks instead of multiplying.
    negatives = torch.where(usable.unsqueeze(1), negatives, torch.zeros_like(negatives))
    per_anchor = torch.logsumexp(negatives, dim=1) - positive
    per_anchor = torch.where(usable, per_anchor, torch.zeros_like(per_anchor))
    return per_anchor.sum() / usable.sum().clamp_min(1).to(per_anchor.dtype)


class DecoupledContrastiveLoss(nn.Module):
    """The DCL objective; ``two_way`` scores both directions of each view pair and adds them (as CMC).

    :meth:`mi_lower_bound` returns ``None``: DCL is not a bound on mutual information. InfoNCE's
    ``I(V1; V2) >= log(K + 1) - L`` holds because InfoNCE is the cross-entropy of picking the
    positive among ``K + 1`` candidates, so ``L >= 0`` and ``log(K + 1) - L <= log(K + 1)``.
    Without the positive in the denominator, DCL is no such log-likelihood: it goes to ``-inf`` as
    the positive's score grows, and ``log(K + 1) - L`` would report arbitrarily large "bounds".
    contrastkit then simply logs no ``mi_lower_bound/*`` metric for the run.

    Example:
        >>> import torch
        >>> objective = DecoupledContrastiveLoss(two_way=False)
        >>> loss = objective(torch.tensor([[5.0, -5.0]]), torch.tensor([0]))
        >>> float(loss), objective.mi_lower_bound(loss, 1), objective.two_way
        (-10.0, None, False)
    """

    def __init__(self, *, two_way: bool = True) -> None:
        super().__init__()
        self.two_way = two_way

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Scalar loss for one direction: ``logits [B, K+1]``, ``target [B]``."""
        return decoupled_contrastive_loss(logits, target)

    def mi_lower_bound(self, loss: Tensor, num_negatives: int) -> None:
        """Always ``None``: DCL implies no bound on the views' mutual information (see the class doc)."""
        return None

    def extra_repr(self) -> str:
        return f"two_way={self.two_way}"

"""``triplet``: the margin triplet loss (FaceNet), on the critic's logits, with negative mining.

SimCLR (Chen et al., 2020, Table 2) compares its NT-Xent loss with the margin triplet loss of
FaceNet (Schroff et al., 2015, "FaceNet: A Unified Embedding for Face Recognition and
Clustering"), written for unit vectors as ``max(u.v- - u.v+ + m, 0)``. Here it is applied to the
critic's logits ``s`` (``s = cos(z1, z2) / tau`` for the cosine critic): for an anchor with
positive ``s+`` and negatives ``s-_1 .. s-_K``::

    l(s+, s-_k) = max(0, m - s+ + s-_k)

    L(V1 -> V2) = E[ mean_k l(s+, s-_k) ]       mining = "all"
                = E[ l(s+, s-_h) ]              mining = "hardest":   h = argmax_k s-_k
                = E[ l(s+, s-_h) ]              mining = "semi-hard": h = argmax of s-_k over
                                                  s+ - m < s-_k < s+, else argmax_k s-_k

``"all"`` averages over *every* non-excluded negative of the anchor, zero terms included (not only
the active ones, whose number changes as pairs cross the margin and would make the loss jump).
``"semi-hard"`` is FaceNet's rule: negatives scored below the positive but inside the margin, the
hardest of them; when an anchor has none it falls back to its hardest negative. Its window moves
with ``s+``, so raising the positive can select a harder negative and raise the loss (``"all"``
and ``"hardest"`` never rise when the positive rises). Mining chooses
the negative without gradient; the loss is differentiable in the chosen negative and the positive.
Columns set to ``-inf`` are excluded; an anchor with no negative left contributes 0. The result is
the mean over anchors.

The margin ``m`` is in logit units. With the cosine critic at temperature ``tau`` a cosine margin
``m_cos`` is ``m = m_cos / tau``, and then ``l = max(0, m_cos - cos+ + cos-) / tau``: for a fixed
cosine margin the temperature only scales the loss and its gradients by ``1 / tau``.

Example:
    >>> import torch
    >>> logits = torch.tensor([[2.0, 1.5, -3.0], [0.0, 1.0, 0.5]])
    >>> round(float(margin_triplet(logits, torch.tensor([0, 1]), margin=1.0)), 4)  # ((0.5 + 0) / 2 + (0 + 0.5) / 2) / 2
    0.25
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.errors import InvalidParameter
from contrastkit.objectives._columns import split_positive

__all__ = ["MarginTriplet", "Mining", "margin_triplet"]

#: Which negatives of an anchor enter its loss.
Mining = Literal["all", "hardest", "semi-hard"]
_MINING: tuple[str, ...] = get_args(Mining)


def _check(margin: float, mining: str) -> None:
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not math.isfinite(margin) or margin <= 0:
        raise InvalidParameter("margin", "must be a finite number > 0 (in logit units)", margin)
    if mining not in _MINING:
        raise InvalidParameter("mining", "must be one of " + ", ".join(repr(m) for m in _MINING), mining)


@torch.no_grad()
def _mine(positive: Tensor, negatives: Tensor, valid: Tensor, margin: float, mining: str) -> Tensor:
    """The chosen negative's column per anchor ``[B]`` for ``"hardest"`` / ``"semi-hard"``."""
    scores = negatives.masked_fill(~valid, float("-inf"))
    hardest = scores.argmax(1)
    if mining == "hardest":
        return hardest
    p = positive[:, None]
    window = valid & (negatives < p) & (negatives > p - margin)
    semi_hard = scores.masked_fill(~window, float("-inf")).argmax(1)
    return torch.where(window.any(1), semi_hard, hardest)


def margin_triplet(logits: Tensor, target: Tensor, *, margin: float = 1.0, mining: Mining = "all") -> Tensor:
    """Margin triplet loss of ``logits [B, K+1]`` whose positive is at column ``target [B]``; mean over anchors.

    ``margin`` is in logit units (``cosine margin / tau`` with the cosine critic); ``mining`` picks
    the negatives: ``"all"``, ``"hardest"`` or ``"semi-hard"`` (see the module docstring).

    Example:
        >>> import torch
        >>> logits, target = torch.tensor([[1.0, 0.8, 0.2, -2.0]]), torch.tensor([0])
        >>> [round(float(margin_triplet(logits, target, margin=0.5, mining=m)), 4) for m in ("all", "hardest")]
        [0.1, 0.3]
        >>> logits = torch.tensor([[0.0, 0.3, -0.2]])  # -0.2 is semi-hard, 0.3 is harder than the positive
        >>> [round(float(margin_triplet(logits, target, margin=0.5, mining=m)), 4) for m in ("semi-hard", "hardest")]
        [0.3, 0.8]
    """
    _check(margin, mining)
    positive, negatives, valid = split_positive(logits, target, name="triplet")
    hinge = F.relu(margin - positive[:, None] + negatives)
    if mining == "all":
        per_anchor = (hinge * valid).sum(1) / valid.sum(1).clamp_min(1)
    else:
        chosen = _mine(positive.detach(), negatives.detach(), valid, margin, mining)
        per_anchor = hinge.gather(1, chosen[:, None]).squeeze(1) * valid.any(1)
    return per_anchor.mean()


class MarginTriplet(nn.Module):
    """Margin triplet objective (FaceNet; SimCLR, Table 2); ``two_way`` adds the reverse direction.

    Example:
        >>> import torch
        >>> objective = MarginTriplet(margin=1.0, mining="hardest")
        >>> float(objective(torch.tensor([[3.0, 1.0, 2.5]]), torch.tensor([0])))
        0.5
        >>> objective.mi_lower_bound(torch.tensor(0.5), 2) is None
        True
    """

    def __init__(self, *, two_way: bool = True, margin: float = 1.0, mining: Mining = "all") -> None:
        super().__init__()
        _check(margin, mining)
        self.two_way = two_way
        self.margin = float(margin)
        self.mining: Mining = mining

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Scalar loss for one direction: ``logits [B, K+1]``, ``target [B]``."""
        return margin_triplet(logits, target, margin=self.margin, mining=self.mining)

    def mi_lower_bound(self, loss: Tensor, num_negatives: int) -> None:
        """``None``: the triplet loss implies no bound on the views' mutual information."""

    def extra_repr(self) -> str:
        return f"two_way={self.two_way}, margin={self.margin}, mining={self.mining!r}"

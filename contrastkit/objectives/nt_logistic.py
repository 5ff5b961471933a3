"""``nt-logistic``: SimCLR's normalised, temperature-scaled logistic loss (NT-Logistic).

SimCLR (Chen et al., 2020, "A Simple Framework for Contrastive Learning of Visual
Representations", Table 2) writes it per (positive, negative) pair of unit vectors ``u, v+, v-``
as ``log sigma(u.v+ / tau) + log sigma(-u.v- / tau)`` (to be maximised), the logistic loss of
word2vec's negative sampling (Mikolov et al., 2013). Here the logits ``s`` come from the critic
(``s = cos(z1, z2) / tau`` for the cosine critic), so for an anchor with positive ``s+`` and
negatives ``s-_1 .. s-_K``::

    L(V1 -> V2) = E[ -log sigma(s+) - sum_k w_k log sigma(-s-_k) ]
                = E[ softplus(-s+) + sum_k w_k softplus(s-_k) ]

with ``w_k = 1 / K`` (``negative_weighting = "mean"``: the mean of Table 2's per-pair loss over
the anchor's ``K`` pairs, so the positive and the negatives weigh equally) or ``w_k = 1``
(``"sum"``: word2vec's form, one term per negative). Columns set to ``-inf`` are excluded:
they add nothing and do not count in ``K``. Unlike InfoNCE, each pair is scored on its own (no
softmax across the candidates), so the loss implies no mutual-information bound.

Example:
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 2.0, float("-inf")]])
    >>> round(float(nt_logistic(logits, torch.tensor([0, 1]))), 4)
    0.7251
"""

from __future__ import annotations

from typing import Literal, get_args

import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.errors import InvalidParameter
from contrastkit.objectives._columns import split_positive

__all__ = ["NTLogistic", "NegativeWeighting", "nt_logistic"]

#: How the ``K`` negative terms of one anchor are combined.
NegativeWeighting = Literal["mean", "sum"]
_WEIGHTINGS: tuple[str, ...] = get_args(NegativeWeighting)


def _check_weighting(negative_weighting: str) -> None:
    if negative_weighting not in _WEIGHTINGS:
        raise InvalidParameter(
            "negative_weighting", "must be one of " + ", ".join(repr(w) for w in _WEIGHTINGS), negative_weighting
        )


def nt_logistic(logits: Tensor, target: Tensor, *, negative_weighting: NegativeWeighting = "mean") -> Tensor:
    """NT-Logistic of ``logits [B, K+1]`` whose positive is at column ``target [B]``; mean over anchors.

    ``negative_weighting = "mean"`` averages the negative terms over the anchor's non-excluded
    negatives (an anchor with none gets only its positive term); ``"sum"`` adds them.

    Example:
        >>> import torch
        >>> logits, target = torch.zeros(2, 5), torch.zeros(2, dtype=torch.long)
        >>> round(float(nt_logistic(logits, target)), 4)  # 2 log 2
        1.3863
        >>> round(float(nt_logistic(logits, target, negative_weighting="sum")), 4)  # 5 log 2
        3.4657
    """
    _check_weighting(negative_weighting)
    positive, negatives, valid = split_positive(logits, target, name="nt-logistic")
    positive_term = F.softplus(-positive)  # -log sigma(s+)
    negative_terms = F.softplus(negatives) * valid  # -log sigma(-s-), 0 where excluded
    negative_term = negative_terms.sum(1)
    if negative_weighting == "mean":
        negative_term = negative_term / valid.sum(1).clamp_min(1)
    return (positive_term + negative_term).mean()


class NTLogistic(nn.Module):
    """NT-Logistic objective (SimCLR, Table 2); ``two_way`` adds the reverse direction.

    Example:
        >>> import torch
        >>> objective = NTLogistic(negative_weighting="mean")
        >>> float(objective(torch.tensor([[10.0, -10.0, -10.0]]), torch.tensor([0]))) < 1e-3
        True
        >>> objective.mi_lower_bound(torch.tensor(0.5), 2) is None
        True
    """

    def __init__(self, *, two_way: bool = True, negative_weighting: NegativeWeighting = "mean") -> None:
        super().__init__()
        _check_weighting(negative_weighting)
        self.two_way = two_way
        self.negative_weighting: NegativeWeighting = negative_weighting

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Scalar loss for one direction: ``logits [B, K+1]``, ``target [B]``."""
        return nt_logistic(logits, target, negative_weighting=self.negative_weighting)

    def mi_lower_bound(self, loss: Tensor, num_negatives: int) -> None:
        """``None``: the logistic loss implies no bound on the views' mutual information."""

    def extra_repr(self) -> str:
        return f"two_way={self.two_way}, negative_weighting={self.negative_weighting!r}"

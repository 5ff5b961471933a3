"""``supcon``: supervised contrastive learning (Khosla et al. 2020), every same-label sample a positive.

For anchor ``i`` with candidates ``A(i)`` (every other view of the batch) and positives
``P(i) ⊆ A(i)`` (the samples sharing its label, its own other view included), with logits
``s = cos(z_i, z_a) / tau``, the paper's ``L_out``::

    L = -1/|I| sum_i 1/|P(i)| sum_{p in P(i)} log( exp(s_ip) / sum_{a in A(i)} exp(s_ia) )

In contrastkit's layout a pair's ``logits [B, K+1]`` are the candidates ``A(i)`` and
``pair.positives_of_rows()`` marks ``P(i)``: with ``label = "digit"`` the pipeline asks the
negative sampler (``in-batch``) for the same-label mask. ``same_view_negatives = true`` (the
default, as in the paper) gives every anchor the ``2B - 1`` other views of a two-view batch; the
two-way sum scores both views' anchors, so ``L(V1, V2) = 2 L_out`` (the paper means over ``2B``
anchors). With ``label`` unset each row has one positive and the loss is SimCLR's NT-Xent, the
paper's unsupervised special case. Columns at ``-inf`` are no candidates and never positives.

Example:
    >>> import torch
    >>> logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 2.0, 1.0]])
    >>> mask = torch.tensor([[True, True, False], [False, True, False]])
    >>> round(float(supcon(logits, mask)), 4)
    0.6576
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from contrastkit.errors import InvalidParameter, ShapeError
from contrastkit.interfaces import PairLogits
from contrastkit.objectives.infonce import info_nce, info_nce_mi_bound

__all__ = ["SupCon", "supcon"]


def supcon(logits: Tensor, positive_mask: Tensor) -> Tensor:
    """``L_out`` of ``logits [B, K+1]`` with positives ``positive_mask [B, K+1]`` (bool); mean over anchors.

    One log-softmax per row; the mean log-probability over each row's positives (rows keep at
    least their own positive, so no division by zero).

    Example:
        >>> import torch
        >>> round(float(supcon(torch.zeros(2, 4), torch.eye(2, 4, dtype=torch.bool))), 4)  # log 4
        1.3863
    """
    if positive_mask.shape != logits.shape or positive_mask.dtype != torch.bool:
        raise ShapeError(f"supcon: positive_mask must be bool {tuple(logits.shape)}, got "
                         f"{positive_mask.dtype} {tuple(positive_mask.shape)}")
    # Half-precision logits (autocast) are promoted; float32 and float64 keep their precision.
    log_prob = (logits.float() if logits.element_size() < 4 else logits).log_softmax(dim=1)
    positives = positive_mask & torch.isfinite(logits)
    summed = log_prob.masked_fill(~positives, 0.0).sum(dim=1)
    return -(summed / positives.sum(dim=1).clamp(min=1)).mean()


class SupCon(nn.Module):
    """SupCon's ``L_out``: positives are the anchor's other view and every sample sharing ``label``.

    ``label`` names a dataset label (``"digit"``); ``None`` is NT-Xent. ``same_view_negatives``
    (default ``True``) makes the anchor view's other samples candidates too, as the paper does.

    Example:
        >>> import torch
        >>> pair = PairLogits(logits=torch.zeros(2, 3), target=torch.arange(2), anchor_view=0, target_view=1,
        ...                   positive_mask=torch.tensor([[True, True, False], [True, True, False]]))
        >>> round(float(SupCon(label="digit").pair_loss(pair)), 4)  # log 3: uniform logits
        1.0986
    """

    def __init__(self, *, label: str | None = None, two_way: bool = True, same_view_negatives: bool = True) -> None:
        super().__init__()
        if label is not None and (not isinstance(label, str) or not label):
            raise InvalidParameter("label", "must name a dataset label such as 'digit', or be omitted", label)
        #: The batch label whose equal values are positives (read by the pipeline); ``None``: NT-Xent.
        self.label = label
        self.two_way = two_way
        self.same_view_negatives = same_view_negatives

    def pair_loss(self, pair: PairLogits) -> Tensor:
        """``L_out`` for one direction of a view pair, from ``pair.positives_of_rows()``."""
        return supcon(pair.logits, pair.positives_of_rows())

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """One positive per row (no labels): InfoNCE / NT-Xent."""
        return info_nce(logits, target)

    def mi_lower_bound(self, loss: Tensor, num_negatives: int) -> Tensor | None:
        """InfoNCE's ``log(K + 1) - L`` without labels; with several positives no such bound holds (``None``)."""
        return info_nce_mi_bound(loss, num_negatives) if self.label is None else None

    def extra_repr(self) -> str:
        return f"label={self.label!r}, two_way={self.two_way}, same_view_negatives={self.same_view_negatives}"

"""``PairLogits``: what a negative sampler hands the objective and the regulariser for one view pair.

Example:
    >>> import torch
    >>> PairLogits(logits=torch.zeros(2, 5), target=torch.zeros(2, dtype=torch.long), anchor_view=0, target_view=1).num_negatives
    4
"""

from __future__ import annotations

import attrs
import torch
from torch import Tensor

__all__ = ["PairLogits"]


@attrs.frozen
class PairLogits:
    """Scores of anchors from view ``anchor_view`` against candidates from view ``target_view``.

    ``logits`` is ``[B, K+1]``: row ``b`` holds one positive at column ``target[b]`` and ``K``
    negatives in the other columns (a column set to ``-inf`` is excluded). This is the layout
    ``cross_entropy`` wants, so in-batch InfoNCE needs no copy of the ``[B, B]`` score matrix.

    The pipeline also fills the optional context that a :class:`PairObjective` or a
    :class:`Regularizer` may read (samplers leave it empty):

    - ``anchors`` ``[B, D]``: the anchor view's embeddings (with gradient);
    - ``positives`` ``[B, D]``: the target view's embeddings of the same samples (a momentum
      encoder's keys when the recipe has one);
    - ``labels`` ``[B]``: the anchors' labels, when the objective names one (:class:`LabelledObjective`);
    - ``positive_mask`` ``[B, K+1]`` bool: every column that is a positive of its row (always
      ``True`` at ``target``), from a :class:`PositiveSampler` given ``labels``. ``None`` means
      one positive per row, at ``target``: :meth:`positives_of_rows` gives the mask either way.

    Example:
        >>> import torch
        >>> pl = PairLogits(logits=torch.zeros(4, 4), target=torch.arange(4), anchor_view=0, target_view=1)
        >>> pl.num_negatives, pl.positives_of_rows().sum(dim=1).tolist()
        (3, [1, 1, 1, 1])
    """

    logits: Tensor
    target: Tensor
    anchor_view: int
    target_view: int
    anchors: Tensor | None = None
    positives: Tensor | None = None
    labels: Tensor | None = None
    positive_mask: Tensor | None = None

    @property
    def num_negatives(self) -> int:
        """``K``: candidates per anchor other than the positive (``-inf`` columns count as present)."""
        return self.logits.shape[1] - 1

    def positives_of_rows(self) -> Tensor:
        """``[B, K+1]`` bool: ``positive_mask`` if set, else ``True`` at each row's ``target`` only."""
        if self.positive_mask is not None:
            return self.positive_mask
        mask = torch.zeros(self.logits.shape, dtype=torch.bool, device=self.logits.device)
        return mask.scatter_(1, self.target.view(-1, 1), True)

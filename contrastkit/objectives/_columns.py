"""The positive and the usable negatives of ``[B, K+1]`` logits, for objectives that score each pair on its own."""

from __future__ import annotations

import torch
from torch import Tensor

from contrastkit.errors import ShapeError

__all__ = ["split_positive"]


def split_positive(logits: Tensor, target: Tensor, *, name: str) -> tuple[Tensor, Tensor, Tensor]:
    """``(positive [B], negatives [B, K+1], valid [B, K+1] bool)``; excluded and positive columns hold 0.

    A column is a valid negative unless it is the anchor's positive (``target``) or ``-inf``
    (excluded by the sampler). Shape errors name the objective ``name``.

    Example:
        >>> import torch
        >>> positive, negatives, valid = split_positive(torch.tensor([[1.0, 2.0, float("-inf")]]),
        ...                                             torch.tensor([0]), name="triplet")
        >>> positive.tolist(), negatives.tolist(), valid.tolist()
        ([1.0], [[0.0, 2.0, 0.0]], [[False, True, False]])
    """
    if logits.ndim != 2 or target.shape != logits.shape[:1]:
        raise ShapeError(
            f"{name}: logits must be [B, K+1] and target [B], got {tuple(logits.shape)} and {tuple(target.shape)}"
        )
    columns = torch.arange(logits.shape[1], device=logits.device)
    is_positive = columns[None, :] == target[:, None]
    valid = ~is_positive & (logits != float("-inf"))
    positive = logits.gather(1, target[:, None]).squeeze(1)
    # Filling (rather than masking afterwards) keeps -inf out of the loss and its backward: no 0 * inf.
    negatives = logits.masked_fill(~valid, 0.0)
    return positive, negatives, valid

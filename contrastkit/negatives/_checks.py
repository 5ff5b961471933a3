"""Input checks shared by the stateful negative samplers (``memory-bank``, ``queue``)."""

from __future__ import annotations

from torch import Tensor

from contrastkit.errors import ShapeError


def check_pair_inputs(name: str, store: str, embedding_dim: int, anchors: Tensor, positives: Tensor,
                      index: Tensor, anchor_view: int, target_view: int) -> None:
    """Shapes only (no value is read, so no device sync): ``[B, D]`` anchors and positives, ``[B]`` index.

    ``name`` is the sampler's registered name and ``store`` what it keeps (``bank``, ``queue``), for messages.

    Example:
        >>> import torch
        >>> check_pair_inputs("queue", "queue", 4, torch.zeros(2, 4), torch.zeros(2, 4), torch.arange(2), 0, 1)
        >>> check_pair_inputs("queue", "queue", 8, torch.zeros(2, 4), torch.zeros(2, 4), torch.arange(2), 0, 1)
        Traceback (most recent call last):
        ...
        contrastkit.errors.ShapeError: queue negatives: embeddings have D = 4, the queue was built for embedding_dim = 8
    """
    if anchors.ndim != 2 or anchors.shape != positives.shape:
        raise ShapeError(
            f"{name} negatives: view {anchor_view + 1} embeddings {tuple(anchors.shape)} and view "
            f"{target_view + 1} embeddings {tuple(positives.shape)} must both be [B, D]"
        )
    if anchors.shape[1] != embedding_dim:
        raise ShapeError(
            f"{name} negatives: embeddings have D = {anchors.shape[1]}, the {store} was built for "
            f"embedding_dim = {embedding_dim}"
        )
    if index.shape != anchors.shape[:1]:
        raise ShapeError(f"{name} negatives: index {tuple(index.shape)} must be [B] = [{anchors.shape[0]}]")

"""Input checks shared by the stateful negative samplers (``memory-bank``, ``queue``, ``nnclr``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from contrastkit import distributed
from contrastkit.errors import InvalidParameter, ShapeError


def check_sizes(*, num_views: int, embedding_dim: int) -> None:
    """The injected ``num_views`` and ``embedding_dim`` must both be at least 1 (errors name the parameter).

    Example:
        >>> check_sizes(num_views=2, embedding_dim=0)
        Traceback (most recent call last):
        ...
        contrastkit.errors.InvalidParameter: embedding_dim: must be >= 1 (got 0)
    """
    if num_views < 1:
        raise InvalidParameter("num_views", "must be >= 1", num_views)
    if embedding_dim < 1:
        raise InvalidParameter("embedding_dim", "must be >= 1", embedding_dim)


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


def gathered_update_rows(name: str, embeddings: Sequence[Tensor], index: Tensor, *, num_views: int,
                         embedding_dim: int, store: Tensor) -> tuple[Tensor, Tensor]:
    """The step's ``M`` detached embeddings as ``[M, B, D]`` on ``store``'s device and dtype, with their ``[B]`` index.

    Shapes are checked (errors name the sampler ``name``); under ``torch.distributed`` every rank's
    rows and indices are all-gathered in rank order (:func:`contrastkit.distributed.gather_stored_rows`).

    Example:
        >>> import torch
        >>> rows, index = gathered_update_rows("queue", [torch.ones(2, 4)] * 3, torch.arange(2), num_views=3,
        ...                                    embedding_dim=4, store=torch.zeros(3, 8, 4))
        >>> tuple(rows.shape), index.tolist()
        ((3, 2, 4), [0, 1])
    """
    if len(embeddings) != num_views:
        raise ShapeError(f"{name} update: got {len(embeddings)} embeddings for {num_views} views")
    rows = torch.stack([e.detach() for e in embeddings]).to(device=store.device, dtype=store.dtype)
    if rows.ndim != 3 or rows.shape[2] != embedding_dim or index.shape != rows.shape[1:2]:
        raise ShapeError(
            f"{name} update: embeddings {tuple(rows.shape[1:])} and index {tuple(index.shape)} must be "
            f"[B, {embedding_dim}] and [B]"
        )
    return distributed.gather_stored_rows(rows, index.to(device=store.device, dtype=torch.int64))

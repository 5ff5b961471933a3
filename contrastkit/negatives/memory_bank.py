"""``memory-bank``: ``K`` negatives per anchor drawn from a bank of past embeddings (CMC, Wu et al. 2018).

CMC ("Contrastive Multiview Coding", Tian, Krishnan & Isola, 2019, Sec. 3.3 and its ``NCEAverage``)
keeps one memory bank per view: a row per training sample holding that sample's embedding from
earlier steps. Each anchor ``z_i`` of view ``i`` is contrasted with its positive ``z_j`` (view
``j``, same sample, computed this step) and with ``K`` rows of view ``j``'s bank drawn uniformly
at random from the whole dataset, so ``K`` is independent of the batch size::

    logits[b] = [ s(z_i[b], z_j[b]),  s(z_i[b], bank_j[n_b1]), ..., s(z_i[b], bank_j[n_bK]) ]
    target[b] = 0,        n_bk ~ Uniform{0, ..., N-1}  (without index[b] when exclude_positive)

with ``s = critic.score`` (``cos / tau`` for the ``cosine`` critic). After the step's forward,
:meth:`MemoryBankNegatives.update` writes the new embeddings of the batch into every view's bank
with CMC's momentum::

    bank_v[index[b]] <- normalise( m * bank_v[index[b]] + (1 - m) * z_v[b] )

The banks start as CMC's: uniform in ``[-stdv, stdv]`` with ``stdv = 1 / sqrt(D / 3)`` (each entry
has variance ``1 / D``, so each row has unit norm in expectation); ``normalize_init = true`` makes
every row exactly unit-norm from the start. A row is first overwritten (with momentum ``m``
towards the random start) the first time its sample is drawn into a batch.

Where the positive comes from (``positive``): ``"current"`` (the default) scores the positive
computed this step, so gradients reach both views' encoders through the positive pair. ``"bank"``
is CMC's and NPID's behaviour: the positive column scores the positive's bank row,
``bank_j[index[b]]``, written at earlier steps like the negatives' rows, and only the anchor's
encoder gets a gradient. The difference matters on short schedules. With ``"current"``, the
positive is fresh but the negatives lag (random at first, then up to an epoch old), so the encoder
can lower the loss by moving every embedding towards a direction the stale rows do not hold yet.
Once the bank catches up the loss climbs back towards ``log(K + 1)``: the ``negatives`` experiment
of ``contrastkit experiment`` collapsed this way within 300 steps. With ``"bank"``, the positive and
the negatives are equally stale, which removes that shortcut. The anchor's own sample is never
drawn as a negative (unless ``exclude_positive = false``, CMC's behaviour).

``shared_negatives = true`` draws one set of ``K`` rows per step and view pair, shared by every
anchor of the batch (as MoCo's queue is shared): the negatives are scored with one ``[B, D] x [D, K]``
product instead of gathering ``B * K`` rows (``B * K * D`` floats, 2 GB per view at CMC's
``B = 256, K = 16384, D = 128``), which is what bounds a memory-bank step. Each anchor still sees
``K`` uniform draws, but the draws are correlated across anchors; with ``exclude_positive`` an
anchor's own row, if drawn, is masked to ``-inf`` (its row then has one fewer live negative).

How per-anchor negatives are scored (``scoring``, exact either way, the same draws give the same
logits): ``"gather"`` copies the ``B * K`` drawn rows, ``[B, K, D]``, and scores them (CMC's
``index_select`` + ``bmm``); this moves ``B * K * D`` floats (2 GiB per view at CMC's sizes) and is
bound by memory bandwidth. ``"dense"`` scores every anchor against the whole bank, one
``[B, D] x [D, N]`` matrix product, and picks each anchor's ``K`` columns from the ``[B, N]``
scores; its backward is a scatter into ``[B, N]`` and one ``[B, N] x [N, D]`` product. It costs
``B * N * D`` multiply-adds (compute-bound, what CPUs and GPUs do fastest) and ``B * N`` floats,
so it wins while the bank is not much larger than ``K``: ``"auto"`` (the default) picks ``"dense"``
when ``N <= 32 * K`` (measured crossover on a CPU: about ``N = 40 K``; see
``benchmarks/losses.py``), else ``"gather"``. Dense scores are computed ``DENSE_MAX_SCORES // N``
anchors at a time when ``B * N`` exceeds ``DENSE_MAX_SCORES`` (2^25 floats), so the transient
``[B, N]`` block stays bounded.

The banks are one registered buffer ``bank`` ``[M, N, D]``, so they are part of the pipeline's
``state_dict``: saved in checkpoints, restored on ``--resume`` and moved by ``.to(device)``.

Distributed training: when ``torch.distributed`` is initialised, :meth:`~MemoryBankNegatives.update`
all-gathers every rank's embeddings and indices (in rank order) and applies the same update on every
rank, so all ranks keep identical banks. Every rank must call ``update`` each step with the same
batch size (``DistributedSampler`` with ``drop_last`` guarantees it). Negatives are drawn by each
rank from its own RNG. Within one (gathered) batch a sample that occurs twice is written once, with
its last occurrence, identically on every rank and device.

Example:
    >>> import torch
    >>> from contrastkit.critics.cosine import CosineCritic
    >>> critic = CosineCritic(feature_dims=(8, 8), head="none", temperature=0.5)
    >>> bank = MemoryBankNegatives(num_views=2, dataset_size=100, embedding_dim=8, num_negatives=16)
    >>> z1, z2 = critic.embed(torch.randn(4, 8), 0), critic.embed(torch.randn(4, 8), 1)
    >>> pair = bank.pair_logits(critic, z1, z2, index=torch.arange(4), anchor_view=0, target_view=1)
    >>> pair.logits.shape, pair.target.tolist(), pair.num_negatives
    (torch.Size([4, 17]), [0, 0, 0, 0], 16)
    >>> bank.update([z1, z2], torch.arange(4))
    >>> bool(torch.allclose(bank.bank[:, :4].norm(dim=-1), torch.ones(2, 4)))
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.errors import InvalidParameter
from contrastkit.interfaces import Critic, PairLogits
from contrastkit.negatives._checks import check_pair_inputs, check_sizes, gathered_update_rows

__all__ = ["MemoryBankNegatives", "bank_update", "last_occurrence", "score_drawn_rows"]

#: ``K`` when ``num_negatives`` is left out (CMC's ImageNet runs used 16384; 4096 suits smaller sets).
DEFAULT_NEGATIVES = 4096
#: ``scoring = "auto"`` scores densely while ``dataset_size <= DENSE_MAX_BANK_RATIO * num_negatives``.
DENSE_MAX_BANK_RATIO = 32
#: Dense scoring computes at most this many ``[anchor, bank row]`` scores at once (128 MiB in float32).
DENSE_MAX_SCORES = 2**25


def bank_update(rows: Tensor, embeddings: Tensor, momentum: float) -> Tensor:
    """CMC's memory update of bank ``rows [..., D]`` with new ``embeddings [..., D]``: ``normalise(m*row + (1-m)*z)``.

    Example:
        >>> import torch
        >>> bank_update(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]), 0.5)
        tensor([[0.7071, 0.7071]])
    """
    return F.normalize(rows * momentum + embeddings * (1.0 - momentum), dim=-1)


def last_occurrence(index: Tensor) -> Tensor:
    """For each position ``p`` of ``index [B]``, the position of the last ``q`` with ``index[q] == index[p]``.

    Vectorised (one stable sort and a binary search), no host sync: writing ``values[last_occurrence(index)]``
    at ``index`` gives every duplicate the same value, so the write is deterministic on every device.

    Example:
        >>> import torch
        >>> last_occurrence(torch.tensor([5, 2, 5, 7, 2])).tolist()
        [2, 4, 2, 3, 4]
    """
    sorted_index, order = torch.sort(index, stable=True)
    last_sorted = torch.searchsorted(sorted_index, sorted_index, right=True) - 1
    winner = torch.empty_like(order)
    winner[order] = order[last_sorted]
    return winner


def score_drawn_rows(
    critic: Critic, anchors: Tensor, rows: Tensor, drawn: Tensor, *, dense: bool, max_scores: int = DENSE_MAX_SCORES
) -> Tensor:
    """``[B, K]`` scores of each anchor ``anchors[b]`` against its own drawn rows ``rows[drawn[b]]``.

    ``dense=False`` gathers the ``[B, K, D]`` rows and scores them; ``dense=True`` scores every
    anchor against all ``N`` rows (``[B, D] x [D, N]``, at most ``max_scores`` scores at a time) and
    picks the drawn columns. Both give the same values (up to float rounding) and gradients.

    Example:
        >>> import torch
        >>> from contrastkit.critics.cosine import CosineCritic
        >>> critic = CosineCritic(feature_dims=(4, 4), head="none", temperature=1.0)
        >>> rows, anchors = torch.eye(4), torch.eye(4)[:2]
        >>> drawn = torch.tensor([[0, 1], [0, 1]])
        >>> score_drawn_rows(critic, anchors, rows, drawn, dense=True).tolist()
        [[1.0, 0.0], [0.0, 1.0]]
        >>> bool(torch.equal(score_drawn_rows(critic, anchors, rows, drawn, dense=False),
        ...                  score_drawn_rows(critic, anchors, rows, drawn, dense=True)))
        True
    """
    if not dense:
        return critic.score(anchors, rows[drawn])
    chunk = max(1, max_scores // max(1, rows.shape[0]))
    if chunk >= anchors.shape[0]:
        return critic.score(anchors, rows).gather(1, drawn)
    # Bounded transient memory: only one chunk's [chunk, N] scores exist at a time (the gather's
    # backward keeps indices, not scores).
    return torch.cat(
        [
            critic.score(anchors[start : start + chunk], rows).gather(1, drawn[start : start + chunk])
            for start in range(0, anchors.shape[0], chunk)
        ]
    )


class MemoryBankNegatives(nn.Module):
    """One memory bank per view; ``K`` uniformly sampled bank rows are each anchor's negatives.

    Sampling is with replacement, as in CMC, so any ``num_negatives`` (``K``) is drawn exactly as
    given, even one above the number of distinct samples. Left unset it is ``DEFAULT_NEGATIVES``
    (4096), or every other sample (``dataset_size - 1``; ``dataset_size`` without
    ``exclude_positive``) when the dataset is smaller.

    Example:
        >>> sampler = MemoryBankNegatives(num_views=3, dataset_size=50, embedding_dim=4)
        >>> tuple(sampler.bank.shape), sampler.num_negatives
        ((3, 50, 4), 49)
        >>> MemoryBankNegatives(num_views=2, dataset_size=50, embedding_dim=4, num_negatives=64).num_negatives
        64
    """

    bank: Tensor

    def __init__(
        self,
        *,
        num_views: int,
        dataset_size: int,
        embedding_dim: int,
        num_negatives: int | None = None,
        momentum: float = 0.5,
        exclude_positive: bool = True,
        normalize_init: bool = False,
        shared_negatives: bool = False,
        scoring: Literal["auto", "gather", "dense"] = "auto",
        positive: Literal["current", "bank"] = "current",
    ) -> None:
        super().__init__()
        check_sizes(num_views=num_views, embedding_dim=embedding_dim)
        smallest = 2 if exclude_positive else 1
        if dataset_size < smallest:
            raise InvalidParameter(
                "dataset_size",
                f"memory-bank needs at least {smallest} training samples (one bank row per sample); build the "
                "pipeline with a data slot or pass dataset_size",
                dataset_size,
            )
        if num_negatives is not None and (isinstance(num_negatives, bool) or num_negatives < 1):
            raise InvalidParameter("num_negatives", "must be >= 1 (or left out for the default)", num_negatives)
        if not 0.0 <= momentum < 1.0:
            raise InvalidParameter("momentum", "must be in [0, 1)", momentum)
        if scoring not in ("auto", "gather", "dense"):
            raise InvalidParameter("scoring", 'must be "auto", "gather" or "dense"', scoring)
        if positive not in ("current", "bank"):
            raise InvalidParameter("positive", 'must be "current" (this step\'s positive) or "bank" (CMC\'s)', positive)
        self.num_views = int(num_views)
        self.dataset_size = int(dataset_size)
        self.embedding_dim = int(embedding_dim)
        #: ``K``: as given, else the default bounded by the samples an anchor can draw.
        self.num_negatives = (
            int(num_negatives)
            if num_negatives is not None
            else min(DEFAULT_NEGATIVES, self.dataset_size - (1 if exclude_positive else 0))
        )
        self.momentum = float(momentum)
        self.exclude_positive = bool(exclude_positive)
        self.normalize_init = bool(normalize_init)
        self.shared_negatives = bool(shared_negatives)
        self.scoring = scoring
        #: ``"current"``: score this step's positive; ``"bank"``: score its bank row (CMC).
        self.positive = positive
        #: Whether per-anchor negatives are scored densely (``scoring``, with ``"auto"`` resolved).
        self.dense_scoring = scoring == "dense" or (
            scoring == "auto" and self.dataset_size <= DENSE_MAX_BANK_RATIO * self.num_negatives
        )
        stdv = 1.0 / math.sqrt(embedding_dim / 3.0)
        bank = torch.rand(self.num_views, self.dataset_size, self.embedding_dim).mul_(2.0 * stdv).sub_(stdv)
        if normalize_init:
            bank = F.normalize(bank, dim=-1)
        self.register_buffer("bank", bank)

    def sample_indices(self, index: Tensor) -> Tensor:
        """``[B, K]`` dataset indices drawn uniformly (one ``torch.randint`` on ``index``'s device).

        With ``exclude_positive``, row ``b`` never contains ``index[b]``: draws from ``{0..N-2}`` are
        shifted up by one at and above ``index[b]``, which is uniform over the other ``N - 1`` samples.

        Example:
            >>> import torch
            >>> sampler = MemoryBankNegatives(num_views=2, dataset_size=3, embedding_dim=4, num_negatives=8)
            >>> drawn = sampler.sample_indices(torch.tensor([0, 1, 2]))
            >>> drawn.shape, bool((drawn != torch.tensor([[0], [1], [2]])).all())
            (torch.Size([3, 8]), True)
        """
        shape = (index.shape[0], self.num_negatives)
        if not self.exclude_positive:
            return torch.randint(0, self.dataset_size, shape, device=index.device)
        drawn = torch.randint(0, self.dataset_size - 1, shape, device=index.device)
        return drawn + (drawn >= index.to(torch.int64)[:, None]).to(drawn.dtype)

    def pair_logits(self, critic: Critic, anchors: Tensor, positives: Tensor, *, index: Tensor, anchor_view: int,
                    target_view: int) -> PairLogits:
        """``[B, K+1]`` logits: column 0 scores the positive, the rest ``K`` rows of ``target_view``'s bank."""
        check_pair_inputs("memory-bank", "bank", self.embedding_dim, anchors, positives, index,
                          anchor_view, target_view)
        if self.positive == "bank":
            # CMC: the positive's bank row, as stale as the negatives (a gathered copy, so the in-place
            # update before backward cannot touch it); no gradient reaches the target view's encoder.
            rows = self.bank[target_view][index.to(device=self.bank.device, dtype=torch.int64)]
            positive = critic.score(anchors, rows.to(device=anchors.device, dtype=anchors.dtype).unsqueeze(1))
        else:
            positive = critic.score(anchors, positives.unsqueeze(1))  # [B, 1]
        if self.shared_negatives:
            # One draw for the whole batch: scoring is a [B, D] x [D, K] product, no [B, K, D] gather.
            drawn = torch.randint(0, self.dataset_size, (self.num_negatives,), device=anchors.device)
            scores = critic.score(anchors, self.bank[target_view][drawn].to(anchors.dtype))  # [B, K]
            if self.exclude_positive:
                own = drawn[None, :] == index.to(device=anchors.device, dtype=torch.int64)[:, None]
                scores = scores.masked_fill(own, float("-inf"))
        else:
            drawn = self.sample_indices(index.to(anchors.device))
            # Dense scoring keeps the rows for its backward, which runs after ``update`` has written
            # into the bank in place: score a copy (N * D floats, far fewer than the B * K * D a gather moves).
            rows = self.bank[target_view].to(dtype=anchors.dtype, copy=self.dense_scoring)
            scores = score_drawn_rows(critic, anchors, rows, drawn, dense=self.dense_scoring)
        logits = torch.cat([positive, scores], dim=1)
        target = torch.zeros(anchors.shape[0], dtype=torch.int64, device=anchors.device)
        return PairLogits(logits=logits, target=target, anchor_view=anchor_view, target_view=target_view)

    @torch.no_grad()
    def update(self, embeddings: Sequence[Tensor], index: Tensor) -> None:
        """Write the step's ``M`` embeddings ``[B, D]`` into the banks at ``index [B]`` (all ranks' under DDP)."""
        z, index = gathered_update_rows("memory-bank", embeddings, index, num_views=self.num_views,
                                        embedding_dim=self.embedding_dim, store=self.bank)
        z = z[:, last_occurrence(index)]
        rows = self.bank.index_select(1, index)  # [M, B, D]
        self.bank.index_copy_(1, index, bank_update(rows, z, self.momentum))

    def extra_repr(self) -> str:
        return (
            f"num_views={self.num_views}, dataset_size={self.dataset_size}, embedding_dim={self.embedding_dim}, "
            f"num_negatives={self.num_negatives}, momentum={self.momentum}, "
            f"exclude_positive={self.exclude_positive}, normalize_init={self.normalize_init}, "
            f"positive={self.positive!r}, "
            f"shared_negatives={self.shared_negatives}, scoring={self.scoring}"
            + (f" ({'dense' if self.dense_scoring else 'gather'})" if self.scoring == "auto" else "")
        )

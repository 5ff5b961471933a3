"""``nce``: CMC's noise-contrastive estimation loss, with the normalisation constant ``Z``.

CMC ("Contrastive Multiview Coding", Tian, Krishnan & Isola, 2019; ``NCEAverage`` + ``NCECriterion``
of its code), after Gutmann & Hyvaerinen (2010) and Wu et al. (2018), trains the critic as a
classifier between the positive and ``K`` noise samples drawn uniformly from the ``N`` training
samples (noise distribution ``P_n = 1 / N``). The critic's score ``s`` (``cos / tau`` for the
``cosine`` critic) becomes a probability through an estimated partition function ``Z``::

    P(s) = exp(s) / Z

    L = -log( P(s+) / (P(s+) + K * P_n) )  -  sum_k log( 1 - P(s-_k) / (P(s-_k) + K * P_n) )

averaged over anchors (summed over the ``K`` negatives). With ``c = log(K * Z / N)`` this is a
logistic regression with bias ``c`` — ``L = softplus(c - s+) + sum_k softplus(s-_k - c)`` — which is
how it is computed: no overflow at any temperature and no ``eps`` (CMC adds ``1e-7`` inside its
logarithms; the difference vanishes unless a probability underflows).

``Z`` is a constant, never differentiated (CMC calls ``.item()`` on it). It is estimated from the
scores, ``Z ~= N * mean(exp(s))``, and kept in the registered buffer ``log_z`` (with ``z_updates``,
the number of batches scored in training mode so far), so it is saved in checkpoints and restored on
resume:

- ``z_mode = "fixed"`` (CMC): ``Z`` is estimated from the first batch scored in training mode, over
  all ``K + 1`` columns, and never changed. With near-random embeddings at that batch ``exp(s) ~= 1``,
  so ``c = log(K * Z / N) ~= log K``. Once training pulls the views together, negative scores rise far
  above ``log K`` (``cos / tau`` reaches ``1 / tau = 14.3`` at ``tau = 0.07``): the ``P`` are no
  longer probabilities, every negative term ``softplus(s- - c) ~= s- - c`` grows and the loss can blow
  up. Small datasets hit this first: ``K <= N - 1`` keeps ``log K`` small, and rows are revisited often.
- ``z_mode = "running"``: ``Z`` is an exponential moving average, ``Z <- mu * Z + (1 - mu) * Z_batch``
  (``mu = z_momentum``, started from the first batch's estimate), with ``Z_batch = N * mean_k
  exp(s-_k)`` over the negative columns only. The negatives are uniform draws from the dataset, so this
  is an unbiased Monte-Carlo estimate of ``Z(x) = sum_n exp(s(x, y_n))`` that tracks the critic as it
  trains — the fix for small datasets where CMC's fixed ``Z`` blows up. The positive is left out
  because it is not a uniform draw (including it, as CMC does, inflates ``Z`` once positives score
  high).

Since ``Z`` is estimated as ``N`` times a mean, ``N`` cancels from the loss in both modes:
``c = log(K * Z / N) = log(K * mean(exp(s)))``. ``dataset_size`` therefore only sets the scale of the
stored ``Z`` (CMC's ``Z`` when given, ``Z / N`` when left out); the loss is the same either way.

``Z`` changes only in training mode (``objective.train()``); in evaluation mode the stored value is
used (or, before any training step, the batch's estimate, without storing it). One ``Z`` is shared by
every view pair and both directions (CMC keeps one per direction; with the ``cosine`` critic's single
temperature they estimate the same quantity). Under ``torch.distributed`` the batch estimate is
averaged over ranks (equal batch sizes assumed), so every rank keeps the same ``Z``.

Logits of ``-inf`` (excluded columns) are left out: they add no term and are not counted in ``K``,
which is counted per anchor. ``mi_lower_bound`` returns ``None``: NCE's loss implies no bound on the
views' mutual information (the InfoNCE bound ``log(K + 1) - L_InfoNCE`` of the same logits still
holds for any critic, but needs the logits, not this loss).

Example:
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    >>> round(float(nce_loss(logits, torch.tensor([0, 1]), log_z=torch.tensor(4.0), dataset_size=50)), 4)
    1.0129
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.errors import InvalidParameter, ShapeError

__all__ = ["NCEObjective", "estimate_log_z", "nce_loss"]


def _check(logits: Tensor, target: Tensor) -> None:
    if logits.ndim != 2 or logits.shape[1] < 2 or target.shape != logits.shape[:1]:
        raise ShapeError(
            f"nce: logits {tuple(logits.shape)} and target {tuple(target.shape)} must be [B, K+1] (K >= 1) and [B]"
        )


def _negative_mask(logits: Tensor, target: Tensor) -> Tensor:
    """``[B, K+1]`` bool: the finite columns other than each row's target."""
    not_target = torch.ones_like(logits, dtype=torch.bool).scatter_(1, target[:, None], False)
    return not_target & torch.isfinite(logits)


def estimate_log_z(logits: Tensor, target: Tensor, dataset_size: int, *, negatives_only: bool = False) -> Tensor:
    """``log Z`` with ``Z = N * mean(exp(s))`` over the batch's finite scores (detached, float32 or wider).

    ``negatives_only=False`` averages every column (CMC); ``True`` averages only the negatives
    (an unbiased estimate of the partition function, since they are uniform draws).

    Example:
        >>> import torch
        >>> logits = torch.log(torch.tensor([[4.0, 1.0, 1.0]]))
        >>> round(float(estimate_log_z(logits, torch.tensor([0]), 10).exp()), 4)  # 10 * mean(4, 1, 1)
        20.0
        >>> round(float(estimate_log_z(logits, torch.tensor([0]), 10, negatives_only=True).exp()), 4)
        10.0
    """
    s = logits.detach()
    s = s.float() if s.dtype in (torch.float16, torch.bfloat16) else s
    keep = _negative_mask(s, target) if negatives_only else torch.isfinite(s)
    count = keep.sum().clamp(min=1).to(s.dtype)
    return torch.logsumexp(s.masked_fill(~keep, -math.inf).flatten(), dim=0) - count.log() + math.log(dataset_size)


def nce_loss(logits: Tensor, target: Tensor, *, log_z: Tensor | float, dataset_size: int) -> Tensor:
    """CMC's NCE loss of ``logits [B, K+1]`` (positive at column ``target [B]``) given ``log Z``; mean over anchors.

    ``softplus(c - s+) + sum_k softplus(s-_k - c)`` with ``c = log(K * Z / N)``, the stable form of
    ``-log(P+ / (P+ + K/N)) - sum_k log(1 - P-_k / (P-_k + K/N))``, ``P = exp(s) / Z``.

    Example:
        >>> import torch
        >>> # Z = N * K^-1 makes c = 0: the terms are softplus(-s+) and softplus(s-)
        >>> logits = torch.tensor([[0.0, 0.0, 0.0]])
        >>> round(float(nce_loss(logits, torch.tensor([0]), log_z=torch.log(torch.tensor(5.0)), dataset_size=10)), 4)
        2.0794
    """
    _check(logits, target)
    if logits.dtype in (torch.float16, torch.bfloat16):  # softplus sums in float32 under autocast
        logits = logits.float()
    negatives = _negative_mask(logits, target)
    k = negatives.sum(dim=1).clamp(min=1).to(logits.dtype)  # [B]
    log_z = torch.as_tensor(log_z, dtype=logits.dtype, device=logits.device).detach()
    c = (k.log() + log_z - math.log(dataset_size))[:, None]  # [B, 1]
    positive = logits.gather(1, target[:, None])
    zero = torch.zeros((), dtype=logits.dtype, device=logits.device)
    negative_terms = torch.where(negatives, F.softplus(logits - c), zero)
    per_anchor = F.softplus(c - positive).squeeze(1) + negative_terms.sum(dim=1)
    return per_anchor.mean()


def _mean_over_ranks(log_z: Tensor) -> Tensor:
    """``log`` of the mean of ``exp(log_z)`` over ranks; the identity without a process group."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return log_z
    world = dist.get_world_size()
    gathered = [torch.empty_like(log_z) for _ in range(world)]
    dist.all_gather(gathered, log_z.contiguous())
    return torch.logsumexp(torch.stack(gathered), dim=0) - math.log(world)


class NCEObjective(nn.Module):
    """CMC's NCE objective; ``log_z`` and ``z_updates`` are buffers (checkpointed with the pipeline).

    ``dataset_size`` is ``N`` in the noise distribution ``P_n = 1 / N``. Because ``Z`` is estimated
    as ``N * mean(exp(s))``, ``N`` cancels from the loss (``c = log(K * Z / N) = log(K * mean(exp(s)))``):
    it only sets the scale of the stored ``Z``. Give it to store CMC's ``Z``; leave it out and ``Z / N``
    is stored instead, with the same loss.

    Example:
        >>> import torch
        >>> objective = NCEObjective(dataset_size=100)
        >>> loss = objective(torch.randn(4, 9), torch.zeros(4, dtype=torch.long))
        >>> loss.shape, int(objective.z_updates), objective.mi_lower_bound(loss, 8) is None
        (torch.Size([]), 1, True)
    """

    log_z: Tensor
    z_updates: Tensor

    def __init__(
        self,
        *,
        dataset_size: int | None = None,
        z_mode: Literal["fixed", "running"] = "fixed",
        z_momentum: float = 0.99,
        two_way: bool = True,
    ) -> None:
        super().__init__()
        if dataset_size is not None and (isinstance(dataset_size, bool) or dataset_size < 1):
            raise InvalidParameter("dataset_size", "must be >= 1 (the number of training samples)", dataset_size)
        if z_mode not in ("fixed", "running"):
            raise InvalidParameter("z_mode", "must be 'fixed' (CMC) or 'running'", z_mode)
        if not 0.0 <= z_momentum < 1.0:
            raise InvalidParameter("z_momentum", "must be in [0, 1)", z_momentum)
        self.dataset_size = None if dataset_size is None else int(dataset_size)
        self._n = self.dataset_size or 1  # N cancels from the loss; without it Z / N is stored
        self.z_mode = z_mode
        self.z_momentum = float(z_momentum)
        self.two_way = bool(two_way)
        self.register_buffer("log_z", torch.zeros((), dtype=torch.float64))
        self.register_buffer("z_updates", torch.zeros((), dtype=torch.int64))

    @property
    def z(self) -> Tensor:
        """The current normalisation constant ``Z`` (``Z / N`` without ``dataset_size``).

        Meaningless while ``z_updates == 0``.

        Example:
            >>> NCEObjective(dataset_size=10).z
            tensor(1., dtype=torch.float64)
        """
        return self.log_z.exp()

    def _log_z_for(self, logits: Tensor, target: Tensor) -> Tensor:
        """The ``log Z`` this batch uses; in training mode, fold the batch's estimate in first (no host sync)."""
        running = self.z_mode == "running"
        estimate = estimate_log_z(logits, target, self._n, negatives_only=running).to(self.log_z)
        fresh = self.z_updates == 0
        if not self.training:
            return torch.where(fresh, estimate, self.log_z)
        estimate = _mean_over_ranks(estimate)
        if running:
            mu = self.z_momentum
            blended = torch.logaddexp(self.log_z + math.log(mu), estimate + math.log1p(-mu)) if mu > 0 else estimate
            new = torch.where(fresh, estimate, blended)
        else:
            new = torch.where(fresh, estimate, self.log_z)
        self.log_z.copy_(new)
        self.z_updates.add_(1)
        return new

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Scalar loss for one direction: ``logits [B, K+1]``, ``target [B]``."""
        _check(logits, target)
        with torch.no_grad():
            log_z = self._log_z_for(logits, target)
        return nce_loss(logits, target, log_z=log_z, dataset_size=self._n)

    def mi_lower_bound(self, loss: Tensor, num_negatives: int) -> None:
        """``None``: the NCE loss implies no mutual-information bound."""

    def extra_repr(self) -> str:
        return (
            f"dataset_size={self.dataset_size}, z_mode={self.z_mode}, z_momentum={self.z_momentum}, "
            f"two_way={self.two_way}"
        )

"""The I_NCE estimate of how much a recipe's views share, and the linear probe that goes with it.

``contrastkit analyze CONFIG`` builds the recipe's pipeline and data, makes the views exactly as
training makes them (view maker in training mode, augmentation included) but with the view maker
**frozen** (no gradient reaches it, it is never updated), and trains only the *critic*: fresh
encoders (the recipe's ``[encoder]`` table, initialised from ``train.seed``) plus the recipe's
``[critic]``, with in-batch InfoNCE (``K = B - 1`` negatives per anchor) in both directions.

As in InfoMin (Tian et al. 2020, seed 000), the encoders count as part of the critic: the critic
whose InfoNCE loss ``L`` bounds the views' mutual information is the whole function
``f(v1, v2) = score(g1(v1), g2(v2))``, so training "critics only" trains encoders and critic and
nothing else. The bound, on held-out batches of the test split (encoders in eval mode, so batch
norm does not mix the batch into the critic), is::

    I(v1; v2) >= I_NCE = log(K + 1) - L

It is a lower bound for any critic (a better-trained critic only tightens it), and it can never
exceed ``log(K + 1)``: when the estimate gets within 5% of that ceiling the views may share more
than ``B`` can measure (``saturated``); raise ``--batch``.

Example:
    >>> import math, torch
    >>> scores = torch.eye(4) * 10.0  # a critic that always finds the positive
    >>> round(float(in_batch_info_nce(scores)), 4), round(math.log(4), 4)
    (0.0001, 1.3863)
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit.config import Config
from contrastkit.errors import ConfigError, InvalidParameter

if TYPE_CHECKING:
    from contrastkit.pipeline import Pipeline

__all__ = ["SATURATION_FRACTION", "PairEstimate", "estimate_view_information", "in_batch_info_nce", "probe_accuracy"]

#: An estimate at or above this fraction of ``log(K + 1)`` is reported as saturated.
SATURATION_FRACTION = 0.95


@attrs.frozen
class PairEstimate:
    """The I_NCE lower bound (nats) of one view pair, with the ``K`` it was measured with.

    Example:
        >>> e = PairEstimate(pair="v1-v2", i_nce=4.0, loss=0.158, num_negatives=63, batches=2)
        >>> round(e.ceiling, 3), e.saturated
        (4.159, True)
        >>> print(e)
        I_NCE v1-v2 >= 4.000 nats (K = 63, ceiling log(K+1) = 4.159; saturated: within 5% of log(K+1), raise --batch)
    """

    pair: str
    i_nce: float
    loss: float
    num_negatives: int
    batches: int

    @property
    def ceiling(self) -> float:
        """``log(K + 1)``: the most this estimate can ever show."""
        return math.log(self.num_negatives + 1)

    @property
    def saturated(self) -> bool:
        """Whether the estimate is within 5% of ``log(K + 1)`` (the views may share more than K can measure)."""
        return self.i_nce >= SATURATION_FRACTION * self.ceiling

    def __str__(self) -> str:
        note = "; saturated: within 5% of log(K+1), raise --batch" if self.saturated else ""
        return (
            f"I_NCE {self.pair} >= {self.i_nce:.3f} nats (K = {self.num_negatives}, "
            f"ceiling log(K+1) = {self.ceiling:.3f}{note})"
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain data (``--json``), ceiling and saturation included.

        Example:
            >>> sorted(PairEstimate(pair="v1-v2", i_nce=1.0, loss=1.0, num_negatives=7, batches=1).as_dict())
            ['batches', 'ceiling', 'i_nce', 'loss', 'num_negatives', 'pair', 'saturated']
        """
        return {**attrs.asdict(self), "ceiling": self.ceiling, "saturated": self.saturated}


def in_batch_info_nce(scores: Tensor) -> Tensor:
    """Two-way in-batch InfoNCE of a ``[B, B]`` score matrix whose positives are on the diagonal.

    The mean of the row-wise (v1 -> v2) and column-wise (v2 -> v1) cross-entropies; each has
    ``K = B - 1`` negatives, so ``log(B) - loss`` is the mean of the two directions' bounds.

    Example:
        >>> import torch
        >>> round(float(in_batch_info_nce(torch.zeros(8, 8))), 4)  # chance: log 8
        2.0794
    """
    if scores.ndim != 2 or scores.shape[0] != scores.shape[1] or scores.shape[0] < 2:
        raise InvalidParameter("scores", "must be a square [B, B] matrix with B >= 2", tuple(scores.shape))
    target = torch.arange(scores.shape[0], device=scores.device)
    return (F.cross_entropy(scores, target) + F.cross_entropy(scores.t(), target)) / 2


# -- data ------------------------------------------------------------------------------------------
def _batches(pipeline: Pipeline, dataset: Any, *, batch_size: int, seed: int, shuffle: bool) -> Iterator[Any]:
    """Full batches of ``batch_size`` (K stays ``B - 1``), epoch after epoch when ``shuffle``, else one pass.

    Worker-side augmentations (albumentations) run per sample, as the trainer's loader runs them.
    """
    from contrastkit.training.data import dataset_for_loader
    from contrastkit.training.samplers import EpochBatchSampler

    if len(dataset) < batch_size:
        split = getattr(dataset, "split", "?")
        raise InvalidParameter(
            "batch", f"is larger than the {split} split ({len(dataset)} samples); lower --batch", batch_size
        )
    data = dataset_for_loader(dataset, pipeline.worker_augmentations, seed=seed)
    if not shuffle:
        sampler: Any = torch.utils.data.BatchSampler(
            torch.utils.data.SequentialSampler(data), batch_size=batch_size, drop_last=True
        )
        yield from torch.utils.data.DataLoader(data, batch_sampler=sampler)
        return
    epoch_sampler = EpochBatchSampler(len(dataset), batch_size=batch_size, seed=seed)
    loader = torch.utils.data.DataLoader(data, batch_sampler=epoch_sampler)
    epoch = 0
    while True:
        epoch_sampler.set_epoch(epoch)
        if hasattr(data, "set_epoch"):
            data.set_epoch(epoch)
        yield from loader
        epoch += 1


def _embed_views(pipeline: Pipeline, batch: Any) -> list[Tensor]:
    """Views made as training makes them, but with no gradient to the view maker, then embedded."""
    prepared = pipeline.prepare_batch(batch)
    with torch.no_grad():
        views = [v.detach() for v in pipeline.make_views(prepared)]
    return [pipeline.critic.embed(f, view=i) for i, f in enumerate(pipeline.encode(views))]


def _pair_losses(pipeline: Pipeline, embeddings: list[Tensor]) -> Tensor:
    """``[P]``: the two-way in-batch InfoNCE of every contrasted pair."""
    return torch.stack([
        in_batch_info_nce(pipeline.critic.score(embeddings[i], embeddings[j])) for i, j in pipeline.pairs
    ])


# -- estimate --------------------------------------------------------------------------------------
def estimate_view_information(
    pipeline: Pipeline,
    train_dataset: Any,
    test_dataset: Any,
    *,
    steps: int = 200,
    batch_size: int = 128,
    lr: float = 2e-3,
    max_eval_batches: int = 16,
    seed: int = 0,
) -> list[PairEstimate]:
    """Train the critic (encoders + critic) for ``steps`` steps, then estimate I_NCE per view pair on ``test_dataset``.

    ``pipeline`` is a :class:`~contrastkit.Pipeline` (its encoders and critic are trained in place
    with AdamW at ``lr``; its view maker stays frozen). The estimate is averaged over up to
    ``max_eval_batches`` full held-out batches of ``batch_size`` (``K = batch_size - 1``).

    Example:
        >>> from contrastkit import Pipeline
        >>> from contrastkit.datasets.colorful_moving_digits import ColorfulMovingDigits
        >>> pipe = Pipeline(views="augmented-copies", encoder={"name": "convnet", "width": 4, "depth": 2})
        >>> est = estimate_view_information(pipe, ColorfulMovingDigits(size=32, image_size=16, digit_size=8),
        ...     ColorfulMovingDigits(split="test", size=32, image_size=16, digit_size=8), steps=2, batch_size=8)
        >>> [(e.pair, e.num_negatives, e.i_nce <= e.ceiling) for e in est]
        [('v1-v2', 7, True)]
    """
    limits = (("steps", steps, 1), ("batch", batch_size, 2), ("max_eval_batches", max_eval_batches, 1))
    for name, value, least in limits:
        if value < least:
            raise InvalidParameter(name, f"must be >= {least}", value)
    if not lr > 0:
        raise InvalidParameter("lr", "must be > 0", lr)
    view_maker = pipeline.view_maker
    for p in view_maker.parameters():  # frozen: the question is what these views share, not better views
        p.requires_grad_(False)
    trained = [p for name, p in pipeline.named_parameters() if not name.startswith("view_maker.") and p.requires_grad]
    if not trained:
        raise ConfigError("encoder: the pipeline has no trainable encoder or critic parameters to estimate with")
    optimizer = torch.optim.AdamW(trained, lr=lr)
    torch.manual_seed(seed)  # augmentations draw from the global RNG: the same draws for every sweep value

    pipeline.train()
    batches = _batches(pipeline, train_dataset, batch_size=batch_size, seed=seed, shuffle=True)
    for _, batch in zip(range(steps), batches):
        loss = _pair_losses(pipeline, _embed_views(pipeline, batch)).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    # Held out, encoders in eval mode: batch norm's running statistics, so each score depends on its
    # own pair only (a batch-dependent critic would not be a critic of the bound). The view maker and
    # augmentation stay in training mode: the estimate is about the views training sees.
    pipeline.eval()
    view_maker.train()
    total: Tensor | None = None
    count = 0
    with torch.no_grad():
        held_out = _batches(pipeline, test_dataset, batch_size=batch_size, seed=seed, shuffle=False)
        for batch in held_out:
            losses = _pair_losses(pipeline, _embed_views(pipeline, batch))
            total = losses if total is None else total + losses
            count += 1
            if count == max_eval_batches:
                break
    pipeline.train()
    assert total is not None  # _batches checked that one full batch exists
    mean = (total / count).tolist()  # one host copy, after the loop
    k = batch_size - 1
    names = [f"v{i + 1}-v{j + 1}" for i, j in pipeline.pairs]
    if not all(math.isfinite(v) for v in mean):
        raise ConfigError(f"train.lr: the critic's held-out loss is not finite ({mean}); lower --lr or check the data")
    return [
        PairEstimate(pair=n, i_nce=math.log(k + 1) - v, loss=v, num_negatives=k, batches=count)
        for n, v in zip(names, mean)
    ]


def probe_accuracy(pipeline: Pipeline, train_dataset: Any, test_dataset: Any, *, label: str, config: Config) -> Any:
    """The linear probe of ``pipeline``'s encoders on ``label`` (an :class:`~contrastkit.evaluation.EvalResult`).

    Uses the recipe's ``[eval]`` settings (``linear_epochs``, ``max_samples``) and ``train.seed``.

    Example:
        >>> from contrastkit import Pipeline
        >>> from contrastkit.datasets.colorful_moving_digits import ColorfulMovingDigits
        >>> pipe = Pipeline(encoder={"name": "convnet", "width": 4, "depth": 2})
        >>> r = probe_accuracy(pipe, ColorfulMovingDigits(size=32, image_size=16, digit_size=8),
        ...     ColorfulMovingDigits(split="test", size=16, image_size=16, digit_size=8), label="background",
        ...     config=Config())
        >>> r.probe, r.metric
        ('linear', 'top1')
    """
    from contrastkit.evaluation import evaluate

    (result,) = evaluate(
        pipeline, train_dataset, test_dataset, labels=[label], knn=False, linear=True,
        epochs=config.eval.linear_epochs, batch_size=config.train.batch_size,
        max_samples=config.eval.max_samples, seed=config.train.seed,
    )
    return result


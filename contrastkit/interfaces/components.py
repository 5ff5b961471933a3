"""The eight component interfaces, one per slot of :data:`contrastkit.slots.SLOT_TABLE`, and the batch.

A plugin implements one of these structurally (no subclassing needed) and registers a factory for
it (see :mod:`contrastkit.hookspecs`).

Example:
    >>> import torch
    >>> class Flatten(torch.nn.Module):
    ...     feature_dim = 12
    ...     def forward(self, x):
    ...         return x.flatten(1)
    >>> isinstance(Flatten(), Encoder), isinstance(Flatten(), Critic)
    (True, False)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from torch import Tensor

from contrastkit.interfaces.pair_logits import PairLogits

__all__ = [
    "AugmentFn",
    "Augmentation",
    "Batch",
    "Critic",
    "Dataset",
    "Encoder",
    "NegativeSampler",
    "Objective",
    "Regularizer",
    "ViewMaker",
]

#: A batch as the DataLoader yields it: ``"image"`` ``[B, C, H, W]`` float in [0, 1], ``"index"``
#: ``[B]`` int64 (the samples' dataset indices, memory banks need them), plus one entry per label.
Batch = Mapping[str, Tensor]


@runtime_checkable
class AugmentFn(Protocol):
    """What a view maker calls to augment images for view ``view`` (batch-wise, on the device).

    ``images`` ``[B, C, H, W]`` -> ``[B, C, H', W']``. contrastkit passes one to every view maker.

    Example:
        >>> import torch
        >>> augment = lambda images, view: images.flip(-1)
        >>> augment(torch.zeros(2, 3, 4, 4), 0).shape
        torch.Size([2, 3, 4, 4])
    """

    def __call__(self, images: Tensor, view: int) -> Tensor: ...


@runtime_checkable
class ViewMaker(Protocol):
    """Turns a batch into ``M >= 2`` views, each ``[B, C_i, H, W]``.

    ``view_channels`` is ``(C_1, ..., C_M)``: contrastkit builds one encoder per view with
    ``in_channels=C_i`` and checks every produced view against it. ``forward`` receives the batch and
    an :class:`AugmentFn`; it decides which images to augment for which view (CMC augments once and
    splits the colour channels; SimCLR augments independently per view).

    A view maker may be trainable (an ``nn.Module`` with parameters, e.g. InfoMin's learned views).
    Its ``contrast_sign`` says how it plays the contrastive loss: ``+1.0`` (default) minimises it with
    the encoders, ``-1.0`` maximises it — InfoMin's ``min_g max_f I_NCE`` is a generator that
    *maximises* the InfoNCE loss while the encoders minimise it.

    Optional hooks: ``required_keys`` (batch entries besides ``image`` it reads; the trainer checks
    the dataset's samples have them) and ``auxiliary_loss(batch, views) -> Tensor | None``, called by
    the Pipeline in training mode on the views *before* any gradient reversal and added to the loss
    (so the view maker minimises it), logged as ``view_maker/<auxiliary_loss_name>`` — InfoMin's
    semi-supervised classification term in ``learned-flow``; ``required_keys_hint`` (a phrase naming
    the dataset setting that provides ``required_keys``, used in the trainer's error);
    ``dataset_parameters`` (a dict the pipeline passes to the dataset factory, e.g. ``factor-pair``'s
    ``{"pair": [...]}``; a recipe that sets the same key must agree); ``image_channels`` (the image
    channel counts it accepts, first one used by ``check_view_maker``; ``rgbd``: ``(4, 7)``);
    ``parameter_groups(lr) -> list[dict]`` (a trainable maker's groups for its own Adam optimizer,
    each trainable parameter exactly once; ``learned-flow`` gives its classifiers ``classifier_lr``).

    Example:
        >>> import torch
        >>> from contrastkit.views.color_split import ColorSplitViews
        >>> maker = ColorSplitViews(space="lab")
        >>> maker.view_channels
        (1, 2)
        >>> views = maker({"image": torch.rand(4, 3, 8, 8)}, lambda x, view: x)
        >>> [tuple(v.shape) for v in views]
        [(4, 1, 8, 8), (4, 2, 8, 8)]
    """

    @property
    def view_channels(self) -> tuple[int, ...]: ...

    def __call__(self, batch: Batch, augment: AugmentFn) -> list[Tensor]: ...


@runtime_checkable
class Encoder(Protocol):
    """Maps one view ``[B, C, H, W]`` to features ``[B, F]``; ``feature_dim`` is ``F``.

    Encoder factories receive ``in_channels`` (the view's ``C``) from contrastkit.

    Example:
        >>> import torch
        >>> from contrastkit.encoders.convnet import ConvNetEncoder
        >>> enc = ConvNetEncoder(in_channels=2, width=8)
        >>> enc(torch.rand(3, 2, 16, 16)).shape == (3, enc.feature_dim)
        True
    """

    @property
    def feature_dim(self) -> int: ...

    def __call__(self, x: Tensor) -> Tensor: ...


@runtime_checkable
class Critic(Protocol):
    """Embeds features and scores anchors against candidates; the temperature lives here.

    - ``embed(features [B, F], view=i) -> [B, D]`` applies view ``i``'s projection head (if any)
      and any normalisation; ``embedding_dim`` is ``D``.
    - ``score(anchors [B, D], candidates) -> logits``: candidates ``[K, D]`` (shared by every anchor)
      give ``[B, K]``; candidates ``[B, K, D]`` (one set per anchor) give ``[B, K]``.

    Critic factories receive ``feature_dims`` (``F`` of each view's encoder) from contrastkit.

    Optional: ``symmetric = True`` declares ``score(a, b) == score(b, a).T`` (the ``cosine``
    critic); the pipeline then reuses one direction's in-batch scores, transposed, for the other. It
    is trusted only when declared by the class that defines ``score``, so a subclass overriding
    ``score`` does not inherit it by accident.

    Example:
        >>> import torch
        >>> from contrastkit.critics.cosine import CosineCritic
        >>> critic = CosineCritic(feature_dims=(8, 8), head="none", temperature=0.5)
        >>> z = critic.embed(torch.rand(4, 8), view=0)
        >>> critic.score(z, z).shape
        torch.Size([4, 4])
    """

    @property
    def embedding_dim(self) -> int: ...

    def embed(self, features: Tensor, view: int) -> Tensor: ...

    def score(self, anchors: Tensor, candidates: Tensor) -> Tensor: ...


@runtime_checkable
class NegativeSampler(Protocol):
    """Supplies each anchor's candidates and is told after each step what to store.

    - ``pair_logits(critic, anchors [B, D], positives [B, D], index [B], anchor_view, target_view)``
      returns :class:`PairLogits` for the view pair (in-batch: the rest of the other view's batch;
      memory bank: ``K`` stored entries plus the positive). A sampler may also accept the keyword
      ``same_view: bool``: then, when the objective asks for it (``infonce``'s NT-Xent option), the
      anchor view's other samples are negatives too; samplers without it are refused for that option.
    - ``update(embeddings, index)``: called once per training step with the ``M`` detached
      embeddings ``[B, D]`` and their dataset indices ``[B]``; in-batch samplers ignore it.

    Sampler factories receive ``num_views``, ``dataset_size`` and ``embedding_dim``.

    Optional: ``reverse_pair_logits(forward: PairLogits) -> PairLogits | None``, the reverse
    direction computed from the forward one (``in-batch``: the transpose, for a symmetric critic,
    without distributed gathering); ``None`` makes the pipeline score the reverse direction itself.

    Example:
        >>> import torch
        >>> from contrastkit.critics.cosine import CosineCritic
        >>> from contrastkit.negatives.in_batch import InBatchNegatives
        >>> critic = CosineCritic(feature_dims=(4, 4), head="none")
        >>> sampler = InBatchNegatives(num_views=2, dataset_size=10, embedding_dim=4)
        >>> z1, z2 = critic.embed(torch.rand(3, 4), 0), critic.embed(torch.rand(3, 4), 1)
        >>> sampler.pair_logits(critic, z1, z2, index=torch.arange(3), anchor_view=0, target_view=1).logits.shape
        torch.Size([3, 3])
    """

    def pair_logits(self, critic: Critic, anchors: Tensor, positives: Tensor, *, index: Tensor, anchor_view: int,
                    target_view: int) -> PairLogits: ...

    def update(self, embeddings: Sequence[Tensor], index: Tensor) -> None: ...


@runtime_checkable
class Objective(Protocol):
    """Positive and negative logits -> scalar loss (mean over anchors).

    ``forward(logits [B, K+1], target [B]) -> []``, with the layout of :class:`PairLogits`.
    ``mi_lower_bound(loss, num_negatives)`` returns the bound the loss implies on the mutual
    information between the two views (InfoNCE: ``log(K+1) - L``), or ``None`` where none is defined.
    ``two_way`` tells contrastkit to score both directions of a view pair and add them, as CMC does:
    ``L(V1, V2) = L(V1 -> V2) + L(V2 -> V1)``.

    Example:
        >>> import torch
        >>> from contrastkit.objectives.infonce import InfoNCE
        >>> objective = InfoNCE()
        >>> loss = objective(torch.zeros(4, 4), torch.arange(4))
        >>> round(float(loss), 4), round(float(objective.mi_lower_bound(loss, 3)), 4)
        (1.3863, 0.0)
    """

    two_way: bool

    def __call__(self, logits: Tensor, target: Tensor) -> Tensor: ...

    def mi_lower_bound(self, loss: Tensor, num_negatives: int) -> Tensor | None: ...


@runtime_checkable
class Regularizer(Protocol):
    """An extra loss term computed from the same logits, per view pair (e.g. ReLIC's invariance KL).

    ``forward(forward, backward) -> []`` receives the pair's :class:`PairLogits` in both directions
    (``V_i -> V_j`` and ``V_j -> V_i``) and returns a scalar already weighted by its coefficient.

    Example:
        >>> import torch
        >>> from contrastkit.regularizers.relic import RelicKL
        >>> pl = PairLogits(logits=torch.zeros(4, 4), target=torch.arange(4), anchor_view=0, target_view=1)
        >>> float(RelicKL(alpha=1.0)(pl, pl))
        0.0
    """

    def __call__(self, forward: PairLogits, backward: PairLogits) -> Tensor: ...


@runtime_checkable
class Dataset(Protocol):
    """A map-style dataset whose items are dicts of tensors.

    ``dataset[i]`` -> ``{"image": [C, H, W] float in [0, 1], "index": int64 scalar == i, <label>: ...}``.
    ``label_keys`` names the label entries (e.g. ``("digit", "background", "position")``).
    Dataset factories receive ``split`` (``"train"`` or ``"test"``) from contrastkit.

    Example:
        >>> from contrastkit.datasets.colorful_moving_digits import ColorfulMovingDigits
        >>> ds = ColorfulMovingDigits(split="train", size=8)
        >>> sorted(ds[3])
        ['background', 'digit', 'image', 'index', 'position']
        >>> int(ds[3]["index"])
        3
    """

    label_keys: tuple[str, ...]

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> dict[str, Tensor]: ...


@runtime_checkable
class Augmentation(Protocol):
    """Batch-wise random augmentation on the device: ``[B, C, H, W] -> [B, C, H', W']``.

    Each call draws fresh random parameters per sample.

    Example:
        >>> import torch
        >>> from contrastkit.augmentations.basic import NoAugmentation
        >>> x = torch.rand(2, 3, 8, 8)
        >>> bool((NoAugmentation()(x) == x).all())
        True
    """

    def __call__(self, images: Tensor) -> Tensor: ...

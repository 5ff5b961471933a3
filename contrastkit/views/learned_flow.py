"""``learned-flow``: InfoMin's learned views — a pixel-wise invertible flow ``g``, then a channel split.

InfoMin (Tian et al. 2020, "What makes for good views", seed 000) learns the views instead of
choosing a colour space by hand. An image ``X`` (in RGB or YDbDr) goes through a generator ``g``,
and the views are channel groups of ``X_hat = g(X)``: by default ``X_hat_1 | X_hat_2:3``. The
generator plays a min-max game with the encoders ``f_1, f_2``::

    unsupervised:     min_g  max_{f1,f2}  I_NCE(g(X)_1; g(X)_2:3)
    semi-supervised:  min_{g,c1,c2} max_{f1,f2}  I_NCE(g(X)_1; g(X)_2:3)
                                                 + CE(c1(g(X)_1), y) + CE(c2(g(X)_2:3), y)

``I_NCE = log K - L_NCE``, so the encoders *minimise* the InfoNCE loss and ``g`` *maximises* it.
``g`` is :class:`~contrastkit.views.flow_layers.PixelFlow`: invertible and pixel-wise (it recolours,
it cannot move or drop pixels). The classifiers ``c1, c2`` of the semi-supervised variant are
:class:`ViewClassifiers` (loss: :func:`view_classification_loss`); the trainer adds that term on
labelled batches, on the views as :class:`LearnedFlowViews` returns them (not gradient-reversed:
``g`` *minimises* the cross-entropy).

Alternating updates vs gradient reversal. A GAN-style trainer alternates: a step of ``f`` on
``L_NCE`` with ``g`` fixed, then a step of ``g`` on ``-L_NCE`` with ``f`` fixed, which costs a second
forward/backward pass per step (or a retained graph). contrastkit uses gradient reversal instead:
with ``mode = "adversarial"`` this view maker declares ``contrast_sign = -1.0``, the pipeline
inserts an identity whose backward negates the gradient between the views and the encoders, and
one backward pass gives the encoders ``dL/df`` and ``g`` ``-dL/dg``; the trainer gives ``g`` its own
Adam optimizer (``train.view_maker_lr``), and both optimizers simply descend. This is simultaneous
gradient descent-ascent: half the compute of alternating, the same fixed point, and the generator's
learning rate takes the place of the alternating schedule's step ratio in balancing the two players.

The InfoMin caveat. An unconstrained adversarial ``g`` wins trivially: it maps every image to a
constant (or to noise), the views share nothing and ``I_NCE`` drops to 0 — and they are useless
downstream. Restricting ``g`` to an invertible flow keeps all of ``X`` recoverable from ``X_hat``, so
``g`` can only *redistribute* information between the channels; that is what makes the unsupervised
game meaningful (``lu = True`` keeps ``det W != 0`` however the adversary pushes; a
``volume_preserving`` flow cannot shrink the colour space as a whole). It can still push the
task-relevant information out of the *shared* part — InfoMin's Table 2 (STL-10) has unsupervised
learned YDbDr views below the raw ones (84.3 vs 86.6) — which is why the semi-supervised terms keep
``I(v_i; y)``: they do best (86.0 RGB, 87.0 YDbDr).

Two stages (wired by the trainer, see ``docs/views/learned-flow.md``): stage 1 learns ``g`` with
``mode = "adversarial"``; stage 2 loads it with ``mode = "frozen"`` (no trainable parameters,
``contrast_sign = +1``), trains fresh encoders on its views, then evaluates linearly.

Example:
    >>> import torch
    >>> maker = LearnedFlowViews(num_layers=2, hidden=8)
    >>> maker.view_channels, maker.contrast_sign
    ((1, 2), -1.0)
    >>> v1, v2 = maker({"image": torch.rand(4, 3, 8, 8)}, lambda x, view: x)
    >>> v1.shape, v2.shape
    (torch.Size([4, 1, 8, 8]), torch.Size([4, 2, 8, 8]))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.encoders.convnet import ConvNetEncoder
from contrastkit.errors import InvalidParameter, ShapeError
from contrastkit.interfaces import AugmentFn, Batch
from contrastkit.views.color_spaces import ColorSpace, check_channel_groups, check_space, split_channels, to_color_space
from contrastkit.views.flow_layers import PixelFlow

__all__ = ["LearnedFlowViews", "ViewClassifiers", "labelled_mask", "view_classification_loss"]

_DEFAULT_SPLIT = [[0], [1, 2]]


class LearnedFlowViews(nn.Module):
    """InfoMin's learned views: augment once, convert to ``space``, apply the flow ``g``, split channels.

    ``split`` lists the channels of ``X_hat = g(X)`` that make each view (default ``[[0], [1, 2]]``).
    ``mode = "adversarial"`` (stage 1): ``g`` is trainable and ``contrast_sign = -1.0``, so it
    maximises the InfoNCE loss the encoders minimise. ``mode = "frozen"`` (stage 2): no trainable
    parameters and ``contrast_sign = +1.0``. Every view shares one augmentation (``augment(images, 0)``,
    CMC's shared crop). ``space`` is any colour space of :mod:`contrastkit.views.color_spaces`, each
    channel mapped to about ``[-1, 1]`` with ``normalize``. InfoMin runs ``rgb`` and ``ydbdr``; the
    default ``ydbdr`` gave its best views (Table 2), and with ``init = "identity"`` stage 1 then
    starts from CMC's ``Y | DbDr``. ``volume_preserving`` defaults to ``True``: a VP ``g`` cannot
    win by shrinking the colour space.

    Example:
        >>> import torch
        >>> maker = LearnedFlowViews(space="rgb", split=[[0], [1], [2]], mode="frozen", num_layers=1, hidden=4)
        >>> maker.view_channels, maker.contrast_sign, any(p.requires_grad for p in maker.parameters())
        ((1, 1, 1), 1.0, False)
    """

    def __init__(
        self,
        *,
        space: ColorSpace = "ydbdr",
        normalize: bool = True,
        split: list[list[int]] | None = None,
        num_layers: int = 4,
        hidden: int = 32,
        volume_preserving: bool = True,
        lu: bool = True,
        init: Literal["identity", "rotation"] = "identity",
        mode: Literal["adversarial", "frozen"] = "adversarial",
        supervised_label: str | None = None,
        num_classes: int | None = None,
        classifier_width: int = 32,
        classifier_depth: int | None = None,
        supervised_weight: float = 1.0,
        labelled_fraction: float = 1.0,
        classifier_lr: float | None = None,
        labelled_batches: Literal["mixed", "alternate"] = "mixed",
    ) -> None:
        super().__init__()
        check_space(space)
        if mode not in ("adversarial", "frozen"):
            raise InvalidParameter("mode", 'must be "adversarial" (stage 1) or "frozen" (stage 2)', mode)
        if supervised_label is not None and (not isinstance(supervised_label, str) or not supervised_label):
            raise InvalidParameter("supervised_label", "must be a batch label key such as \"digit\", or omitted", supervised_label)
        if supervised_label is not None and num_classes is None:
            raise InvalidParameter(
                "num_classes", f"is required with supervised_label = {supervised_label!r}; set the label's class count",
                num_classes,
            )
        if isinstance(supervised_weight, bool) or not supervised_weight >= 0:
            raise InvalidParameter("supervised_weight", "must be >= 0", supervised_weight)
        if isinstance(labelled_fraction, bool) or not 0 < labelled_fraction <= 1:
            raise InvalidParameter("labelled_fraction", "must be in (0, 1]", labelled_fraction)
        if classifier_lr is not None and (isinstance(classifier_lr, bool) or not classifier_lr > 0):
            raise InvalidParameter("classifier_lr", "must be > 0, or omitted for train.view_maker_lr", classifier_lr)
        if classifier_lr is not None and supervised_label is None:
            raise InvalidParameter("classifier_lr", "only applies with supervised_label (the classifiers); remove it",
                                   classifier_lr)
        if labelled_batches not in ("mixed", "alternate"):
            raise InvalidParameter(
                "labelled_batches", 'must be "mixed" (labelled samples spread over every batch) or "alternate" '
                "(whole labelled batches in turn with unlabelled ones, InfoMin's schedule)", labelled_batches,
            )
        if labelled_batches == "alternate" and (supervised_label is None or labelled_fraction == 1):
            raise InvalidParameter(
                "labelled_batches", '"alternate" needs supervised_label and a labelled_fraction below 1 '
                "(there must be labelled and unlabelled samples to alternate)", labelled_batches,
            )
        groups = check_channel_groups(split if split is not None else _DEFAULT_SPLIT, parameter="split")
        # PixelFlow names num_layers / hidden / init itself in its InvalidParameter messages.
        self.flow = PixelFlow(
            channels=3, num_layers=num_layers, hidden=hidden, volume_preserving=volume_preserving, lu=lu, init=init
        )
        self.space = space
        self.normalize = normalize
        self.split = [list(g) for g in groups]
        self.mode = mode
        self.supervised_label = supervised_label
        #: Classes of ``supervised_label`` the view classifiers predict (checked against the data before training).
        self.num_classes = num_classes
        self.supervised_weight = float(supervised_weight)
        self.labelled_fraction = float(labelled_fraction)
        self.labelled_batches = labelled_batches
        #: The classifiers' own learning rate (``None``: the view maker's, ``train.view_maker_lr``).
        self.classifier_lr = None if classifier_lr is None else float(classifier_lr)
        # Built in both modes so a stage-1 state dict (flow + classifiers) loads into the frozen stage 2,
        # where the classifiers are frozen and unused.
        self.classifiers: ViewClassifiers | None = None
        if supervised_label is not None:
            assert num_classes is not None
            # ViewClassifiers names num_classes / width in its InvalidParameter messages.
            self.classifiers = ViewClassifiers(view_channels=self.view_channels, num_classes=num_classes,
                                               width=classifier_width, depth=classifier_depth)
        if mode == "frozen":
            self.requires_grad_(False)

    def parameter_groups(self, lr: float) -> list[dict[str, Any]]:
        """The view optimizer's parameter groups: ``g`` at ``lr``, the classifiers at ``classifier_lr`` (or ``lr``).

        The classifiers only have to read the class off the views, a much easier and faster-moving
        problem than ``g``'s; at ``g``'s small learning rate they can stay at chance for the whole of a
        short stage 1, and then the supervised term teaches ``g`` nothing.

        Example:
            >>> maker = LearnedFlowViews(supervised_label="digit", num_classes=10, classifier_lr=3e-3)
            >>> [(len(g["params"]) > 0, g["lr"]) for g in maker.parameter_groups(5e-4)]
            [(True, 0.0005), (True, 0.003)]
        """
        trainable = [p for p in self.parameters() if p.requires_grad]
        if self.classifiers is None or self.classifier_lr is None:  # one group, as before classifier_lr existed
            return [{"params": trainable, "lr": lr}] if trainable else []
        heads = {id(p) for p in self.classifiers.parameters()}
        groups = [{"params": [p for p in trainable if id(p) not in heads], "lr": lr},
                  {"params": [p for p in trainable if id(p) in heads], "lr": self.classifier_lr}]
        return [g for g in groups if g["params"]]  # frozen: nothing to optimise

    #: The Pipeline logs :meth:`auxiliary_loss` as ``view_maker/<auxiliary_loss_name>``.
    auxiliary_loss_name = "classification"

    @property
    def required_keys(self) -> tuple[str, ...]:
        """Batch entries besides ``image`` that training reads: the supervised label in adversarial mode."""
        if self.supervised_label is not None and self.mode == "adversarial":
            return (self.supervised_label,)
        return ()

    def labelled_mask(self, index: Tensor) -> Tensor:
        """Which samples count as labelled: a fixed ``labelled_fraction`` of dataset indices, as a bool ``[B]``.

        A multiplicative (Fibonacci) hash of the index, compared with ``fraction * 2**32``: the same
        samples are labelled every epoch and in every batch order, and over consecutive indices the
        share is ``labelled_fraction`` to within a few samples, with labelled and unlabelled mixed.

        Example:
            >>> import torch
            >>> maker = LearnedFlowViews(num_layers=1, hidden=4, supervised_label="digit", num_classes=10,
            ...                          labelled_fraction=0.25)
            >>> int(maker.labelled_mask(torch.arange(1000)).sum())  # 25% to within a sample or two
            251
        """
        return labelled_mask(index, self.labelled_fraction)

    def labelled_batch_indices(self, dataset_size: int) -> Tensor | None:
        """The labelled dataset indices, for whole labelled batches (``labelled_batches = "alternate"``).

        ``None`` (ordinary shuffled batches) with ``"mixed"`` or once frozen. The trainer then
        alternates a batch of these indices with a batch of the others
        (:class:`~contrastkit.training.samplers.AlternatingBatchSampler`), so the cross-entropy term sees a
        whole batch of labels every other step instead of ``labelled_fraction`` of every batch.

        Example:
            >>> maker = LearnedFlowViews(num_layers=1, hidden=4, supervised_label="digit", num_classes=10,
            ...                          labelled_fraction=0.1, labelled_batches="alternate")
            >>> len(maker.labelled_batch_indices(1000))
            100
        """
        if self.labelled_batches != "alternate" or self.mode != "adversarial":
            return None
        return labelled_mask(torch.arange(dataset_size), self.labelled_fraction).nonzero().squeeze(1)

    def auxiliary_loss(self, batch: Batch, views: Sequence[Tensor]) -> Tensor | None:
        """InfoMin's semi-supervised term ``supervised_weight * (CE(c1(v1), y) + CE(c2(v2), y))``.

        ``views`` are this maker's outputs *before* the pipeline's gradient reversal, so ``g`` (and
        ``c1, c2``) minimise it. Samples outside :meth:`labelled_mask` count as unlabelled (``-1``).
        ``None`` when unsupervised or frozen. The Pipeline calls it in training mode only.

        Example:
            >>> import torch
            >>> maker = LearnedFlowViews(num_layers=1, hidden=4, supervised_label="digit", num_classes=10)
            >>> batch = {"image": torch.rand(4, 3, 8, 8), "index": torch.arange(4), "digit": torch.tensor([0, 1, 2, 3])}
            >>> maker.auxiliary_loss(batch, maker(batch, lambda x, view: x)).ndim
            0
        """
        if self.classifiers is None or self.mode != "adversarial":
            return None
        labels = batch[self.supervised_label].long().reshape(-1)  # type: ignore[index]
        if self.labelled_fraction < 1:
            index = batch.get("index")
            if index is None:
                index = torch.arange(labels.shape[0], device=labels.device)
            labels = torch.where(labelled_mask(index.to(labels.device), self.labelled_fraction), labels, -1)
        return self.supervised_weight * self.classifiers(views, labels)

    @property
    def contrast_sign(self) -> float:
        """``-1.0`` in adversarial mode (``g`` ascends the InfoNCE loss), ``+1.0`` when frozen."""
        return -1.0 if self.mode == "adversarial" else 1.0

    @property
    def view_channels(self) -> tuple[int, ...]:
        """Channels of each view: the size of each ``split`` group."""
        return tuple(len(g) for g in self.split)

    def _input_space(self, images: Tensor) -> Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ShapeError(f"views.learned-flow: expected RGB images [B, 3, H, W], got {tuple(images.shape)}")
        return to_color_space(images, self.space, self.normalize)

    def transform(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """RGB ``[B, 3, H, W]`` in [0, 1] -> ``(X_hat = g(space(images)), log|det dg| [B])``, no augmentation.

        Example:
            >>> import torch
            >>> maker = LearnedFlowViews(space="rgb", num_layers=1, hidden=4)
            >>> x_hat, logdet = maker.transform(torch.ones(2, 3, 4, 4))
            >>> x_hat.shape, x_hat.mean().item()  # identity at init: white is 1 in [-1, 1] RGB
            (torch.Size([2, 3, 4, 4]), 1.0)
        """
        return self.flow(self._input_space(images))

    def _split(self, x_hat: Tensor, group: list[int]) -> Tensor:
        return split_channels(x_hat, group)

    def forward(self, batch: Batch, augment: AugmentFn) -> list[Tensor]:
        """``batch["image"]`` ``[B, 3, H, W]`` -> one ``[B, len(group), H', W']`` view per ``split`` group."""
        x_hat, _ = self.transform(augment(batch["image"], 0))
        return [self._split(x_hat, g) for g in self.split]

    @torch.no_grad()
    def learned_views_for_display(self, images: Tensor) -> list[Tensor]:
        """Each view of RGB ``images`` as displayable ``[B, 3, H, W]`` in [0, 1] (e.g. for TensorBoard).

        Each channel is min-max scaled over the batch; a 1-channel view is shown grey, a 2-channel
        view as red/green with a zero blue channel. No augmentation, no gradient.

        Example:
            >>> import torch
            >>> shown = LearnedFlowViews(num_layers=1, hidden=4).learned_views_for_display(torch.rand(2, 3, 8, 8))
            >>> [tuple(v.shape) for v in shown], all(0 <= float(v.min()) and float(v.max()) <= 1 for v in shown)
            ([(2, 3, 8, 8), (2, 3, 8, 8)], True)
        """
        x_hat, _ = self.transform(images)
        shown = []
        for group in self.split:
            view = self._split(x_hat, group)
            low = view.amin(dim=(0, 2, 3), keepdim=True)
            high = view.amax(dim=(0, 2, 3), keepdim=True)
            view = (view - low) / (high - low).clamp_min(1e-8)
            if view.shape[1] == 1:
                view = view.expand(-1, 3, -1, -1)
            elif view.shape[1] == 2:
                view = torch.cat([view, torch.zeros_like(view[:, :1])], dim=1)
            shown.append(view.contiguous())
        return shown

    def extra_repr(self) -> str:
        supervised = f", supervised_label={self.supervised_label}" if self.supervised_label is not None else ""
        return f"space={self.space}, split={self.split}, mode={self.mode}{supervised}"


_HASH_MULTIPLIER = 2654435761  # Knuth's multiplicative hash: floor(2**32 / golden ratio), odd


def labelled_mask(index: Tensor, fraction: float) -> Tensor:
    """Bool ``[B]``: whether each dataset ``index`` is in the labelled ``fraction`` (deterministic, no loop).

    ``(index * 2654435761) mod 2**32 < fraction * 2**32``: consecutive indices land on an
    equidistributed (Weyl) sequence, so any range of indices holds about ``fraction`` labelled ones.

    Example:
        >>> import torch
        >>> labelled_mask(torch.arange(8), 0.5).tolist()
        [True, False, True, False, True, True, False, True]
        >>> bool(labelled_mask(torch.arange(3), 1.0).all())
        True
    """
    hashed = (index.long() * _HASH_MULTIPLIER) % (1 << 32)
    return hashed < int(fraction * (1 << 32))


def view_classification_loss(
    views: Sequence[Tensor],
    labels: Tensor,
    classifiers: Sequence[Callable[[Tensor], Tensor]],
    *,
    ignore_index: int = -1,
) -> Tensor:
    """InfoMin's semi-supervised term ``sum_i CE(c_i(v_i), y)``, each mean over the labelled samples.

    ``views[i]`` ``[B, C_i, H, W]`` goes through ``classifiers[i]`` (-> logits ``[B, num_classes]``);
    ``labels`` ``[B]`` int64. Samples labelled ``ignore_index`` (STL-10's unlabelled split uses -1)
    are skipped, so a mixed batch works; an all-unlabelled batch gives 0.

    Example:
        >>> import torch
        >>> views = [torch.zeros(3, 1, 4, 4), torch.zeros(3, 2, 4, 4)]
        >>> uniform = lambda v: torch.zeros(v.shape[0], 5)  # a classifier that knows nothing
        >>> loss = view_classification_loss(views, torch.tensor([0, 4, -1]), [uniform, uniform])
        >>> round(float(loss), 4)  # 2 * log 5
        3.2189
    """
    if len(views) != len(classifiers):
        raise ShapeError(
            f"view_classification_loss: {len(views)} views but {len(classifiers)} classifiers; give one per view"
        )
    if labels.ndim != 1 or any(v.shape[0] != labels.shape[0] for v in views):
        raise ShapeError(
            f"view_classification_loss: labels must be [B] with B the views' batch size, got {tuple(labels.shape)} "
            f"for views {[tuple(v.shape) for v in views]}"
        )
    keep = labels != ignore_index
    labelled = keep.sum().clamp_min(1)
    if bool(keep.any()) and not bool(keep.all()):
        # Only the labelled samples go through the classifiers (10% of a batch with labelled_fraction
        # = 0.1): the same loss for a tenth of the compute. With none labelled, all go through and
        # every term is 0, so each classifier still takes part in the graph (DDP).
        views, labels = [v[keep] for v in views], labels[keep]
    total = views[0].new_zeros(())
    for view, classifier in zip(views, classifiers):
        logits = classifier(view)
        total = total + F.cross_entropy(logits, labels, ignore_index=ignore_index, reduction="sum") / labelled
    return total


def _view_classifier(in_channels: int, num_classes: int, width: int, depth: int | None) -> nn.Module:
    if depth is not None:
        # The encoders' own conv net: the two-layer head below, globally pooled, stays near chance
        # on a few hundred labelled textures, which this one learns (measured on learned-views).
        body = ConvNetEncoder(in_channels=in_channels, width=width, depth=depth)
        return nn.Sequential(body, nn.Linear(body.feature_dim, num_classes))
    # A tiny conv net: the seed slides do not give InfoMin's classifier, and a linear probe on raw
    # pixels could not read labels that the flow moves between pixels' colours non-linearly.
    return nn.Sequential(
        nn.Conv2d(in_channels, width, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.Conv2d(width, 2 * width, kernel_size=3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2 * width, num_classes),
    )


class ViewClassifiers(nn.Module):
    """InfoMin's classifiers ``c_i``, one per view: ``conv3x3 -> ReLU -> conv3x3/2 -> ReLU -> pool -> linear``,
    or with ``depth`` the ``convnet`` encoder's architecture (``width``, ``depth`` blocks) and a linear layer.

    ``forward(views, labels)`` returns :func:`view_classification_loss` (``CE(c1(v1), y) + CE(c2(v2), y)``);
    ``logits(views)`` gives each classifier's ``[B, num_classes]``.

    Example:
        >>> import torch
        >>> classifiers = ViewClassifiers(view_channels=(1, 2), num_classes=10, width=8)
        >>> views = [torch.rand(4, 1, 8, 8), torch.rand(4, 2, 8, 8)]
        >>> loss = classifiers(views, torch.tensor([0, 1, 2, -1]))
        >>> loss.ndim, [tuple(z.shape) for z in classifiers.logits(views)]
        (0, [(4, 10), (4, 10)])
        >>> deep = ViewClassifiers(view_channels=(1, 2), num_classes=10, width=8, depth=3)
        >>> [tuple(z.shape) for z in deep.logits(views)]
        [(4, 10), (4, 10)]
    """

    def __init__(self, *, view_channels: Sequence[int], num_classes: int, width: int = 32,
                 depth: int | None = None) -> None:
        super().__init__()
        if len(view_channels) < 1 or any(c < 1 for c in view_channels):
            raise InvalidParameter("view_channels", "must list each view's channel count (>= 1)", view_channels)
        if num_classes < 2:
            raise InvalidParameter("num_classes", "must be >= 2", num_classes)
        if width < 1:
            raise InvalidParameter("width", "must be >= 1", width)
        if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= 8):
            raise InvalidParameter("classifier_depth", "must be an integer from 1 to 8, or omitted for the two-layer "
                                   "head", depth)
        self.heads = nn.ModuleList(_view_classifier(c, num_classes, width, depth) for c in view_channels)

    def logits(self, views: Sequence[Tensor]) -> list[Tensor]:
        """Each view through its classifier -> ``[B, num_classes]``."""
        return [head(view) for head, view in zip(self.heads, views)]

    def forward(self, views: Sequence[Tensor], labels: Tensor) -> Tensor:
        """``sum_i CE(c_i(views[i]), labels)`` over the labelled samples (``-1`` = unlabelled)."""
        return view_classification_loss(views, labels, list(self.heads))

"""Contract checks every plugin must pass — contrastkit's own tests run them over the whole registry.

Plugin authors call them from their own tests::

    from contrastkit.testing import check_registered
    def test_contract():
        check_registered("view_makers", "sobel")

Each ``check_*`` builds nothing itself: it takes a ready component and raises ``AssertionError``
with a one-line reason when the component breaks its interface's contract.
:func:`check_registered` builds a registered component with its default parameters (plus
``factory.contract_params`` if the factory defines such a dict, e.g. a small ``size`` for a
dataset) and the arguments contrastkit would inject, then runs the matching check.

Example:
    >>> check_registered("objectives", "infonce")
    >>> check_registered("view_makers", "color-split")
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from contrastkit import optional_hooks as hooks
from contrastkit.critics.cosine import CosineCritic
from contrastkit.errors import ConfigError
from contrastkit.factories import build_component, resolve
from contrastkit.interfaces import LabelledObjective, PairLogits, PairObjective, PositiveSupplier, is_trainable
from contrastkit.optional_hooks import BatchKeyReader, ImageChannels, runs_in_workers
from contrastkit.registry import Registry, get_registry
from contrastkit.slots import BY_KIND, SLOT_TABLE

__all__ = [
    "CONTEXT",
    "CONTRACTS",
    "check_augmentation",
    "check_critic",
    "check_dataset",
    "check_encoder",
    "check_negative_sampler",
    "check_objective",
    "check_optional_hooks",
    "check_registered",
    "check_regularizer",
    "check_view_maker",
    "check_worker_augmentation",
]

#: The injected arguments :func:`check_registered` passes to each kind's factory (the slot table's examples).
CONTEXT: dict[str, dict[str, Any]] = {slot.kind: {arg.name: arg.example for arg in slot.injected} for slot in SLOT_TABLE}


def _finite(t: Tensor, what: str) -> None:
    assert torch.isfinite(t).all(), f"{what} contains NaN or inf"


def check_dataset(dataset: Any, *, samples: int = 3) -> None:
    """Items are dicts with ``image`` ``[C, H, W]`` (uint8, or float in [0, 1]), ``index == i`` and every label.

    Example:
        >>> from contrastkit.datasets.colorful_moving_digits import ColorfulMovingDigits
        >>> check_dataset(ColorfulMovingDigits(split="train", size=4))
    """
    assert len(dataset) >= 1, "dataset is empty"
    label_keys = tuple(getattr(dataset, "label_keys", ()))
    for i in range(min(samples, len(dataset))):
        item = dataset[i]
        assert isinstance(item, Mapping), f"dataset[{i}] is {type(item).__name__}, expected a dict"
        image = item.get("image")
        assert isinstance(image, Tensor) and image.ndim == 3, f"dataset[{i}]['image'] must be a [C, H, W] tensor"
        if image.dtype != torch.uint8:
            assert image.is_floating_point(), f"dataset[{i}]['image'] must be uint8 or float, got {image.dtype}"
            assert float(image.min()) >= 0 and float(image.max()) <= 1, f"dataset[{i}]['image'] must lie in [0, 1]"
        assert "index" in item and int(item["index"]) == i, f"dataset[{i}]['index'] must equal {i}"
        for key in label_keys:
            assert key in item, f"dataset[{i}] lacks label {key!r} listed in label_keys"


def check_augmentation(augmentation: Callable[[Tensor], Tensor], *, size: int = 24) -> None:
    """Batch in, batch out: ``[B, 3, H, W]`` float -> ``[B, 3, H', W']`` float, finite, same batch size.

    Example:
        >>> from contrastkit.augmentations.basic import CropFlip
        >>> check_augmentation(CropFlip())
    """
    images = torch.rand(5, 3, size, size)
    out = augmentation(images)
    assert isinstance(out, Tensor) and out.ndim == 4, "augmentation must return a [B, C, H, W] tensor"
    assert out.shape[:2] == images.shape[:2], f"augmentation changed batch or channels: {tuple(out.shape)}"
    assert out.is_floating_point(), f"augmentation returned {out.dtype}, expected float"
    _finite(out, "augmentation output")


def check_view_maker(view_maker: Any, *, size: int = 32) -> None:
    """At least two views, each ``[B, C_i, H, W]`` with ``C_i`` as declared in ``view_channels``, made through ``augment``.

    Example:
        >>> from contrastkit.views.color_split import ColorSplitViews
        >>> check_view_maker(ColorSplitViews(space="ydbdr"))
    """
    channels = tuple(view_maker.view_channels)
    assert len(channels) >= 2, f"view_channels must list at least two views, got {channels}"
    # A view maker of multi-modal images (rgbd: RGB + depth) declares the channel counts it accepts.
    accepted = tuple(view_maker.image_channels) if isinstance(view_maker, ImageChannels) else (3,)
    image_channels = int(accepted[0])  # an empty tuple is an IndexError, as it should be
    batch = {"image": torch.rand(4, image_channels, size, size), "index": torch.arange(4)}
    for key in view_maker.required_keys if isinstance(view_maker, BatchKeyReader) else ():  # extra images it reads
        batch[key] = torch.rand(4, 3, size, size)
    calls: list[int] = []

    def augment(images: Tensor, view: int) -> Tensor:
        calls.append(view)
        return images

    views = view_maker(batch, augment)
    assert len(views) == len(channels), f"{len(views)} views produced, {len(channels)} declared"
    for i, (view, c) in enumerate(zip(views, channels)):
        assert view.ndim == 4 and view.shape[0] == 4, f"view {i + 1} has shape {tuple(view.shape)}, expected [B, C, H, W]"
        assert view.shape[1] == c, f"view {i + 1} has {view.shape[1]} channels, declared {c}"
        assert view.is_floating_point(), f"view {i + 1} is {view.dtype}, expected float"
        _finite(view, f"view {i + 1}")
    assert all(0 <= v < len(channels) for v in calls), f"augment called with view indices {calls}"
    # A view maker that never calls augment silently drops the recipe's [augment] table.
    assert calls, "the view maker never called augment(images, view): the recipe's [augment] would be ignored"
    marked = view_maker(batch, lambda images, view: images * 0.0 + 0.5)
    assert any(not torch.equal(a, b) for a, b in zip(views, marked)), (
        "the views do not change when augment does: the view maker discards augment's output"
    )
    if is_trainable(view_maker):
        sum(v.sum() for v in views).backward()
        assert any(p.grad is not None for p in view_maker.parameters()), "trainable view maker got no gradient"


def check_encoder(encoder: Any, *, in_channels: int, size: int = 32) -> None:
    """``[B, in_channels, H, W] -> [B, feature_dim]``, finite, and gradients reach its parameters.

    Example:
        >>> from contrastkit.encoders.convnet import ConvNetEncoder
        >>> check_encoder(ConvNetEncoder(in_channels=2, width=4), in_channels=2)
    """
    x = torch.rand(4, in_channels, size, size)
    out = encoder(x)
    assert out.shape == (4, encoder.feature_dim), f"encoder returned {tuple(out.shape)}, expected (4, {encoder.feature_dim})"
    _finite(out, "encoder output")
    out.square().mean().backward()
    assert any(p.grad is not None for p in encoder.parameters()), "no gradient reached the encoder's parameters"


def check_critic(critic: Any, *, feature_dims: tuple[int, ...]) -> None:
    """``embed`` -> ``[B, D]`` per view; ``score`` -> ``[B, K]`` for shared and per-anchor candidates, consistently.

    Example:
        >>> check_critic(CosineCritic(feature_dims=(8, 6)), feature_dims=(8, 6))
    """
    dim = critic.embedding_dim
    z = [critic.embed(torch.randn(5, f), view=i) for i, f in enumerate(feature_dims)]
    for i, e in enumerate(z):
        assert e.shape == (5, dim), f"embed(view={i}) returned {tuple(e.shape)}, expected (5, {dim})"
        _finite(e, f"embedding of view {i + 1}")
    shared = critic.score(z[0], z[1])
    assert shared.shape == (5, 5), f"score with [K, D] candidates returned {tuple(shared.shape)}, expected (5, 5)"
    per_anchor = critic.score(z[0], z[1].unsqueeze(0).expand(5, 5, dim))
    assert per_anchor.shape == (5, 5), f"score with [B, K, D] candidates returned {tuple(per_anchor.shape)}"
    assert torch.allclose(shared, per_anchor, atol=1e-5), "score differs between [K, D] and [B, K, D] candidates"


def check_negative_sampler(sampler: Any, *, embedding_dim: int = 16, steps: int = 2) -> None:
    """``pair_logits`` returns ``[B, K+1]`` logits whose ``target`` column is the positive's score.

    Example:
        >>> from contrastkit.negatives.in_batch import InBatchNegatives
        >>> check_negative_sampler(InBatchNegatives(num_views=2, dataset_size=64, embedding_dim=16))
    """
    critic = CosineCritic(feature_dims=(embedding_dim, embedding_dim), head="none", temperature=0.5)
    for step in range(steps):
        index = torch.arange(step * 6, step * 6 + 6)
        z1 = critic.embed(torch.randn(6, embedding_dim), 0)
        z2 = critic.embed(torch.randn(6, embedding_dim), 1)
        pair = sampler.pair_logits(critic, z1, z2, index=index, anchor_view=0, target_view=1)
        assert isinstance(pair, PairLogits), f"pair_logits returned {type(pair).__name__}, expected PairLogits"
        assert pair.logits.ndim == 2 and pair.logits.shape[0] == 6, f"logits {tuple(pair.logits.shape)}, expected [6, K+1]"
        assert pair.logits.shape[1] >= 2, "each anchor needs at least one negative"
        assert pair.target.shape == (6,) and pair.target.dtype == torch.int64, "target must be int64 [B]"
        assert bool(((pair.target >= 0) & (pair.target < pair.logits.shape[1])).all()), "target column out of range"
        positive = pair.logits.gather(1, pair.target[:, None]).squeeze(1)
        # A sampler that supplies its positives scores its stand-ins for the anchors (NNCLR's neighbours).
        queries = sampler.supplied_anchors(z1) if isinstance(sampler, PositiveSupplier) else z1
        expected = (queries * z2).sum(1) / 0.5
        assert torch.allclose(positive, expected, atol=1e-4), "the target column does not hold the positive pair's score"
        sampler.update([z1.detach(), z2.detach()], index)


def check_objective(objective: Any) -> None:
    """Finite scalar with gradients; raising the positive's logit never raises the loss; MI bound finite or None.

    A :class:`~contrastkit.interfaces.PairObjective` gets a full :class:`PairLogits` (embeddings
    included); one that takes positives from a label (:class:`~contrastkit.interfaces.LabelledObjective`)
    must change its loss when rows gain extra positives — a loss that ignores them fails here.

    Example:
        >>> from contrastkit.objectives.infonce import InfoNCE
        >>> from contrastkit.objectives.supcon import SupCon
        >>> check_objective(InfoNCE()); check_objective(SupCon(label="digit"))
    """
    torch.manual_seed(0)
    logits = torch.randn(8, 9, dtype=torch.float32, requires_grad=True)
    target = torch.arange(8)
    anchors = torch.randn(8, 16, requires_grad=True)
    positives = torch.randn(8, 16, requires_grad=True)
    by_pair = isinstance(objective, PairObjective)

    def loss_of(scores: Tensor, mask: Tensor | None = None) -> Tensor:
        if not by_pair:
            return objective(scores, target)
        labels = torch.arange(8) if mask is None else torch.zeros(8, dtype=torch.long)
        return objective.pair_loss(PairLogits(logits=scores, target=target, anchor_view=0, target_view=1,
                                              anchors=anchors, positives=positives, labels=labels,
                                              positive_mask=mask))

    loss = loss_of(logits)
    assert isinstance(loss, Tensor) and loss.ndim == 0, "objective must return a scalar tensor"
    _finite(loss, "loss")
    loss.backward()
    grads = [t.grad for t in (logits, anchors, positives) if t.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads), "no finite gradient w.r.t. the logits or embeddings"
    if logits.grad is not None and logits.grad.abs().sum() > 0:  # a loss on the logits
        better = logits.detach().clone()
        better[torch.arange(8), target] += 2.0
        assert float(loss_of(better).detach()) <= float(loss.detach()) + 1e-6, "a higher positive logit increased the loss"
    if isinstance(objective, LabelledObjective) and objective.label is not None:
        extra = torch.zeros(8, 9, dtype=torch.bool)
        extra[torch.arange(8), target] = True
        extra[torch.arange(8), (target + 1) % 9] = True  # a second positive in every row
        with_extra = float(loss_of(logits.detach(), extra))
        assert abs(with_extra - float(loss.detach())) > 1e-6, "the loss ignores the extra positives in positive_mask"
    bound = objective.mi_lower_bound(loss.detach(), 8)
    assert bound is None or (isinstance(bound, Tensor) and bound.ndim == 0 and math.isfinite(float(bound))), (
        "mi_lower_bound must return a finite scalar tensor or None"
    )
    assert isinstance(getattr(objective, "two_way", None), bool), "objective must define two_way: bool"


def check_regularizer(regularizer: Any) -> None:
    """A finite scalar from a pair's two directions; differentiable in the forward logits.

    Example:
        >>> from contrastkit.regularizers.relic import RelicKL
        >>> check_regularizer(RelicKL())
    """
    logits = torch.randn(6, 6, requires_grad=True)
    forward = PairLogits(logits=logits, target=torch.arange(6), anchor_view=0, target_view=1)
    backward = PairLogits(logits=torch.randn(6, 6), target=torch.arange(6), anchor_view=1, target_view=0)
    value = regularizer(forward, backward)
    assert isinstance(value, Tensor) and value.ndim == 0, "regularizer must return a scalar tensor"
    _finite(value, "regularizer value")
    if value.requires_grad:
        value.backward()
        assert logits.grad is not None and torch.isfinite(logits.grad).all(), "non-finite gradient"


def check_worker_augmentation(augmentation: Any, *, size: int = 24) -> None:
    """Per sample on the CPU: uint8 ``[H, W, C] -> [H', W', C]``, deterministic given ``seed``.

    For augmentations with ``runs_in_workers = True`` (they run in DataLoader workers, not on the device).

    Example:
        >>> from contrastkit.augmentations.albumentations_recipes import AlbumentationsAugmentation
        >>> check_worker_augmentation(AlbumentationsAugmentation(recipe="simclr"))
    """
    rng = np.random.default_rng(0)
    for channels in (3, 1):
        image = rng.integers(0, 256, (size, size, channels), dtype=np.uint8)
        out = augmentation.augment_sample(image, seed=1)
        assert isinstance(out, np.ndarray) and out.ndim == 3 and out.dtype == np.uint8, (
            "augment_sample must return a uint8 [H, W, C] array"
        )
        assert out.shape[2] == channels, f"augment_sample changed the channel count: {out.shape}"
        again = augmentation.augment_sample(image, seed=1)
        assert np.array_equal(again, out), "augment_sample is not deterministic given its seed"


def check_optional_hooks(component: Any) -> None:
    """Every optional hook ``component`` declares (:mod:`contrastkit.optional_hooks`) holds a valid value.

    Example:
        >>> from contrastkit.views.learned_flow import LearnedFlowViews
        >>> check_optional_hooks(LearnedFlowViews(num_layers=1, hidden=4))
        >>> class Odd:
        ...     contrast_sign = 2.0
        >>> check_optional_hooks(Odd())  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        AssertionError: contrast_sign must be +1.0 or -1.0, got 2.0...
    """
    c = component
    if isinstance(c, hooks.AdversarialViewMaker):
        assert float(c.contrast_sign) in (1.0, -1.0), f"contrast_sign must be +1.0 or -1.0, got {c.contrast_sign}"
    if isinstance(c, hooks.BatchKeyReader):
        keys = tuple(c.required_keys)
        assert all(isinstance(k, str) and k and k != "image" for k in keys), f"required_keys: batch keys, got {keys}"
    if isinstance(c, hooks.BatchKeysHint):
        assert isinstance(c.required_keys_hint, str) and c.required_keys_hint, "required_keys_hint must be a phrase"
    if isinstance(c, hooks.AuxiliaryLossName):
        assert isinstance(c.auxiliary_loss_name, str) and c.auxiliary_loss_name, "auxiliary_loss_name must be a name"
    if isinstance(c, hooks.SupervisedViewMaker):
        assert c.supervised_label is None or isinstance(c.supervised_label, str), "supervised_label: str or None"
        assert c.num_classes is None or int(c.num_classes) >= 2, f"num_classes must be >= 2, got {c.num_classes}"
    if isinstance(c, hooks.DatasetParameterSource):
        assert isinstance(c.dataset_parameters, Mapping), "dataset_parameters must be a mapping"
    if isinstance(c, hooks.ImageChannels):
        channels = tuple(c.image_channels)
        assert channels and all(isinstance(n, int) and n >= 1 for n in channels), f"image_channels: {channels}"
    if isinstance(c, hooks.WorkerAugmentation):
        assert isinstance(c.runs_in_workers, bool), "runs_in_workers must be a bool"
        assert not c.runs_in_workers or isinstance(c, hooks.SampleAugmentation), "a worker augmentation needs augment_sample"
    if isinstance(c, hooks.MomentumKeyed):
        m = c.key_momentum
        assert m is None or 0.0 <= float(m) < 1.0, f"key_momentum must be in [0, 1) or None, got {m}"
    if isinstance(c, hooks.SameViewObjective):
        assert isinstance(c.same_view_negatives, bool), "same_view_negatives must be a bool"
    if isinstance(c, hooks.TemperedCritic):
        assert float(c.temperature) > 0, f"temperature must be > 0, got {c.temperature}"


def check_registered(kind: str, name: str, *, registry: Registry | None = None) -> None:
    """Build registered ``name`` of ``kind`` with defaults and injected arguments, then check its contract.

    It builds the component as a recipe would (:func:`contrastkit.factories.build_component`), so
    an unknown kind or name, a duplicate name, a missing required parameter or a factory that
    rejects its parameters raises the one-line :class:`~contrastkit.errors.ContrastkitError` the
    CLI prints, not a raw ``TypeError``; a broken contract raises ``AssertionError``.

    Example:
        >>> check_registered("encoders", "convnet")
        >>> check_registered("objectives", "infonec")
        Traceback (most recent call last):
        ...
        contrastkit.errors.ConfigError: objective.name: unknown objectives name 'infonec'; did you mean 'infonce'? (run `contrastkit plugins` to list every name)
    """
    registry = registry or get_registry()
    registry.names(kind)  # an unknown kind: UnknownNameError with the closest kind
    table = BY_KIND[kind].table
    factory = resolve(registry, kind, name, table=table).factory
    params = dict(getattr(factory, "contract_params", {}))
    context = CONTEXT[kind]
    with tempfile.TemporaryDirectory() as tmp:
        # File-backed datasets write a tiny fixture of their format and say how to read it.
        if hasattr(factory, "contract_params_for"):
            params.update(factory.contract_params_for(Path(tmp)))
        try:
            component = build_component(registry, kind, {"name": name, **params}, table=table, injected=context)
        except ConfigError as exc:
            given = f"contract_params {params}" if params else "no contract_params (a dict on the factory)"
            injected = "".join(f", {k}={v!r}" for k, v in context.items())
            raise ConfigError(f"{exc.message}; check_registered passes the defaults plus {given}{injected}") from None
        check_optional_hooks(component)
        CONTRACTS[kind](component, context)  # in the folder: a file-backed dataset reads its fixture


def _check_any_augmentation(augmentation: Any, context: Mapping[str, Any]) -> None:
    if runs_in_workers(augmentation):
        check_worker_augmentation(augmentation)
    else:
        check_augmentation(augmentation)


#: Each kind's contract, given a built component and the injected arguments it was built with (one per slot).
CONTRACTS: dict[str, Callable[[Any, Mapping[str, Any]], None]] = {
    "datasets": lambda dataset, context: check_dataset(dataset),
    "augmentations": _check_any_augmentation,
    "view_makers": lambda view_maker, context: check_view_maker(view_maker),
    "encoders": lambda encoder, context: check_encoder(encoder, in_channels=context["in_channels"]),
    "critics": lambda critic, context: check_critic(critic, feature_dims=context["feature_dims"]),
    "negative_samplers": lambda sampler, context: check_negative_sampler(sampler, embedding_dim=context["embedding_dim"]),
    "objectives": lambda objective, context: check_objective(objective),
    "regularizers": lambda regularizer, context: check_regularizer(regularizer),
}

"""Building the Pipeline's slots: each component from its spec, per view where the recipe says so.

Every slot is built through :func:`build_slot`, which takes the kind from the slot table
(:data:`contrastkit.slots.BY_TABLE`) and the injected arguments from the pipeline built so far. The
view maker comes first: the number of views and their channel counts decide how many augmentations
and encoders there are, and with which ``in_channels``.

Example:
    >>> from contrastkit.registry import get_registry
    >>> maker = build_slot(get_registry(), "views", {"name": "color-split", "space": "lab"})
    >>> channels = check_view_channels(maker)
    >>> encoders, view_encoder = build_encoders(get_registry(), {"name": "convnet", "width": 4}, shared=False,
    ...                                         view_channels=channels, view_maker=maker)
    >>> channels, [encoders[k].in_channels for k in view_encoder]
    ((1, 2), [1, 2])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from contrastkit.config import PluginTable
from contrastkit.errors import ConfigError, ContrastkitError, ShapeError
from contrastkit.factories import build_component, factory_parameters, split_spec
from contrastkit.interfaces import describe
from contrastkit.optional_hooks import BatchKeyReader, DatasetParameterSource, runs_in_workers
from contrastkit.registry import Registry
from contrastkit.slots import BY_TABLE

__all__ = [
    "build_augmentations",
    "build_encoders",
    "build_slot",
    "check_view_channels",
    "check_worker_reads",
    "data_spec_for_views",
]


def build_slot(
    registry: Registry, table: str, spec: Any, *, where: str | None = None, injected: Mapping[str, Any] | None = None
) -> Any:
    """Build slot ``table``'s component from ``spec``; ``where`` names it in messages (default ``table``).

    Example:
        >>> from contrastkit.registry import get_registry
        >>> build_slot(get_registry(), "critic", "cosine", injected={"feature_dims": (8, 8)}).embedding_dim
        128
    """
    return build_component(registry, BY_TABLE[table].kind, spec, table=where or table, injected=injected)


class _CallableModule(nn.Module):
    def __init__(self, fn: Any) -> None:
        super().__init__()
        self.fn = fn
        self.registered_name = getattr(fn, "registered_name", None)

    def forward(self, images: Tensor) -> Tensor:
        return self.fn(images)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.__dict__["fn"], name)


def _as_module(augmentation: Any) -> nn.Module:
    """Plain callables are wrapped so the per-view augmentations fit in an ``nn.ModuleList``."""
    return augmentation if isinstance(augmentation, nn.Module) else _CallableModule(augmentation)


def check_view_channels(view_maker: Any) -> tuple[int, ...]:
    """The view maker's ``view_channels``: at least two positive ints, one per view.

    Example:
        >>> class OneView:
        ...     view_channels = (3,)
        >>> check_view_channels(OneView())
        Traceback (most recent call last):
        ...
        contrastkit.errors.ShapeError: views.OneView: view_channels must be >= 2 positive ints, one per view (got (3,))
    """
    channels = getattr(view_maker, "view_channels", None)
    name = describe(view_maker)
    if channels is None:
        raise ShapeError(f"views.{name}: view maker has no view_channels; it must declare each view's channels")
    channels = tuple(channels)
    if len(channels) < 2 or not all(isinstance(c, int) and c >= 1 for c in channels):
        raise ShapeError(f"views.{name}: view_channels must be >= 2 positive ints, one per view (got {channels})")
    return channels


def _per_view_specs(spec: Any, *, table: str, view_channels: tuple[int, ...], view_maker: Any) -> list[Any] | None:
    """A list of per-view specs (checked against the view count), or ``None`` for one spec."""
    if isinstance(spec, (PluginTable, str, Mapping, nn.Module)) or spec is None:
        return None
    if not isinstance(spec, Sequence):
        return None
    num_views = len(view_channels)
    if len(spec) != num_views:
        raise ShapeError(
            f"{table}: {len(spec)} per-view entries for {num_views} views "
            f"({describe(view_maker)} makes {num_views}); give one per view or a single table"
        )
    return list(spec)


def build_augmentations(
    registry: Registry, spec: Any, *, view_channels: tuple[int, ...], view_maker: Any
) -> tuple[nn.ModuleList, list[int]]:
    """The augmentations and, per view, the index of its own: one shared by every view, or one per view.

    Example:
        >>> from contrastkit.registry import get_registry
        >>> build_augmentations(get_registry(), ["none", "crop-flip"], view_channels=(1, 2), view_maker=None)[1]
        [0, 1]
    """
    num_views = len(view_channels)
    specs = _per_view_specs(spec, table="augment", view_channels=view_channels, view_maker=view_maker)
    if specs is None:
        module = build_slot(registry, "augment", spec)
        return nn.ModuleList([_as_module(module)]), [0] * num_views
    modules = [_as_module(build_slot(registry, "augment", s, where=f"augment[{i}]")) for i, s in enumerate(specs)]
    return nn.ModuleList(modules), list(range(num_views))


def build_encoders(
    registry: Registry, spec: Any, *, shared: bool, view_channels: tuple[int, ...], view_maker: Any
) -> tuple[nn.ModuleList, list[int]]:
    """The encoders and, per view, the index of its encoder: instances, one table per view, shared, or one each.

    Example:
        >>> from contrastkit.registry import get_registry
        >>> build_encoders(get_registry(), "convnet", shared=True, view_channels=(1, 2), view_maker=None)
        Traceback (most recent call last):
        ...
        contrastkit.errors.ConfigError: encoder.shared: a shared encoder needs views with equal channel counts, but NoneType makes (1, 2); set shared = false
    """
    num_views = len(view_channels)
    if isinstance(spec, nn.Module):  # one instance: shared by every view (SimCLR)
        _check_instance_channels([spec] * num_views, view_channels=view_channels, view_maker=view_maker)
        return nn.ModuleList([spec]), [0] * num_views
    if isinstance(spec, Sequence) and not isinstance(spec, str) and spec and all(isinstance(e, nn.Module) for e in spec):
        if len(spec) != num_views:
            raise ShapeError(f"encoder: got {len(spec)} encoder instances for {num_views} views")
        _check_instance_channels(list(spec), view_channels=view_channels, view_maker=view_maker)
        return nn.ModuleList(spec), list(range(num_views))
    specs = _per_view_specs(spec, table="encoder", view_channels=view_channels, view_maker=view_maker)
    if specs is not None:
        if shared:
            raise ConfigError("encoder.shared: one encoder per view was given; remove shared or give one table")
        encoders = [
            build_slot(registry, "encoder", s, where=f"encoder[{i}]", injected={"in_channels": c})
            for i, (s, c) in enumerate(zip(specs, view_channels))
        ]
        return nn.ModuleList(encoders), list(range(num_views))
    if shared:
        if len(set(view_channels)) != 1:
            raise ConfigError(
                f"encoder.shared: a shared encoder needs views with equal channel counts, but "
                f"{describe(view_maker)} makes {view_channels}; set shared = false"
            )
        encoder = build_slot(registry, "encoder", spec, injected={"in_channels": view_channels[0]})
        return nn.ModuleList([encoder]), [0] * num_views
    encoders = [build_slot(registry, "encoder", spec, injected={"in_channels": c}) for c in view_channels]
    return nn.ModuleList(encoders), list(range(num_views))


def _declared_in_channels(encoder: nn.Module) -> int | None:
    """An encoder's input channels: its ``in_channels`` (the Encoder factories' argument) or its first convolution's."""
    declared = getattr(encoder, "in_channels", None)
    if isinstance(declared, int) and not isinstance(declared, bool):
        return declared
    first = next((m for m in encoder.modules() if isinstance(m, nn.modules.conv._ConvNd)), None)
    return int(first.in_channels) if first is not None else None


def _check_instance_channels(encoders: Sequence[nn.Module], *, view_channels: tuple[int, ...], view_maker: Any) -> None:
    """Encoder instances (not built from a name) must take their views' channels: checked now, not at step 1."""
    for i, (encoder, channels) in enumerate(zip(encoders, view_channels)):
        expected = _declared_in_channels(encoder)
        if expected is not None and expected != channels:
            raise ShapeError(
                f"encoder: the instance {describe(encoder)} serving view {i + 1} takes {expected} input channels, "
                f"but views.{describe(view_maker)} makes views of {view_channels} channels; give it "
                f"in_channels = {channels} (or one encoder per view)"
            )


def data_spec_for_views(registry: Registry, data_spec: Any, view_maker: Any) -> Any:
    """The ``data`` spec with the view maker's ``dataset_parameters`` (e.g. ``factor-pair``'s ``pair``) added.

    A recipe may set the same key itself, but only to the same value.

    Example:
        >>> from contrastkit.registry import get_registry
        >>> from contrastkit.views.factor_pair import FactorPairViews
        >>> data_spec_for_views(get_registry(), "colorful-moving-digits", FactorPairViews(share=["digit"]))
        {'name': 'colorful-moving-digits', 'pair': ['digit']}
    """
    wanted = dict((view_maker.dataset_parameters if isinstance(view_maker, DatasetParameterSource) else None) or {})
    split = split_spec(data_spec, "data") if wanted else None
    if split is None:
        return data_spec
    name, params = split
    views = describe(view_maker)
    try:
        accepted = factory_parameters(registry.get("datasets", name).factory)
    except ContrastkitError:  # an unknown dataset: build_component reports it with close matches
        return data_spec
    for key, value in wanted.items():
        if key not in accepted:
            raise ConfigError(
                f"data.name: views.{views} needs a dataset with a {key!r} parameter (e.g. "
                f"colorful-moving-digits); {name!r} has none"
            )
        if key in params and params[key] != value:
            raise ConfigError(
                f"data.{key}: views.{views} needs {key} = {value!r} (got {params[key]!r}); remove data.{key} "
                "or make the two agree"
            )
    return {"name": name, **params, **wanted}


def check_worker_reads(view_maker: Any, *, dataset: Any, augmentations: Iterable[Any]) -> None:
    """Refuse a DataLoader-worker augmentation when the view maker reads other images than ``image``.

    Example:
        >>> from contrastkit.augmentations.albumentations_recipes import AlbumentationsAugmentation
        >>> from contrastkit.views.image_pair import ImagePairViews
        >>> check_worker_reads(ImagePairViews(), dataset=None, augmentations=[AlbumentationsAugmentation()])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        contrastkit.errors.ConfigError: augment: a DataLoader-worker augmentation augments only 'image', but views.ImagePairViews also reads 'image_pair'; ...
    """
    # Only extra *images* bypass worker augmentations; labels (a supervised view maker's) are fine.
    labels = set(getattr(dataset, "label_keys", ()))
    reads = view_maker.required_keys if isinstance(view_maker, BatchKeyReader) else ()
    extra = tuple(k for k in reads if k not in labels)
    if extra and any(runs_in_workers(a) for a in augmentations):
        # Worker augmentations copy ``image`` per view; the view maker's other images would be bypassed.
        raise ConfigError(
            f"augment: a DataLoader-worker augmentation augments only 'image', but views."
            f"{describe(view_maker)} also reads {', '.join(map(repr, extra))}; use a device recipe "
            "(simclr, infomin, crop-flip) with it"
        )

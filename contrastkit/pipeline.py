"""``Pipeline``: views -> encoders -> critic -> negatives -> objective (+ regulariser), as one module.

Every slot takes an instance, a registered name, or a dict with ``name`` plus parameters. The CLI
builds the same object from a TOML recipe (:meth:`Pipeline.from_toml`). Calling the pipeline on a
batch returns the loss and per-pair metrics (tensors, so logging them never forces a device sync).

Example:
    >>> import torch
    >>> from contrastkit import Pipeline
    >>> pipe = Pipeline(views={"name": "color-split", "space": "lab"}, encoder={"name": "convnet", "width": 8},
    ...                 critic={"name": "cosine", "temperature": 0.2}, dataset_size=16)
    >>> out = pipe({"image": torch.rand(8, 3, 16, 16), "index": torch.arange(8)})
    >>> out.loss.shape, sorted(out.metrics)
    (torch.Size([]), ['loss', 'loss/v1-v2', 'mi_lower_bound/v1-v2', 'negatives/v1-v2'])
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs
import torch
from torch import Tensor, nn

from contrastkit.config import Config, PluginTable, load_config
from contrastkit.datasets.encoded_images import decode_batch, is_encoded
from contrastkit.errors import ConfigError, ContrastkitError, ShapeError, close_matches
from contrastkit.factories import build_component, factory_parameters, split_spec
from contrastkit.interfaces import (
    Batch,
    LabelledObjective,
    PairLogits,
    PairObjective,
    PositiveSampler,
    PredictingCritic,
    describe,
    is_trainable,
)
from contrastkit.momentum import MomentumTarget
from contrastkit.optional_hooks import (
    AdversarialViewMaker,
    AuxiliaryLossName,
    AuxiliaryLossViewMaker,
    BatchKeyReader,
    DatasetParameterSource,
    MomentumKeyed,
    SameViewObjective,
    TemperedCritic,
    TransposableNegatives,
    runs_in_workers,
)
from contrastkit.registry import Registry, get_registry

__all__ = ["Pipeline", "PipelineOutput", "view_pairs"]


def view_pairs(num_views: int, graph: Literal["core", "full"]) -> list[tuple[int, int]]:
    """The view pairs contrasted: CMC's core view (view 1 with each other) or full graph (all pairs).

    Example:
        >>> view_pairs(3, "core"), view_pairs(3, "full")
        ([(0, 1), (0, 2)], [(0, 1), (0, 2), (1, 2)])
    """
    if graph == "core":
        return [(0, j) for j in range(1, num_views)]
    return list(itertools.combinations(range(num_views), 2))


@attrs.frozen
class PipelineOutput:
    """What one call of :class:`Pipeline` returns.

    ``loss`` is the scalar to minimise; ``metrics`` maps names (``loss/v1-v2``,
    ``mi_lower_bound/v1-v2``, ...) to detached scalar tensors; ``views`` and ``embeddings`` are the
    step's intermediate tensors (for logging and probes).

    Example:
        >>> import torch
        >>> out = PipelineOutput(loss=torch.tensor(1.0), metrics={}, views=[], embeddings=[])
        >>> float(out.loss)
        1.0
    """

    loss: Tensor
    metrics: dict[str, Tensor]
    views: list[Tensor]
    embeddings: list[Tensor]


def _as_module(augmentation: Any) -> nn.Module:
    """Plain callables are wrapped so the per-view augmentations fit in an ``nn.ModuleList``."""
    return augmentation if isinstance(augmentation, nn.Module) else _CallableModule(augmentation)


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


class _ReverseGradient(torch.autograd.Function):
    """Identity forward, negated gradient backward: lets a view maker *maximise* the loss."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return -grad


def _declared_in_channels(encoder: nn.Module) -> int | None:
    """An encoder's input channels: its ``in_channels`` (the Encoder factories' argument) or its first convolution's."""
    declared = getattr(encoder, "in_channels", None)
    if isinstance(declared, int) and not isinstance(declared, bool):
        return declared
    first = next((m for m in encoder.modules() if isinstance(m, nn.modules.conv._ConvNd)), None)
    return int(first.in_channels) if first is not None else None


class Pipeline(nn.Module):
    """The contrastive model: builds every slot, checks they fit together, computes the loss.

    Every slot takes a registered name (``"infonce"``), a table as in TOML (``{"name": "cosine",
    "temperature": 0.1}``) or a ready instance; tables are checked like recipe tables (unknown keys
    with close matches, bad values named). The keyword arguments, each with the recipe table it mirrors:

    - ``data`` (``[data]``): the dataset, e.g. ``{"name": "colorful-moving-digits", "size": 64}``;
      optional, only training and dataset-sized samplers need it.
    - ``augment`` (``[augment]``): ``"none"`` (default), ``{"name": "simclr", "strength": 0.5}``,
      or a list with one entry per view.
    - ``views`` (``[views]``): the view maker, default ``"color-split"`` (L | ab).
    - ``encoder`` (``[encoder]``): a name or table built once per view, a list of per-view tables,
      or ``nn.Module`` instances (one shared, or one per view; their input channels are checked
      against the views when the pipeline is built).
    - ``critic`` (``[critic]``): default ``"cosine"``; receives the encoders' ``feature_dims``.
    - ``negatives`` (``[negatives]``): default ``"in-batch"``; also ``"memory-bank"``, ``"queue"``, ``"nnclr"``.
    - ``objective`` (``[objective]``): default ``"infonce"``; ``{"name": "supcon", "label": "digit"}``
      takes same-label positives from the data.
    - ``regularizer`` (``[regularizer]``): ``None`` (default) or e.g. ``{"name": "relic", "alpha": 1.0}``.
    - ``graph`` (``train.graph``): ``"core"`` (view 1 with every other, default) or ``"full"`` (all pairs).
    - ``shared_encoder`` (``encoder.shared``): one encoder for every view (equal channel counts).
    - ``dataset_size``: the sampler's dataset size when ``data`` is not given (memory banks).
    - ``registry``: where names are looked up (default: the process-wide one, plugins included).

    Example:
        >>> pipe = Pipeline(encoder={"name": "convnet", "width": 8})
        >>> pipe.view_channels, pipe.feature_dims, pipe.critic.embedding_dim
        ((1, 2), (64, 64), 128)
        >>> Pipeline(data={"name": "colorful-moving-digits", "size": 32}, augment="crop-flip",
        ...          views={"name": "augmented-copies", "num_views": 2, "channels": 3},
        ...          encoder={"name": "convnet", "width": 4, "depth": 2}, shared_encoder=True,
        ...          critic={"name": "cosine", "temperature": 0.1}, negatives={"name": "memory-bank", "num_negatives": 16},
        ...          objective={"name": "nce"}, graph="full").view_encoder
        [0, 0]
        >>> Pipeline(data={"name": "colorful-moving-digits", "size": 32}, objective={"name": "supcon", "label": "digit"},
        ...          regularizer={"name": "relic", "alpha": 0.5}).objective.label
        'digit'
        >>> Pipeline(negatives={"name": "memory-bank", "num_negatives": 8}, dataset_size=100).negatives.num_negatives
        8
    """

    def __init__(
        self,
        *,
        data: Any = None,
        augment: Any = "none",
        views: Any = "color-split",
        encoder: Any = "convnet",
        critic: Any = "cosine",
        negatives: Any = "in-batch",
        objective: Any = "infonce",
        regularizer: Any = None,
        graph: Literal["core", "full"] = "core",
        shared_encoder: bool = False,
        dataset_size: int | None = None,
        registry: Registry | None = None,
    ) -> None:
        super().__init__()
        self.registry = registry or get_registry()
        self.data_spec = data
        # The view maker first: it may ask the dataset for parameters (factor-pair's ``pair``).
        self.view_maker = build_component(self.registry, "view_makers", views, table="views")
        self.dataset = self.build_dataset("train") if data is not None else None
        self.view_channels = self._check_view_channels()
        num_views = len(self.view_channels)
        self.augmentations, self.view_augmentation = self._build_augmentations(augment)
        # Only extra *images* bypass worker augmentations; labels (a supervised view maker's) are fine.
        labels = set(getattr(self.dataset, "label_keys", ()))
        reads = self.view_maker.required_keys if isinstance(self.view_maker, BatchKeyReader) else ()
        extra = tuple(k for k in reads if k not in labels)
        if extra and any(runs_in_workers(a) for a in self.augmentations):
            # Worker augmentations copy ``image`` per view; the view maker's other images would be bypassed.
            raise ConfigError(
                f"augment: a DataLoader-worker augmentation augments only 'image', but views."
                f"{describe(self.view_maker)} also reads {', '.join(map(repr, extra))}; use a device recipe "
                "(simclr, infomin, crop-flip) with it"
            )
        #: ``torch.channels_last`` makes every view channels-last (the trainer sets it from the recipe).
        self.memory_format = torch.contiguous_format

        self.encoders, self.view_encoder = self._build_encoders(encoder, shared=shared_encoder)
        # An Encoder's feature_dim is an int; ModuleList items are typed Module (attributes Tensor | Module).
        self.feature_dims = tuple(int(self.encoders[k].feature_dim) for k in self.view_encoder)  # type: ignore[arg-type]
        self.critic = build_component(
            self.registry, "critics", critic, table="critic", injected={"feature_dims": self.feature_dims}
        )
        if dataset_size is None:
            dataset_size = len(self.dataset) if self.dataset is not None else 0
        self.negatives = build_component(
            self.registry,
            "negative_samplers",
            negatives,
            table="negatives",
            injected={
                "num_views": num_views,
                "dataset_size": int(dataset_size),
                "embedding_dim": int(self.critic.embedding_dim),
            },
        )
        self.objective = build_component(self.registry, "objectives", objective, table="objective")
        self.regularizer = (
            build_component(self.registry, "regularizers", regularizer, table="regularizer")
            if regularizer is not None
            else None
        )
        if graph not in ("core", "full"):
            raise ConfigError(f"train.graph: must be 'core' or 'full' (got {graph!r})")
        self.graph = graph
        self.pairs = view_pairs(num_views, graph)
        self.two_way = bool(getattr(self.objective, "two_way", True))
        self._pair_objective = isinstance(self.objective, PairObjective)
        self._predicting = isinstance(self.critic, PredictingCritic) and self.critic.predictor is not None
        self._label = self._objective_label()  # SupCon-style positives: checked before training
        self._pair_options = self._pair_keywords()  # NT-Xent's same-view negatives, checked before training
        # MoCo/ReLIC: a component exposing ``key_momentum`` gets an EMA copy of the encoders and critic
        # whose keys (no gradient) replace the target-side embeddings; a submodule, so it is checkpointed.
        momentum = self._key_momentum()
        self.momentum_target = (
            MomentumTarget(self.encoders, self.critic, view_encoder=self.view_encoder, momentum=momentum)
            if momentum is not None
            else None
        )
        # InfoMin: a view maker with contrast_sign < 0 ascends the loss the encoders descend.
        self.reverse_view_gradient = (
            is_trainable(self.view_maker)
            and isinstance(self.view_maker, AdversarialViewMaker)
            and float(self.view_maker.contrast_sign) < 0
        )
        # The reverse direction of a pair is the forward's logits transposed when the critic is
        # symmetric and the sampler can say so (in-batch): one [B, B] product instead of two.
        self._transpose_reverse = (
            self.momentum_target is None
            and not self._predicting
            and not self._pair_options
            and declares_symmetric_scores(self.critic)
            and isinstance(self.negatives, TransposableNegatives)
        )
        self._has_auxiliary = isinstance(self.view_maker, AuxiliaryLossViewMaker)
        self.config: Config | None = None
        self._batch_image_views: Tensor | None = None

    # -- construction --------------------------------------------------------------------------
    def build_dataset(self, split: str) -> Any:
        """Build the ``data`` slot for ``split`` (``"train"`` or ``"test"``)."""
        if self.data_spec is None:
            raise ConfigError("data: this pipeline was built without a dataset")
        if isinstance(self.data_spec, torch.utils.data.Dataset):
            return self.data_spec
        return build_component(self.registry, "datasets", self._data_spec_for_views(), table="data",
                               injected={"split": split})

    def _data_spec_for_views(self) -> Any:
        """The ``data`` spec with the view maker's ``dataset_parameters`` (e.g. ``factor-pair``'s ``pair``) added.

        A recipe may set the same key itself, but only to the same value.
        """
        maker = self.view_maker
        wanted = dict((maker.dataset_parameters if isinstance(maker, DatasetParameterSource) else None) or {})
        split = split_spec(self.data_spec, "data") if wanted else None
        if split is None:
            return self.data_spec
        name, params = split
        views = describe(self.view_maker)
        try:
            accepted = factory_parameters(self.registry.get("datasets", name).factory)
        except ContrastkitError:  # an unknown dataset: build_component reports it with close matches
            return self.data_spec
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

    def _check_view_channels(self) -> tuple[int, ...]:
        channels = getattr(self.view_maker, "view_channels", None)
        name = describe(self.view_maker)
        if channels is None:
            raise ShapeError(f"views.{name}: view maker has no view_channels; it must declare each view's channels")
        channels = tuple(channels)
        if len(channels) < 2 or not all(isinstance(c, int) and c >= 1 for c in channels):
            raise ShapeError(f"views.{name}: view_channels must be >= 2 positive ints, one per view (got {channels})")
        return channels

    def _per_view_specs(self, spec: Any, table: str) -> list[Any] | None:
        """A list of per-view specs (checked against the view count), or ``None`` for one spec."""
        if isinstance(spec, (PluginTable, str, Mapping, nn.Module)) or spec is None:
            return None
        if not isinstance(spec, Sequence):
            return None
        num_views = len(self.view_channels)
        if len(spec) != num_views:
            raise ShapeError(
                f"{table}: {len(spec)} per-view entries for {num_views} views "
                f"({describe(self.view_maker)} makes {num_views}); give one per view or a single table"
            )
        return list(spec)

    def _build_augmentations(self, spec: Any) -> tuple[nn.ModuleList, list[int]]:
        num_views = len(self.view_channels)
        specs = self._per_view_specs(spec, "augment")
        if specs is None:
            module = build_component(self.registry, "augmentations", spec, table="augment")
            return nn.ModuleList([_as_module(module)]), [0] * num_views
        modules = [
            _as_module(build_component(self.registry, "augmentations", s, table=f"augment[{i}]"))
            for i, s in enumerate(specs)
        ]
        return nn.ModuleList(modules), list(range(num_views))

    @property
    def augment(self) -> Any:
        """The augmentation of view 1 (every view's when one recipe is shared)."""
        return self.augmentations[self.view_augmentation[0]]

    @property
    def worker_augmentations(self) -> list[Any | None]:
        """Per view: the augmentation that runs per sample in DataLoader workers, or ``None`` (device)."""
        result: list[Any | None] = []
        for i in range(len(self.view_channels)):
            aug = self.augmentations[self.view_augmentation[i]]
            result.append(aug if runs_in_workers(aug) else None)
        return result

    def _build_encoders(self, spec: Any, *, shared: bool) -> tuple[nn.ModuleList, list[int]]:
        num_views = len(self.view_channels)
        if isinstance(spec, nn.Module):  # one instance: shared by every view (SimCLR)
            self._check_instance_channels([spec] * num_views)
            return nn.ModuleList([spec]), [0] * num_views
        if isinstance(spec, Sequence) and not isinstance(spec, str) and spec and all(isinstance(e, nn.Module) for e in spec):
            if len(spec) != num_views:
                raise ShapeError(f"encoder: got {len(spec)} encoder instances for {num_views} views")
            self._check_instance_channels(list(spec))
            return nn.ModuleList(spec), list(range(num_views))
        specs = self._per_view_specs(spec, "encoder")
        if specs is not None:
            if shared:
                raise ConfigError("encoder.shared: one encoder per view was given; remove shared or give one table")
            encoders = [
                build_component(self.registry, "encoders", s, table=f"encoder[{i}]", injected={"in_channels": c})
                for i, (s, c) in enumerate(zip(specs, self.view_channels))
            ]
            return nn.ModuleList(encoders), list(range(num_views))
        if shared:
            if len(set(self.view_channels)) != 1:
                raise ConfigError(
                    f"encoder.shared: a shared encoder needs views with equal channel counts, but "
                    f"{describe(self.view_maker)} makes {self.view_channels}; set shared = false"
                )
            encoder = build_component(
                self.registry, "encoders", spec, table="encoder", injected={"in_channels": self.view_channels[0]}
            )
            return nn.ModuleList([encoder]), [0] * num_views
        encoders = [
            build_component(self.registry, "encoders", spec, table="encoder", injected={"in_channels": c})
            for c in self.view_channels
        ]
        return nn.ModuleList(encoders), list(range(num_views))

    def _check_instance_channels(self, encoders: Sequence[nn.Module]) -> None:
        """Encoder instances (not built from a name) must take their views' channels: checked now, not at step 1."""
        for i, (encoder, channels) in enumerate(zip(encoders, self.view_channels)):
            expected = _declared_in_channels(encoder)
            if expected is not None and expected != channels:
                raise ShapeError(
                    f"encoder: the instance {describe(encoder)} serving view {i + 1} takes {expected} input channels, "
                    f"but views.{describe(self.view_maker)} makes views of {self.view_channels} channels; give it "
                    f"in_channels = {channels} (or one encoder per view)"
                )

    @classmethod
    def from_config(cls, config: Config, *, path: str | None = None, registry: Registry | None = None) -> Pipeline:
        """Build from a :class:`~contrastkit.config.Config`; errors are prefixed with ``path``.

        Example:
            >>> from contrastkit.config import config_from_dict
            >>> cfg = config_from_dict({"data": {"name": "colorful-moving-digits", "size": 64},
            ...                         "encoder": {"name": "convnet", "width": 8}})
            >>> len(Pipeline.from_config(cfg).dataset)
            64
        """
        encoder: Any = config.encoder
        shared = False
        if isinstance(encoder, PluginTable) and "shared" in encoder.params:
            shared = encoder.params["shared"]
            if not isinstance(shared, bool):
                raise ConfigError(f"encoder.shared: expected true or false (got {shared!r})", path=path)
            encoder = PluginTable(encoder.name, {k: v for k, v in encoder.params.items() if k != "shared"})
        try:
            pipeline = cls(
                data=config.data,
                augment=config.augment,
                views=config.views,
                encoder=encoder,
                shared_encoder=shared,
                critic=config.critic,
                negatives=config.negatives,
                objective=config.objective,
                regularizer=config.regularizer,
                graph=config.train.graph,
                registry=registry,
            )
        except ConfigError as exc:
            raise exc.with_path(path) from None
        except ShapeError as exc:
            raise ConfigError(str(exc), path=path) from None
        pipeline.config = config
        return pipeline

    @classmethod
    def from_toml(cls, path: str | Path, overrides: Sequence[str] = (), *, registry: Registry | None = None) -> Pipeline:
        """Read a recipe file (plus ``--set`` style overrides) and build its pipeline.

        Example:
            >>> import tempfile, pathlib
            >>> f = pathlib.Path(tempfile.mkdtemp()) / "r.toml"
            >>> _ = f.write_text('[data]\\nname = "colorful-moving-digits"\\nsize = 32\\n[encoder]\\nname = "convnet"\\nwidth = 4\\n')
            >>> Pipeline.from_toml(f, ["critic.temperature=0.5"]).critic.temperature
            0.5
        """
        config = load_config(path, overrides)
        return cls.from_config(config, path=str(path), registry=registry)

    # -- running -------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """Where the pipeline's parameters live (cpu when it has none)."""
        for p in self.parameters():
            return p.device
        return torch.device("cpu")

    def _augment(self, images: Tensor, view: int) -> Tensor:
        augmentation = self.augmentations[self.view_augmentation[view]]
        if runs_in_workers(augmentation):
            # Already augmented per sample in the DataLoader workers: this view's copy replaces the input.
            copies = self._batch_image_views
            if copies is None:
                raise ShapeError(
                    f"augment: {describe(augmentation)} runs in DataLoader workers, but the batch has no "
                    "'image_views'; train through Trainer or wrap the dataset in WorkerAugmentedDataset"
                )
            return copies[:, view]
        return augmentation(images)

    def prepare_batch(self, batch: Batch) -> dict[str, Tensor]:
        """Move a batch to the pipeline's device; uint8 images become float in [0, 1] there.

        A batch of encoded JPEG files (``image-folder`` with ``decode = "device"``) is decoded on the
        device first (:func:`~contrastkit.datasets.encoded_images.decode_batch`).
        """
        device = self.device
        if is_encoded(batch):
            batch = decode_batch(batch, device)
        moved = {k: (v.to(device, non_blocking=True) if isinstance(v, Tensor) else v) for k, v in batch.items()}
        image = moved.get("image")
        if image is None:
            raise ShapeError(f"batch: no 'image' entry (keys: {sorted(batch)})")
        if image.dtype == torch.uint8:
            moved["image"] = image.float().div_(255.0)
        for key, value in moved.items():  # image_views, image_pair, next_image: other images of the sample
            is_image = key.startswith("image") or key.endswith("_image")
            if key != "image" and is_image and isinstance(value, Tensor) and value.dtype == torch.uint8:
                moved[key] = value.float().div_(255.0)
        if "index" not in moved:
            moved["index"] = torch.arange(image.shape[0], device=device)
        return moved

    def make_views(self, batch: Batch, *, augment: bool = True) -> list[Tensor]:
        """Run the view maker on a prepared batch and check each view against ``view_channels``."""
        self._batch_image_views = batch.get("image_views") if augment else None
        try:
            views = self.view_maker(batch, self._augment if augment else (lambda images, view: images))
        finally:
            self._batch_image_views = None
        if self.memory_format is not torch.contiguous_format:
            views = [v.contiguous(memory_format=self.memory_format) for v in views]
        name = describe(self.view_maker)
        if len(views) != len(self.view_channels):
            raise ShapeError(f"views.{name}: produced {len(views)} views, declared {len(self.view_channels)}")
        for i, (view, channels) in enumerate(zip(views, self.view_channels)):
            if view.ndim != 4 or view.shape[1] != channels:
                raise ShapeError(
                    f"views.{name}: view {i + 1} has shape {tuple(view.shape)}, "
                    f"expected [B, {channels}, H, W] as declared by view_channels"
                )
        return views

    def encode(self, views: Sequence[Tensor]) -> list[Tensor]:
        """Each view through its encoder -> features ``[B, F_i]``."""
        features = []
        for i, view in enumerate(views):
            encoder = self.encoders[self.view_encoder[i]]
            f = encoder(view)
            if f.ndim != 2 or f.shape[1] != self.feature_dims[i]:
                raise ShapeError(
                    f"encoder.{describe(encoder)}: returned {tuple(f.shape)} for view {i + 1}, "
                    f"expected [B, {self.feature_dims[i]}] (its feature_dim)"
                )
            features.append(f)
        return features

    def forward(self, batch: Batch) -> PipelineOutput:
        """One batch -> :class:`PipelineOutput`. In training mode the negative sampler is updated."""
        batch = self.prepare_batch(batch)
        index = batch["index"]
        views = self.make_views(batch)
        # Optional view-maker term on the views *before* gradient reversal (InfoMin's semi-supervised
        # CE): the view maker minimises it while it maximises the contrastive loss.
        auxiliary = self.view_maker.auxiliary_loss(batch, views) if self._has_auxiliary and self.training else None
        inputs = [_ReverseGradient.apply(v) for v in views] if self.reverse_view_gradient else views
        features = self.encode(inputs)
        embeddings = [self.critic.embed(f, view=i) for i, f in enumerate(features)]
        # Target side of every pair: the momentum encoder's keys when there is one, else the embeddings.
        if self.momentum_target is not None:
            keys = self.momentum_target.embed(views)
        elif self._predicting:  # targets skip the online predictor
            keys = [self.critic.embed_target(f, view=i) for i, f in enumerate(features)]
        else:
            keys = embeddings

        metrics: dict[str, Tensor] = {}
        total: Tensor | None = None
        labels = batch[self._label] if self._label is not None else None
        for i, j in self.pairs:
            tag = f"v{i + 1}-v{j + 1}"
            forward = self._with_context(self._pair(embeddings, keys, index, i, j), embeddings[i], keys[j], labels)
            loss = self._objective_loss(forward)
            mi = self.objective.mi_lower_bound(loss, forward.num_negatives)
            backward: PairLogits | None = None
            if self.two_way or self.regularizer is not None:
                if self._transpose_reverse:
                    backward = self.negatives.reverse_pair_logits(forward)
                if backward is None:
                    backward = self._pair(embeddings, keys, index, j, i)
                backward = self._with_context(backward, embeddings[j], keys[i], labels)
            if self.two_way:
                assert backward is not None
                loss_back = self._objective_loss(backward)
                mi_back = self.objective.mi_lower_bound(loss_back, backward.num_negatives)
                loss = loss + loss_back
                mi = None if mi is None or mi_back is None else (mi + mi_back) / 2
            metrics[f"loss/{tag}"] = loss.detach()
            # K per anchor (W*B - 1 for in-batch under torchrun): made on the device, no host copy.
            metrics[f"negatives/{tag}"] = forward.logits.new_full((), float(forward.num_negatives)).detach()
            if mi is not None:
                metrics[f"mi_lower_bound/{tag}"] = mi.detach()
            if self.regularizer is not None:
                assert backward is not None
                penalty = self.regularizer(forward, backward)
                metrics[f"regularizer/{tag}"] = penalty.detach()
                loss = loss + penalty
            total = loss if total is None else total + loss
        assert total is not None
        if auxiliary is not None:
            maker = self.view_maker
            name = maker.auxiliary_loss_name if isinstance(maker, AuxiliaryLossName) else "auxiliary"
            metrics[f"view_maker/{name}"] = auxiliary.detach()
            total = total + auxiliary
        metrics["loss"] = total.detach()
        if self.training:
            detached = [e.detach() for e in keys]  # with a momentum target the sampler stores keys (MoCo's queue)
            self.negatives.update(detached, index)
        return PipelineOutput(loss=total, metrics=metrics, views=views, embeddings=embeddings)

    def _objective_label(self) -> str | None:
        """The batch label an objective takes positives from (``None``: one positive per row), checked."""
        label = self.objective.label if isinstance(self.objective, LabelledObjective) else None
        if label is None:
            return None
        name = describe(self.objective)
        if self.dataset is not None:
            keys = tuple(getattr(self.dataset, "label_keys", ()))
            if label not in keys:
                matches = close_matches(label, keys)
                hint = f"did you mean {matches[0]!r}?" if matches else f"the dataset's labels: {', '.join(keys) or 'none'}"
                raise ConfigError(f"objective.label: {name} takes positives from label {label!r}, which the "
                                  f"dataset does not have; {hint} (got {label!r})")
        if not isinstance(self.negatives, PositiveSampler):
            raise ConfigError(f"objective.label: {name} needs a negative sampler that can mark same-label "
                              f"candidates; negatives.{describe(self.negatives)} cannot (no positive_mask): use "
                              "negatives = \"in-batch\", or remove objective.label")
        return label

    def _objective_loss(self, pair: PairLogits) -> Tensor:
        return self.objective.pair_loss(pair) if self._pair_objective else self.objective(pair.logits, pair.target)

    def _with_context(self, pair: PairLogits, anchors: Tensor, positives: Tensor, labels: Tensor | None) -> PairLogits:
        """The pair's embeddings, labels and positive mask, for the objectives and regularisers that read them."""
        mask = None
        if labels is not None:
            assert isinstance(self.negatives, PositiveSampler)
            mask = self.negatives.positive_mask(pair, labels)
        return attrs.evolve(pair, anchors=anchors, positives=positives, labels=labels, positive_mask=mask)

    def _pair_keywords(self) -> dict[str, Any]:
        """Extra ``pair_logits`` keywords: ``same_view=True`` when the objective asks for same-view negatives.

        An objective with ``same_view_negatives = True`` (``infonce``'s NT-Xent form) needs a sampler
        whose ``pair_logits`` takes a ``same_view`` keyword (``in-batch`` does); others are refused.
        """
        if not (isinstance(self.objective, SameViewObjective) and self.objective.same_view_negatives):
            return {}
        try:
            params = list(inspect.signature(self.negatives.pair_logits).parameters.values())
        except (TypeError, ValueError):  # no introspectable signature: assume the keyword is absent
            params = []
        if not any(p.name == "same_view" or p.kind is p.VAR_KEYWORD for p in params):
            raise ConfigError(
                f"objective.same_view_negatives: {describe(self.objective)} with same-view negatives (NT-Xent) "
                f"needs a negative sampler that can add the anchor view's other samples; negatives."
                f"{describe(self.negatives)} cannot (its pair_logits takes no same_view keyword); use "
                "negatives = \"in-batch\" or set same_view_negatives = false"
            )
        return {"same_view": True}

    def _key_momentum(self) -> float | None:
        """``key_momentum`` requested by the negatives or the regulariser (``None``: no momentum target)."""
        requested = {
            slot: float(m)
            for slot, component in (("negatives", self.negatives), ("regularizer", self.regularizer))
            if isinstance(component, MomentumKeyed) and (m := component.key_momentum) is not None
        }
        if len(set(requested.values())) > 1:
            raise ConfigError(
                "regularizer: negatives and regularizer ask for different momentum encoders ("
                + ", ".join(f"{slot} {m:g}" for slot, m in requested.items())
                + "); give both the same momentum"
            )
        return next(iter(requested.values()), None)

    @torch.no_grad()
    def update_momentum(self) -> None:
        """One EMA step of the momentum target towards the online encoders and critic (no-op without one).

        The Trainer calls it after every optimizer step.
        """
        if self.momentum_target is not None:
            self.momentum_target.update(self.encoders, self.critic)

    def _pair(self, embeddings: list[Tensor], keys: list[Tensor], index: Tensor, i: int, j: int) -> PairLogits:
        # Anchors are always online embeddings (with gradient); positives are the target side ``keys``.
        return self.negatives.pair_logits(
            self.critic, embeddings[i], keys[j], index=index, anchor_view=i, target_view=j,
            **self._pair_options,
        )

    @torch.no_grad()
    def features(self, batch: Batch) -> Tensor:
        """Evaluation features: every view's encoder output, concatenated ``[B, sum F_i]`` (as CMC does).

        No augmentation; call ``eval()`` first so batch norm uses its running statistics.
        """
        prepared = self.prepare_batch(batch)
        return torch.cat(self.encode(self.make_views(prepared, augment=False)), dim=1)

    def describe(self) -> str:
        """A multi-line summary: views and channels, encoders and feature sizes, critic, negatives, objective.

        Example:
            >>> print(Pipeline(encoder={"name": "convnet", "width": 8}).describe().splitlines()[0])
            views        color-split: 2 views, channels (1, 2), graph core -> pairs v1-v2
        """
        pairs = ", ".join(f"v{i + 1}-v{j + 1}" for i, j in self.pairs)
        lines = [
            f"views        {describe(self.view_maker)}: {len(self.view_channels)} views, "
            f"channels {self.view_channels}, graph {self.graph} -> pairs {pairs}",
            "augment      " + ", ".join(
                f"v{i + 1} {describe(self.augmentations[k])}" for i, k in enumerate(self.view_augmentation)
            )
            if len(self.augmentations) > 1
            else f"augment      {describe(self.augment)}",
        ]
        for i, c in enumerate(self.view_channels):
            enc = self.encoders[self.view_encoder[i]]
            params = sum(p.numel() for p in enc.parameters())
            shared = " (shared)" if len(self.encoders) == 1 and len(self.view_channels) > 1 else ""
            lines.append(
                f"encoder v{i + 1}   {describe(enc)}{shared}: in_channels {c} -> features {self.feature_dims[i]} "
                f"({params / 1e6:.2f} M parameters)"
            )
        temperature = self.critic.temperature if isinstance(self.critic, TemperedCritic) else None
        lines += [
            f"critic       {describe(self.critic)}: embedding {self.critic.embedding_dim}"
            + (f", temperature {temperature:g}" if temperature is not None else ""),
            f"negatives    {describe(self.negatives)}",
            f"objective    {describe(self.objective)}" + (" (two-way)" if self.two_way else " (one-way)"),
            f"regularizer  {describe(self.regularizer) if self.regularizer is not None else 'none'}",
        ]
        if self.dataset is not None:
            lines.insert(0, f"data         {describe(self.dataset)}: {len(self.dataset)} samples")
        return "\n".join(lines)


def declares_symmetric_scores(critic: Any) -> bool:
    """Whether ``critic`` declares ``score(a, b) == score(b, a).T`` on the class that defines its ``score``.

    A subclass that overrides ``score`` does not inherit its parent's ``symmetric = True``.

    Example:
        >>> from contrastkit.critics.bilinear import BilinearCritic
        >>> from contrastkit.critics.cosine import CosineCritic
        >>> class Shifted(CosineCritic):
        ...     def score(self, anchors, candidates):
        ...         return super().score(anchors, candidates) + 1.0
        >>> [declares_symmetric_scores(c(feature_dims=(4, 4))) for c in (CosineCritic, BilinearCritic, Shifted)]
        [True, False, False]
    """
    owner = next((cls for cls in type(critic).__mro__ if "score" in vars(cls)), None)
    return owner is not None and vars(owner).get("symmetric", False) is True

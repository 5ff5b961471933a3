"""``Pipeline``: views -> encoders -> critic -> negatives -> objective (+ regulariser), as one module.

Every slot takes an instance, a registered name, or a dict with ``name`` plus parameters. The CLI
builds the same object from a TOML recipe (:meth:`Pipeline.from_toml`). Calling the pipeline on a
batch returns the loss and per-pair metrics (tensors, so logging them never forces a device sync).

Example:
    >>> Pipeline(objective="nce").two_way
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import attrs
import torch
from torch import Tensor, nn

from contrastkit.config import Config, PluginTable, load_config
from contrastkit.errors import ConfigError, ShapeError
from contrastkit.interfaces import (
    Batch,
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
    TransposableNegatives,
    runs_in_workers,
)
from contrastkit.pipeline import build, checks
from contrastkit.pipeline.step import PipelineOutput, check_views, prepare_batch, reverse_gradient, view_pairs
from contrastkit.pipeline.summary import summarize
from contrastkit.registry import Registry, get_registry
from contrastkit.slots import SLOT_TABLE

__all__ = ["Pipeline"]

#: The plugin each slot gets when the caller names none: the slot table's defaults.
_DEFAULT = {slot.table: slot.default for slot in SLOT_TABLE}


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

    The defaults of the slots (all but ``data``) are those of :data:`contrastkit.slots.SLOT_TABLE`.

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
        augment: Any = _DEFAULT["augment"],
        views: Any = _DEFAULT["views"],
        encoder: Any = _DEFAULT["encoder"],
        critic: Any = _DEFAULT["critic"],
        negatives: Any = _DEFAULT["negatives"],
        objective: Any = _DEFAULT["objective"],
        regularizer: Any = _DEFAULT["regularizer"],
        graph: Literal["core", "full"] = "core",
        shared_encoder: bool = False,
        dataset_size: int | None = None,
        registry: Registry | None = None,
    ) -> None:
        super().__init__()
        self.registry = registry or get_registry()
        self.data_spec = data
        self._build_views(views=views, augment=augment)
        #: ``torch.channels_last`` makes every view channels-last (the trainer sets it from the recipe).
        self.memory_format = torch.contiguous_format
        self._build_model(encoder=encoder, shared_encoder=shared_encoder, critic=critic, negatives=negatives,
                          dataset_size=dataset_size)
        self.objective = build.build_slot(self.registry, "objective", objective)
        self.regularizer = (
            build.build_slot(self.registry, "regularizer", regularizer) if regularizer is not None else None
        )
        if graph not in ("core", "full"):
            raise ConfigError(f"train.graph: must be 'core' or 'full' (got {graph!r})")
        self.graph = graph
        self.pairs = view_pairs(len(self.view_channels), graph)
        self._plan_step()
        self.config: Config | None = None
        self._batch_image_views: Tensor | None = None

    # -- construction --------------------------------------------------------------------------
    def _build_views(self, *, views: Any, augment: Any) -> None:
        """The view maker first: it may ask the dataset for parameters (factor-pair's ``pair``), and it
        decides how many views, and so augmentations, there are."""
        self.view_maker = build.build_slot(self.registry, "views", views)
        self.dataset = self.build_dataset("train") if self.data_spec is not None else None
        self.view_channels = build.check_view_channels(self.view_maker)
        self.augmentations, self.view_augmentation = build.build_augmentations(
            self.registry, augment, view_channels=self.view_channels, view_maker=self.view_maker
        )
        build.check_worker_reads(self.view_maker, dataset=self.dataset, augmentations=self.augmentations)

    def _build_model(
        self, *, encoder: Any, shared_encoder: bool, critic: Any, negatives: Any, dataset_size: int | None
    ) -> None:
        """The encoders (one per view unless shared), then the critic and the sampler that depend on them."""
        self.encoders, self.view_encoder = build.build_encoders(
            self.registry, encoder, shared=shared_encoder, view_channels=self.view_channels, view_maker=self.view_maker
        )
        # An Encoder's feature_dim is an int; ModuleList items are typed Module (attributes Tensor | Module).
        self.feature_dims = tuple(int(self.encoders[k].feature_dim) for k in self.view_encoder)  # type: ignore[arg-type]
        self.critic = build.build_slot(self.registry, "critic", critic, injected={"feature_dims": self.feature_dims})
        if dataset_size is None:
            dataset_size = len(self.dataset) if self.dataset is not None else 0
        injected = {
            "num_views": len(self.view_channels),
            "dataset_size": int(dataset_size),
            "embedding_dim": int(self.critic.embedding_dim),
        }
        self.negatives = build.build_slot(self.registry, "negatives", negatives, injected=injected)

    def _plan_step(self) -> None:
        """What every forward step does, decided (and checked) once from the built slots."""
        self.two_way = bool(getattr(self.objective, "two_way", True))
        self._pair_objective = isinstance(self.objective, PairObjective)
        self._predicting = isinstance(self.critic, PredictingCritic) and self.critic.predictor is not None
        # SupCon-style positives and NT-Xent's same-view negatives: checked before training.
        self._label = checks.objective_label(self.objective, negatives=self.negatives, dataset=self.dataset)
        self._pair_options = checks.pair_keywords(self.objective, self.negatives)
        # MoCo/ReLIC: a component exposing ``key_momentum`` gets an EMA copy of the encoders and critic
        # whose keys (no gradient) replace the target-side embeddings; a submodule, so it is checkpointed.
        momentum = checks.key_momentum(negatives=self.negatives, regularizer=self.regularizer)
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
            and checks.declares_symmetric_scores(self.critic)
            and isinstance(self.negatives, TransposableNegatives)
        )
        self._has_auxiliary = isinstance(self.view_maker, AuxiliaryLossViewMaker)

    def build_dataset(self, split: str) -> Any:
        """Build the ``data`` slot for ``split`` (``"train"`` or ``"test"``)."""
        if self.data_spec is None:
            raise ConfigError("data: this pipeline was built without a dataset")
        if isinstance(self.data_spec, torch.utils.data.Dataset):
            return self.data_spec
        spec = build.data_spec_for_views(self.registry, self.data_spec, self.view_maker)
        return build.build_slot(self.registry, "data", spec, injected={"split": split})

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
        # Every slot's table is the keyword argument of the same name.
        slots = {slot.table: getattr(config, slot.table) for slot in SLOT_TABLE}
        encoder = slots["encoder"]
        shared = False
        if isinstance(encoder, PluginTable) and "shared" in encoder.params:
            shared = encoder.params["shared"]
            if not isinstance(shared, bool):
                raise ConfigError(f"encoder.shared: expected true or false (got {shared!r})", path=path)
            slots["encoder"] = PluginTable(encoder.name, {k: v for k, v in encoder.params.items() if k != "shared"})
        try:
            pipeline = cls(**slots, shared_encoder=shared, graph=config.train.graph, registry=registry)
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
        return prepare_batch(batch, self.device)

    def make_views(self, batch: Batch, *, augment: bool = True) -> list[Tensor]:
        """Run the view maker on a prepared batch and check each view against ``view_channels``."""
        self._batch_image_views = batch.get("image_views") if augment else None
        try:
            views = self.view_maker(batch, self._augment if augment else (lambda images, view: images))
        finally:
            self._batch_image_views = None
        if self.memory_format is not torch.contiguous_format:
            views = [v.contiguous(memory_format=self.memory_format) for v in views]
        check_views(views, view_channels=self.view_channels, maker=describe(self.view_maker))
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
        features = self.encode(reverse_gradient(views) if self.reverse_view_gradient else views)
        embeddings = [self.critic.embed(f, view=i) for i, f in enumerate(features)]
        # Target side of every pair: the momentum encoder's keys when there is one, else the embeddings.
        if self.momentum_target is not None:
            keys = self.momentum_target.embed(views)
        elif self._predicting:  # targets skip the online predictor
            keys = [self.critic.embed_target(f, view=i) for i, f in enumerate(features)]
        else:
            keys = embeddings
        metrics: dict[str, Tensor] = {}
        labels = batch[self._label] if self._label is not None else None
        total: Tensor | None = None
        for pair in self.pairs:
            loss = self._contrast_pair(embeddings, keys, index, labels, pair=pair, metrics=metrics)
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

    def _contrast_pair(
        self,
        embeddings: list[Tensor],
        keys: list[Tensor],
        index: Tensor,
        labels: Tensor | None,
        *,
        pair: tuple[int, int],
        metrics: dict[str, Tensor],
    ) -> Tensor:
        """View pair ``(i, j)``'s loss (both directions when two-way, regulariser included); records its metrics."""
        i, j = pair
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
        return loss

    def _objective_loss(self, pair: PairLogits) -> Tensor:
        return self.objective.pair_loss(pair) if self._pair_objective else self.objective(pair.logits, pair.target)

    def _with_context(self, pair: PairLogits, anchors: Tensor, positives: Tensor, labels: Tensor | None) -> PairLogits:
        """The pair's embeddings, labels and positive mask, for the objectives and regularisers that read them."""
        mask = None
        if labels is not None:
            assert isinstance(self.negatives, PositiveSampler)
            mask = self.negatives.positive_mask(pair, labels)
        return attrs.evolve(pair, anchors=anchors, positives=positives, labels=labels, positive_mask=mask)

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
        return summarize(self)

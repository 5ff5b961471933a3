"""The recipe's schema: frozen attrs classes for its tables, with the validators of their values.

A recipe has one plugin table per slot of :data:`contrastkit.slots.SLOT_TABLE` (``[data]``,
``[augment]``, ``[views]``, ``[encoder]``, ``[critic]``, ``[negatives]``, ``[objective]``,
``[regularizer]``), each holding ``name`` plus that plugin's parameters, and the fixed tables
``[train]``, ``[eval]``, ``[log]`` and ``[[stages]]``. The strict converter
(:mod:`contrastkit.config.converter`) structures raw TOML into these classes.

Example:
    >>> Config().critic, Config(train=TrainConfig(lr=0.1)).train.lr
    (PluginTable(name='cosine', params={}), 0.1)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs

from contrastkit.errors import InvalidParameter
from contrastkit.slots import SLOT_TABLE

__all__ = ["SEED_MAX", "Config", "EvalConfig", "LogConfig", "PluginTable", "StageConfig", "TrainConfig"]


# -- validators ----------------------------------------------------------------------------------
def _check(predicate: Callable[[Any], bool], problem: str) -> Callable[[Any, attrs.Attribute, Any], None]:
    def validator(_: Any, attribute: attrs.Attribute, value: Any) -> None:
        if value is not None and not predicate(value):
            raise InvalidParameter(attribute.name, problem, value)

    return validator


_positive = _check(lambda v: v > 0, "must be > 0")
_non_negative = _check(lambda v: v >= 0, "must be >= 0")
_at_least_one = _check(lambda v: v >= 1, "must be >= 1")
#: ``train.seed`` range: the trainer derives per-rank and per-epoch seeds from it (``seed * 1_000_003 + n``),
#: which must stay inside torch's 64-bit generator seed.
SEED_MAX = 2**32 - 1


def _min_lr_at_most_lr(instance: Any, attribute: attrs.Attribute, value: float) -> None:
    # A floor above the peak would make the cosine "decay" raise the learning rate.
    if value > instance.lr:
        raise InvalidParameter(attribute.name, f"must be <= train.lr ({instance.lr!r}); lower min_lr or raise lr", value)


def _non_empty_path(_: Any, attribute: attrs.Attribute, value: str | None) -> None:
    if value is not None and not value.strip():
        raise InvalidParameter(attribute.name, "must be a folder path; omit the key for runs/<recipe file stem>", value)


_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


@attrs.frozen
class PluginTable:
    """A plugin table: the registered ``name`` and the factory's keyword arguments.

    Example:
        >>> PluginTable("cosine", {"temperature": 0.1}).as_dict()
        {'name': 'cosine', 'temperature': 0.1}
    """

    name: str
    params: Mapping[str, Any] = attrs.field(factory=dict, converter=dict)

    def as_dict(self) -> dict[str, Any]:
        """The table as it would appear in TOML."""
        return {"name": self.name, **self.params}


#: The table a recipe without ``[table]`` gets: its slot's default plugin (:data:`contrastkit.slots.SLOT_TABLE`).
_SLOT_DEFAULT = {slot.table: PluginTable(slot.default) for slot in SLOT_TABLE if slot.default is not None}


@attrs.frozen
class TrainConfig:
    """``[train]``: optimisation, precision, checkpointing and run settings.

    Example:
        >>> TrainConfig(batch_size=64).batch_size
        64
        >>> TrainConfig(precision="bf16", optimizer="lars").optimizer
        'lars'
    """

    epochs: int = attrs.field(default=1, validator=_at_least_one)
    #: Train exactly this many optimizer steps, over as many epochs as that takes (``epochs`` is then
    #: ignored); ``None`` trains ``epochs`` full epochs.
    max_steps: int | None = attrs.field(default=None, validator=_at_least_one)
    batch_size: int = attrs.field(default=128, validator=_check(lambda v: v >= 2, "must be >= 2 (contrastive losses need negatives)"))
    lr: float = attrs.field(default=1e-3, validator=_positive)
    weight_decay: float = attrs.field(default=1e-4, validator=_non_negative)
    #: Decay norm-layer weights and biases too (off by default, as in SimCLR/LARS practice).
    weight_decay_norms_and_biases: bool = False
    optimizer: Literal["adamw", "sgd", "lars"] = "adamw"
    momentum: float = attrs.field(default=0.9, validator=_check(lambda v: 0 <= v < 1, "must be in [0, 1)"))
    nesterov: bool = False
    #: LARS trust coefficient (eta).
    lars_trust: float = attrs.field(default=0.001, validator=_positive)
    #: Learning-rate schedule after warm-up: ``cosine`` decays to ``min_lr``; ``constant`` keeps ``lr``.
    schedule: Literal["cosine", "constant"] = "cosine"
    warmup_steps: int = attrs.field(default=0, validator=_non_negative)
    min_lr: float = attrs.field(default=0.0, validator=[_non_negative, _min_lr_at_most_lr])
    #: Clip the global gradient norm to this value; ``None`` disables clipping.
    grad_clip: float | None = attrs.field(default=None, validator=_positive)
    #: Micro-batches per optimizer step (effective batch = batch_size x accumulate_steps).
    accumulate_steps: int = attrs.field(default=1, validator=_at_least_one)
    #: ``32`` (float32), ``bf16`` (autocast to bfloat16) or ``fp16`` (autocast to float16 with a grad scaler).
    precision: Literal["32", "bf16", "fp16"] = "32"
    channels_last: bool = False
    #: ``torch.compile`` each encoder.
    compile: bool = False
    #: Under ``torchrun`` (several processes): batch norm statistics over the global batch (CUDA only).
    sync_batchnorm: bool = False
    #: Deterministic algorithms (and bit-exact ``--resume`` on CPU); may be slower on GPU.
    deterministic: bool = False
    #: Learning rate of a trainable view maker's own optimizer (Adam); ``None`` uses ``lr``.
    view_maker_lr: float | None = attrs.field(default=None, validator=_positive)
    seed: int = attrs.field(default=0, validator=_check(lambda v: 0 <= v <= SEED_MAX, f"must be in [0, {SEED_MAX}]"))
    #: ``auto`` picks cuda, then mps, then cpu.
    device: str = attrs.field(default="auto", validator=_check(lambda v: bool(_DEVICE.match(v)), "must be auto, cpu, mps, cuda or cuda:N"))
    #: Run directory for TensorBoard logs and checkpoints; default ``runs/<recipe file stem>``.
    out_dir: str | None = attrs.field(default=None, validator=_non_empty_path)
    #: Write a checkpoint every N optimizer steps (and always at each epoch end); ``None``: epoch ends only.
    checkpoint_every_n_steps: int | None = attrs.field(default=None, validator=_at_least_one)
    #: How many periodic checkpoints to keep (the final one is always kept).
    keep_checkpoints: int = attrs.field(default=3, validator=_at_least_one)
    num_workers: int = attrs.field(default=0, validator=_non_negative)
    #: Which view pairs are contrasted: ``core`` (view 1 with every other) or ``full`` (all pairs).
    graph: Literal["core", "full"] = "core"


@attrs.frozen
class EvalConfig:
    """``[eval]``: probes of the frozen representation on the test split.

    Example:
        >>> EvalConfig().knn_k, EvalConfig(labels=["digit"]).labels
        (200, ['digit'])
    """

    #: Weighted kNN probe (Wu et al. 2018) at the end of training.
    knn: bool = True
    knn_k: int = attrs.field(default=200, validator=_at_least_one)
    knn_temperature: float = attrs.field(default=0.1, validator=_positive)
    #: Linear probe (features extracted once, a linear classifier trained on the device) at the end.
    linear: bool = False
    linear_epochs: int = attrs.field(default=100, validator=_at_least_one)
    #: Online kNN every N epochs during training; ``None`` disables it.
    knn_every_n_epochs: int | None = attrs.field(default=None, validator=_at_least_one)
    #: Dataset labels to probe (each must be in the dataset's ``label_keys``); default: all of them.
    labels: list[str] | None = None
    #: Cap on train and test samples used by the probes.
    max_samples: int = attrs.field(default=2000, validator=_at_least_one)


@attrs.frozen
class LogConfig:
    """``[log]``: TensorBoard and console output.

    Example:
        >>> LogConfig(progress=False).progress
        False
    """

    #: Scalars (and the progress bar) are synced from the device once every N steps, never every step.
    every_n_steps: int = attrs.field(default=10, validator=_at_least_one)
    tensorboard: bool = True
    progress: bool = True
    #: An image grid of every view at the first step and every N steps; ``0`` disables it.
    images_every_n_steps: int = attrs.field(default=500, validator=_non_negative)
    #: Embedding projector of a held-out test batch at the end of training (``0`` disables it).
    projector_samples: int = attrs.field(default=256, validator=_non_negative)


_STAGE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


@attrs.frozen
class StageConfig:
    """One ``[[stages]]`` entry: the base recipe with dotted overrides, trained as its own run.

    ``set`` maps dotted keys to values (``{"views.mode" = "frozen"}``, validated like ``--set``);
    ``carry`` names pipeline modules (``view_maker``, ``encoders``, ``critic``, ...) whose weights
    are loaded from the previous stage's final checkpoint; everything else starts fresh.

    Example:
        >>> StageConfig("contrast", {"views.mode": "frozen"}, ["view_maker"]).carry
        ['view_maker']
        >>> StageConfig("bad name")
        Traceback (most recent call last):
        ...
        contrastkit.errors.InvalidParameter: name: must be letters, digits, '-' or '_' (it names the stage's run folder) (got 'bad name')
    """

    name: str = attrs.field(
        validator=_check(lambda v: bool(_STAGE_NAME.match(v)), "must be letters, digits, '-' or '_' (it names the stage's run folder)")
    )
    set: Mapping[str, Any] = attrs.field(factory=dict, converter=dict)
    carry: list[str] = attrs.field(factory=list)


@attrs.frozen
class Config:
    """A whole recipe. Every table has a default, so ``Config()`` is the README's demo.

    Example:
        >>> Config().views.name, Config().regularizer
        ('color-split', None)
    """

    # The plugin tables, in the slot table's order, each defaulting to its slot's plugin.
    data: PluginTable = _SLOT_DEFAULT["data"]
    #: One table for every view, or an array of tables ``[[augment]]``, one per view.
    augment: PluginTable | list[PluginTable] = _SLOT_DEFAULT["augment"]
    views: PluginTable = _SLOT_DEFAULT["views"]
    #: One table (``shared = true`` shares one encoder across views) or ``[[encoder]]``, one per view.
    encoder: PluginTable | list[PluginTable] = _SLOT_DEFAULT["encoder"]
    critic: PluginTable = _SLOT_DEFAULT["critic"]
    negatives: PluginTable = _SLOT_DEFAULT["negatives"]
    objective: PluginTable = _SLOT_DEFAULT["objective"]
    #: Empty unless the recipe has the table (the slot has no default plugin).
    regularizer: PluginTable | None = None
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    log: LogConfig = LogConfig()
    #: ``[[stages]]``: train the recipe several times in a row, each with overrides (see :func:`stages_from_dict`).
    stages: list[StageConfig] | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain-data form (what checkpoints store and ``--dry-run`` prints)."""
        from contrastkit.config.converter import converter  # which imports these classes

        return converter.unstructure(self)

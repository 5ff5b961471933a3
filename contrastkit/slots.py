"""The slot table: every kind of component, in pipeline order; the rest of contrastkit derives from it.

A :class:`Slot` names a kind as the registry knows it (``encoders``, and so its hook
``register_encoders``), the recipe table that selects it (``[encoder]``), the
:mod:`~contrastkit.interfaces` Protocol its components satisfy, the keyword arguments contrastkit
injects into its factories, the plugin a recipe gets without the table, and whether a recipe may
give one table per view. The registry's ``KINDS``, ``SLOTS`` and ``INJECTED``, the
``register_<kind>`` hookspecs, the recipe schema's plugin tables, the Pipeline's slot building and
the contract kit's injected values all read this table, so a new kind is one entry here plus its
family package (which registers the built-ins, see :mod:`contrastkit.builtin_plugins`).

Example:
    >>> [slot.table for slot in SLOT_TABLE]
    ['data', 'augment', 'views', 'encoder', 'critic', 'negatives', 'objective', 'regularizer']
    >>> BY_TABLE["encoder"].kind, BY_KIND["encoders"].hook, BY_KIND["encoders"].injected_names
    ('encoders', 'register_encoders', ('in_channels',))
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from contrastkit import interfaces

__all__ = ["BY_KIND", "BY_TABLE", "SLOT_TABLE", "Injected", "Slot"]


@attrs.frozen
class Injected:
    """A keyword argument contrastkit passes to every factory of a kind; a recipe may not set it.

    ``annotation`` and ``meaning`` document it in the kind's hookspec; ``example`` is the value the
    contract kit (:func:`contrastkit.testing.check_registered`) passes.

    Example:
        >>> Injected("split", "str", "the dataset split", example="train").signature
        'split: str'
    """

    name: str
    annotation: str
    meaning: str
    example: Any

    @property
    def signature(self) -> str:
        """``name: annotation``, as the hookspec documents it."""
        return f"{self.name}: {self.annotation}"


@attrs.frozen
class Slot:
    """One kind of component and the recipe table that selects it.

    ``default`` is the plugin a recipe without the table gets (``None``: the slot stays empty);
    ``per_view`` says the table may be an array of tables, one per view (``[[encoder]]``).

    Example:
        >>> slot = BY_TABLE["negatives"]
        >>> slot.kind, slot.hook, slot.noun, slot.protocol.__name__, slot.default
        ('negative_samplers', 'register_negative_samplers', 'negative sampler', 'NegativeSampler', 'in-batch')
    """

    kind: str
    table: str
    protocol: type
    default: str | None
    injected: tuple[Injected, ...] = ()
    per_view: bool = False

    @property
    def hook(self) -> str:
        """The pluggy hook a plugin implements to register components of this kind."""
        return f"register_{self.kind}"

    @property
    def injected_names(self) -> tuple[str, ...]:
        """The names of the injected keyword arguments, in the order they are documented."""
        return tuple(arg.name for arg in self.injected)

    @property
    def noun(self) -> str:
        """One component of this kind, in words (``view maker``), for messages."""
        return self.kind[:-1].replace("_", " ")


#: Every kind, in pipeline order: the order of the registry's tables, of the hooks and of a recipe's tables.
SLOT_TABLE: tuple[Slot, ...] = (
    Slot(
        kind="datasets",
        table="data",
        protocol=interfaces.Dataset,
        default="colorful-moving-digits",
        injected=(Injected("split", "str", '``"train"`` for pre-training and ``"test"`` for evaluation', "train"),),
    ),
    Slot(kind="augmentations", table="augment", protocol=interfaces.Augmentation, default="none", per_view=True),
    Slot(kind="view_makers", table="views", protocol=interfaces.ViewMaker, default="color-split"),
    Slot(
        kind="encoders",
        table="encoder",
        protocol=interfaces.Encoder,
        default="convnet",
        injected=(
            Injected(
                "in_channels", "int", "the channel count of the view the encoder will read (one encoder is built per view)", 3
            ),
        ),
        per_view=True,
    ),
    Slot(
        kind="critics",
        table="critic",
        protocol=interfaces.Critic,
        default="cosine",
        injected=(Injected("feature_dims", "tuple[int, ...]", "the feature size ``F`` of each view's encoder", (32, 24)),),
    ),
    Slot(
        kind="negative_samplers",
        table="negatives",
        protocol=interfaces.NegativeSampler,
        default="in-batch",
        injected=(
            Injected("num_views", "int", "``M``", 2),
            Injected("dataset_size", "int", "rows a memory bank needs", 64),
            Injected("embedding_dim", "int", "the critic's ``D``", 16),
        ),
    ),
    Slot(kind="objectives", table="objective", protocol=interfaces.Objective, default="infonce"),
    Slot(kind="regularizers", table="regularizer", protocol=interfaces.Regularizer, default=None),
)

#: The slot of each registry kind (``"encoders"``).
BY_KIND: Mapping[str, Slot] = MappingProxyType({slot.kind: slot for slot in SLOT_TABLE})
#: The slot of each recipe table (``"encoder"``).
BY_TABLE: Mapping[str, Slot] = MappingProxyType({slot.table: slot for slot in SLOT_TABLE})

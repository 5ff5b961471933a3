"""The plugin hooks: one ``register_*`` hook per kind of component.

A plugin is a module (or any object) with functions named like these hooks and decorated with
:data:`contrastkit.hookimpl`. Each hook receives ``register(name, factory)``; call it once per
component (see :class:`Register` for ``override=True``, which replaces a built-in of that name). ``factory`` is a class or function whose keyword arguments are the keys of the TOML table
that selects it (all but ``name``); contrastkit validates them before training starts. Some keyword
arguments are supplied by contrastkit instead of the TOML file (listed per hook below) and must be
accepted by the factory.

Example:
    >>> import contrastkit
    >>> from contrastkit.objectives.infonce import InfoNCE
    >>> from contrastkit.registry import Registry
    >>> class MyPlugin:
    ...     @contrastkit.hookimpl
    ...     def register_objectives(self, register):
    ...         register("my-infonce", InfoNCE)
    >>> registry = Registry(builtins=False, entry_points=False)
    >>> _ = registry.add_plugin(MyPlugin(), name="my-plugin")
    >>> registry.names("objectives")
    ['my-infonce']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import pluggy

__all__ = ["PROJECT", "Register", "hookimpl", "hookspec"]

#: The pluggy project name, also the entry-point group third-party packages declare.
PROJECT = "contrastkit"

hookspec = pluggy.HookspecMarker(PROJECT)
#: Decorate a plugin's ``register_*`` functions with this (re-exported as ``contrastkit.hookimpl``).
hookimpl = pluggy.HookimplMarker(PROJECT)


class Register(Protocol):
    """The ``register`` callable every hook receives: ``register(name, factory, *, override=False)``.

    ``name`` is lower-case, e.g. ``"color-split"``; ``factory(**table) -> component``.

    A built-in's name (``infonce``, ``cosine``, ...) is taken: a plugin registering it is refused
    with a :class:`~contrastkit.errors.PluginLoadWarning` naming the plugin, its distribution, the
    kind and the name, and the built-in stays, so recipes that use the default keep working.
    ``override=True`` declares the replacement deliberate: the plugin's factory is then used for that
    name, and ``contrastkit plugins`` shows the override. It has no effect on a name no built-in
    has; two plugins registering one name stay a conflict either way.

    Example:
        >>> import contrastkit
        >>> from contrastkit.objectives.infonce import InfoNCE
        >>> from contrastkit.registry import Registry
        >>> class MyInfoNCE(InfoNCE):
        ...     pass
        >>> class Plugin:
        ...     @contrastkit.hookimpl
        ...     def register_objectives(self, register: Register) -> None:
        ...         register("infonce", MyInfoNCE, override=True)
        >>> registry = Registry(entry_points=False)
        >>> registry.add_plugin(Plugin(), name="mine").overrides["objectives"]
        ['infonce']
        >>> registry.get("objectives", "infonce").factory.__name__
        'MyInfoNCE'
    """

    def __call__(self, name: str, factory: Callable[..., Any], *, override: bool = False) -> None: ...


@hookspec
def register_view_makers(register: Register) -> None:
    """Register :class:`~contrastkit.interfaces.ViewMaker` factories, selected by ``[views] name``.

    No arguments are injected: every keyword argument comes from the ``[views]`` table.
    """


@hookspec
def register_encoders(register: Register) -> None:
    """Register :class:`~contrastkit.interfaces.Encoder` factories, selected by ``[encoder] name``.

    Injected: ``in_channels: int``, the channel count of the view the encoder will read
    (one encoder is built per view).
    """


@hookspec
def register_critics(register: Register) -> None:
    """Register :class:`~contrastkit.interfaces.Critic` factories, selected by ``[critic] name``.

    Injected: ``feature_dims: tuple[int, ...]``, the feature size ``F`` of each view's encoder.
    """


@hookspec
def register_objectives(register: Register) -> None:
    """Register :class:`~contrastkit.interfaces.Objective` factories, selected by ``[objective] name``.

    No arguments are injected.
    """


@hookspec
def register_negative_samplers(register: Register) -> None:
    """Register :class:`~contrastkit.interfaces.NegativeSampler` factories (``[negatives] name``).

    Injected: ``num_views: int`` (M), ``dataset_size: int`` (rows a memory bank needs) and
    ``embedding_dim: int`` (the critic's ``D``).
    """


@hookspec
def register_regularizers(register: Register) -> None:
    """Register :class:`~contrastkit.interfaces.Regularizer` factories (``[regularizer] name``).

    No arguments are injected.
    """


@hookspec
def register_datasets(register: Register) -> None:
    """Register :class:`~contrastkit.interfaces.Dataset` factories, selected by ``[data] name``.

    Injected: ``split: str``, ``"train"`` for pre-training and ``"test"`` for evaluation.
    """


@hookspec
def register_augmentations(register: Register) -> None:
    """Register :class:`~contrastkit.interfaces.Augmentation` factories (``[augment] name``).

    No arguments are injected.
    """

"""The plugin hooks: one ``register_*`` hook per kind of component.

A plugin is a module (or any object) with functions named like these hooks and decorated with
:data:`contrastkit.hookimpl`. Each hook receives ``register(name, factory)``; call it once per
component (see :class:`Register` for ``override=True``, which replaces a built-in of that name). ``factory`` is a class or function whose keyword arguments are the keys of the TOML table
that selects it (all but ``name``); contrastkit validates them before training starts. Some keyword
arguments are supplied by contrastkit instead of the TOML file and must be accepted by the factory.
The hooks are made from :data:`contrastkit.slots.SLOT_TABLE`, one per kind, and each hook's
docstring names its table, its Protocol and its injected arguments.

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

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import pluggy

from contrastkit.slots import SLOT_TABLE, Slot

__all__ = ["PROJECT", "Register", "builtin_hook", "hook_doc", "hookimpl", "hookspec"]

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


def builtin_hook(kind: str, factories: Mapping[str, Callable[..., Any]]) -> Callable[[Register], None]:
    """A built-in family's ``register_<kind>`` hook implementation: registers ``factories`` in their order.

    Assign it to the hook's name in the family's package; pluggy finds it there as it finds a
    third-party plugin's decorated function.

    Example:
        >>> hook = builtin_hook("encoders", {"mine": dict})
        >>> hook.__name__
        'register_encoders'
        >>> hook(lambda name, factory: print(name, factory.__name__))
        mine dict
    """

    def hook(register: Register) -> None:
        for name, factory in factories.items():
            register(name, factory)

    hook.__name__ = hook.__qualname__ = f"register_{kind}"
    hook.__doc__ = f"Register the built-in {kind}: {', '.join(factories)}."
    return hookimpl(hook)


def hook_doc(slot: Slot) -> str:
    """The docstring of ``slot``'s hookspec: the Protocol, the recipe table and the injected arguments.

    Example:
        >>> from contrastkit.slots import BY_KIND
        >>> print(hook_doc(BY_KIND["critics"]))
        Register :class:`~contrastkit.interfaces.Critic` factories, selected by ``[critic] name``.
        <BLANKLINE>
        Injected: ``feature_dims: tuple[int, ...]`` (the feature size ``F`` of each view's encoder).
    """
    head = (f"Register :class:`~contrastkit.interfaces.{slot.protocol.__name__}` factories, "
            f"selected by ``[{slot.table}] name``.")
    if not slot.injected:
        return f"{head}\n\nNo arguments are injected: every keyword argument comes from the ``[{slot.table}]`` table."
    injected = ", ".join(f"``{arg.signature}`` ({arg.meaning})" for arg in slot.injected)
    return f"{head}\n\nInjected: {injected}."


def _hookspec(slot: Slot) -> Callable[[Register], None]:
    def hook(register: Register) -> None:
        """Replaced by :func:`hook_doc`."""

    hook.__name__ = hook.__qualname__ = slot.hook
    hook.__doc__ = hook_doc(slot)
    return hookspec(hook)


# One ``register_<kind>(register)`` hook per slot, named and documented from the slot table.
for _slot in SLOT_TABLE:
    globals()[_slot.hook] = _hookspec(_slot)
del _slot

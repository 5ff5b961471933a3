"""The plugin registry: loads built-ins and ``contrastkit`` entry points through pluggy.

Built-ins register through the same ``register(name, factory)`` call as third-party plugins. Entry
points load one at a time; one that fails to import, validate (``check_pending``) or register is
reported with its entry point and distribution, rolled back, and everything else keeps working.
"Fails" means raises anything at all, ``SystemExit``, ``GeneratorExit`` and other ``BaseException``
subclasses included; only ``KeyboardInterrupt`` is let through.

Environment:
    ``CONTRASTKIT_STRICT_PLUGINS=1``  a plugin failure or duplicate name is fatal (a switch read by
        :func:`contrastkit.env.env_flag`: ``1/true/yes/on`` or ``0/false/no/off``, any case).
    ``CONTRASTKIT_DISABLE_PLUGINS=a,b``  entry points named ``a`` and ``b`` are not loaded.

Example:
    >>> from contrastkit.registry import get_registry
    >>> registry = get_registry()
    >>> "infonce" in registry.names("objectives")
    True
    >>> registry.get("objectives", "infonce").plugin.name
    'contrastkit'
"""

from __future__ import annotations

import importlib.metadata
import os
import traceback
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import pluggy

from contrastkit import hookspecs
from contrastkit.env import env_flag
from contrastkit.errors import DuplicateNameError, PluginLoadError, PluginLoadWarning, UnknownNameError

__all__ = [
    "INJECTED",
    "KINDS",
    "SLOTS",
    "PluginInfo",
    "Registration",
    "Registry",
    "get_registry",
    "plugin_at_fault",
    "reset_registry",
]

#: Every kind of component, in pipeline order; ``register_<kind>`` is its hook.
KINDS: tuple[str, ...] = (
    "datasets",
    "augmentations",
    "view_makers",
    "encoders",
    "critics",
    "negative_samplers",
    "objectives",
    "regularizers",
)

#: The recipe table that selects each kind.
SLOTS: dict[str, str] = {
    "data": "datasets",
    "augment": "augmentations",
    "views": "view_makers",
    "encoder": "encoders",
    "critic": "critics",
    "negatives": "negative_samplers",
    "objective": "objectives",
    "regularizer": "regularizers",
}

#: Keyword arguments contrastkit supplies to each kind's factory (not settable from TOML).
INJECTED: dict[str, tuple[str, ...]] = {
    "datasets": ("split",),
    "augmentations": (),
    "view_makers": (),
    "encoders": ("in_channels",),
    "critics": ("feature_dims",),
    "negative_samplers": ("num_views", "dataset_size", "embedding_dim"),
    "objectives": (),
    "regularizers": (),
}

STRICT_ENV = "CONTRASTKIT_STRICT_PLUGINS"
DISABLE_ENV = "CONTRASTKIT_DISABLE_PLUGINS"


@attrs.define
class PluginInfo:
    """One loaded (or failed) plugin: where it came from and what it registered.

    Example:
        >>> info = PluginInfo(name="sobel", distribution="contrastkit-sobel", version="0.1.0")
        >>> info.label
        'sobel (contrastkit-sobel 0.1.0)'
    """

    name: str
    distribution: str | None = None
    version: str | None = None
    entry_point: str | None = None
    registered: dict[str, list[str]] = attrs.field(factory=lambda: {kind: [] for kind in KINDS})
    #: One line: what failed (``register_encoders raised RuntimeError: ...``); ``None`` if it loaded.
    error: str | None = None
    #: The full traceback of the plugin's exception, kept for debugging when it failed.
    traceback: str | None = attrs.field(default=None, repr=False)

    @property
    def label(self) -> str:
        """``name (distribution version)`` for messages."""
        if self.distribution:
            return f"{self.name} ({self.distribution} {self.version or '?'})"
        return self.name

    def as_dict(self) -> dict[str, Any]:
        """The JSON form printed by ``contrastkit plugins --json``."""
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "entry_point": self.entry_point,
            "error": self.error,
            **{kind: list(names) for kind, names in self.registered.items()},
        }


@attrs.frozen
class Registration:
    """A factory registered under ``name`` for ``kind`` by ``plugin``.

    Example:
        >>> reg = get_registry().get("critics", "cosine")
        >>> reg.kind, reg.name, reg.factory.__name__
        ('critics', 'cosine', 'CosineCritic')
    """

    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: PluginInfo


class Registry:
    """Name -> factory tables for the eight kinds, filled through pluggy hooks.

    ``builtins`` registers contrastkit's own plugin; ``entry_points`` loads the ``contrastkit``
    entry-point group. ``strict`` (default: the ``CONTRASTKIT_STRICT_PLUGINS`` switch, see
    :func:`~contrastkit.env.env_flag`) makes plugin failures and duplicate names raise; ``disabled``
    (default: ``CONTRASTKIT_DISABLE_PLUGINS``) blocks entry points by name.

    Example:
        >>> registry = Registry(entry_points=False)
        >>> registry.names("encoders")
        ['convnet', 'resnet18', 'resnet50', 'torchvision']
        >>> registry.get("encoders", "convnet").plugin.distribution
        'contrastkit'
    """

    def __init__(
        self,
        *,
        builtins: bool = True,
        entry_points: bool = True,
        strict: bool | None = None,
        disabled: Iterable[str] | None = None,
    ) -> None:
        self.strict = env_flag(STRICT_ENV, default=False) if strict is None else strict
        if disabled is None:
            disabled = (n.strip() for n in os.environ.get(DISABLE_ENV, "").split(","))
        self.disabled = {name for name in disabled if name}
        self.plugin_manager = pluggy.PluginManager(hookspecs.PROJECT)
        self.plugin_manager.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.failures: list[PluginInfo] = []
        self._table: dict[str, dict[str, list[Registration]]] = {kind: {} for kind in KINDS}
        if builtins:
            from contrastkit import __version__, builtin_plugins

            self.add_plugin(builtin_plugins, name="contrastkit", distribution="contrastkit", version=__version__)
        if entry_points:
            self.load_entry_points()

    # -- loading -------------------------------------------------------------------------------
    def load_entry_points(self) -> None:
        """Load every ``contrastkit`` entry point not blocked by name, one at a time."""
        seen: set[tuple[str, str]] = set()
        for ep in importlib.metadata.entry_points(group=hookspecs.PROJECT):
            if (ep.name, ep.value) in seen or ep.name in self.disabled:
                continue
            seen.add((ep.name, ep.value))
            dist = getattr(ep, "dist", None)
            info = PluginInfo(
                name=ep.name,
                distribution=dist.metadata["Name"] if dist is not None else None,
                version=dist.version if dist is not None else None,
                entry_point=f"{ep.name} = {ep.value}",
            )
            try:
                plugin = ep.load()
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - a plugin may raise anything on import, SystemExit too
                self._fail(info, exc)
                continue
            self._add(plugin, info)

    def add_plugin(
        self,
        plugin: object,
        *,
        name: str,
        distribution: str | None = None,
        version: str | None = None,
    ) -> PluginInfo:
        """Register a plugin object or module directly (tests and notebooks use this).

        Returns its :class:`PluginInfo`; a failure is handled as for entry points.
        """
        info = PluginInfo(name=name, distribution=distribution, version=version)
        self._add(plugin, info)
        return info

    def _add(self, plugin: object, info: PluginInfo) -> None:
        pm = self.plugin_manager
        try:
            pm.register(plugin, name=info.name)
            pm.check_pending()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - pluggy validation errors, name clashes, plugin attributes
            if pm.is_registered(plugin):
                pm.unregister(plugin)
            self._fail(info, exc)
            return
        staged: list[Registration] = []
        hook = ""
        try:
            for kind in KINDS:
                caller = getattr(pm.hook, f"register_{kind}")
                for impl in caller.get_hookimpls():
                    if impl.plugin is not plugin:
                        continue

                    def register(name: str, factory: Callable[..., Any], _kind: str = kind) -> None:
                        if not isinstance(name, str) or not name or name != name.strip():
                            raise TypeError(f"register_{_kind}: name must be a non-empty string (got {name!r})")
                        if not callable(factory):
                            raise TypeError(f"register_{_kind}: factory for {name!r} is not callable")
                        staged.append(Registration(kind=_kind, name=name, factory=factory, plugin=info))

                    hook = f"register_{kind}"
                    impl.function(**{arg: register for arg in impl.argnames})
        except KeyboardInterrupt:
            pm.unregister(plugin)
            raise
        except BaseException as exc:  # noqa: BLE001 - isolate a plugin that raises anything while registering
            pm.unregister(plugin)
            self._fail(info, exc, hook=hook)
            return
        if self.strict:  # check before committing anything, so a caught error leaves no half-plugin
            seen: set[tuple[str, str]] = set()
            for reg in staged:
                earlier = self._table[reg.kind].get(reg.name, [])
                if earlier or (reg.kind, reg.name) in seen:
                    pm.unregister(plugin)
                    labels = [r.plugin.label for r in earlier] or [info.label]
                    raise DuplicateNameError(reg.kind, reg.name, [*labels, info.label])
                seen.add((reg.kind, reg.name))
        for reg in staged:
            self._table[reg.kind].setdefault(reg.name, []).append(reg)
            info.registered[reg.kind].append(reg.name)
        self.plugins[info.name] = info

    def _fail(self, info: PluginInfo, exc: BaseException, *, hook: str = "") -> None:
        info.error = f"{hook} raised {_describe(exc)}" if hook else _describe(exc)
        info.traceback = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.failures.append(info)
        where = f"entry point '{info.entry_point}'" if info.entry_point else "registered directly"
        dist = f", distribution {info.distribution} {info.version}" if info.distribution else ""
        message = (
            f"plugin {info.name!r} ({where}{dist}) failed to load: {info.error}; "
            f"fix or uninstall it, or set {DISABLE_ENV}={info.name}"
        )
        if self.strict:
            raise PluginLoadError(message) from exc
        warnings.warn(message, PluginLoadWarning, stacklevel=3)

    # -- lookup --------------------------------------------------------------------------------
    def names(self, kind: str) -> list[str]:
        """Sorted registered names of ``kind`` (one of :data:`KINDS`)."""
        return sorted(self._kind(kind))

    def get(self, kind: str, name: str) -> Registration:
        """The registration of ``name``; raises :class:`UnknownNameError` or :class:`DuplicateNameError`."""
        entries = self._kind(kind).get(name)
        if not entries:
            raise UnknownNameError(kind, name, self.names(kind))
        if len(entries) > 1:
            raise DuplicateNameError(kind, name, [r.plugin.label for r in entries])
        return entries[0]

    def duplicates(self) -> list[DuplicateNameError]:
        """Every name registered more than once, as the error a lookup of it would raise."""
        return [
            DuplicateNameError(kind, name, [r.plugin.label for r in entries])
            for kind in KINDS
            for name, entries in sorted(self._table[kind].items())
            if len(entries) > 1
        ]

    def registrations(self) -> list[Registration]:
        """Every registration (duplicates included), by kind then name."""
        return [reg for kind in KINDS for _, regs in sorted(self._table[kind].items()) for reg in regs]

    def _kind(self, kind: str) -> dict[str, list[Registration]]:
        if kind not in self._table:
            raise UnknownNameError("plugin kind", kind, KINDS)
        return self._table[kind]


def _describe(exc: BaseException) -> str:
    """``Type: first line of the message`` (``SystemExit`` alone when it has no message), on one line."""
    try:
        text = str(exc)
    except KeyboardInterrupt:
        raise
    except BaseException:  # noqa: BLE001 - a plugin's exception may not even print
        text = ""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def plugin_at_fault(exc: BaseException, registry: Registry) -> str | None:
    """One line naming the plugin whose code raised ``exc`` and the slot it fills, or ``None``.

    The innermost traceback frame inside the top-level package of a registered factory decides.
    Built-in components are contrastkit's own code and are not blamed (``None``: a bare traceback).

    Example:
        >>> import sys, types
        >>> from contrastkit.hookspecs import hookimpl
        >>> module = types.ModuleType("ck_fault_example")
        >>> exec("def broken(): return 1 / 0", module.__dict__)
        >>> registry = Registry(entry_points=False)
        >>> plugin = types.SimpleNamespace(register_encoders=hookimpl(lambda register: register("broken", module.broken)))
        >>> _ = registry.add_plugin(plugin, name="broken")
        >>> try:
        ...     module.broken()
        ... except ZeroDivisionError as exc:
        ...     print(plugin_at_fault(exc, registry))
        plugin broken raised ZeroDivisionError: division by zero, in the encoder 'broken' it registers ([encoder] table); its traceback follows
    """
    owners: dict[str, Registration] = {}  # top-level package -> its first registration
    exact: dict[object, Registration] = {}  # a factory class or a factory function's code -> registration
    for reg in registry.registrations():
        module = str(getattr(reg.factory, "__module__", "") or "")
        if not module or module.split(".")[0] == "contrastkit":
            continue
        owners.setdefault(module.split(".")[0], reg)
        exact[reg.factory if isinstance(reg.factory, type) else getattr(reg.factory, "__code__", reg.factory)] = reg
    tb, found, precise = exc.__traceback__, None, None
    while tb is not None:  # the innermost frame wins; a frame of the component itself beats its package
        frame = tb.tb_frame
        owner = type(frame.f_locals.get("self", None))
        hit = exact.get(frame.f_code) or next((exact[c] for c in owner.__mro__ if c in exact), None)
        precise = hit or precise
        found = owners.get(str(frame.f_globals.get("__name__", "")).split(".")[0], found)
        tb = tb.tb_next
    found = precise or found
    if found is None:
        return None
    table = next((t for t, k in SLOTS.items() if k == found.kind), found.kind)
    what = found.kind[:-1].replace("_", " ")
    return (f"plugin {found.plugin.label} raised {_describe(exc)}, in the {what} {found.name!r} it registers "
            f"([{table}] table); its traceback follows")


_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, loaded on first use.

    Example:
        >>> get_registry() is get_registry()
        True
    """
    global _registry
    if _registry is None:
        _registry = Registry()
    return _registry


def reset_registry() -> None:
    """Forget the process-wide registry so the next :func:`get_registry` reloads every plugin.

    Example:
        >>> reset_registry(); isinstance(get_registry(), Registry)
        True
    """
    global _registry
    _registry = None


"""The plugin registry: loads built-ins and ``contrastkit`` entry points through pluggy.

Built-ins register through the same ``register(name, factory)`` call as third-party plugins. Entry
points load one at a time; one that fails to import, validate (``check_pending``) or register, that
registers nothing, or whose entry-point name another distribution already declared, is reported on
one line with its entry point and distribution (and the ``file:line`` in the plugin that raised),
rolled back, and everything else keeps working. "Fails" means raises anything at all, ``SystemExit``,
``GeneratorExit`` and other ``BaseException`` subclasses included; only ``KeyboardInterrupt`` is let
through. A plugin may not take a built-in's name unless it registers it with ``override=True``; the
diagnostics live in :mod:`contrastkit.plugin_loading`.

Environment:
    ``CONTRASTKIT_STRICT_PLUGINS=1``  a plugin failure, refused built-in name or duplicate name is
        fatal (a switch read by :func:`contrastkit.env.env_flag`: ``1/true/yes/on`` or
        ``0/false/no/off``, any case).
    ``CONTRASTKIT_DISABLE_PLUGINS=a,ck-b:c``  entry points named ``a`` (from any distribution), and
        ``c`` from distribution ``ck-b`` only, are not loaded.

Example:
    >>> from contrastkit.registry import get_registry
    >>> registry = get_registry()
    >>> "infonce" in registry.names("objectives")
    True
    >>> registry.get("objectives", "infonce").plugin.name
    'contrastkit'
"""

from __future__ import annotations

import importlib
import os
import traceback
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import pluggy

from contrastkit import hookspecs
from contrastkit import plugin_loading as loading
from contrastkit.env import env_flag
from contrastkit.errors import DuplicateNameError, PluginLoadError, PluginLoadWarning, UnknownNameError
from contrastkit.plugin_loading import DISABLE_ENV, STRICT_ENV, plugin_at_fault
from contrastkit.slots import SLOT_TABLE

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

#: Every kind of component, in pipeline order; ``register_<kind>`` is its hook (from the slot table).
KINDS: tuple[str, ...] = tuple(slot.kind for slot in SLOT_TABLE)

#: The recipe table that selects each kind.
SLOTS: dict[str, str] = {slot.table: slot.kind for slot in SLOT_TABLE}

#: Keyword arguments contrastkit supplies to each kind's factory (not settable from TOML).
INJECTED: dict[str, tuple[str, ...]] = {slot.kind: slot.injected_names for slot in SLOT_TABLE}


def _by_kind() -> dict[str, list[str]]:
    return {kind: [] for kind in KINDS}


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
    registered: dict[str, list[str]] = attrs.field(factory=_by_kind)
    #: The built-in names this plugin replaces, registered with ``override=True``.
    overrides: dict[str, list[str]] = attrs.field(factory=_by_kind)
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

    @property
    def origin(self) -> str:
        """``plugin 'name' (entry point '...', distribution d v)``: how every message names a plugin.

        Example:
            >>> PluginInfo(name="x", distribution="ck-x", version="1.0", entry_point="x = ck_x").origin
            "plugin 'x' (entry point 'x = ck_x', distribution ck-x 1.0)"
        """
        where = f"entry point '{self.entry_point}'" if self.entry_point else "registered directly"
        dist = f", distribution {self.distribution} {self.version}" if self.distribution else ""
        return f"plugin {self.name!r} ({where}{dist})"

    def as_dict(self) -> dict[str, Any]:
        """The JSON form printed by ``contrastkit plugins --json`` (``overrides``: only kinds with some)."""
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "entry_point": self.entry_point,
            "error": self.error,
            **{kind: list(names) for kind, names in self.registered.items()},
            "overrides": {kind: list(names) for kind, names in self.overrides.items() if names},
        }


@attrs.frozen
class Registration:
    """A factory registered under ``name`` for ``kind`` by ``plugin``.

    ``override`` is true when a plugin replaced the built-in of that name on purpose.

    Example:
        >>> reg = get_registry().get("critics", "cosine")
        >>> reg.kind, reg.name, reg.factory.__name__, reg.override
        ('critics', 'cosine', 'CosineCritic', False)
    """

    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: PluginInfo
    override: bool = False


class Registry:
    """Name -> factory tables for the eight kinds, filled through pluggy hooks.

    ``builtins`` registers contrastkit's own plugin; ``entry_points`` loads the ``contrastkit``
    entry-point group. ``strict`` (default: the ``CONTRASTKIT_STRICT_PLUGINS`` switch, see
    :func:`~contrastkit.env.env_flag`) makes plugin failures and duplicate names raise; ``disabled``
    (default: ``CONTRASTKIT_DISABLE_PLUGINS``) blocks entry points by ``name`` or ``dist:name``.

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
        self.disabled = loading.parse_disabled(os.environ.get(DISABLE_ENV, "") if disabled is None else disabled)
        self.plugin_manager = pluggy.PluginManager(hookspecs.PROJECT)
        self.plugin_manager.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.failures: list[PluginInfo] = []
        #: contrastkit's own plugin: its names are taken unless a plugin registers with ``override=True``.
        self.builtin: PluginInfo | None = None
        self._table: dict[str, dict[str, list[Registration]]] = {kind: {} for kind in KINDS}
        if builtins:
            self._add_builtins()
        if entry_points:
            self.load_entry_points()

    # -- loading -------------------------------------------------------------------------------
    def _add_builtins(self) -> None:
        """Load every module of :data:`~contrastkit.builtin_plugins.BUILTIN_PLUGINS`, together the plugin ``contrastkit``."""
        from contrastkit.builtin_plugins import BUILTIN_PLUGINS
        from contrastkit.version import __version__

        self.builtin = PluginInfo(name="contrastkit", distribution="contrastkit", version=__version__)
        for module in BUILTIN_PLUGINS:
            self._add(importlib.import_module(module), self.builtin, key=module)

    def load_entry_points(self) -> None:
        """Load every ``contrastkit`` entry point not disabled, one at a time.

        A second distribution declaring an entry-point name already declared is not imported: it
        is reported naming both distributions (``CONTRASTKIT_DISABLE_PLUGINS=dist:name`` picks one).
        """
        claimed: dict[str, PluginInfo] = {} if self.builtin is None else {self.builtin.name: self.builtin}
        for ep in loading.entry_points(self.disabled):
            dist = getattr(ep, "dist", None)
            info = PluginInfo(
                name=ep.name,
                distribution=dist.metadata["Name"] if dist is not None else None,
                version=dist.version if dist is not None else None,
                entry_point=f"{ep.name} = {ep.value}",
            )
            first = claimed.setdefault(ep.name, info)
            if first is not info:
                self._fail(info, problem=loading.clash_problem(first, info), fix=loading.clash_fix(first, info))
                continue
            try:
                plugin = ep.load()
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - a plugin may raise anything on import, SystemExit too
                self._fail(info, exc, packages=loading.plugin_packages(entry_point=info.entry_point))
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

        Example:
            >>> import types, contrastkit
            >>> from contrastkit.objectives.infonce import InfoNCE
            >>> plugin = types.SimpleNamespace(
            ...     register_objectives=contrastkit.hookimpl(lambda register: register("mine", InfoNCE)))
            >>> Registry(builtins=False, entry_points=False).add_plugin(plugin, name="mine").registered["objectives"]
            ['mine']
        """
        info = PluginInfo(name=name, distribution=distribution, version=version)
        self._add(plugin, info)
        return info

    def _add(self, plugin: object, info: PluginInfo, *, key: str | None = None) -> None:
        """Register ``plugin`` under pluggy name ``key`` (default: ``info.name``) and commit what it registers."""
        pm = self.plugin_manager
        packages = loading.plugin_packages(plugin, info.entry_point)
        try:
            pm.register(plugin, name=key or info.name)
            unknown = loading.unknown_hook_problems(pm, plugin)
            if not unknown:
                pm.check_pending()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - pluggy validation errors, name clashes, plugin attributes
            if pm.is_registered(plugin):
                pm.unregister(plugin)
            self._fail(info, exc, packages=packages)
            return
        if unknown:
            pm.unregister(plugin)
            self._fail(info, problem=unknown[0])
            return
        staged: list[Registration] = []
        hook, ran = "", []
        try:
            for slot in SLOT_TABLE:
                kind = slot.kind
                caller = getattr(pm.hook, slot.hook)
                for impl in caller.get_hookimpls():
                    if impl.plugin is not plugin:
                        continue

                    def register(
                        name: str, factory: Callable[..., Any], *, override: bool = False, _kind: str = kind
                    ) -> None:
                        if not isinstance(name, str) or not name or name != name.strip():
                            raise TypeError(f"register_{_kind}: name must be a non-empty string (got {name!r})")
                        if not callable(factory):
                            raise TypeError(f"register_{_kind}: factory for {name!r} is not callable")
                        if not isinstance(override, bool):
                            raise TypeError(f"register_{_kind}: override for {name!r} must be True or False")
                        staged.append(Registration(_kind, name, factory, info, override))

                    hook = slot.hook
                    ran.append(hook)
                    impl.function(**dict.fromkeys(impl.argnames, register))
        except KeyboardInterrupt:
            pm.unregister(plugin)
            raise
        except BaseException as exc:  # noqa: BLE001 - isolate a plugin that raises anything while registering
            pm.unregister(plugin)
            self._fail(info, exc, hook=hook, packages=packages)
            return
        if not staged:
            pm.unregister(plugin)
            problem = loading.nothing_registered_problem(plugin, entry_point=info.entry_point, hooks_ran=ran)
            self._fail(info, problem=problem, what="registered nothing")
            return
        kept = [reg for reg in staged if not self._refuses(reg, plugin)]
        if self.strict:  # check before committing anything, so a caught error leaves no half-plugin
            seen: set[tuple[str, str]] = set()
            for reg in kept:
                earlier = [r for r in self._table[reg.kind].get(reg.name, []) if not self._replaces(reg, r)]
                if earlier or (reg.kind, reg.name) in seen:
                    pm.unregister(plugin)
                    raise self._duplicate(reg.kind, reg.name, [*(earlier or [reg]), reg])
                seen.add((reg.kind, reg.name))
        for reg in kept:
            entries = self._table[reg.kind].setdefault(reg.name, [])
            entries[:] = [r for r in entries if not self._replaces(reg, r)] + [reg]
            info.registered[reg.kind].append(reg.name)
            if reg.override and self._builtin_has(reg.kind, reg.name):
                info.overrides[reg.kind].append(reg.name)
        self.plugins[info.name] = info

    def _builtin_has(self, kind: str, name: str) -> bool:
        return self.builtin is not None and name in self.builtin.registered[kind]

    def _replaces(self, reg: Registration, other: Registration) -> bool:
        """Whether ``reg`` (an override) takes the place of the built-in registration ``other``."""
        return reg.override and other.plugin is self.builtin and reg.plugin is not self.builtin

    def _refuses(self, reg: Registration, plugin: object) -> bool:
        """Refuse a plugin's registration of a built-in name without ``override=True`` (raise if strict)."""
        if reg.override or reg.plugin is self.builtin or not self._builtin_has(reg.kind, reg.name):
            return False
        message = loading.shadow_problem(reg.plugin.origin, reg.kind, reg.name)
        if self.strict:
            self.plugin_manager.unregister(plugin)
            raise PluginLoadError(message)
        warnings.warn(message, PluginLoadWarning, stacklevel=4)
        return True

    def _fail(
        self,
        info: PluginInfo,
        exc: BaseException | None = None,
        *,
        hook: str = "",
        packages: Iterable[str] = (),
        problem: str = "",
        what: str = "failed to load",
        fix: str = "",
    ) -> None:
        if exc is not None:
            problem = f"{hook} raised {loading.describe(exc)}" if hook else loading.describe(exc)
            location = loading.raise_location(exc, packages)
            problem += f" (at {location})" if location else ""
            info.traceback = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        info.error = problem if what == "failed to load" else f"{what}: {problem}"
        self.failures.append(info)
        fix = fix or f"fix or uninstall it, or set {DISABLE_ENV}={info.name}"
        message = f"{info.origin} {what}: {problem}; {fix}"
        if self.strict:
            raise PluginLoadError(message) from exc
        warnings.warn(message, PluginLoadWarning, stacklevel=4)

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
            raise self._duplicate(kind, name, entries)
        return entries[0]

    def duplicates(self) -> list[DuplicateNameError]:
        """Every name registered more than once, as the error a lookup of it would raise."""
        return [
            self._duplicate(kind, name, entries)
            for kind in KINDS
            for name, entries in sorted(self._table[kind].items())
            if len(entries) > 1
        ]

    @staticmethod
    def _duplicate(kind: str, name: str, entries: list[Registration]) -> DuplicateNameError:
        disable = dict.fromkeys(loading.disable_entry(r.plugin) for r in entries if r.plugin.entry_point)
        return DuplicateNameError(kind, name, [r.plugin.label for r in entries], disable=disable)

    def registrations(self) -> list[Registration]:
        """Every registration (duplicates included), by kind then name."""
        return [reg for kind in KINDS for _, regs in sorted(self._table[kind].items()) for reg in regs]

    def _kind(self, kind: str) -> dict[str, list[Registration]]:
        if kind not in self._table:
            raise UnknownNameError("plugin kind", kind, KINDS)
        return self._table[kind]


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


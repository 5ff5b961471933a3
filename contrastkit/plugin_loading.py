"""Plugin-loading diagnostics: which entry points to load, and one clear line per packaging mistake.

:class:`~contrastkit.registry.Registry` calls these while it loads plugins; each returns the text of
one message (no newlines) that the registry prefixes with the plugin, its entry point and its
distribution, then issues as a :class:`~contrastkit.errors.PluginLoadWarning` (or raises, in strict
mode). The mistakes covered:

- a plugin that registers nothing (no ``@contrastkit.hookimpl``, or an entry point naming the wrong
  module): :func:`nothing_registered_problem`;
- a misspelt hook (``register_objective``): :func:`unknown_hook_problems`, with a close match;
- a hook (or the import) that raises: :func:`raise_location` gives the plugin's ``file:line``;
- two distributions declaring the same entry-point name: :func:`clash_problem`, and
  ``CONTRASTKIT_DISABLE_PLUGINS=dist:name`` (:func:`parse_disabled`, :func:`is_disabled`) to pick one;
- a plugin registering a built-in's name without ``override=True``: :func:`shadow_problem`.

Once plugins are loaded, :func:`plugin_at_fault` names the plugin whose component raised during
training (the CLI's heading above the traceback).

Example:
    >>> disabled = parse_disabled("ck-a:sobel, other")
    >>> is_disabled(disabled, "sobel", "ck-a"), is_disabled(disabled, "sobel", "ck-b")
    (True, False)
    >>> unknown_hook_problem("register_critic")
    "unknown hook 'register_critic'; did you mean 'register_critics'?"
"""

from __future__ import annotations

import importlib.metadata
import re
import types
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pluggy

from contrastkit import hookspecs
from contrastkit.errors import close_matches
from contrastkit.slots import BY_KIND, SLOT_TABLE

if TYPE_CHECKING:
    from contrastkit.registry import PluginInfo, Registration, Registry

__all__ = [
    "DISABLE_ENV",
    "HOOKS",
    "STRICT_ENV",
    "clash_fix",
    "clash_problem",
    "describe",
    "disable_entry",
    "entry_points",
    "is_disabled",
    "normalize_distribution",
    "nothing_registered_problem",
    "parse_disabled",
    "plugin_at_fault",
    "plugin_packages",
    "raise_location",
    "shadow_problem",
    "unknown_hook_problem",
    "unknown_hook_problems",
]

STRICT_ENV = "CONTRASTKIT_STRICT_PLUGINS"
DISABLE_ENV = "CONTRASTKIT_DISABLE_PLUGINS"

#: The hook names a plugin may implement, ``register_<kind>``.
HOOKS: tuple[str, ...] = tuple(sorted(slot.hook for slot in SLOT_TABLE))

#: How ``[project.entry-points.contrastkit]`` declares a plugin, for hints.
_ENTRY_POINT_TABLE = f"[project.entry-points.{hookspecs.PROJECT}]"


def normalize_distribution(name: str) -> str:
    """A distribution name as pip compares it (PEP 503): lower case, runs of ``-_.`` become ``-``.

    Example:
        >>> normalize_distribution("Contrastkit_Sobel")
        'contrastkit-sobel'
    """
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_disabled(value: str | Iterable[str]) -> frozenset[str]:
    """The entries of ``CONTRASTKIT_DISABLE_PLUGINS``: ``name`` or ``dist:name``, comma-separated.

    A ``dist:name`` entry has its distribution normalised (:func:`normalize_distribution`).

    Example:
        >>> sorted(parse_disabled(" sobel , CK_B:sobel,,"))
        ['ck-b:sobel', 'sobel']
        >>> sorted(parse_disabled(["a", "ck-a:b"]))
        ['a', 'ck-a:b']
    """
    items = value.split(",") if isinstance(value, str) else value
    out: set[str] = set()
    for item in (i.strip() for i in items):
        if not item:
            continue
        dist, sep, name = item.rpartition(":")
        out.add(f"{normalize_distribution(dist.strip())}:{name.strip()}" if sep and dist.strip() else name.strip())
    return frozenset(out)


def is_disabled(disabled: Iterable[str], name: str, distribution: str | None) -> bool:
    """Whether entry point ``name`` of ``distribution`` is blocked: by ``name`` or by ``dist:name``.

    Example:
        >>> is_disabled({"sobel"}, "sobel", "ck-a"), is_disabled({"ck-a:sobel"}, "sobel", "CK_A")
        (True, True)
    """
    disabled = set(disabled)
    if name in disabled:
        return True
    return distribution is not None and f"{normalize_distribution(distribution)}:{name}" in disabled


def entry_points(disabled: Iterable[str] = ()) -> list[importlib.metadata.EntryPoint]:
    """The ``contrastkit`` entry points to load, in discovery order, less disabled and repeated ones.

    One distribution found twice on ``sys.path`` counts once; two distributions declaring the same
    entry-point name are both returned (the registry reports the clash).

    Example:
        >>> [ep.name for ep in entry_points(disabled={"sobel"})].count("sobel")
        0
    """
    seen: set[tuple[str | None, str, str]] = set()
    found = []
    for ep in importlib.metadata.entry_points(group=hookspecs.PROJECT):
        dist = _distribution_name(ep)
        key = (normalize_distribution(dist) if dist else None, ep.name, ep.value)
        if key in seen or is_disabled(disabled, ep.name, dist):
            continue
        seen.add(key)
        found.append(ep)
    return found


def _distribution_name(ep: importlib.metadata.EntryPoint) -> str | None:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else None


def describe(exc: BaseException) -> str:
    """``Type: first line of the message`` (``SystemExit`` alone when it has no message), on one line.

    pluggy's validation errors keep every line, joined with ``; `` (the later lines say what is wrong).

    Example:
        >>> describe(ValueError("bad\\nmore")), describe(SystemExit())
        ('ValueError: bad', 'SystemExit')
        >>> describe(pluggy.PluginValidationError(None, "hook 'register_critics'\\nArgument(s) {'reg'} ..."))
        "PluginValidationError: hook 'register_critics'; Argument(s) {'reg'} ..."
    """
    try:
        text = str(exc)
    except KeyboardInterrupt:
        raise
    except BaseException:  # noqa: BLE001 - a plugin's exception may not even print
        text = ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = "; ".join(lines) if isinstance(exc, pluggy.PluginValidationError) else next(iter(lines), "")
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def plugin_packages(plugin: object = None, entry_point: str | None = None) -> set[str]:
    """The top-level packages a plugin's code lives in: its module's, its class's, its entry point's.

    Example:
        >>> sorted(plugin_packages(entry_point="sobel = ck_sobel.hooks:plugin"))
        ['ck_sobel']
        >>> import contrastkit.encoders
        >>> sorted(plugin_packages(contrastkit.encoders))
        ['contrastkit']
    """
    names = set()
    if entry_point:
        names.add(entry_point.partition("=")[2].strip().partition(":")[0])
    if isinstance(plugin, types.ModuleType):
        names.add(plugin.__name__)
    elif plugin is not None:
        names.add(str(getattr(type(plugin), "__module__", "") or ""))
        if isinstance(plugin, type):
            names.add(str(getattr(plugin, "__module__", "") or ""))
    return {name.split(".")[0] for name in names if name and name != "builtins"}


def raise_location(exc: BaseException, packages: Iterable[str]) -> str | None:
    """``file:line`` of the innermost traceback frame inside ``packages``; ``None`` if none is.

    A ``SyntaxError`` raised while importing the plugin gives the offending line of its file.

    Example:
        >>> namespace = {"__name__": "ck_where"}
        >>> exec(compile("def hook():\\n    raise RuntimeError('boom')", "ck_where.py", "exec"), namespace)
        >>> try:
        ...     namespace["hook"]()
        ... except RuntimeError as exc:
        ...     print(raise_location(exc, {"ck_where"}))
        ck_where.py:2
    """
    packages = set(packages)
    if isinstance(exc, SyntaxError) and exc.filename and not str(exc.filename).startswith("<"):
        return f"{exc.filename}:{exc.lineno}"
    tb, found = exc.__traceback__, None
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", "") or "")
        if module.split(".")[0] in packages:
            found = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    return found


def unknown_hook_problem(name: str, function: Any = None) -> str:
    """The message for an ``@hookimpl`` function ``name`` that is no hook, with the closest hook name.

    Example:
        >>> unknown_hook_problem("register_objective")
        "unknown hook 'register_objective'; did you mean 'register_objectives'?"
        >>> unknown_hook_problem("setup")  # doctest: +ELLIPSIS
        "unknown hook 'setup'; the hooks are register_augmentations, register_critics, ..."
    """
    code = getattr(function, "__code__", None)
    where = f" (defined at {code.co_filename}:{code.co_firstlineno})" if code is not None else ""
    matches = close_matches(name, HOOKS, n=1)
    hint = f"did you mean {matches[0]!r}?" if matches else "the hooks are " + ", ".join(HOOKS)
    return f"unknown hook {name!r}{where}; {hint}"


def unknown_hook_problems(plugin_manager: pluggy.PluginManager, plugin: object) -> list[str]:
    """One :func:`unknown_hook_problem` per ``@hookimpl`` of ``plugin`` that matches no hook spec.

    Example:
        >>> import types
        >>> from contrastkit.hookspecs import PROJECT, hookimpl
        >>> pm = pluggy.PluginManager(PROJECT); pm.add_hookspecs(hookspecs)
        >>> plugin = types.SimpleNamespace(register_critic=hookimpl(lambda register: None))
        >>> _ = pm.register(plugin)
        >>> [problem.split(";")[1].strip() for problem in unknown_hook_problems(pm, plugin)]
        ["did you mean 'register_critics'?"]
    """
    problems = []
    for name, caller in sorted(vars(plugin_manager.hook).items()):
        if name.startswith("_") or caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            if impl.plugin is plugin and not impl.optionalhook:
                problems.append(unknown_hook_problem(name, impl.function))
    return problems


def nothing_registered_problem(plugin: object, *, entry_point: str | None, hooks_ran: Iterable[str]) -> str:
    """Why ``plugin`` registered nothing, and what to change: decorate its hooks, fix the entry point.

    Example:
        >>> import types
        >>> module = types.ModuleType("ck_empty")
        >>> exec("def register_objectives(register):\\n    pass", module.__dict__)
        >>> print(nothing_registered_problem(module, entry_point="empty = ck_empty", hooks_ran=()))
        module ck_empty has no @contrastkit.hookimpl hook (register_objectives is not decorated); decorate each register_<kind> function with @contrastkit.hookimpl
        >>> print(nothing_registered_problem(types.ModuleType("ck_x.views"), entry_point="x = ck_x.views", hooks_ran=()))
        module ck_x.views has no register_<kind> function; point the entry point at the module that defines the hooks decorated with @contrastkit.hookimpl (x = "module" in [project.entry-points.contrastkit])
    """
    ran = sorted(set(hooks_ran))
    if ran:
        return (f"its hooks ({', '.join(ran)}) ran but never called register(name, factory); "
                "call it once per component")
    what = f"module {plugin.__name__}" if isinstance(plugin, types.ModuleType) else f"{type(plugin).__name__} object"
    undecorated = sorted(n for n in dir(plugin) if n.startswith("register_") and callable(getattr(plugin, n, None)))
    if undecorated:
        typos = {n: close_matches(n, HOOKS, n=1) for n in undecorated if n not in HOOKS}
        notes = [f"{n} is not decorated" for n in undecorated if n in HOOKS]
        notes += [f"{n} is no hook" + (f", did you mean {m[0]!r}?" if m else "") for n, m in typos.items()]
        return (f"{what} has no @contrastkit.hookimpl hook ({'; '.join(notes)}); "
                "decorate each register_<kind> function with @contrastkit.hookimpl")
    target = "point the entry point at the module that defines the hooks decorated with @contrastkit.hookimpl"
    if entry_point:
        name = entry_point.partition("=")[0].strip()
        return f'{what} has no register_<kind> function; {target} ({name} = "module" in {_ENTRY_POINT_TABLE})'
    return f"{what} has no register_<kind> function decorated with @contrastkit.hookimpl"


def shadow_problem(origin: str, kind: str, name: str) -> str:
    """The message refusing a plugin's registration of a built-in name (``origin`` names the plugin).

    Example:
        >>> print(shadow_problem("plugin 'x' (entry point 'x = ck_x', distribution ck-x 1.0)", "objectives", "infonce"))
        plugin 'x' (entry point 'x = ck_x', distribution ck-x 1.0) registers objectives 'infonce', a built-in name: refused, the built-in stays; rename it, or replace the built-in on purpose with register('infonce', factory, override=True)
    """
    return (f"{origin} registers {kind} {name!r}, a built-in name: refused, the built-in stays; rename it, "
            f"or replace the built-in on purpose with register({name!r}, factory, override=True)")


def disable_entry(info: PluginInfo) -> str:
    """What ``CONTRASTKIT_DISABLE_PLUGINS`` takes to block just this plugin: ``dist:name``, else ``name``.

    Example:
        >>> from contrastkit.registry import PluginInfo
        >>> disable_entry(PluginInfo(name="sobel", distribution="CK_A", version="1", entry_point="sobel = ck_a"))
        'ck-a:sobel'
    """
    if info.entry_point and info.distribution:
        return f"{normalize_distribution(info.distribution)}:{info.name}"
    return info.name


def _declared(info: PluginInfo) -> str:
    return f"{info.distribution or '?'} {info.version or '?'} ({info.entry_point or 'built in'})"


def clash_problem(first: PluginInfo, second: PluginInfo) -> str:
    """The message for one entry-point name declared by two distributions; ``first`` loads, ``second`` not.

    Example:
        >>> from contrastkit.registry import PluginInfo
        >>> a = PluginInfo(name="sobel", distribution="ck-a", version="1.0", entry_point="sobel = ck_a")
        >>> b = PluginInfo(name="sobel", distribution="ck-b", version="2.0", entry_point="sobel = ck_b")
        >>> print(clash_problem(a, b))
        entry-point name 'sobel' is declared by two distributions, ck-a 1.0 (sobel = ck_a) and ck-b 2.0 (sobel = ck_b); only the first loads
    """
    return (f"entry-point name {second.name!r} is declared by two distributions, {_declared(first)} and "
            f"{_declared(second)}; only the first loads")


def clash_fix(first: PluginInfo, second: PluginInfo) -> str:
    """How to resolve :func:`clash_problem`: which ``dist:name`` to disable to keep either one.

    When ``first`` is contrastkit's built-in plugin, its name is reserved: rename the entry point.

    Example:
        >>> from contrastkit.registry import PluginInfo
        >>> a = PluginInfo(name="sobel", distribution="ck-a", version="1.0", entry_point="sobel = ck_a")
        >>> b = PluginInfo(name="sobel", distribution="ck-b", version="2.0", entry_point="sobel = ck_b")
        >>> print(clash_fix(a, b))
        uninstall one, or set CONTRASTKIT_DISABLE_PLUGINS=ck-b:sobel (keeps ck-a) or =ck-a:sobel (keeps ck-b)
    """
    if not first.entry_point:
        return (f"{first.name!r} is reserved for the built-ins: rename the entry point, or set "
                f"{DISABLE_ENV}={disable_entry(second)}")
    keep_second = f" or ={disable_entry(first)} (keeps {second.distribution})"
    return f"uninstall one, or set {DISABLE_ENV}={disable_entry(second)} (keeps {first.distribution}){keep_second}"


def plugin_at_fault(exc: BaseException, registry: Registry) -> str | None:
    """One line naming the plugin whose code raised ``exc`` and the slot it fills, or ``None``.

    The innermost traceback frame inside the top-level package of a registered factory decides.
    Built-in components are contrastkit's own code and are not blamed (``None``: a bare traceback).

    Example:
        >>> import sys, types
        >>> from contrastkit.hookspecs import hookimpl
        >>> module = types.ModuleType("ck_fault_example")
        >>> exec("def broken(): return 1 / 0", module.__dict__)
        >>> from contrastkit.registry import Registry
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
    slot = BY_KIND[found.kind]
    return (f"plugin {found.plugin.label} raised {describe(exc)}, in the {slot.noun} {found.name!r} it registers "
            f"([{slot.table}] table); its traceback follows")

"""Build a component from a plugin table: check its keys against the factory's signature, then call it.

The factory's keyword arguments are the table's keys (all but ``name``). Unknown keys (with close
matches), missing required keys, wrong types (checked against the factory's annotations with the
strict converter) and :class:`~contrastkit.errors.InvalidParameter` raised by the factory all become
one-line :class:`~contrastkit.errors.ConfigError` messages naming ``table.key``.

Example:
    >>> from contrastkit.registry import get_registry
    >>> critic = build_component(get_registry(), "critics", {"name": "cosine", "temperature": 0.2},
    ...                          table="critic", injected={"feature_dims": (8, 8)})
    >>> critic.temperature
    0.2
    >>> build_component(get_registry(), "critics", {"name": "cosine", "temprature": 0.2},
    ...                 table="critic", injected={"feature_dims": (8, 8)})
    Traceback (most recent call last):
    ...
    contrastkit.errors.ConfigError: critic.temprature: unknown parameter of critics 'cosine'; did you mean 'temperature'?
"""

from __future__ import annotations

import contextlib
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any

from contrastkit.config import PluginTable, structure_value
from contrastkit.errors import ConfigError, ContrastkitError, InvalidParameter, close_matches
from contrastkit.registry import INJECTED, Registration, Registry

__all__ = ["build_component", "factory_parameters", "resolve", "split_spec", "validate_params"]


def split_spec(spec: Any, table: str) -> tuple[str, dict[str, Any]] | None:
    """``(name, params)`` for a name, dict or :class:`PluginTable`; ``None`` for a ready instance.

    Example:
        >>> split_spec({"name": "cosine", "temperature": 0.1}, "critic")
        ('cosine', {'temperature': 0.1})
        >>> split_spec("in-batch", "negatives")
        ('in-batch', {})
    """
    if isinstance(spec, PluginTable):
        return spec.name, dict(spec.params)
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, Mapping):
        if not isinstance(spec.get("name"), str):
            raise ConfigError(f"{table}.name: required key is missing (the registered plugin name)")
        return spec["name"], {k: v for k, v in spec.items() if k != "name"}
    return None


def factory_parameters(factory: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    """The keyword parameters of a factory (a class's ``__init__`` or a function).

    Example:
        >>> def make(*, width: int = 8, depth: int = 2): ...
        >>> list(factory_parameters(make))
        ['width', 'depth']
    """
    return dict(inspect.signature(factory).parameters)


def _hints(factory: Callable[..., Any]) -> dict[str, Any]:
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        return typing.get_type_hints(target)
    except Exception:  # noqa: BLE001 - unresolvable annotations are not type-checked
        return {}


def validate_params(
    factory: Callable[..., Any],
    params: Mapping[str, Any],
    *,
    kind: str,
    name: str,
    table: str,
    injected: Mapping[str, Any],
) -> dict[str, Any]:
    """Check ``params`` against ``factory``'s signature; return the keyword arguments to call it with.

    Example:
        >>> from contrastkit.encoders.convnet import ConvNetEncoder
        >>> validate_params(ConvNetEncoder, {"width": 8}, kind="encoders", name="convnet",
        ...                 table="encoder", injected={"in_channels": 3})
        {'width': 8, 'in_channels': 3}
    """
    parameters = factory_parameters(factory)
    open_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    settable = [n for n in parameters if n not in INJECTED[kind]]
    hints = _hints(factory)
    kwargs: dict[str, Any] = {}
    for key, value in params.items():
        if key in INJECTED[kind]:
            raise ConfigError(f"{table}.{key}: set by contrastkit from the pipeline, not by the recipe; remove it")
        if key not in parameters and not open_kwargs:
            matches = close_matches(key, settable)
            hint = f"did you mean {matches[0]!r}?" if matches else "parameters: " + (", ".join(settable) or "none")
            raise ConfigError(f"{table}.{key}: unknown parameter of {kind} {name!r}; {hint}")
        hint_type = hints.get(key)
        kwargs[key] = structure_value(value, hint_type, f"{table}.{key}") if hint_type is not None else value
    for arg, value in injected.items():
        if arg not in parameters and not open_kwargs:
            raise ConfigError(
                f"{table}: {kind} {name!r} does not accept {arg!r}, which contrastkit passes to every "
                f"{kind} factory; its plugin must add that keyword argument"
            )
        kwargs[arg] = value
    for arg, p in parameters.items():
        if p.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL):
            continue
        if arg not in kwargs and p.default is inspect.Parameter.empty:
            raise ConfigError(f"{table}.{arg}: required parameter of {kind} {name!r} is missing")
    return kwargs


def resolve(registry: Registry, kind: str, name: str, *, table: str) -> Registration:
    """The registration of ``name``; an unknown or ambiguous name is a one-line ``table.name`` error.

    Example:
        >>> from contrastkit.registry import get_registry
        >>> resolve(get_registry(), "critics", "cosine", table="critic").factory.__name__
        'CosineCritic'
        >>> resolve(get_registry(), "critics", "cosin", table="critic")
        Traceback (most recent call last):
        ...
        contrastkit.errors.ConfigError: critic.name: unknown critics name 'cosin'; did you mean 'cosine'? (run `contrastkit plugins` to list every name)
    """
    try:
        return registry.get(kind, name)
    except ContrastkitError as exc:  # UnknownNameError, DuplicateNameError
        raise ConfigError(f"{table}.name: {exc}") from None


def build_component(
    registry: Registry,
    kind: str,
    spec: Any,
    *,
    table: str,
    injected: Mapping[str, Any] | None = None,
) -> Any:
    """Build ``spec`` (a name, a dict with ``name``, a :class:`PluginTable` or an instance) as ``kind``.

    An instance is returned as is. The built object gets ``registered_name`` so messages can name it.

    Example:
        >>> from contrastkit.registry import get_registry
        >>> build_component(get_registry(), "objectives", "infonce", table="objective").registered_name
        'infonce'
    """
    injected = dict(injected or {})
    split = split_spec(spec, table)
    if split is None:
        return spec
    name, params = split
    registration = resolve(registry, kind, name, table=table)
    kwargs = validate_params(registration.factory, params, kind=kind, name=name, table=table, injected=injected)
    try:
        component = registration.factory(**kwargs)
    except InvalidParameter as exc:
        got = "" if exc.got is ... else f" (got {exc.got!r})"
        raise ConfigError(f"{table}.{exc.parameter}: {exc.problem}{got}") from None
    except ContrastkitError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{table}: {kind} {name!r} rejected its parameters: {exc}") from None
    with contextlib.suppress(AttributeError, TypeError):  # frozen or slotted objects: messages fall back to the class
        component.registered_name = name
    return component

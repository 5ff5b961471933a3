"""The strict cattrs converter of recipes, and the rewriting of its errors into one line.

No silent coercion: ``"4"`` is not an int, ``2.5`` is not an int and ``true`` is not an int; literals
must match exactly; unknown keys are rejected (``forbid_extra_keys``). A nested cattrs error becomes
one ``table.key: problem (got X)`` line naming the first problem's dotted key (:func:`first_problem`).

Example:
    >>> structure_value(["a", "b"], list[str], "eval.labels")
    ['a', 'b']
    >>> structure_value(2.5, int, "train.epochs")
    Traceback (most recent call last):
    ...
    contrastkit.errors.ConfigError: train.epochs: expected an integer (got 2.5)
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError

from contrastkit.config.schema import Config, PluginTable
from contrastkit.errors import ConfigError, InvalidParameter, close_matches

__all__ = ["converter", "first_problem", "structure_value"]


class _Problem(Exception):
    """A leaf structuring failure; the walker prefixes the dotted key."""

    def __init__(self, problem: str, got: Any, where: str = "") -> None:
        self.problem, self.got, self.where = problem, got, where  # where: "[1][0]" inside a list
        super().__init__(f"{problem} (got {got!r})")


def _strict_int(value: Any, _: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Problem("expected an integer", value)
    return value


def _strict_float(value: Any, _: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Problem("expected a number", value)
    return float(value)


def _strict_bool(value: Any, _: Any) -> bool:
    if not isinstance(value, bool):
        raise _Problem("expected true or false", value)
    return value


def _strict_str(value: Any, _: Any) -> str:
    if not isinstance(value, str):
        raise _Problem("expected a string", value)
    return value


def _structure_literal(value: Any, tp: Any) -> Any:
    choices = typing.get_args(tp)
    if value not in choices or type(value) is not type(choices[0]):
        raise _Problem("must be one of " + ", ".join(repr(c) for c in choices), value)
    return value


def _structure_sequence(value: Any, tp: Any) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if not isinstance(value, (list, tuple)):
        raise _Problem("expected a list", value)
    if origin is tuple and args and args[-1] is not Ellipsis:
        if len(args) != len(value):
            raise _Problem(f"expected a list of {len(args)} items", value)
        item_types = list(args)
    else:
        item_types = [args[0] if args else Any] * len(value)
    items = []
    for i, (v, item_type) in enumerate(zip(value, item_types)):
        try:
            items.append(converter.structure(v, item_type))
        except _Problem as exc:
            raise _Problem(exc.problem, exc.got, f"[{i}]{exc.where}") from None
    return tuple(items) if origin is tuple else items


def _structure_plugin_table(value: Any, _: Any) -> PluginTable:
    if isinstance(value, str):  # shorthand: views = "color-split"
        return PluginTable(value)
    if not isinstance(value, Mapping):
        raise _Problem("expected a table with a name, e.g. {name = \"...\"}", value)
    if "name" not in value:
        raise _Problem("missing key 'name' (the registered plugin name)", dict(value))
    name = value["name"]
    if not isinstance(name, str) or not name:
        raise _Problem("'name' must be a non-empty string", name)
    return PluginTable(name, {k: v for k, v in value.items() if k != "name"})


def _structure_tables(value: Any, _: Any) -> PluginTable | list[PluginTable]:
    """One table for every view, or a list (``[[augment]]``) with one table per view."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise _Problem("expected at least one table", value)
        tables = []
        for i, item in enumerate(value):
            try:
                tables.append(_structure_plugin_table(item, PluginTable))
            except _Problem as exc:
                raise _Problem(exc.problem, exc.got, f"[{i}]{exc.where}") from None
        return tables
    return _structure_plugin_table(value, PluginTable)


def _is_tables_union(tp: Any) -> bool:
    args = typing.get_args(tp)
    return PluginTable in args and list[PluginTable] in args


def _structure_any(value: Any, _: Any) -> Any:
    return value


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True)
    conv.register_structure_hook(int, _strict_int)
    conv.register_structure_hook(float, _strict_float)
    conv.register_structure_hook(bool, _strict_bool)
    conv.register_structure_hook(str, _strict_str)
    conv.register_structure_hook(PluginTable, _structure_plugin_table)
    conv.register_unstructure_hook(PluginTable, PluginTable.as_dict)
    conv.register_structure_hook_func(lambda t: t is Any, _structure_any)
    conv.register_structure_hook_func(_is_tables_union, _structure_tables)
    conv.register_unstructure_hook_func(
        _is_tables_union, lambda v: [t.as_dict() for t in v] if isinstance(v, list) else v.as_dict()
    )
    conv.register_structure_hook_func(lambda t: typing.get_origin(t) is Literal, _structure_literal)
    conv.register_structure_hook_func(
        lambda t: typing.get_origin(t) in (list, tuple, Sequence, typing.Sequence)
        or t in (list, tuple),
        _structure_sequence,
    )
    return conv


#: The strict converter: no extra keys, no silent ``"3" -> 3`` or ``1.5 -> 1`` coercions.
converter = _make_converter()


def _attribute_of(exc: BaseException) -> str | None:
    for note in getattr(exc, "__notes__", ()):
        name = getattr(note, "name", None)
        if name is not None:
            return str(name)
        index = getattr(note, "index", None)
        if index is not None:
            return f"[{index}]"
    return None


def _join(path: str, part: str | None) -> str:
    if not part:
        return path
    if part.startswith("["):
        return path + part
    return f"{path}.{part}" if path else part


def first_problem(exc: BaseException, path: str = "") -> str:
    """Turn a (nested) cattrs error into one ``key: problem (got X)`` line, prefixed with ``path``.

    Example:
        >>> try:
        ...     converter.structure({"train": {"lr": "x"}}, Config)
        ... except Exception as exc:
        ...     print(first_problem(exc))
        train.lr: expected a number (got 'x')
    """
    if isinstance(exc, (ClassValidationError, IterableValidationError)):
        for sub in exc.exceptions:
            return first_problem(sub, _join(path, _attribute_of(sub)))
    if isinstance(exc, ForbiddenExtraKeysError):
        valid = [a.name for a in attrs.fields(exc.cl)]
        extra = sorted(exc.extra_fields)[0]
        where = _join(path, extra)
        matches = close_matches(extra, valid)
        listed = [v for v in valid if not (exc.cl is Config and v == "stages")]  # the tables; [[stages]] is matched only
        hint = f"did you mean {matches[0]!r}?" if matches else "valid keys: " + ", ".join(listed)
        what = "unknown table" if not path else "unknown key"
        return f"{where}: {what}; {hint}"
    if isinstance(exc, InvalidParameter):
        return _join(path, exc.parameter) + ": " + str(exc).split(": ", 1)[1]
    if isinstance(exc, _Problem):
        return f"{path}{exc.where}: {exc}"
    if isinstance(exc, KeyError):
        return f"{_join(path, str(exc.args[0]) if exc.args else None)}: required key is missing"
    return f"{path}: {exc}"


def structure_value(value: Any, tp: Any, key: str) -> Any:
    """Structure one value into type ``tp`` with the strict converter; errors name ``key``.

    Example:
        >>> structure_value([1, 2], tuple[int, ...], "encoder.widths")
        (1, 2)
        >>> structure_value("x", int, "encoder.width")
        Traceback (most recent call last):
        ...
        contrastkit.errors.ConfigError: encoder.width: expected an integer (got 'x')
    """
    try:
        return converter.structure(value, tp)
    except Exception as exc:  # noqa: BLE001 - every structuring failure becomes one line
        raise ConfigError(first_problem(exc, key)) from None

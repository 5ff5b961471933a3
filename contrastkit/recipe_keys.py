"""Dotted recipe keys: flatten nested tables to ``table.key`` and set a dotted key in a raw recipe.

A recipe is nested TOML tables; overrides (``--set``), stage ``set`` tables, sweeps, experiments and the
resume check all speak of its settings as dotted keys. These two functions are the one place that
translates between the two forms.

Example:
    >>> flatten_keys({"train": {"lr": 0.1, "seed": 0}, "views": "color-split"})
    {'train.lr': 0.1, 'train.seed': 0, 'views': 'color-split'}
    >>> with_key({"train": {"lr": 0.1}}, "train.lr", 0.5)
    {'train': {'lr': 0.5}}
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

__all__ = ["NotATableError", "flatten_keys", "with_key"]


class NotATableError(ValueError):
    """A dotted key runs through a value that is not a table (``train.lr.x`` where ``train.lr = 0.1``).

    Example:
        >>> with_key({"train": {"lr": 0.1}}, "train.lr.x", 1)
        Traceback (most recent call last):
        ...
        contrastkit.recipe_keys.NotATableError: train.lr is a value, not a table
    """


def flatten_keys(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"views": {"mode": 1}}`` and ``{"views.mode": 1}`` -> ``{"views.mode": 1}`` (TOML allows both).

    An empty table stays a value of its own key.

    Example:
        >>> flatten_keys({"a": {"b": {"c": 1}, "d": {}}})
        {'a.b.c': 1, 'a.d': {}}
    """
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, Mapping) and value:
            flat.update(flatten_keys(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def with_key(raw: Mapping[str, Any], key: str, value: Any, *, name_tables: Collection[str] = ()) -> dict[str, Any]:
    """A copy of ``raw`` with dotted ``key`` set to ``value``; tables along the way are copied, not shared.

    Missing tables are created. A top-level table in ``name_tables`` given as a bare string (the
    shorthand ``views = "color-split"``) becomes ``{"name": ...}`` so that ``views.space`` can be set
    beside it. A key through any other value raises :class:`NotATableError`.

    Example:
        >>> with_key({"views": "color-split"}, "views.space", "lab", name_tables={"views"})
        {'views': {'name': 'color-split', 'space': 'lab'}}
        >>> with_key({}, "log.progress", False)
        {'log': {'progress': False}}
    """
    result: dict[str, Any] = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in raw.items()}
    *parents, leaf = key.split(".")
    node = result
    for depth, part in enumerate(parents):
        child = node.setdefault(part, {})
        if depth == 0 and part in name_tables and isinstance(child, str):
            child = {"name": child}
        if not isinstance(child, Mapping):
            raise NotATableError(f"{'.'.join(parents[: depth + 1])} is a value, not a table")
        node[part] = child = dict(child)
        node = child
    node[leaf] = value
    return result

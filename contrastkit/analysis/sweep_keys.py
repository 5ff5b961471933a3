"""The recipe key of a sweep: parse ``--sweep KEY=V1,V2,...`` and check that the recipe has the key.

Example:
    >>> parse_sweep("critic.temperature=0.1,0.2")
    ('critic.temperature', ['0.1', '0.2'])
    >>> check_sweep_key("critic.temperature", {"critic": {"name": "cosine"}})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from contrastkit.config import Config, PluginTable
from contrastkit.errors import ConfigError, close_matches
from contrastkit.recipe_keys import flatten_keys

__all__ = ["check_sweep_key", "known_recipe_keys", "parse_sweep"]


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets and quotes, so ``["digit","position"],["digit"]`` is two values."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def parse_sweep(spec: str) -> tuple[str, list[str]]:
    """``KEY=V1,V2,...`` -> ``(KEY, [V1, V2, ...])``; each value is later applied like ``--set KEY=V``.

    Example:
        >>> parse_sweep('views.share=["digit"],["digit","position"]')
        ('views.share', ['["digit"]', '["digit","position"]'])
        >>> parse_sweep("train.lr=0.1")
        Traceback (most recent call last):
        ...
        contrastkit.errors.ConfigError: --sweep 'train.lr=0.1': give at least 2 values, e.g. --sweep train.lr=0.1,0.01
    """
    key, sep, text = spec.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--sweep {spec!r}: expected KEY=V1,V2,..., e.g. --sweep augment.strength=0.5,1,2")
    values = [v for v in _split_top_level(text) if v]
    if len(values) < 2:
        raise ConfigError(f"--sweep {spec!r}: give at least 2 values, e.g. --sweep {key}=0.1,0.01")
    return key, values


def known_recipe_keys(raw: Mapping[str, Any]) -> set[str]:
    """Every dotted key a sweep may set: the recipe's own keys, every ``[train]``/``[eval]``/``[log]`` field,
    and each plugin table's ``name`` plus its plugin's parameters (injected ones excluded).

    Example:
        >>> keys = known_recipe_keys({"views": {"name": "factor-pair"}})
        >>> {"train.lr", "views.share", "critic.temperature", "views.name"} <= keys, "views.sharee" in keys
        (True, False)
    """
    from contrastkit.config import config_from_dict
    from contrastkit.factories import factory_parameters
    from contrastkit.registry import INJECTED, SLOTS, get_registry

    config = config_from_dict(raw)
    keys = set(flatten_keys(raw))
    registry = get_registry()
    for field in attrs.fields(Config):
        default_type = type(field.default)
        if field.name not in SLOTS and attrs.has(default_type):  # [train], [eval], [log]
            keys |= {f"{field.name}.{sub.name}" for sub in attrs.fields(default_type)}
        if field.name not in SLOTS:
            continue
        kind = SLOTS[field.name]
        table = getattr(config, field.name)
        keys.add(f"{field.name}.name")
        if not isinstance(table, PluginTable):  # [[augment]] / [[encoder]]: per-view tables, not a dotted key
            continue
        if field.name == "encoder":
            keys.add("encoder.shared")
        try:
            params = factory_parameters(registry.get(kind, table.name).factory)
        except Exception:  # noqa: BLE001 - an unknown plugin name is reported when the pipeline is built
            continue
        keys |= {f"{field.name}.{p}" for p in params if p not in INJECTED[kind] and p != "self"}
    return keys


def check_sweep_key(key: str, raw: Mapping[str, Any]) -> None:
    """A one-line :class:`ConfigError` naming ``key`` with close matches when the recipe has no such key.

    Example:
        >>> check_sweep_key("augment.strenght", {"augment": {"name": "simclr"}})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        contrastkit.errors.ConfigError: --sweep: unknown recipe key 'augment.strenght'; did you mean 'augment.strength' ...
    """
    known = known_recipe_keys(raw)
    if key in known:
        return
    section = key.split(".", 1)[0]
    matches = close_matches(key, sorted(known))
    if matches:
        hint = "did you mean " + " or ".join(repr(m) for m in matches) + "?"
    else:
        same = sorted(k for k in known if k.startswith(section + "."))
        hint = f"keys of [{section}]: {', '.join(same)}" if same else "see docs/config.md for the recipe keys"
    raise ConfigError(f"--sweep: unknown recipe key {key!r}; {hint}")


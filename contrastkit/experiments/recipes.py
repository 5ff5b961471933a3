"""Recipes as the experiments write them: dotted keys set in a raw recipe, one seed's recipe of an arm, as TOML.

A recipe here is plain data (tables of scalars and lists, ``stages`` as a list of tables), the same
that ``contrastkit train`` reads from a TOML file; :func:`arm_recipe` turns an arm's recipe into the
one a seed runs, and :func:`recipe_toml` writes it as the ``recipe.toml`` beside the run.

Example:
    >>> raw = {"train": {"max_steps": 900}}
    >>> set_key(raw, "train.seed", 1)
    >>> print(recipe_toml(raw))
    [train]
    max_steps = 900
    seed = 1
    <BLANKLINE>
"""

from __future__ import annotations

import copy
import json
import numbers
from collections.abc import Mapping
from typing import Any

from contrastkit.errors import ConfigError
from contrastkit.experiments.settings import QUICK_SETTINGS, RunSettings
from contrastkit.recipe_keys import NotATableError, with_key

__all__ = ["apply_quick_settings", "arm_recipe", "recipe_toml", "set_key"]


def set_key(raw: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``table.key`` (any depth) in a raw recipe, in place, creating tables on the way.

    Example:
        >>> r = {"train": {"lr": 0.1}}
        >>> set_key(r, "train.lr", 0.5); set_key(r, "views.share", ["digit"]); r
        {'train': {'lr': 0.5}, 'views': {'share': ['digit']}}
    """
    try:
        raw.update(with_key(raw, dotted, value))
    except NotATableError:
        node: Any = raw
        for table in dotted.split(".")[:-1]:  # the first value on the way is what with_key refused
            node = node.get(table, {})
            if not isinstance(node, Mapping):
                raise ConfigError(
                    f"experiment: {dotted}: {table!r} holds {node!r}, not a table; remove it or set a key beside it"
                ) from None
        raise


def _toml_key(key: Any) -> str:
    """A bare key when TOML allows one, else a quoted key (a dot would otherwise nest a table)."""
    text = str(key)
    return text if text and all(c.isalnum() or c in "_-" for c in text) and text.isascii() else json.dumps(text)


def _toml_value(value: Any, key: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return repr(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))  # numpy scalars repr as np.float64(...), which TOML cannot read
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")  # a JSON string is a TOML one
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v, key) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v, f'{key}.{k}')}" for k, v in value.items()) + " }"
    raise ConfigError(
        f"experiment: {key}: TOML cannot hold {value!r} ({type(value).__name__}); "
        "give a bool, number, string, list or table, or leave the key out"
    )


def recipe_toml(raw: Mapping[str, Any]) -> str:
    """A recipe (plain data: tables of scalars and lists, ``stages`` as an array of tables) as TOML text.

    Example:
        >>> print(recipe_toml({"data": {"name": "colorful-moving-digits", "size": 64},
        ...                    "views": {"name": "factor-pair", "share": ["digit"]}}))
        [data]
        name = "colorful-moving-digits"
        size = 64
        <BLANKLINE>
        [views]
        name = "factor-pair"
        share = ["digit"]
        <BLANKLINE>
    """
    lines: list[str] = []
    for table, body in raw.items():
        if table == "stages":
            continue
        if not isinstance(body, Mapping):
            raise ConfigError(f"experiment: recipe table {table!r} must be a table (got {body!r})")
        lines.append(f"[{table}]")
        lines += [f"{_toml_key(key)} = {_toml_value(value, f'{table}.{key}')}" for key, value in body.items()]
        lines.append("")
    for index, stage in enumerate(raw.get("stages", ())):
        lines.append("[[stages]]")
        lines += [f"{_toml_key(key)} = {_toml_value(value, f'stages[{index}].{key}')}" for key, value in stage.items()]
        lines.append("")
    return "\n".join(lines)


def apply_quick_settings(raw: dict[str, Any]) -> None:
    """Shrink a raw recipe in place to :data:`QUICK_SETTINGS` (stages keep no ``train.*`` of their own).

    Example:
        >>> r = {"train": {"max_steps": 900}, "stages": [{"name": "a", "set": {"train.epochs": 5, "views.mode": "x"}}]}
        >>> apply_quick_settings(r); r["train"]["max_steps"], r["stages"][0]["set"]
        (2, {'views.mode': 'x'})
    """
    for dotted, value in QUICK_SETTINGS.items():
        set_key(raw, dotted, value)
    for stage in raw.get("stages", ()):  # a stage's own schedule would undo the smoke run's
        stage["set"] = {k: v for k, v in stage.get("set", {}).items() if not k.startswith("train.")}


def arm_recipe(name: str, recipe: Mapping[str, Any], settings: RunSettings, *, seed: int,
               stages: bool = True) -> dict[str, Any]:
    """The recipe one seed of an arm runs: a copy of ``recipe`` (``stages`` dropped unless ``stages``), shrunk
    by ``quick``, with ``train.seed = seed``, run in its folder on ``settings.device`` without a progress bar.

    Example:
        >>> from pathlib import Path
        >>> r = arm_recipe("a", {"train": {"max_steps": 900}}, RunSettings(out_dir=Path("runs/x"), quick=True,
        ...                device="cpu"), seed=2)
        >>> r["train"]["max_steps"], r["train"]["seed"], r["train"]["out_dir"], r["log"]["progress"]
        (2, 2, 'runs/x/a/seed=2', False)
    """
    raw = copy.deepcopy(dict(recipe))
    if not stages:
        raw.pop("stages", None)
    if settings.quick:
        apply_quick_settings(raw)
    set_key(raw, "train.seed", seed)
    set_key(raw, "train.out_dir", settings.arm_dir(name, seed).as_posix())
    set_key(raw, "train.device", settings.device)
    set_key(raw, "log.progress", False)
    return raw

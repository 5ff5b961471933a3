"""The docs stay in step with the code: config fields, built-in plugin parameters, hooks, examples.

Conventions the checks rely on (see ``docs/config.md``):

- ``[train]``, ``[eval]`` and ``[log]`` each have a ``## `[table]` `` section whose table rows start
  with the key in backticks: ``| `epochs` | int | ...``.
- Each plugin table has a ``## `[table]`: ...`` section. Each built-in plugin has a
  ``### `name` `` subsection whose rows start with the parameter in backticks:
  ``| `temperature` | float | ...``. Injected arguments are not rows.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import attrs
import pytest

import contrastkit
from contrastkit import hookspecs
from contrastkit.config import EvalConfig, LogConfig, TrainConfig
from contrastkit.factories import factory_parameters
from contrastkit.registry import INJECTED, SLOTS

DOCS = Path(__file__).resolve().parents[1] / "docs"
CONFIG_MD = DOCS / "config.md"
PLUGINS_MD = DOCS / "plugins.md"

_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|", re.M)


def _sections(text: str, level: int) -> list[tuple[str, str]]:
    """``(heading, body)`` for every heading of exactly ``level`` (``##`` = 2), bodies up to the next one.

    Fenced code blocks are ignored, so ``# comments`` inside them are not headings.
    """
    prefix = "#" * level + " "
    sections: list[tuple[str, list[str]]] = []
    in_code = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
        if not in_code and line.startswith("#"):
            hashes = len(line) - len(line.lstrip("#"))
            if hashes <= level:
                sections.append((line[len(prefix) :].strip() if line.startswith(prefix) else "", []))
                continue
        if sections:
            sections[-1][1].append(line)
    return [(heading, "\n".join(body)) for heading, body in sections if heading]


def _section(text: str, level: int, marker: str) -> str:
    """The body of the one heading of ``level`` that contains ``marker``; fails if none or several."""
    found = [body for heading, body in _sections(text, level) if marker in heading]
    assert len(found) == 1, f"expected exactly one {'#' * level} heading containing {marker!r}, found {len(found)}"
    return found[0]


def _rows(body: str) -> set[str]:
    """The backticked names that start table rows (``| `name` | ...``), header rows excluded."""
    return set(_ROW.findall(body))


@pytest.fixture(scope="module")
def config_md() -> str:
    assert CONFIG_MD.is_file(), f"{CONFIG_MD} is missing"
    return CONFIG_MD.read_text()


# -- (a) every field of [train], [eval], [log] ---------------------------------------------------
FIXED_TABLES = [("train", TrainConfig), ("eval", EvalConfig), ("log", LogConfig)]


@pytest.mark.parametrize(("table", "cls"), FIXED_TABLES, ids=[t for t, _ in FIXED_TABLES])
def test_every_config_field_is_documented(config_md: str, table: str, cls: type) -> None:
    body = _section(config_md, 2, f"`[{table}]`")
    documented = _rows(body)
    fields = {f.name for f in attrs.fields(cls)}
    missing = sorted(fields - documented)
    stale = sorted(documented - fields)
    assert not missing, f"docs/config.md, section [{table}]: no row for {missing}; add one: | `key` | type | default | constraint | meaning |"
    assert not stale, f"docs/config.md, section [{table}]: rows for keys {cls.__name__} does not have: {stale}"


# -- (b) every parameter of every built-in plugin -------------------------------------------------
TABLE_OF_KIND = {kind: table for table, kind in SLOTS.items()}
BUILTINS = [reg for reg in contrastkit.get_registry().registrations() if reg.plugin.name == "contrastkit"]


def _settable(reg) -> set[str]:
    return {
        name
        for name, p in factory_parameters(reg.factory).items()
        if name not in INJECTED[reg.kind] and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }


def test_there_are_builtins() -> None:
    assert {reg.kind for reg in BUILTINS} == set(INJECTED), "every kind should have a built-in"


@pytest.mark.parametrize("reg", BUILTINS, ids=[f"{r.kind}:{r.name}" for r in BUILTINS])
def test_every_builtin_parameter_is_documented(config_md: str, reg) -> None:
    table = TABLE_OF_KIND[reg.kind]
    table_body = _section(config_md, 2, f"`[{table}]`")
    plugin_body = _section(table_body, 3, f"`{reg.name}`")
    documented = _rows(plugin_body)
    params = _settable(reg)
    missing = sorted(params - documented)
    stale = sorted(documented - params)
    assert not missing, f"docs/config.md, [{table}] -> {reg.name}: parameters without a row: {missing}"
    assert not stale, f"docs/config.md, [{table}] -> {reg.name}: rows that are not parameters: {stale}"
    for injected in INJECTED[reg.kind]:
        assert f"`{injected}`" in table_body, f"docs/config.md, [{table}]: injected argument {injected!r} not mentioned"


# -- (c) every hook has a docstring and is in the plugin guide -------------------------------------
HOOKS = sorted(name for name, obj in vars(hookspecs).items() if name.startswith("register_") and inspect.isfunction(obj))


def test_there_are_hooks() -> None:
    assert len(HOOKS) == len(INJECTED), f"expected one register_<kind> hook per kind, found {HOOKS}"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented(hook: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, hook))
    assert doc, f"contrastkit.hookspecs.{hook} has no docstring"
    assert PLUGINS_MD.is_file(), f"{PLUGINS_MD} is missing: the plugin authoring guide must document every hook"
    assert hook in PLUGINS_MD.read_text(), f"docs/plugins.md does not mention {hook}"


# -- (d) every public function and class has an example --------------------------------------------
MODULES = sorted(m.name for m in pkgutil.walk_packages(contrastkit.__path__, "contrastkit."))


def _public(module) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_")]
    result = []
    for name in names:
        obj = getattr(module, name, None)
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and getattr(obj, "__module__", None) == module.__name__:
            result.append(name)
    return result


@pytest.mark.parametrize("module_name", MODULES)
def test_public_names_have_examples(module_name: str) -> None:
    module = importlib.import_module(module_name)
    lacking = [name for name in _public(module) if ">>>" not in (inspect.getdoc(getattr(module, name)) or "")]
    assert not lacking, f"{module_name}: public names whose docstring has no >>> example: {', '.join(lacking)}"

"""Reading recipes: TOML files, ``--set`` overrides, and plain data structured into a :class:`Config`.

Plugin names and parameters are checked later, when the pipeline is built
(:meth:`contrastkit.Pipeline.from_config`), still before any training.

Example:
    >>> cfg = config_from_dict({"critic": {"temperature": 0.2}, "views": "color-split"})
    >>> cfg.critic, cfg.views.name
    (PluginTable(name='cosine', params={'temperature': 0.2}), 'color-split')
    >>> apply_overrides({"views": "color-split"}, ["views.space=lab"])
    {'views': {'name': 'color-split', 'space': 'lab'}}
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from contrastkit.config.converter import converter, first_problem
from contrastkit.config.schema import Config, PluginTable, StageConfig
from contrastkit.errors import ConfigError
from contrastkit.recipe_keys import NotATableError, flatten_keys, with_key
from contrastkit.slots import BY_TABLE

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["apply_overrides", "config_from_dict", "load_config", "read_toml"]


def config_from_dict(raw: Mapping[str, Any], *, path: str | None = None) -> Config:
    """Build a :class:`Config` from plain data (a parsed TOML document).

    ``path`` is only used to prefix messages and to default ``train.out_dir`` to ``runs/<stem>``.

    Example:
        >>> config_from_dict({"train": {"epochs": 2}}, path="exp/a.toml").train.out_dir
        'runs/a'
        >>> config_from_dict({"train": 3})
        Traceback (most recent call last):
        ...
        contrastkit.errors.ConfigError: train: expected a table [train] (got 3)
    """
    raw = dict(raw)
    stages_raw = raw.pop("stages", None)
    for field in attrs.fields(Config):
        if field.default is None and field.name in raw and raw[field.name] is None:
            del raw[field.name]  # an optional slot left empty, as a checkpoint's stored recipe writes it
        table = raw.get(field.name)
        shorthand = field.name in BY_TABLE and isinstance(table, str)  # views = "color-split"
        per_view = field.name in BY_TABLE and BY_TABLE[field.name].per_view and isinstance(table, list)  # [[augment]]
        if field.name in raw and not isinstance(table, Mapping) and not shorthand and not per_view:
            raise ConfigError(f"{field.name}: expected a table [{field.name}] (got {table!r})", path=path)
        # A plugin table without ``name`` keeps the slot's default plugin: [critic] temperature = 0.2
        if isinstance(field.default, PluginTable) and isinstance(table, Mapping) and "name" not in table:
            raw[field.name] = {"name": field.default.name, **table}
        if isinstance(field.default, PluginTable) and isinstance(table, list):  # [[augment]]: one per view
            raw[field.name] = [
                {"name": field.default.name, **t} if isinstance(t, Mapping) and "name" not in t else t for t in table
            ]
    try:
        config = converter.structure(raw, Config)
    except Exception as exc:  # noqa: BLE001
        raise ConfigError(first_problem(exc), path=path) from None
    if config.train.out_dir is None:
        stem = Path(path).stem if path else "default"
        config = attrs.evolve(config, train=attrs.evolve(config.train, out_dir=str(Path("runs") / stem)))
    if stages_raw is not None:
        config = attrs.evolve(config, stages=_structure_stages(stages_raw, raw, path))
    return config


def _structure_stages(value: Any, base_raw: Mapping[str, Any], path: str | None) -> list[StageConfig]:
    """``[[stages]]`` -> checked :class:`StageConfig` list; every ``set`` key validated on the base recipe."""
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(f"stages: expected an array of tables [[stages]], at least one (got {value!r})", path=path)
    stages: list[StageConfig] = []
    for i, item in enumerate(value):
        if isinstance(item, Mapping) and isinstance(item.get("set"), Mapping):
            item = {**item, "set": flatten_keys(item["set"])}
        try:
            stage = converter.structure(item, StageConfig)
        except Exception as exc:  # noqa: BLE001 - one line naming stages[i].key
            raise ConfigError(first_problem(exc, f"stages[{i}]"), path=path) from None
        if any(s.name == stage.name for s in stages):
            raise ConfigError(f"stages[{i}].name: two stages are named {stage.name!r}; names must differ", path=path)
        if i == 0 and stage.carry:
            raise ConfigError(
                f"stages[0].carry: the first stage has no previous stage to carry weights from (got {stage.carry!r})",
                path=path,
            )
        for key, setting in stage.set.items():
            where = f'stages[{i}].set."{key}"'
            if key == "stages" or key.startswith("stages.") or key == "train.out_dir":
                raise ConfigError(f"{where}: a stage cannot set this; each stage runs in <train.out_dir>/<name>", path=path)
            try:
                config_from_dict(with_key(base_raw, key, setting, name_tables=BY_TABLE), path=None)
            except (ConfigError, NotATableError) as exc:
                message = exc.message if isinstance(exc, ConfigError) else str(exc)
                _, _, problem = message.partition(": ")
                same = isinstance(exc, ConfigError) and (exc.key.startswith(key) or key.startswith(exc.key + "."))
                raise ConfigError(f"{where}: {problem if same else message}", path=path) from None
        stages.append(stage)
    return stages


def _parse_override_value(text: str) -> Any:
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text  # a bare word: treat it as a string (--set views.name=color-split)


def apply_overrides(raw: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``--set table.key=value`` overrides (values parsed as TOML) to a raw recipe.

    Example:
        >>> apply_overrides({"train": {"lr": 0.1}}, ["train.lr=0.5", "critic.name=cosine"])
        {'train': {'lr': 0.5}, 'critic': {'name': 'cosine'}}
    """
    result: dict[str, Any] = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in raw.items()}
    for override in overrides:
        key, sep, text = override.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"--set {override!r}: expected KEY=VALUE, e.g. --set train.max_steps=20")
        try:
            result = with_key(result, key, _parse_override_value(text.strip()), name_tables=BY_TABLE)
        except NotATableError as exc:
            raise ConfigError(f"--set {override!r}: {exc}") from None
    return result


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file; a missing or malformed file is a one-line :class:`ConfigError`.

    Example:
        >>> read_toml("no/such/recipe.toml")
        Traceback (most recent call last):
        ...
        contrastkit.errors.ConfigError: no/such/recipe.toml: file not found; check the path
    """
    p = Path(path)
    if not p.is_file():
        problem = "is a directory, expected a TOML file" if p.is_dir() else "file not found; check the path"
        raise ConfigError(problem, path=str(path))
    try:
        with p.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read file: {exc}", path=str(path)) from None


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> Config:
    """Read a TOML recipe, apply ``--set`` overrides and structure it.

    Plugin names and parameters are checked when the pipeline is built
    (:meth:`contrastkit.Pipeline.from_config`), still before any training.

    Example:
        >>> import tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "run.toml"
        >>> _ = f.write_text('[train]\\nmax_steps = 3\\n')
        >>> cfg = load_config(f, ["train.lr=0.01"])
        >>> cfg.train.max_steps, cfg.train.lr, cfg.train.out_dir
        (3, 0.01, 'runs/run')
    """
    raw = read_toml(path)
    try:
        raw = apply_overrides(raw, overrides)
    except ConfigError as exc:
        raise exc.with_path(str(path)) from None
    return config_from_dict(raw, path=str(path))

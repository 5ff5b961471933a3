"""Staged recipes: ``[[stages]]`` resolved into one full :class:`Config` per stage, trained in turn.

Example:
    >>> stages = stages_from_dict({"stages": [{"name": "views"}, {"name": "contrast", "carry": ["view_maker"]}]})
    >>> [(s.name, s.entry.carry, s.config.eval.knn) for s in stages]
    [('views', [], False), ('contrast', ['view_maker'], True)]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from contrastkit.config.loading import apply_overrides, config_from_dict, read_toml
from contrastkit.config.schema import Config, StageConfig
from contrastkit.errors import ConfigError
from contrastkit.recipe_keys import with_key
from contrastkit.slots import BY_TABLE

__all__ = ["Stage", "load_stages", "stages_from_dict"]


@attrs.frozen
class Stage:
    """One resolved stage of a staged recipe: its entry, index and the full :class:`Config` it trains.

    Example:
        >>> stages = stages_from_dict({"stages": [{"name": "a"}, {"name": "b", "carry": ["view_maker"]}]})
        >>> [(s.index, s.name, s.config.train.out_dir, s.is_last) for s in stages]
        [(0, 'a', 'runs/default/a', False), (1, 'b', 'runs/default/b', True)]
    """

    index: int
    count: int
    entry: StageConfig
    config: Config

    @property
    def name(self) -> str:
        """The stage's name (its run folder under the recipe's ``train.out_dir``)."""
        return self.entry.name

    @property
    def is_last(self) -> bool:
        """Whether this is the final stage (the one ``eval``/``export`` use)."""
        return self.index == self.count - 1


def stages_from_dict(raw: Mapping[str, Any], overrides: Sequence[str] = (), *, path: str | None = None) -> list[Stage]:
    """Resolve a staged recipe: each stage = base recipe <- stage ``set`` <- command-line ``overrides``.

    The command line wins, so ``--set train.max_steps=3`` shortens every stage. Each stage runs in
    ``<train.out_dir>/<stage name>``. Earlier stages start with ``eval.knn`` and ``eval.linear`` off
    (the probes run after the last stage) unless their ``set`` or ``--set`` turns them on. A recipe
    without ``stages`` gives ``[]``.

    Example:
        >>> raw = {"train": {"epochs": 2}, "stages": [{"name": "views", "set": {"train.epochs": 3}},
        ...                                          {"name": "contrast"}]}
        >>> [s.config.train.epochs for s in stages_from_dict(raw, ["train.max_steps=5"])]
        [3, 2]
        >>> [(s.config.train.max_steps, s.config.eval.knn) for s in stages_from_dict(raw, ["train.max_steps=5"])]
        [(5, False), (5, True)]
    """
    try:
        with_overrides = apply_overrides(raw, overrides)
    except ConfigError as exc:
        raise exc.with_path(path) from None
    base = config_from_dict(with_overrides, path=path)  # validates the stages and each of their keys
    if not base.stages:
        return []
    base_raw = {k: v for k, v in raw.items() if k != "stages"}
    root = Path(base.train.out_dir or "runs/default")
    resolved: list[Stage] = []
    for i, entry in enumerate(base.stages):
        staged = base_raw
        if i < len(base.stages) - 1:
            staged = with_key(with_key(staged, "eval.knn", False), "eval.linear", False)
        for key, value in entry.set.items():
            staged = with_key(staged, key, value, name_tables=BY_TABLE)
        staged = apply_overrides(staged, overrides)
        staged["train"] = {**staged.get("train", {}), "out_dir": str(root / entry.name)}
        try:
            config = config_from_dict(staged, path=None)
        except ConfigError as exc:  # only a combination of keys can fail here: each was checked alone
            raise ConfigError(f"stages[{i}] ({entry.name}): {exc.message}", path=path) from None
        resolved.append(Stage(index=i, count=len(base.stages), entry=entry, config=config))
    return resolved


def load_stages(path: str | Path, overrides: Sequence[str] = ()) -> list[Stage]:
    """Read a TOML recipe and resolve its ``[[stages]]`` (``[]`` without stages); see :func:`stages_from_dict`.

    Example:
        >>> import tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "two.toml"
        >>> _ = f.write_text('[[stages]]\\nname = "a"\\n[[stages]]\\nname = "b"\\nset = { "train.lr" = 0.5 }\\n')
        >>> [(s.name, s.config.train.lr, s.config.train.out_dir) for s in load_stages(f)]
        [('a', 0.001, 'runs/two/a'), ('b', 0.5, 'runs/two/b')]
    """
    return stages_from_dict(read_toml(path), overrides, path=str(path))

"""``contrastkit.experiments.recipes``: recipes as TOML, every experiment's recipe builds, dotted keys, --quick."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import tomllib

from contrastkit.config import config_from_dict, stages_from_dict
from contrastkit.errors import ConfigError
from contrastkit.experiments import factors, learned_views, negatives, reverse_u
from contrastkit.experiments.recipes import apply_quick_settings, recipe_toml, set_key
from contrastkit.experiments.settings import QUICK_SETTINGS
from contrastkit.pipeline import Pipeline

#: Every recipe an experiment trains or probes, by a readable id.
RECIPES: dict[str, dict[str, Any]] = {
    "factors/share-digit": factors.recipe(["digit"]),
    "factors/share-position": factors.recipe(["position"], steps=7),
    "negatives/K=16": negatives.recipe(16),
    "negatives/K=4095": negatives.recipe(4095),
    "reverse-u": reverse_u.recipe(),
    "learned-views/raw": learned_views.raw_recipe(),
    "learned-views/unsupervised": learned_views.learned_recipe(supervised=False),
    "learned-views/semi-supervised": learned_views.learned_recipe(supervised=True),
}


# -- recipe_toml -------------------------------------------------------------------------------


@pytest.mark.parametrize("recipe_id", sorted(RECIPES))
def test_every_recipe_round_trips_through_toml(recipe_id: str) -> None:
    recipe = RECIPES[recipe_id]
    assert tomllib.loads(recipe_toml(recipe)) == recipe
    quick = copy.deepcopy(recipe)
    apply_quick_settings(quick)
    assert tomllib.loads(recipe_toml(quick)) == quick


def test_stages_are_an_array_of_tables_with_inline_set_tables() -> None:
    recipe = learned_views.learned_recipe(supervised=True, view_steps=12, contrast_steps=34)
    text = recipe_toml(recipe)
    assert text.count("[[stages]]") == 2
    assert 'set = { "views.mode" = "adversarial", "train.max_steps" = 12 }' in text
    assert 'carry = ["view_maker"]' in text
    parsed = tomllib.loads(text)["stages"]
    assert parsed[1] == {"name": "contrast", "set": {"views.mode": "frozen", "train.max_steps": 34},
                         "carry": ["view_maker"]}


def test_recipe_toml_writes_every_scalar_kind_and_awkward_strings() -> None:
    raw = {
        "a": {"t": True, "f": False, "i": -3, "x": 1e-05, "big": 1.5e300, "s": 'say "hi"\\ \u00e9\n\ttab',
              "nested": [[0], [1, 2]], "empty": [], "inline": {"k.dot": 1, "z": "w"}},
        "b": {},
    }
    assert tomllib.loads(recipe_toml(raw)) == raw


@pytest.mark.parametrize("raw", [{"train": {"lr": None}}, {"train": {"lr": {1, 2}}}, {"train": 3}])
def test_recipe_toml_refuses_what_toml_cannot_hold(raw: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="experiment"):
        recipe_toml(raw)


# -- every recipe builds -----------------------------------------------------------------------


@pytest.mark.parametrize("recipe_id", sorted(RECIPES))
def test_every_recipe_builds_a_pipeline_from_its_toml(recipe_id: str) -> None:
    """Read back from the TOML the experiment writes, with a small dataset: a renamed parameter fails here."""
    raw = tomllib.loads(recipe_toml(RECIPES[recipe_id]))
    set_key(raw, "data.size", 64)
    if "stages" in raw:
        stages = stages_from_dict(raw, path=f"{recipe_id}.toml")
        assert [s.name for s in stages] == ["views", "contrast"]
        pipelines = [Pipeline.from_config(stage.config, path=f"{recipe_id}.toml") for stage in stages]
        assert [p.view_maker.mode for p in pipelines] == ["adversarial", "frozen"]
        if recipe_id.endswith("semi-supervised"):
            assert pipelines[0].view_maker.classifier_lr == pytest.approx(0.003)
            assert pipelines[0].view_maker.classifiers is not None
        return
    pipeline = Pipeline.from_config(config_from_dict(raw, path=f"{recipe_id}.toml"), path=f"{recipe_id}.toml")
    assert len(pipeline.dataset) == 64


def test_a_renamed_parameter_fails_the_build() -> None:
    """What the build test above guards against: a recipe naming a parameter its plugin no longer has."""
    raw = factors.recipe(["digit"])
    raw["views"] = {"name": "factor-pair", "shares": ["digit"]}
    set_key(raw, "data.size", 64)
    with pytest.raises(ConfigError, match="views.shares"):
        Pipeline.from_config(config_from_dict(raw))


# -- small helpers -----------------------------------------------------------------------------


def test_set_key_creates_tables_and_refuses_to_go_through_a_value() -> None:
    raw: dict[str, Any] = {"train": {"lr": 0.1}}
    set_key(raw, "train.lr", 0.5)
    set_key(raw, "a.b.c", 1)
    assert raw == {"train": {"lr": 0.5}, "a": {"b": {"c": 1}}}
    with pytest.raises(ConfigError, match="train.lr.x"):
        set_key(raw, "train.lr.x", 1)
    with pytest.raises(ConfigError) as info:
        set_key(raw, "a.b.c.d", 1)
    assert str(info.value) == "experiment: a.b.c.d: 'c' holds 1, not a table; remove it or set a key beside it"
    assert raw == {"train": {"lr": 0.5}, "a": {"b": {"c": 1}}}  # a refused key changes nothing


def test_apply_quick_settings_shrinks_every_arm_and_strips_stage_schedules() -> None:
    raw = learned_views.learned_recipe(supervised=True)
    apply_quick_settings(raw)
    for dotted, value in QUICK_SETTINGS.items():
        table, key = dotted.split(".")
        assert raw[table][key] == value
    assert [s["set"] for s in raw["stages"]] == [{"views.mode": "adversarial"}, {"views.mode": "frozen"}]
    assert raw["views"]["classifier_lr"] == 0.003  # what the quick run does not touch stays


def test_the_infomin_example_is_the_learned_views_semi_supervised_arm() -> None:
    """``examples/infomin.toml`` states the figures of the experiment's semi-supervised arm: it must be that arm."""
    example = tomllib.loads((Path(__file__).parents[2] / "examples" / "infomin.toml").read_text())
    arm = learned_views.learned_recipe(supervised=True)
    for table in ("data", "augment", "views", "encoder", "critic", "negatives", "objective"):
        assert example[table] == arm[table], table
    for key in ("batch_size", "optimizer", "lr", "view_maker_lr", "warmup_steps"):
        assert example["train"][key] == arm["train"][key], key
    assert [(s["name"], s["set"]) for s in example["stages"]] == [(s["name"], s["set"]) for s in arm["stages"]]


def test_the_factors_example_is_the_experiments_share_digit_arm() -> None:
    """``examples/factors.toml`` is the recipe docs point to for Table 1: the same data, views and model."""
    example = tomllib.loads((Path(__file__).parents[2] / "examples" / "factors.toml").read_text())
    arm = factors.recipe(["digit"])
    for table in ("data", "augment", "views", "encoder", "critic", "negatives", "objective"):
        assert example[table] == arm[table], table
    for key in ("batch_size", "optimizer", "lr", "warmup_steps"):
        assert example["train"][key] == arm["train"][key], key

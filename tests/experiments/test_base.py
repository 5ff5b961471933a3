"""``contrastkit.experiments.base``: recipes as TOML, every experiment's recipe builds, arms are cached."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import tomllib
import torch

from contrastkit.config import config_from_dict, stages_from_dict
from contrastkit.errors import ConfigError
from contrastkit.experiments import factors, learned_views, negatives, reverse_u
from contrastkit.experiments.base import (
    QUICK_SETTINGS,
    ArmResult,
    ArmSeeds,
    ExperimentResult,
    RunSettings,
    apply_quick_settings,
    code_version,
    markdown_table,
    probe_random_init,
    recipe_toml,
    saved_record,
    set_key,
    train_arm,
)
from contrastkit.pipeline import Pipeline
from contrastkit.trainer import StagedTrainer, Trainer, TrainResult

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

#: A recipe that trains in a few seconds (16 px images, a 4-wide conv net, one kNN probe).
TINY = {
    "data": {"name": "colorful-moving-digits", "image_size": 16, "digit_size": 8},
    "encoder": {"name": "convnet", "width": 4, "depth": 2},
    "eval": {"labels": ["background"], "knn": True, "linear": False},
}


def quiet(out_dir: Path, **kwargs: Any) -> RunSettings:
    return RunSettings(out_dir=out_dir, device="cpu", print_fn=lambda message: None, **kwargs)


def expected_text(recipe: dict[str, Any], settings: RunSettings, name: str, *, seed: int = 0,
                  random_init: bool = False) -> str:
    """The recipe.toml ``train_arm`` (or ``probe_random_init``) writes, built here from its documented edits."""
    raw = copy.deepcopy(recipe)
    if random_init:
        raw.pop("stages", None)
    if settings.quick:
        apply_quick_settings(raw)
    set_key(raw, "train.seed", seed)
    set_key(raw, "train.out_dir", settings.arm_dir(name, seed).as_posix())
    set_key(raw, "train.device", settings.device)
    set_key(raw, "log.progress", False)
    return recipe_toml(raw)


def fake_train_result(steps: int, probes: dict[str, float], loss: float = 1.5) -> TrainResult:
    knn = [SimpleNamespace(probe=key.split("/")[0], label=key.split("/")[1], value=value) for key, value in probes.items()]
    return TrainResult(steps=steps, seconds=0.0, images_per_second=0.0, final_metrics={"loss": loss},
                       checkpoint=Path("final.pt"), tensorboard_dir=None, knn=knn)


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


def test_apply_quick_settings_shrinks_every_arm_and_strips_stage_schedules() -> None:
    raw = learned_views.learned_recipe(supervised=True)
    apply_quick_settings(raw)
    for dotted, value in QUICK_SETTINGS.items():
        table, key = dotted.split(".")
        assert raw[table][key] == value
    assert [s["set"] for s in raw["stages"]] == [{"views.mode": "adversarial"}, {"views.mode": "frozen"}]
    assert raw["views"]["classifier_lr"] == 0.003  # what the quick run does not touch stays


def test_markdown_table_and_arm_probe() -> None:
    table = markdown_table(["arm", "top-1", "steps"], [["a", 61.456, 3], ["b", math.nan, 4]])
    assert table.splitlines() == ["| arm | top-1 | steps |", "| --- | --- | --- |", "| a | 61.46 | 3 |",
                                  "| b | – | 4 |"]
    arm = ArmResult(name="a", probes={"linear/digit": 61.5}, steps=1, seconds=0.0, final_metrics={}, run_dir="x")
    assert arm.probe("linear", "digit") == 61.5 and math.isnan(arm.probe("knn", "digit"))


@pytest.mark.parametrize(("reproduced", "status"), [(True, "reproduced"), (False, "not reproduced"),
                                                    (None, "smoke run")])
def test_experiment_result_status_and_markdown(reproduced: bool | None, status: str) -> None:
    result = ExperimentResult(name="x", title="T", paper="P", criterion="C", reproduced=reproduced, verdict="V 1.5",
                              table="| t |", plot="plot.png", seconds=90.0, budget_seconds=1800.0, quick=False,
                              command="contrastkit experiment x", data={}, device="cpu (2 threads)")
    assert result.status == status
    page = result.markdown(plot_link="p/x.png", heading="##")
    assert page.startswith("## `x`: T\n") and f"**Result: {status}.** V 1.5" in page
    assert "![x](p/x.png)" in page and "ran in 1.5 min (budget 30 min) on cpu (2 threads)" in page
    assert "![" not in result.markdown()


# -- caching -----------------------------------------------------------------------------------


def test_train_arm_trains_once_then_reuses_the_saved_arm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fits: list[int] = []
    real_fit = Trainer.fit

    def counting_fit(self: Trainer, **kwargs: Any) -> TrainResult:
        fits.append(self.train_cfg.max_steps)
        return real_fit(self, **kwargs)

    monkeypatch.setattr(Trainer, "fit", counting_fit)
    settings = quiet(tmp_path, quick=True)
    first = train_arm("tiny", TINY, settings).runs[0]
    assert fits == [QUICK_SETTINGS["train.max_steps"]] and first.steps == 2
    assert sorted(first.probes) == ["knn/background"] and 0 <= first.probes["knn/background"] <= 100
    folder = tmp_path / "tiny" / "seed=0"
    assert (folder / "recipe.toml").read_text() == expected_text(TINY, settings, "tiny")
    assert json.loads((folder / "arm.json").read_text()) == first.as_dict()
    assert first.code == code_version() and first.seed == 0
    assert (folder / "checkpoints").is_dir()  # it ran in the arm's folder

    again = train_arm("tiny", TINY, settings).runs[0]
    assert fits == [2]  # not retrained
    assert again == first and again.seconds == first.seconds


def test_fresh_or_a_changed_recipe_retrains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fits: list[int] = []

    def fake_fit(self: Trainer, **kwargs: Any) -> TrainResult:
        fits.append(1)
        return fake_train_result(len(fits), {"knn/background": 10.0 * len(fits)})

    monkeypatch.setattr(Trainer, "fit", fake_fit)
    settings = quiet(tmp_path, quick=True)
    folder = tmp_path / "tiny" / "seed=0"

    def probes(arm: ArmSeeds) -> dict[str, float]:
        return arm.runs[0].probes

    assert probes(train_arm("tiny", TINY, settings)) == {"knn/background": 10.0}
    assert probes(train_arm("tiny", TINY, settings)) == {"knn/background": 10.0} and len(fits) == 1

    fresh = train_arm("tiny", TINY, quiet(tmp_path, quick=True, fresh=True))
    assert len(fits) == 2 and probes(fresh) == {"knn/background": 20.0} and fresh.steps == 2
    assert json.loads((folder / "arm.json").read_text())["probes"] == {"knn/background": 20.0}

    wider = copy.deepcopy(TINY)
    wider["encoder"]["width"] = 6
    changed = train_arm("tiny", wider, settings)
    assert len(fits) == 3 and probes(changed) == {"knn/background": 30.0}
    assert "width = 6" in (folder / "recipe.toml").read_text()
    assert probes(train_arm("tiny", wider, settings)) == {"knn/background": 30.0} and len(fits) == 3

    # the full (not quick) recipe is another recipe too
    train_arm("tiny", wider, quiet(tmp_path))
    assert len(fits) == 4
    # a lost arm.json is retrained even though recipe.toml matches
    (folder / "arm.json").unlink()
    train_arm("tiny", wider, quiet(tmp_path))
    assert len(fits) == 5
    # another seed is another run, in its own folder; the seed already trained is reused
    both = train_arm("tiny", wider, quiet(tmp_path, seeds=(0, 1)))
    assert len(fits) == 6 and both.seeds == (0, 1) and (tmp_path / "tiny" / "seed=1" / "arm.json").is_file()
    assert "seed = 1" in (tmp_path / "tiny" / "seed=1" / "recipe.toml").read_text()


def test_the_cache_refuses_a_result_trained_by_other_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fits: list[int] = []

    def fake_fit(self: Trainer, **kwargs: Any) -> TrainResult:
        fits.append(1)
        return fake_train_result(2, {"knn/background": 10.0 * len(fits)})

    monkeypatch.setattr(Trainer, "fit", fake_fit)
    settings = quiet(tmp_path, quick=True)
    record = tmp_path / "tiny" / "seed=0" / "arm.json"
    train_arm("tiny", TINY, settings)
    saved = json.loads(record.read_text())
    assert saved["code"] == code_version() and len(fits) == 1
    for other in ({**saved, "code": "0123456789abcdef"}, {k: v for k, v in saved.items() if k != "code"}):
        record.write_text(json.dumps(other))  # the same recipe and seed, trained by other (or unknown) code
        again = train_arm("tiny", TINY, settings)
        assert again.runs[0].probes == {"knn/background": 10.0 * len(fits)} and again.runs[0].code == code_version()
    assert len(fits) == 3
    record.write_text('{"name": "tiny", "pro')  # a record cut short by a kill
    train_arm("tiny", TINY, settings)
    assert len(fits) == 4


def test_code_version_hashes_the_package_source(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import contrastkit.experiments.base as base

    fake_root = tmp_path / "contrastkit"
    (fake_root / "experiments").mkdir(parents=True)
    (fake_root / "a.py").write_text("x = 1\n")
    (fake_root / "experiments" / "base.py").write_text("")
    monkeypatch.setattr(base, "__file__", str(fake_root / "experiments" / "base.py"))
    base.code_version.cache_clear()
    try:
        first = base.code_version()
        (fake_root / "a.py").write_text("x = 2\n")
        base.code_version.cache_clear()
        assert base.code_version() != first
    finally:
        base.code_version.cache_clear()


def test_a_staged_arm_sums_its_stages_steps_and_keeps_the_last_stages_probes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []

    def fake_staged_fit(self: StagedTrainer, **kwargs: Any) -> list[TrainResult]:
        calls.append([stage.name for stage in self.stages])
        return [fake_train_result(3, {"knn/background": 11.0}), fake_train_result(4, {"linear/background": 55.0})]

    monkeypatch.setattr(StagedTrainer, "fit", fake_staged_fit)
    recipe = learned_views.learned_recipe(supervised=True)
    recipe["data"] |= {"image_size": 16, "digit_size": 8}
    recipe["encoder"] = {"name": "convnet", "width": 4, "depth": 2}
    settings = quiet(tmp_path, quick=True)
    arm = train_arm("learned", recipe, settings).runs[0]
    assert calls == [["views", "contrast"]]
    assert arm.steps == 7 and arm.probes == {"linear/background": 55.0} and arm.final_metrics == {"loss": 1.5}
    assert (tmp_path / "learned" / "seed=0" / "recipe.toml").read_text() == expected_text(recipe, settings, "learned")
    assert train_arm("learned", recipe, settings).runs[0] == arm and len(calls) == 1


def test_probe_random_init_is_seeded_drops_stages_and_is_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import contrastkit.evaluation

    seen: list[dict[str, Any]] = []

    def fake_evaluate(pipeline: Pipeline, *args: Any, **kwargs: Any) -> list[Any]:
        first_weight = next(p for p in pipeline.parameters() if p.dim() > 1)
        seen.append({**kwargs, "weight": first_weight.detach().clone()})
        return [SimpleNamespace(probe="knn", label="background", value=42.0)]

    monkeypatch.setattr(contrastkit.evaluation, "evaluate", fake_evaluate)
    recipe = {**copy.deepcopy(TINY), "train": {"seed": 99},
              "stages": [{"name": "views", "set": {"views.mode": "adversarial"}}]}
    settings = quiet(tmp_path / "a", quick=True, seeds=(3,))
    arm = probe_random_init("random-init", recipe, settings)
    assert arm.steps == 0 and arm.runs[0].probes == {"knn/background": 42.0} and arm.seeds == (3,)
    text = (tmp_path / "a" / "random-init" / "seed=3" / "recipe.toml").read_text()
    assert text == expected_text(recipe, settings, "random-init", seed=3, random_init=True)
    assert "[[stages]]" not in text
    assert seen[0]["labels"] == ["background"] and seen[0]["max_samples"] == QUICK_SETTINGS["eval.max_samples"]
    assert seen[0]["seed"] == 3

    assert probe_random_init("random-init", recipe, settings) == arm and len(seen) == 1  # cached
    probe_random_init("random-init", recipe, quiet(tmp_path / "b", quick=True, seeds=(3,)))  # another folder
    torch.testing.assert_close(seen[1]["weight"], seen[0]["weight"], rtol=0, atol=0)
    probe_random_init("random-init", recipe, quiet(tmp_path / "c", quick=True, seeds=(4,)))
    assert not torch.equal(seen[2]["weight"], seen[0]["weight"])


def test_a_changed_recipe_clears_the_previous_runs_outputs(tmp_path: Path) -> None:
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "views" / "tensorboard").mkdir(parents=True)
    (tmp_path / "arm.json").write_text(json.dumps({"code": code_version()}))
    (tmp_path / "recipe.toml").write_text("a = 1\n")
    assert saved_record(tmp_path, "a = 1\n", "arm.json", fresh=False) == {"code": code_version()}
    assert (tmp_path / "checkpoints").is_dir(), "an unchanged recipe keeps its run"
    assert saved_record(tmp_path, "a = 2\n", "arm.json", fresh=False) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recipe.toml"]

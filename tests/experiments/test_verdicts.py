"""Each experiment's verdict, computed from seeded (not trained) arms; the report files and the docs page.

An arm whose ``recipe.toml`` is exactly what the experiment would write and whose ``arm.json`` (or
reverse-u's ``point.json``) exists is read back instead of trained: these tests write both with chosen
numbers, forbid building any pipeline, and check the verdict each experiment computes from them.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import random
import shutil
from pathlib import Path
from typing import Any

import attrs
import pytest
from PIL import Image

from contrastkit.errors import ConfigError, InvalidParameter
from contrastkit.experiments import (
    EXPERIMENTS,
    factors,
    learned_views,
    negatives,
    read_results,
    reproductions_page,
    reverse_u,
    run_experiment,
    write_docs,
)
from contrastkit.experiments.recipes import apply_quick_settings, recipe_toml, set_key
from contrastkit.experiments.records import code_version
from contrastkit.experiments.results import ExperimentResult
from contrastkit.experiments.settings import RunSettings
from contrastkit.pipeline import Pipeline

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every arm must come from its seeded record: building a pipeline means a cache miss (and real training)."""
    def refuse(cls: type, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("cache miss: the experiment wrote another recipe.toml than the seeded one")

    monkeypatch.setattr(Pipeline, "from_config", classmethod(refuse))


SEEDS = (0, 1, 2)


def quiet(out_dir: Path, *, quick: bool = False, seeds: tuple[int, ...] = SEEDS) -> RunSettings:
    return RunSettings(out_dir=out_dir, quick=quick, device="cpu", print_fn=lambda message: None, seeds=seeds)


def seed_value(value: float | list[float], index: int) -> float:
    """A number every seed shares, or the ``index``-th seed's own number."""
    return value[index] if isinstance(value, list) else value


def seed_arm(settings: RunSettings, name: str, recipe: dict[str, Any], probes: dict[str, float | list[float]], *,
             random_init: bool = False) -> None:
    """Write, for every seed, the recipe.toml ``train_arm`` / ``probe_random_init`` would write, and an arm.json
    (by this code) with ``probes`` (a list: one value per seed)."""
    for index, seed in enumerate(settings.seeds):
        raw = copy.deepcopy(recipe)
        if random_init:
            raw.pop("stages", None)
        if settings.quick:
            apply_quick_settings(raw)
        folder = settings.arm_dir(name, seed)
        set_key(raw, "train.seed", seed)
        set_key(raw, "train.out_dir", folder.as_posix())
        set_key(raw, "train.device", settings.device)
        set_key(raw, "log.progress", False)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "recipe.toml").write_text(recipe_toml(raw))
        record = {"name": name, "probes": {k: seed_value(v, index) for k, v in probes.items()},
                  "steps": 0 if random_init else 900, "seconds": 60.0,
                  "final_metrics": {} if random_init else {"loss": 2.0, "mi_lower_bound/v1-v2": 1.25},
                  "run_dir": folder.as_posix(), "seed": seed, "code": code_version()}
        (folder / "arm.json").write_text(json.dumps(record))


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        image.verify()


# -- factors -----------------------------------------------------------------------------------

#: Per arm: digit error (%), background error (%), position error (px). Each row wins its own task.
FACTORS_HELD = {
    "share-digit": (20.0, 80.0, 10.0),
    "share-background": (85.0, 30.0, 12.0),
    "share-position": (70.0, 75.0, 3.0),
    "random-init": (80.0, 85.0, 14.0),
}


def seed_factors(settings: RunSettings, errors: dict[str, tuple[float, float, float]]) -> None:
    for arm, (digit, background, position) in errors.items():
        probes = {"linear/digit": 100.0 - digit, "linear/background": 100.0 - background,
                  "linear/position": position, "knn/digit": 33.0, "knn/background": 44.0}
        probes = {k: v for k, v in probes.items() if not math.isnan(v)}  # nan: the arm did not report it
        if arm == "random-init":
            seed_arm(settings, arm, factors.recipe(["digit"]), probes, random_init=True)
        else:
            seed_arm(settings, arm, factors.recipe([arm.removeprefix("share-")]), probes)


def test_factors_reproduced_when_each_row_wins_its_own_task(tmp_path: Path) -> None:
    settings = quiet(tmp_path)
    seed_factors(settings, FACTORS_HELD)
    result = factors.run(settings)
    assert result.reproduced is True and result.status == "reproduced"
    assert "wins its own task for 3 of 3 tasks (digit, background, position)" in result.verdict
    assert "digit: 20.0 % vs best other row 70.0 % (random init 80.0 %)" in result.verdict
    assert "background: 30.0 % vs best other row 75.0 % (random init 85.0 %)" in result.verdict
    assert "position: 3.0 px vs best other row 10.0 px (random init 14.0 px)" in result.verdict
    assert ("| only the digit | 20.00 ± 0.00 | 80.00 ± 0.00 | 10.00 ± 0.00 | 1.25 ± 0.00 | 900 | 3.00 |"
            in result.table)
    assert "| nothing (random init) | 80.00 ± 0.00 | 85.00 ± 0.00 | 14.00 ± 0.00 | – | 0 | 3.00 |" in result.table
    assert "| share-position | 2 | 70.00 | 75.00 | 3.00 |" in result.table  # every seed's row
    arm = result.data["arms"]["share-position"]
    assert result.seconds == 720.0 and [r["probes"]["linear/position"] for r in arm["seeds"]] == [3.0] * 3
    assert arm["summary"]["linear/position"] == {"mean": 3.0, "sd": 0.0, "n": 3}
    assert_png(tmp_path / result.plot)


@pytest.mark.parametrize(
    ("change", "held", "quoted"),
    [
        # the digit row localises the digit better than the position row
        ({"share-digit": (20.0, 80.0, 2.5)}, "2 of 3 tasks (digit, background)",
         "position: 3.0 px vs best other row 2.5 px"),
        # the digit row wins among rows but not against the untrained encoder
        ({"random-init": (15.0, 85.0, 14.0)}, "2 of 3 tasks (background, position)",
         "digit: 20.0 % vs best other row 70.0 % (random init 15.0 %)"),
        # the position row did not report its own probe
        ({"share-position": (70.0, 75.0, math.nan)}, "2 of 3 tasks (digit, background)", "position: nan px"),
        # nothing holds
        ({"share-digit": (90.0, 90.0, 20.0), "share-background": (90.0, 90.0, 20.0),
          "share-position": (90.0, 90.0, 20.0)}, "0 of 3 tasks.", "digit: 90.0 % vs best other row 90.0 %"),
    ],
)
def test_factors_not_reproduced(tmp_path: Path, change: dict[str, tuple[float, float, float]], held: str,
                                quoted: str) -> None:
    settings = quiet(tmp_path)
    seed_factors(settings, {**FACTORS_HELD, **change})
    result = factors.run(settings)
    assert result.reproduced is False and result.status == "not reproduced"
    assert held in result.verdict and quoted in result.verdict


# -- negatives ---------------------------------------------------------------------------------


def seed_negatives(settings: RunSettings, linear: list[Any], knn: list[float]) -> None:
    for k, lin, near in zip(negatives.COUNTS, linear, knn, strict=True):
        probes = {"linear/background": lin, "knn/background": near, "linear/digit": 25.0, "linear/position": 4.5}
        seed_arm(settings, f"K={k}", negatives.recipe(k), probes)


def test_the_paper_scale_trains_the_negatives_arms_on_its_schedule(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """``--scale paper`` reaches the recipe: its steps, its data size and its low-contrast textures."""
    recipes: list[dict[str, Any]] = []

    class Trained(Exception):
        pass

    def first_arm(arms: dict[str, dict[str, Any]], settings: RunSettings) -> None:
        recipes.append(arms["K=16"])
        raise Trained

    monkeypatch.setattr(negatives, "train_arms", first_arm)
    with pytest.raises(Trained):
        negatives.run(on_paper_scale(quiet(tmp_path)))
    (recipe,) = recipes
    assert recipe["train"]["max_steps"] == 20000
    assert recipe["data"]["size"] == 50000
    assert recipe["data"]["background_contrast"] == 0.3
    assert recipe["encoder"]["width"] == 32 and recipe["train"]["channels_last"] is False


def test_the_cpu_scale_trains_the_negatives_arms_converged_at_low_contrast() -> None:
    """The cpu verdict's recipe: 2000 steps (500 left the bank untrained), 0.3 contrast, width-16 nets."""
    recipe = negatives.recipe(16)
    assert recipe["train"]["max_steps"] == 2000 and recipe["data"]["size"] == 4096
    assert recipe["data"]["background_contrast"] == 0.3
    assert recipe["encoder"]["width"] == 16 and recipe["train"]["channels_last"] is True


def test_negatives_reproduced_when_accuracy_rises_with_k(tmp_path: Path) -> None:
    settings = quiet(tmp_path)
    knn = [30.0, 29.0, 31.0, 33.0, 32.0]
    seed_negatives(settings, [40.0, 42.0, 45.0, 47.0, 50.0], knn)
    result = negatives.run(settings)
    assert result.reproduced is True
    assert ("Mean background linear accuracy over 3 seed(s) goes 40.0 -> 42.0 -> 45.0 -> 47.0 -> 50.0 % as K goes "
            "16 -> 64 -> 256 -> 1024 -> 4095: Spearman rho = 1.00, largest vs smallest K +10.0 points") in result.verdict
    assert f"(kNN: rho = {naive_spearman(negatives.COUNTS, knn):.2f})" in result.verdict
    assert result.data["spearman"] == pytest.approx(1.0)
    assert ("| 4095 | 50.00 ± 0.00 | 32.00 ± 0.00 | 25.00 ± 0.00 | 4.50 ± 0.00 | 2.00 ± 0.00 | 1.25 ± 0.00 | 3.00 |"
            in result.table)
    assert_png(tmp_path / result.plot)


@pytest.mark.parametrize(
    ("linear", "quoted"),
    [
        ([50.0, 48.0, 47.0, 45.0, 40.0], "rho = -1.00, largest vs smallest K -10.0 points"),
        ([40.0, 40.25, 40.5, 40.75, 41.0], "rho = 1.00, largest vs smallest K +1.0 points"),  # gain not > 1
        ([40.0, 50.0, 45.0, 47.0, 48.0], "rho = 0.40, largest vs smallest K +8.0 points"),  # rank order too weak
    ],
)
def test_negatives_not_reproduced(tmp_path: Path, linear: list[float], quoted: str) -> None:
    settings = quiet(tmp_path)
    seed_negatives(settings, linear, [30.0] * 5)
    result = negatives.run(settings)
    assert result.reproduced is False and quoted in result.verdict
    assert "(kNN: rho = nan)" in result.verdict  # constant kNN accuracy has no rank correlation


def naive_spearman(xs: Any, ys: Any) -> float:
    """Pearson correlation of mid-ranks, each rank counted from scratch (no sorting), in float64."""
    def mid_ranks(values: list[float]) -> list[float]:
        return [sum(w < v for w in values) + (sum(w == v for w in values) - 1) / 2 for v in values]

    rx, ry = mid_ranks(list(xs)), mid_ranks(list(ys))
    n = len(rx)
    mx, my = sum(rx) / n, sum(ry) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx, syy = sum((a - mx) ** 2 for a in rx), sum((b - my) ** 2 for b in ry)
    return sxy / math.sqrt(sxx * syy) if sxx and syy else math.nan


def test_spearman_matches_a_naive_reference_with_ties() -> None:
    rng = random.Random(0)
    for n in (2, 3, 5, 8, 13):
        for _ in range(20):
            xs = [rng.choice([1.0, 2.0, 3.0, 4.5, 7.0]) for _ in range(n)]
            ys = [rng.randint(0, 4) + 0.5 for _ in range(n)]
            expected = naive_spearman(xs, ys)
            got = negatives.spearman(xs, ys)
            assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected, abs=1e-12)


def test_spearman_without_ties_is_the_rank_difference_formula() -> None:
    xs = [16, 64, 256, 1024, 4095]
    for ys in itertools.permutations([40.0, 42.0, 45.0, 47.0, 50.0]):
        d2 = sum((xs.index(x) - sorted(ys).index(y)) ** 2 for x, y in zip(xs, ys))
        assert negatives.spearman(xs, list(ys)) == pytest.approx(1 - 6 * d2 / (5 * (25 - 1)), abs=1e-12)
    assert math.isnan(negatives.spearman([1, 2, 3], [5, 5, 5]))


# -- reverse-u ---------------------------------------------------------------------------------


def seed_reverse_u(settings: RunSettings, i_nce: list[float], accuracy: list[float | list[float]],
                   saturated: tuple[str, ...] = ()) -> None:
    for point, info, acc in zip(reverse_u.POINTS, i_nce, accuracy, strict=True):
        for index, seed in enumerate(settings.seeds):
            raw = copy.deepcopy(reverse_u.recipe(point))
            folder = settings.arm_dir(point.folder, seed)
            set_key(raw, "train.seed", seed)
            set_key(raw, "train.out_dir", folder.as_posix())
            set_key(raw, "train.device", settings.device)
            set_key(raw, "log.progress", False)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "recipe.toml").write_text(
                recipe_toml(raw) + f"# analyze: --steps {reverse_u.STEPS} --batch {reverse_u.BATCH}\n"
            )
            record = {"value": point.name, "seed": seed, "i_nce": info, "num_negatives": reverse_u.BATCH - 1,
                      "ceiling": math.log(reverse_u.BATCH), "saturated": point.name in saturated,
                      "accuracy": seed_value(acc, index), "seconds": 30.0, "code": code_version()}
            (folder / "point.json").write_text(json.dumps(record))
    seed_arm(settings, "random-init", reverse_u.recipe(reverse_u.POINTS[1]), {"linear/background": 40.0},
             random_init=True)


#: I_NCE rises as the views share more (nothing ... the same image).
I_NCE = [0.05, 2.2, 2.9, 3.4, 4.1]


def test_reverse_u_points_are_nested() -> None:
    """Each point shares what the one before shares, and more: the sweep's x axis is "how much"."""
    shares = [set(p.share) if p.share is not None else {"digit", "background", "position"} for p in reverse_u.POINTS]
    assert shares[0] == set() and reverse_u.POINTS[-1].share is None
    assert all(a < b or (a == b and i == len(shares) - 2) for i, (a, b) in enumerate(itertools.pairwise(shares)))
    assert [p.folder for p in reverse_u.POINTS] == [
        "share=nothing", "share=background", "share=background+position", "share=background+position+digit",
        "share=same-image"]


def test_reverse_u_recipes_differ_only_in_the_views() -> None:
    recipes = [reverse_u.recipe(p) for p in reverse_u.POINTS]
    for r in recipes:
        assert {k: v for k, v in r.items() if k not in ("views", "augment")} == {
            k: v for k, v in recipes[0].items() if k not in ("views", "augment")}
    assert [r["views"].get("share") for r in recipes[:4]] == [[], ["background"], ["background", "position"],
                                                             ["background", "position", "digit"]]
    assert recipes[-1]["views"] == {"name": "augmented-copies"} and recipes[-1]["augment"]["name"] == "crop-flip"


def test_reverse_u_reproduced_with_an_interior_peak(tmp_path: Path) -> None:
    settings = quiet(tmp_path)
    seed_reverse_u(settings, I_NCE, [38.0, 95.0, 90.0, 80.0, 45.0])
    result = reverse_u.run(settings)
    assert result.reproduced is True
    assert result.verdict.startswith(
        "Sorted by the mean I_NCE over 3 seed(s), mean accuracy goes 38.0% (0.05 nats, nothing) -> 95.0% "
        "(2.20 nats, background) -> "
    )
    assert ("(random init 40.0%). The best mean accuracy is at `background`, an interior point clear of both ends: "
            "a reverse U.") in result.verdict
    assert result.seconds == 450.0 and result.data["points"][1]["accuracy"] == {"mean": 95.0, "sd": 0.0}
    assert [r["accuracy"] for r in result.data["points"][1]["seeds"]] == [95.0] * 3
    assert result.data["random_init"] == 40.0
    assert "| background+position | 2.90 ± 0.00 | 127 |" in result.table
    assert "| background+position | 2 | 2.90 | 90.00 |" in result.table  # every seed's row
    assert_png(tmp_path / result.plot)


@pytest.mark.parametrize(
    ("accuracy", "best"),
    [
        ([60.0, 55.0, 50.0, 45.0, 40.0], "nothing"),  # best at the lowest I_NCE
        ([40.0, 50.0, 55.0, 58.0, 60.0], "same image"),  # best at the highest I_NCE: no falling side
        ([50.0, 62.0, 58.0, 52.0, 61.5], "background"),  # interior, but within 1 point of an end
    ],
)
def test_reverse_u_not_reproduced(tmp_path: Path, accuracy: list[float], best: str) -> None:
    settings = quiet(tmp_path)
    seed_reverse_u(settings, I_NCE, accuracy)
    result = reverse_u.run(settings)
    assert result.reproduced is False
    assert f"The best mean accuracy is at `{best}`, not an interior point clear of both ends" in result.verdict


def test_reverse_u_refuses_an_order_read_from_saturated_estimates(tmp_path: Path) -> None:
    settings = quiet(tmp_path)
    seed_reverse_u(settings, I_NCE, [38.0, 95.0, 90.0, 80.0, 45.0],
                   saturated=("background+position+digit", "same image"))
    result = reverse_u.run(settings)
    assert result.reproduced is False
    assert "Saturated estimates (within 5% of log(K+1); raise the batch): background+position+digit, same image." \
        in result.verdict


@pytest.mark.parametrize(
    ("i_nce", "accuracy", "expected"),
    [
        ([1, 2, 3], [60, 70, 65], True),
        ([3, 1, 2], [65, 60, 70], True),  # judged in I_NCE order, not input order
        ([1, 2, 3], [70, 60, 65], False),  # peak at the lowest I_NCE
        ([1, 2, 3], [60, 65, 70], False),  # peak at the highest I_NCE
        ([1, 2, 3], [60, 70, 69.5], False),  # within the 1-point margin of an end
        ([1, 2, 3], [69.0, 70.0, 69.0], True),  # exactly the margin
        ([1, 2], [60, 70], False),  # two points have no interior
        ([], [], False),
        ([1, 2, 3], [60, math.nan, 65], False),
        ([1, 2, 3, 4], [60, 70, 70, 60], True),  # a flat interior top
    ],
)
def test_interior_peak(i_nce: list[float], accuracy: list[float], expected: bool) -> None:
    assert reverse_u.interior_peak(i_nce, accuracy) is expected


def test_interior_peak_margin_is_a_parameter() -> None:
    assert reverse_u.interior_peak([1, 2, 3], [60, 70, 65], margin=5.0)
    assert not reverse_u.interior_peak([1, 2, 3], [60, 70, 65], margin=5.5)


# -- learned-views -----------------------------------------------------------------------------


def seed_learned_views(settings: RunSettings, raw: float, unsupervised: float | None,
                       semi: float | list[float]) -> None:
    """Seed the arms of ``settings.scale``: the unsupervised one only where that schedule runs it."""
    def probes(background: float | list[float]) -> dict[str, Any]:
        knn = [v - 5.0 for v in background] if isinstance(background, list) else background - 5.0
        return {"linear/background": background, "knn/background": knn, "linear/digit": 30.0,
                "linear/position": 5.0}

    recipes = learned_views.SCALES[settings.scale].arm_recipes()
    values = {"raw-ydbdr": raw, "learned-unsupervised": unsupervised, "learned-semi-supervised": semi}
    for name, recipe in recipes.items():
        if values[name] is not None:
            seed_arm(settings, name, recipe, probes(values[name]))
    seed_arm(settings, "random-init", recipes["raw-ydbdr"], probes(20.0), random_init=True)


def on_paper_scale(settings: RunSettings) -> RunSettings:
    return attrs.evolve(settings, scale="paper")


@pytest.mark.parametrize(("scale", "size"), [("cpu", 20000), ("paper", 105000)])
def test_each_scale_gives_the_learned_views_arms_stl10s_5000_labelled_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scale: str, size: int
) -> None:
    """Table 2's generator saw STL-10's 5000 labelled images: each arm's pool, labelled share and contrast."""
    recipes: dict[str, dict[str, Any]] = {}

    class Trained(Exception):
        pass

    def probe_last(name: str, recipe: dict[str, Any], settings: RunSettings) -> None:
        recipes[name] = recipe
        raise Trained  # every trained arm has been recorded by now

    monkeypatch.setattr(learned_views, "train_arms", lambda arms, settings: recipes.update(arms))
    monkeypatch.setattr(learned_views, "probe_random_init", probe_last)
    with pytest.raises(Trained):
        learned_views.run(attrs.evolve(quiet(tmp_path), scale=scale))
    expected = ["raw-ydbdr", "learned-semi-supervised", "random-init"]
    assert sorted(recipes) == sorted(expected + (["learned-unsupervised"] if scale == "paper" else []))
    for name, recipe in recipes.items():
        assert (recipe["data"]["size"], recipe["data"]["background_contrast"]) == (size, 0.3), name
    assert round(recipes["learned-semi-supervised"]["views"]["labelled_fraction"] * size) == 5000


def test_learned_views_reproduced_when_semi_supervised_beats_raw(tmp_path: Path) -> None:
    settings = on_paper_scale(quiet(tmp_path))
    seed_learned_views(settings, raw=55.0, unsupervised=50.0, semi=60.0)
    result = learned_views.run(settings)
    assert result.reproduced is True
    assert ("Mean background linear accuracy over 3 seed(s): semi-supervised learned 60.0%, raw Y | DbDr 55.0%, "
            "unsupervised learned 50.0% (random init 20.0%); semi-supervised minus raw +5.0 points (standard error "
            "0.0). The semi-supervised views beat the raw ones, and the unsupervised ones fall below raw") in result.verdict
    assert ("| learned-semi-supervised | 60.00 ± 0.00 | 55.00 ± 0.00 | 30.00 ± 0.00 | 5.00 ± 0.00 | 1.25 ± 0.00 | 3.00 |"
            in result.table)
    assert_png(tmp_path / result.plot)


def test_the_cpu_schedule_trains_no_unsupervised_arm(tmp_path: Path) -> None:
    settings = quiet(tmp_path)
    seed_learned_views(settings, raw=55.0, unsupervised=None, semi=[57.0, 58.0, 59.0])
    result = learned_views.run(settings)
    assert result.reproduced is True
    assert "| learned-unsupervised |" not in result.table and not (tmp_path / "learned-unsupervised").exists()
    assert result.verdict.endswith("The semi-supervised views beat the raw ones (the unsupervised arm runs with "
                                   "`--scale paper`).")
    assert sorted(result.data["arms"]) == ["learned-semi-supervised", "random-init", "raw-ydbdr"]


@pytest.mark.parametrize(("semi", "unsupervised"), [(54.0, 50.0), (55.0, 58.0)])  # below, or tied with, raw
def test_learned_views_not_reproduced(tmp_path: Path, semi: float, unsupervised: float) -> None:
    settings = on_paper_scale(quiet(tmp_path))
    seed_learned_views(settings, raw=55.0, unsupervised=unsupervised, semi=semi)
    result = learned_views.run(settings)
    assert result.reproduced is False
    assert f"semi-supervised learned {semi:.1f}%, raw Y | DbDr 55.0%" in result.verdict
    assert "The semi-supervised views do not beat the raw ones" in result.verdict
    if unsupervised > 55.0:
        assert "the unsupervised ones do not fall below raw" in result.verdict


@pytest.mark.parametrize(
    ("unsupervised", "clause"),
    [
        (54.0, "and the unsupervised ones fall below raw, as in Table 2"),
        (54.5, "the unsupervised ones are level with raw (not 1 point and 2 standard errors apart"),
        (55.9, "the unsupervised ones are level with raw (not 1 point and 2 standard errors apart"),
        (56.0, "the unsupervised ones do not fall below raw"),
    ],
)
def test_learned_views_unsupervised_clause_uses_the_margin(tmp_path: Path, unsupervised: float, clause: str) -> None:
    settings = on_paper_scale(quiet(tmp_path))
    seed_learned_views(settings, raw=55.0, unsupervised=unsupervised, semi=50.0)
    assert clause in learned_views.run(settings).verdict


def test_a_quick_run_has_no_verdict(tmp_path: Path) -> None:
    settings = quiet(tmp_path, quick=True)
    seed_learned_views(settings, raw=55.0, unsupervised=None, semi=60.0)
    result = learned_views.run(settings)
    assert result.reproduced is None and result.status == "smoke run" and result.quick


# -- the report: run_experiment, read_results, write_docs --------------------------------------


def test_run_experiment_writes_results_md_plot_and_result_json(tmp_path: Path) -> None:
    settings = quiet(tmp_path / "factors", quick=True)
    seed_factors(settings, FACTORS_HELD)
    result = run_experiment("factors", settings)
    assert result.status == "smoke run" and result.device.startswith("cpu") and "torch" in result.versions
    assert_png(tmp_path / "factors" / "plot.png")
    results_md = (tmp_path / "factors" / "results.md").read_text()
    assert results_md.startswith("# `factors`: ") and "**Result: smoke run.**" in results_md
    assert "![factors](plot.png)" in results_md and result.table in results_md
    saved = json.loads((tmp_path / "factors" / "result.json").read_text())
    assert saved["quick"] is True and saved["reproduced"] is None and saved["verdict"] == result.verdict

    [(read, folder)] = read_results(tmp_path)
    assert folder == tmp_path / "factors" and read.as_dict() == result.as_dict()


def seeded_results(root: Path, *, quick: bool) -> dict[str, ExperimentResult]:
    """factors (held) and negatives (did not hold) run on seeded arms under ``root``."""
    factors_settings = quiet(root / "factors", quick=quick)
    seed_factors(factors_settings, FACTORS_HELD)
    negatives_settings = quiet(root / "negatives", quick=quick)
    seed_negatives(negatives_settings, [50.0, 48.0, 47.0, 45.0, 40.0], [30.0] * 5)
    return {"factors": run_experiment("factors", factors_settings),
            "negatives": run_experiment("negatives", negatives_settings)}


def test_write_docs_refuses_quick_results_unless_allowed(tmp_path: Path) -> None:
    seeded_results(tmp_path / "runs", quick=True)
    docs = tmp_path / "docs" / "reproductions.md"
    with pytest.raises(ConfigError, match=r"factors, negatives .*--quick smoke runs"):
        write_docs(tmp_path / "runs", docs)
    assert not docs.exists()
    assert write_docs(tmp_path / "runs", docs, allow_quick=True) == docs
    page = docs.read_text()
    assert "| `factors` |" in page and "smoke run" in page and "![factors](reproductions/factors.png)" in page
    for name in ("factors", "negatives"):
        copied = tmp_path / "docs" / "reproductions" / f"{name}.png"
        assert copied.read_bytes() == (tmp_path / "runs" / name / "plot.png").read_bytes()


def test_write_docs_lists_every_result_with_its_status(tmp_path: Path) -> None:
    results = seeded_results(tmp_path / "runs", quick=False)
    docs = write_docs(tmp_path / "runs", tmp_path / "reproductions.md")
    page = docs.read_text()
    assert f"| `factors` | {factors.TITLE} | reproduced | 12.0 |" in page
    assert f"| `negatives` | {negatives.TITLE} | not reproduced | 15.0 |" in page
    assert "**1 of 4 findings reproduced.**" in page and f"code {code_version()}" in page
    assert "**Seeds:** 3 per arm (0, 1, 2)" in page and "`contrastkit experiment factors --seeds 3`" in page
    assert page.index("## `factors`") < page.index("## `negatives`")  # the order of EXPERIMENTS
    assert results["negatives"].verdict in page and "![negatives](reproductions/negatives.png)" in page
    summary = page.split("## `factors`")[0]
    assert summary.count("\n| `") == 4  # every experiment; the two that did not run say so
    assert f"| `reverse-u` | {reverse_u.TITLE} | not run yet | – |" in summary
    assert "**Not run yet** with the current code: `contrastkit experiment learned-views`" in page
    # a failure's measured evidence stays on the page until its seeded rerun lands
    assert f"**Why it failed before, measured:** {learned_views.EVIDENCE}" in page
    assert f"**Why, measured:** {negatives.EVIDENCE}" in page  # and is part of a result's section


def test_write_docs_keeps_results_whose_run_folders_are_gone(tmp_path: Path) -> None:
    results = seeded_results(tmp_path / "runs", quick=False)
    docs = tmp_path / "docs" / "reproductions.md"
    first = write_docs(tmp_path / "runs", docs).read_text()
    for name in ("factors", "negatives"):
        kept = json.loads((tmp_path / "docs" / "reproductions" / f"{name}.json").read_text())
        assert json.dumps(kept) == json.dumps(results[name].as_dict())  # as written (nan included)
    # the run folders are scratch: a new checkout regenerates the same page from what is kept
    shutil.rmtree(tmp_path / "runs")
    assert write_docs(tmp_path / "runs", docs).read_text() == first
    # one experiment rerun (here: negatives now held) replaces its section; the other is kept
    negatives_settings = quiet(tmp_path / "runs" / "negatives")
    seed_negatives(negatives_settings, [40.0, 45.0, 47.0, 48.0, 60.0], [30.0] * 5)
    rerun = run_experiment("negatives", negatives_settings)
    page = write_docs(tmp_path / "runs", docs).read_text()
    assert rerun.verdict in page and results["negatives"].verdict not in page
    assert results["factors"].verdict in page and "**2 of 4 findings reproduced.**" in page
    kept = json.loads((tmp_path / "docs" / "reproductions" / "negatives.json").read_text())
    assert kept["verdict"] == rerun.verdict


def test_reproductions_page_lists_each_status() -> None:
    def result(name: str, reproduced: bool | None) -> tuple[ExperimentResult, str]:
        return ExperimentResult(name=name, title=name.upper(), paper="p", criterion="c", reproduced=reproduced,
                                verdict=f"verdict of {name}", table="| t |", plot="plot.png", seconds=120.0,
                                budget_seconds=1800.0, quick=reproduced is None, command=f"ck {name}",
                                data={}), f"img/{name}.png"

    page = reproductions_page([result("a", True), result("b", False), result("c", None)])
    for line in ("| `a` | A | reproduced | 2.0 |", "| `b` | B | not reproduced | 2.0 |", "| `c` | C | smoke run | 2.0 |"):
        assert line in page
    assert page.count("## `") == 3 + len(EXPERIMENTS) and "![b](img/b.png)" in page and "**Result: not reproduced.** verdict of b" in page


def test_read_results_and_write_docs_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no experiment results under"):
        write_docs(tmp_path, tmp_path / "page.md")
    assert read_results(tmp_path) == []
    (tmp_path / "negatives").mkdir()
    (tmp_path / "negatives" / "result.json").write_text('{"name": "negatives"}')
    with pytest.raises(ConfigError, match="not an experiment result"):
        read_results(tmp_path)
    assert list(EXPERIMENTS) == ["factors", "reverse-u", "learned-views", "negatives"]


def test_factors_verdict_names_a_row_whose_bound_stayed_at_chance(tmp_path: Path) -> None:
    settings = quiet(tmp_path)
    seed_factors(settings, FACTORS_HELD)
    for record in (tmp_path / "share-digit").glob("seed=*/arm.json"):
        data = json.loads(record.read_text())
        data["final_metrics"]["mi_lower_bound/v1-v2"] = 0.001
        record.write_text(json.dumps(data))
    result = factors.run(settings)
    assert "The digit row's encoder found nothing its views share" in result.verdict
    assert "background row's encoder found nothing" not in result.verdict


def test_factors_win_inside_the_margin_is_not_a_reproduction(tmp_path: Path) -> None:
    settings = quiet(tmp_path)
    errors = dict(FACTORS_HELD)
    errors["share-position"] = (23.0, 75.0, 3.0)  # the digit row wins the digit task by 3 points only
    seed_factors(settings, errors)
    result = factors.run(settings)
    assert result.reproduced is False and "2 of 3 tasks (background, position)" in result.verdict


def test_learned_views_gap_below_one_point_is_not_a_reproduction(tmp_path: Path) -> None:
    settings = quiet(tmp_path)
    seed_learned_views(settings, raw=55.0, unsupervised=50.0, semi=55.5)
    result = learned_views.run(settings)
    assert result.reproduced is False and "do not beat the raw ones by 1 point" in result.verdict


def test_negatives_counts_must_increase(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match="^counts: must be at least 2 increasing"):
        negatives.run(quiet(tmp_path), counts=(64, 16))


def test_over_budget_is_shown(tmp_path: Path) -> None:
    r = ExperimentResult(name="x", title="X", paper="p", criterion="c", reproduced=True, verdict="v", table="| t |",
                         plot="plot.png", seconds=2000.0, budget_seconds=1800.0, quick=False, command="c", data={})
    assert r.over_budget and "**over budget**" in r.markdown()
    assert "(over budget)" in reproductions_page([(r, "x.png")])


# -- the noise rule: a margin counts only beyond twice the standard error over seeds ---------------


def test_factors_noisy_win_is_not_a_reproduction(tmp_path: Path) -> None:
    """Digit error 20 vs 30 % on the means (past the 5-point margin), but seeds spread too far to tell."""
    settings = quiet(tmp_path)
    errors: dict[str, Any] = dict(FACTORS_HELD)
    errors["share-digit"] = ([10.0, 20.0, 30.0], 80.0, 10.0)
    errors["share-position"] = ([15.0, 30.0, 45.0], 75.0, 3.0)
    for arm, (digit, background, position) in errors.items():
        probes = {"linear/digit": [100.0 - d for d in digit] if isinstance(digit, list) else 100.0 - digit,
                  "linear/background": 100.0 - background, "linear/position": position}
        recipe = factors.recipe(["digit"] if arm == "random-init" else [arm.removeprefix("share-")])
        seed_arm(settings, arm, recipe, probes, random_init=arm == "random-init")
    result = factors.run(settings)
    assert result.reproduced is False and "2 of 3 tasks (background, position)" in result.verdict
    assert "digit: 20.0 % vs best other row 30.0 %" in result.verdict
    assert "Within noise (difference of means <= 2 standard errors): digit vs share-position (+10.0 ± 10.4)" \
        in result.verdict
    assert "| only the digit | 20.00 ± 10.00 |" in result.table


def test_negatives_noisy_gain_is_not_a_reproduction(tmp_path: Path) -> None:
    settings = quiet(tmp_path)
    seed_negatives(settings, [40.0, 42.0, 45.0, 47.0, [30.0, 50.0, 70.0]], [30.0] * 5)
    result = negatives.run(settings)
    assert result.reproduced is False
    assert "Spearman rho = 1.00, largest vs smallest K +10.0 points (standard error 11.5)" in result.verdict


def test_learned_views_noisy_gap_is_not_a_reproduction(tmp_path: Path) -> None:
    settings = quiet(tmp_path)
    seed_learned_views(settings, raw=55.0, unsupervised=50.0, semi=[50.0, 60.0, 70.0])
    result = learned_views.run(settings)
    assert result.reproduced is False
    assert "semi-supervised minus raw +5.0 points (standard error 5.8)" in result.verdict
    assert "do not beat the raw ones by 1 point and 2 standard errors" in result.verdict


def test_reverse_u_noisy_peak_is_not_a_reproduction(tmp_path: Path) -> None:
    settings = quiet(tmp_path)
    seed_reverse_u(settings, I_NCE, [38.0, [40.0, 95.0, 150.0], 90.0, 80.0, [40.0, 45.0, 50.0]])
    result = reverse_u.run(settings)
    assert result.reproduced is False and "Within noise" in result.verdict
    settings = quiet(tmp_path / "tight")
    seed_reverse_u(settings, I_NCE, [38.0, [94.0, 95.0, 96.0], 90.0, 80.0, [44.0, 45.0, 46.0]])
    assert reverse_u.run(settings).reproduced is True


@pytest.mark.parametrize("experiment", ["factors", "negatives", "learned-views", "reverse-u"])
def test_one_seed_never_reproduces(tmp_path: Path, experiment: str) -> None:
    """The same clean numbers that reproduce over 3 seeds: with one seed the noise is unknown."""
    settings = quiet(tmp_path, seeds=(0,))
    if experiment == "factors":
        seed_factors(settings, FACTORS_HELD)
    elif experiment == "negatives":
        seed_negatives(settings, [40.0, 42.0, 45.0, 47.0, 50.0], [30.0] * 5)
    elif experiment == "learned-views":
        seed_learned_views(settings, raw=55.0, unsupervised=50.0, semi=60.0)
    else:
        seed_reverse_u(settings, I_NCE, [38.0, 95.0, 90.0, 80.0, 45.0])
    assert EXPERIMENTS[experiment].run(settings).reproduced is False

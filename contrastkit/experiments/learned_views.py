"""``learned-views``: seed 000's Table 2 direction — semi-supervised learned views vs raw colour-split views.

Three arms (two on the cpu schedule) on the embedded data, the same encoders, augmentation and stage-2 schedule:

- **raw Y | DbDr**: CMC's colour split of YDbDr (``color-split``), contrastive training only;
- **learned, unsupervised** (``--scale paper`` only: the cpu budget has no room for it): stage 1 learns
  InfoMin's pixel-wise flow ``g`` adversarially (``min_g max_f I_NCE(g(X)_1; g(X)_2:3)``, gradient
  reversal), stage 2 freezes ``g`` and trains fresh encoders on its views;
- **learned, semi-supervised**: as above, plus classifiers ``c1, c2`` on the views of a labelled
  10% of the images, whose cross-entropy of the background class ``g`` (and ``c1, c2``) minimise.

The random-init encoder is probed too. InfoMin's finding (STL-10, YDbDr): semi-supervised views
beat raw views (87.0 vs 86.6%), unsupervised ones fall below them (84.3%).
"""

from __future__ import annotations

from typing import Any

import attrs

from contrastkit.experiments.arms import probe_random_init, train_arms
from contrastkit.experiments.plots import Panel, bar_panels
from contrastkit.experiments.results import ExperimentResult, markdown_table, seed_table
from contrastkit.experiments.settings import RunSettings
from contrastkit.experiments.stats import Summary, clears, difference

__all__ = ["BUDGET_SECONDS", "CRITERION", "PAPER", "SCALES", "TITLE", "Schedule", "learned_recipe", "raw_recipe", "run"]

TITLE = "semi-supervised learned views vs raw colour-split views (seed 000, Table 2)"
PAPER = (
    "InfoMin (Tian et al. 2020), Table 2 (STL-10, YDbDr input): views from a semi-supervised view generator "
    "reach 87.0% vs 86.6% for the raw Y | DbDr views, while an unsupervised (purely adversarial) generator "
    "falls below raw views (84.3%). With RGB input (R | GB) the gap is larger: 86.0 vs 81.5%."
)
CRITERION = (
    "on the means over seeds, the semi-supervised learned views give a background linear-probe accuracy at least "
    "1 point above the raw Y | DbDr views after the same contrastive schedule, and more than twice the standard "
    "error of the difference above them."
)
MARGIN = 1.0
#: The investigation of the failure, measured on 2026-12-05 and 2026-12-06.
EVIDENCE = (
    "The semi-supervised term does not learn in stage 1: the logged `view_maker/classification` (c1 + c2 "
    "cross-entropy, chance 2 log 10 = 4.61) went 4.629 -> 4.583 (seed 0) and 4.612 -> 4.574 (seed 1) over 300 "
    "steps, so g plays the unsupervised game. Its wiring is right (gradients reach c1, c2 and g; g minimises "
    "the term; tested). Training c1, c2 alone on the identity views for 300 steps isolates the cause, the "
    "labels per step: the current set-up (lr 3e-3, width 16, 10% labelled = ~13 images per batch) reached "
    "15.6% held-out accuracy; classifier lr 1e-2 27.4%; 4 conv layers 22.5%; no augmentation 25.8% "
    "(overfits the 410 labelled images); every image labelled 41.3%. Even with every image labelled inside the "
    "adversarial game the term only fell 4.613 -> 4.439, and those views gave 83.85% background accuracy, "
    "below raw. Per seed: raw Y | DbDr 93.15% (seed 0) and 90.8% (seed 1); semi-supervised 85.15% and 72.15%. "
    "InfoMin alternates whole labelled and unlabelled batches (seed 000: 'labeled batch and unlabeled batch are "
    "iteratively used'); until 2026-12-06 contrastkit mixed ~13 labelled images into each batch. The arm now uses "
    "InfoMin's schedule (`labelled_batches = \"alternate\"`: a batch of 128 labelled images every other step). "
    "Screened once before the seeded run (seed 0, 2 shared CPU cores): the labelled-batch cross-entropy went "
    "4.61 -> 4.51 over the 300 steps (TensorBoard's `view_maker/classification` averages over all steps, the "
    "unlabelled ones adding 0, so it reads 2.40 -> 2.17), against 4.58 with mixed batches: it still barely leaves "
    "chance. Whole labelled batches do not remove the bottleneck; what remains is the classifiers themselves "
    "(two 3x3 convolutions of width 16 and a global pool) learning the background class from 410 labelled "
    "images in 150 labelled steps. The 3-seed run with alternating batches (2026-12-06): semi-supervised "
    "86.55 / 75.25 / 93.90% vs unsupervised 89.15 / 74.10 / 93.25% per seed, as with mixed batches (88.10 / "
    "73.60 / 92.15%): the term still has no effect. A classifier warm-up (a first stage of 300 steps with g held "
    "at lr 1e-9, c1, c2 at their 3e-3, alternating batches; seed 0, screened once) took the labelled-batch "
    "cross-entropy only from 4.61 to 4.48, so pre-training c1, c2 at this size does not make the term learn "
    "either; that run was stopped before its views were judged. The classifiers themselves were then screened "
    "off the game (2026-12-06, seed 0, 1 CPU thread): trained alone on the identity views of the 409 labelled "
    "images, whole labelled batches of 128, Adam 3e-3, 150 steps, scored on 2000 test images. The two-layer head "
    "(width 16, global pool): cross-entropy 4.62 -> 3.81 on the training batches, 4.06 held out, c1 / c2 "
    "accuracy 29.4% / 21.5%; the same head pooled to a 4x4 grid: 3.03 held out, 48.2% / 52.7%; the encoders' own "
    "conv net (`convnet`, width 32, depth 4, global pool) plus a linear layer: 0.10 on the training batches, "
    "1.49 held out, 81.8% / 76.7%. InfoMin does not specify c1, c2; the two-layer head cannot read the "
    "background class off these views at all, so the term could not keep I(v; y). The semi-supervised arm now "
    "gives c1, c2 the encoders' architecture (`classifier_depth = 4`, `classifier_width = 32`). With it (3-seed "
    "run of 2026-12-06, code d3c5009) the term leaves chance inside the game: TensorBoard's "
    "`view_maker/classification` (the mean over all steps, unlabelled ones adding 0) went 2.32-2.36 -> "
    "1.05-1.09 in every seed, i.e. about 4.7 -> 2.1 nats on the labelled batches (chance 4.61). Yet the views "
    "still do not beat raw: semi-supervised 93.35 / 84.80 / 77.40% vs raw 93.00 / 91.75 / 88.95% per seed (mean "
    "85.2 vs 91.2%), and the seed-to-seed spread of both learned arms (sd 8-10 points) is four times the raw "
    "arm's. The remaining cause is therefore not the supervised term: at 300 adversarial steps g's views vary "
    "from seed to seed by more than the 1-point effect the criterion asks for. "
    "That spread, measured (2026-12-06, from the kept per-seed results of that run): across its 9 trained runs "
    "the background accuracy follows the I_NCE bound each reached at the end of stage 2 (Pearson r = 0.90; raw "
    "seed 2 stopped at 1.19 nats and 80.25%, seeds 0 and 1 at 1.54-1.63 nats and 92%): at 400 steps stage 2 had "
    "not converged, and how far a seed got decided its accuracy, whatever the views. Stage 2 screened longer "
    "(2 CPU cores shared by up to four runs): raw Y | DbDr at 800 steps 97.05 / 97.70 / 96.45% over seeds 0-2 "
    "(sd 0.6, I_NCE 2.45-2.69 nats), at 600 steps 96.00% (seed 0); semi-supervised at 800 steps "
    "97.35 / 97.20 / 96.90% over seeds 0-2 (mean 97.15 vs raw 97.07%, I_NCE 2.70-2.76 nats). Trained to "
    "convergence both views read the background class at about "
    "97%, 3 points below perfect, and the paper's own YDbDr gap (87.0 +- 0.3 vs 86.6 +- 0.2%) is 0.4 points, "
    "under this criterion's 1-point margin: Table 2's YDbDr column would not pass it either. Its RGB column "
    "has the larger effect (86.0 vs 81.5%); here, seed 0 at 800 steps, raw R | GB views reached 96.15% (I_NCE "
    "3.53 nats: R and GB share more than Y and DbDr do, as InfoMin argues) and semi-supervised views learned "
    "from RGB 89.10% (I_NCE 2.31), below raw rather than above it. Without the MLP head (CMC's encoders "
    "contrast their own last layer; the change that made `factors` reproduce), a learned 64-d layer compared "
    "directly by the critic (`encoder.fc_dim = 64`, `critic.head = \"none\"`; 2026-12-06, seed 0, 600 stage-2 "
    "steps, two runs of 1 CPU thread sharing the cores): raw Y | DbDr 91.70% (kNN 87.15%, I_NCE 1.86 nats), "
    "semi-supervised 90.15% (kNN 82.55%, I_NCE 1.96 nats), below raw, so the recipe keeps the head. The cpu "
    "schedule now trains stage 2 for 600 "
    "steps (800, with 3 seeds of both judged arms, takes about 30 minutes on 2 cores: no margin for the "
    "budget) and leaves the unsupervised arm, which the criterion does not judge, to `--scale paper`. Its "
    "3-seed verdict at full texture contrast (code 4d0ebcb, 27.3 min): semi-supervised 95.70 / 96.05 / 96.30% "
    "(96.0 +- 0.3) vs raw 96.05 / 96.50 / 94.15% (95.6 +- 1.3), +0.5 points, standard error 0.7: Table 2's "
    "direction and size, not the margin. Both failures on this data share a measured cause: converged, any "
    "recipe reads the full-contrast background class at about 97% (raw and learned views here; in `negatives` "
    "the bank at K = 16 and K = 4095 after 2000 steps, 97.35 and 97.30%), while Table 2 was measured where "
    "raw views read STL-10 at 86.6%. One variant gave the probe room (2026-12-06, code bd58783): textures "
    "at 0.3 contrast, the value `factors` already uses (chosen there for Table 1's salient digits, not tuned "
    "here), decided on the raw arm alone (seed 0: 75.25%, kNN 51.05%) before any learned arm was trained at "
    "it. Raw Y | DbDr views then also share the digit and its position (digit linear 27.4%, position 2.8 px, "
    "against 14.8% and 5.3 px at full contrast), the nuisance InfoMin's generator is meant to leave out. Its "
    "3-seed run (38.0 min, over the budget; that day's machine took 11.9 min for the raw arm against 8.0 the "
    "day before, same network and steps): raw 75.25 / 74.85 / 73.40% (74.5 +- 1.0), semi-supervised 60.00 / "
    "78.75 / 64.40% "
    "(67.7 +- 9.8), -6.8 points, standard error 5.7 (random init 38.9%). The classifier term leaves chance "
    "less than at full contrast (`view_maker/classification` 2.32 -> 1.66-1.68 against 1.05-1.08): on 10% "
    "labels c1, c2 keep less of the faint texture in g's views, and the learned arm's seed spread (sd 9.8 "
    "against raw's 1.0) is back. The recipe then went back to full contrast. "
    "Table 2's semi-supervised generator saw STL-10's 5000 labelled images (and 100k unlabelled ones); the "
    "arm saw 410, and the classifiers were the measured bottleneck. With STL-10's count (2026-12-07, code "
    "1428dd5: a pool of 20000 images, 25% labelled, and the 0.3 contrast that gives the probe room, both fixed "
    "from the paper and the ceiling before the run), the 3-seed verdict above: semi-supervised 69.55 / 68.50 / "
    "58.95% (65.7 +- 5.8) vs raw Y | DbDr 79.65 / 65.50 / 71.70% (72.3 +- 7.1), -6.6 points, standard error "
    "5.3 (random init 38.5%). It ran 40.4 min: the same steps as the 27.3-min full-contrast run, on a machine "
    "that took 3.9 min per raw seed against 2.7. The labels alone did not make the term stronger in 300 steps "
    "(`view_maker/classification` 2.45 -> 1.68-1.74, with 410 labels 2.32 -> 1.66-1.68). What decides each "
    "seed is how far stage 2 got: over the six trained runs the background accuracy follows the I_NCE bound at "
    "the end (Pearson r = 0.83; 0.94 within raw, 0.98 within learned; raw 2.05 / 1.73 / 1.97 nats, learned "
    "1.53 / 1.46 / 1.28). A 4x longer stage 1 (1200 steps, seeds 0 and 1, one CPU thread each; screen) made "
    "the term learn (2.45 -> 0.98-1.00, about 2.0 nats on the labelled batches against 3.4 at 300 steps) but "
    "the views then read 61.60% (seed 0, stage-2 I_NCE 1.02 nats) and 78.70% (seed 1, 2.07 nats) against raw "
    "79.65 and 65.50%: -18.05 and +13.2 points, again following stage 2's I_NCE rather than the views."
    " With stage 2 converged (1800 steps, seed 0, one CPU thread each; screen, over the budget: raw 17 and "
    "learned 29 min) the seeds' I_NCE meet, raw 3.28 and learned 3.26 nats, and the probe still has room: raw "
    "Y | DbDr 94.80% (kNN 87.35%), semi-supervised (stage 1 of 300 steps) 91.40% (kNN 72.10%), 3.4 points "
    "below raw. Seeds 1 and 2 of that screen (2026-12-07, the same recipes, two runs of 1 CPU thread at a "
    "time through `train_arms`): semi-supervised 93.20 / 92.60% (kNN 75.25 / 76.05%, I_NCE 3.44 / 3.41 nats), "
    "raw 92.60 / 93.50% (kNN 74.35 / 82.65%, I_NCE 3.12 / 3.28 nats). Over seeds 0-2 the converged "
    "semi-supervised views read 92.4 +- 0.9% against raw 93.6 +- 1.1%, -1.2 points (standard error 0.8; per "
    "seed -3.4 / +0.6 / -0.9): a screen, not the verdict, and not Table 2's direction. So at this contrast the "
    "600-step stage 2 hides the views behind convergence noise, and once "
    "it converges the 300-step generator's views lose to raw ones. What Table 2 needs, a long stage 1 and a "
    "converged stage 2 on each of 3 seeds, is about 1.5 h on 2 cores; `--scale paper` (5000 and 10000 "
    "steps on a GPU) is that run. This recipe keeps STL-10's label count and the 0.3 contrast (the verdict "
    "above); the full-contrast verdict is the one recorded earlier in this section. "
    "The long stage 1 with a converged stage 2 was then screened on 2 CPU cores (2026-12-07, code 5cb75d7; plan, "
    "rule and consequence written down before it started: the semi-supervised arm with a 1200-step stage 1 and "
    "an 1800-step stage 2, otherwise this recipe, seeds 0-2, judged by this section's criterion against the "
    "converged screen's raw arm above, and recorded as a screen whatever it gave; three runs of 1 CPU thread "
    "sharing 2 cores, about 1.5 h each; stopped once at step 250 of stage 1 and resumed from that checkpoint). "
    "The term then learns in every seed (`view_maker/classification` 2.45 -> 0.98 / 1.04 / 0.91, about 2 nats "
    "on the labelled batches against chance's 4.61), stage 2 reaches I_NCE 2.90 / 3.15 / 3.20 nats, and the "
    "views read 92.20 / 94.30 / 94.65% (kNN 78.10 / 83.25 / 84.55%; digit linear 33.10 / 37.05 / 36.70%) against "
    "raw 94.80 / 92.60 / 93.50%: semi-supervised 93.7 +- 1.3% vs raw 93.6 +- 1.1%, +0.1 points (standard error "
    "1.0; per seed -2.6 / +1.7 / +1.15). A stage 1 long enough for the supervised term moves the learned views "
    "from 1.2 points below raw to level with them, not above: converged on this data they match raw Y | DbDr "
    "views, which is also what Table 2's YDbDr column shows within its own error (87.0 +- 0.3 vs 86.6 +- 0.2%, "
    "a 0.4-point gap, under this criterion's 1-point margin and under the 1.0-point standard error of three "
    "seeds here)."
)
BUDGET_SECONDS = 30 * 60
LABEL = "background"
VIEW_STEPS = 300
CONTRAST_STEPS = 600
#: STL-10's 5000 labelled images (Table 2's semi-supervised generator sees them and 100k unlabelled ones):
#: with 410 (10% of 4096) the classifiers c1, c2 were the measured bottleneck of the supervised term.
LABELLED_IMAGES = 5000
SIZE = 20000
#: ``data.background_contrast``: at full contrast every converged recipe reads the background at ~97%,
#: leaving no room for Table 2's gap (raw views read STL-10 at 86.6%); 0.3 is `factors`' value.
BACKGROUND_CONTRAST = 0.3


@attrs.frozen
class Schedule:
    """One ``--scale`` of the experiment: stage-1 and stage-2 steps, and whether the unsupervised arm runs.

    Example:
        >>> SCALES["cpu"].unsupervised_arm, SCALES["paper"].unsupervised_arm
        (False, True)
    """

    view_steps: int
    contrast_steps: int
    #: Table 2's unsupervised row; the criterion does not judge it, and on 2 CPU cores its three seeds
    #: would take the experiment over its 30 minutes.
    unsupervised_arm: bool
    #: Images in the pool (``data.size``): STL-10's 5000 labelled ones are drawn from it at both scales;
    #: ``paper`` also has STL-10's 100k unlabelled ones.
    size: int = SIZE

    @property
    def labelled_fraction(self) -> float:
        """``views.labelled_fraction``: :data:`LABELLED_IMAGES` of the ``size`` images."""
        return LABELLED_IMAGES / self.size

    def arm_recipes(self) -> dict[str, dict[str, Any]]:
        """Each trained arm's recipe on this schedule (the random-init probe uses the raw one).

        Example:
            >>> sorted(SCALES["cpu"].arm_recipes())
            ['learned-semi-supervised', 'raw-ydbdr']
        """
        learned: dict[str, Any] = {"view_steps": self.view_steps, "contrast_steps": self.contrast_steps, "size": self.size,
                   "labelled_fraction": self.labelled_fraction}
        recipes = {"raw-ydbdr": raw_recipe(steps=self.contrast_steps, size=self.size)}
        if self.unsupervised_arm:
            recipes["learned-unsupervised"] = learned_recipe(supervised=False, **learned)
        recipes["learned-semi-supervised"] = learned_recipe(supervised=True, **learned)
        return recipes


#: Schedules: ``cpu`` is sized for 3 seeds in 30 minutes on 2 cores (27.3 min on 2026-12-06's machine,
#: 40.4 on 2026-12-07's, same steps); ``paper`` is for a GPU (``--device cuda``).
SCALES: dict[str, Schedule] = {
    "cpu": Schedule(view_steps=VIEW_STEPS, contrast_steps=CONTRAST_STEPS, unsupervised_arm=False),
    "paper": Schedule(view_steps=5000, contrast_steps=10000, unsupervised_arm=True, size=105000),
}

_SETUP = (
    "colorful-moving-digits ({size} images of 32 px, colours drawn per image, textures at contrast "
    "{contrast:g}), InfoMin's augmentation at "
    "strength 0.5 drawn once per image and shared by both views, one conv net per view (width 32, depth 4), "
    "cosine critic with an MLP head (64-d, T = 0.1), two-way in-batch InfoNCE, AdamW 2e-3, batch 128. "
    "Learned arms: stage 1 = {view_steps} steps of `learned-flow` (4 flow layers, g's Adam at 5e-4; "
    "semi-supervised: c1, c2 each the encoders' conv net (width 32, depth 4) plus a linear layer, at 3e-3, on "
    "{labelled} labelled images (STL-10 has 5000), InfoMin's alternating labelled and "
    "unlabelled batches), stage 2 = g frozen, fresh encoders, "
    "{contrast_steps} steps. Raw arm: {contrast_steps} steps on `color-split` YDbDr [[0], [1, 2]]. The "
    "unsupervised learned arm (Table 2's middle row) runs with `--scale paper` only: its 3 seeds do not fit "
    "the 30-minute cpu budget."
)


def _base(steps: int, size: int) -> dict[str, Any]:
    return {
        "data": {"name": "colorful-moving-digits", "size": size, "palette": "random",
                 "background_contrast": BACKGROUND_CONTRAST},
        "augment": {"name": "infomin", "strength": 0.5},
        "encoder": {"name": "convnet", "width": 32},
        "critic": {"name": "cosine", "head": "mlp", "embedding_dim": 64, "temperature": 0.1},
        "negatives": {"name": "in-batch"},
        "objective": {"name": "infonce", "two_way": True},
        "train": {"epochs": 1000, "max_steps": steps, "batch_size": 128, "optimizer": "adamw", "lr": 0.002,
                  "warmup_steps": 20, "seed": 0, "checkpoint_every_n_steps": 250},
        "eval": {"knn": True, "knn_k": 20, "linear": True, "labels": ["background", "digit", "position"]},
        "log": {"every_n_steps": 25},
    }


def raw_recipe(*, steps: int = CONTRAST_STEPS, size: int = SIZE) -> dict[str, Any]:
    """CMC's raw Y | DbDr views, one shared augmentation.

    Example:
        >>> raw_recipe()["views"]["space"]
        'ydbdr'
    """
    return {**_base(steps, size), "views": {"name": "color-split", "space": "ydbdr", "groups": [[0], [1, 2]],
                                     "augment": "shared"}}


def learned_recipe(*, supervised: bool, view_steps: int = VIEW_STEPS, contrast_steps: int = CONTRAST_STEPS,
                   size: int = SIZE, labelled_fraction: float = LABELLED_IMAGES / SIZE) -> dict[str, Any]:
    """The two-stage InfoMin recipe (``examples/infomin.toml``), semi-supervised or not.

    Example:
        >>> [s["name"] for s in learned_recipe(supervised=True)["stages"]]
        ['views', 'contrast']
        >>> round(learned_recipe(supervised=True)["views"]["labelled_fraction"] * SIZE)  # STL-10's labelled images
        5000
    """
    views: dict[str, Any] = {"name": "learned-flow", "space": "ydbdr", "split": [[0], [1, 2]], "num_layers": 4,
                             "hidden": 32, "mode": "adversarial"}
    if supervised:
        views |= {"supervised_label": LABEL, "num_classes": 10, "classifier_width": 32, "classifier_depth": 4,
                  "supervised_weight": 1.0,
                  "labelled_fraction": labelled_fraction, "classifier_lr": 0.003, "labelled_batches": "alternate"}
    recipe = {**_base(contrast_steps, size), "views": views}
    recipe["train"] = {**recipe["train"], "view_maker_lr": 0.0005}
    recipe["stages"] = [
        {"name": "views", "set": {"views.mode": "adversarial", "train.max_steps": view_steps}},
        {"name": "contrast", "set": {"views.mode": "frozen", "train.max_steps": contrast_steps},
         "carry": ["view_maker"]},
    ]
    return recipe


def _unsupervised_clause(unsup: Summary, raw: Summary) -> str:
    """The verdict's second half: where the unsupervised views land against raw ones, by the same rule."""
    if clears(raw, unsup, MARGIN):
        return ", and the unsupervised ones fall below raw, as in Table 2."
    if clears(unsup, raw, MARGIN):
        return "; the unsupervised ones do not fall below raw (Table 2 has them below)."
    return (f"; the unsupervised ones are level with raw (not {MARGIN:g} point and 2 standard errors apart; "
            "Table 2 has them below).")


def run(settings: RunSettings) -> ExperimentResult:
    """Train the raw and both learned arms (every seed), probe them and the random-init encoders, and judge.

    ``contrastkit.experiments.run_experiment("learned-views", ...)`` calls it with the schedule of
    ``settings.scale`` from :data:`SCALES`.

    Example:
        >>> SCALES["cpu"].contrast_steps, learned_recipe(supervised=True)["views"]["classifier_depth"]
        (600, 4)
    """
    schedule = SCALES[settings.scale]
    recipes = schedule.arm_recipes()
    arms = train_arms(recipes, settings)
    arms["random-init"] = probe_random_init("random-init", recipes["raw-ydbdr"], settings)
    header = ["views", f"{LABEL} linear top-1 (%)", f"{LABEL} kNN top-1 (%)", "digit linear top-1 (%)",
              "position linear error (px)", "I_NCE bound at the end (nats)", "train min"]
    rows = [[name, a.probe("linear", LABEL), a.probe("knn", LABEL), a.probe("linear", "digit"),
             a.probe("linear", "position"), a.metric("mi_lower_bound/v1-v2"),
             round(a.seconds / 60, 1)] for name, a in arms.items()]
    table = markdown_table(header, rows)
    table += "\n\nEvery seed:\n\n" + seed_table(arms, [
        (f"{LABEL} linear top-1 (%)", lambda r: r.probe("linear", LABEL)),
        (f"{LABEL} kNN top-1 (%)", lambda r: r.probe("knn", LABEL)),
    ])
    raw = arms["raw-ydbdr"].probe("linear", LABEL)
    semi = arms["learned-semi-supervised"].probe("linear", LABEL)
    won = clears(semi, raw, MARGIN)
    gap = difference(semi, raw)
    reproduced = None if settings.quick else won
    unsup = arms["learned-unsupervised"].probe("linear", LABEL) if "learned-unsupervised" in arms else None
    verdict = (
        f"Mean background linear accuracy over {len(settings.seeds)} seed(s): semi-supervised learned "
        f"{semi.mean:.1f}%, raw Y | DbDr {raw.mean:.1f}%"
        + (f", unsupervised learned {unsup.mean:.1f}%" if unsup is not None else "")
        + f" (random init {arms['random-init'].probe('linear', LABEL).mean:.1f}%); semi-supervised minus raw "
        f"{gap.mean:+.1f} points (standard error {gap.se:.1f}). "
        + ("The semi-supervised views beat the raw ones" if won else "The semi-supervised views do "
           f"not beat the raw ones by {MARGIN:g} point and 2 standard errors")
        + (_unsupervised_clause(unsup, raw) if unsup is not None
           else " (the unsupervised arm runs with `--scale paper`).")
    )
    plot = bar_panels(
        settings.out_dir / "plot.png", "seed 000 Table 2 direction on the embedded data (mean, sd, seeds)",
        [Panel(f"{LABEL} linear top-1 (%)", [(n.replace("-", " "), a.probe("linear", LABEL)) for n, a in arms.items()]),
         Panel(f"{LABEL} kNN top-1 (%)", [(n.replace("-", " "), a.probe("knn", LABEL)) for n, a in arms.items()])],
    )
    return ExperimentResult(
        name="learned-views", title=TITLE, paper=PAPER, criterion=CRITERION, reproduced=reproduced, verdict=verdict,
        table=table, plot=plot.name, seconds=sum(a.seconds for a in arms.values()), budget_seconds=BUDGET_SECONDS,
        quick=settings.quick, command="contrastkit experiment learned-views",
        setup=_SETUP.format(view_steps=schedule.view_steps, contrast_steps=schedule.contrast_steps,
                            size=schedule.size, labelled=LABELLED_IMAGES, contrast=BACKGROUND_CONTRAST),
        data={"arms": {n: a.as_dict() for n, a in arms.items()}},
    )

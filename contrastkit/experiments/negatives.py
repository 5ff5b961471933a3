"""``negatives``: CMC's finding that accuracy rises with the number of negatives K drawn from a memory bank.

Five arms of CMC's L | ab recipe on the embedded data, identical but for ``negatives.num_negatives``
(K = 16 ... 4095 draws per anchor, with replacement as in CMC, from the 4096-image bank), each
trained for the same number of steps and probed linearly (and with kNN) on the background class,
the digit and the position.

The positive is scored from the bank (``positive = "bank"``), as CMC's ``NCEAverage`` does. With
this step's positive against bank negatives that lag by up to an epoch, the first run collapsed:
the loss rose back to ``log(K + 1)`` within 300 steps, and every arm ended below the untrained
encoder (17-20% background accuracy against 44%).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import attrs

from contrastkit.errors import InvalidParameter
from contrastkit.experiments.arms import train_arms
from contrastkit.experiments.plots import line_plot
from contrastkit.experiments.results import ExperimentResult, markdown_table, seed_table
from contrastkit.experiments.settings import RunSettings
from contrastkit.experiments.stats import clears, difference

__all__ = ["BUDGET_SECONDS", "COUNTS", "CRITERION", "PAPER", "SCALES", "STEPS", "TITLE", "Schedule", "recipe", "run",
           "spearman"]

TITLE = "more negatives, better representations (CMC, Figure 6)"
PAPER = (
    "CMC (Tian et al. 2019), Figure 6: with a memory bank and m sampled negatives per anchor, ImageNet-100 "
    "linear accuracy increases steadily with m."
)
CRITERION = (
    "the mean background linear-probe accuracy over seeds increases with K: Spearman rank correlation between K "
    "and the mean accuracy >= 0.8, and the largest K beats the smallest by more than 1 point and by more than "
    "twice the standard error of the difference."
)
BUDGET_SECONDS = 30 * 60
#: The investigation of the failure, measured from 2026-12-05 to 2026-12-07 (runs, seeds and threads as said).
EVIDENCE = (
    "The verdict above (2026-12-07: 2000 steps, 0.3 contrast, width-16 nets) has Figure 6's direction and "
    "shape on every mean: accuracy rises at each step of K (Spearman 1.00; kNN 0.90), and so does I_NCE "
    "(1.98 -> 2.68 -> 2.89 -> 3.02 -> 3.13 nats). The largest K beats the smallest by 17.1 points, but the "
    "standard error of that difference is 10.1, so the margin is not twice it and the criterion is not met. "
    "The spread is one seed: seed 2 is the lowest of the three at every K (48.30 / 67.75 / 65.75 / 74.35 / "
    "70.80%), and so is its I_NCE (1.81 / 2.60 / 2.68 / 2.86 / 2.79 nats); over the 15 runs accuracy follows "
    "the I_NCE reached (Pearson r = 0.81). Per seed, K = 4095 minus K = 16 is +12.45 / +16.25 / +22.50 "
    "points. The criterion's standard error treats each arm's seeds as independent samples, while the arms "
    "share their seeds (initialisation, data order, bank draws); the paired standard error of those three "
    "differences would be 2.9. The criterion was fixed before the run and is not changed after it. "
    "Three screens followed, each with its plan and rule written down before it ran (2026-12-07, the verdict's "
    "recipe, runs of 1 CPU thread two at a time on 2 cores). Why seed 2 is low: K = 16 trained for 4000 steps "
    "(rule: if seeds 0 and 2 end less than half their 25.8-point gap apart, the spread is put down to the "
    "unconverged schedule) reached 90.45 / 91.90 / 80.40% over seeds 0 / 1 / 2 (kNN 77.80 / 73.90 / 57.55%, "
    "I_NCE 2.52 / 2.52 / 2.43 nats) against 74.10 / 72.75 / 48.30% at 2000 steps: every seed gains 16-32 "
    "points from 2000 more steps, and seed 2's gap to seed 0 falls from 25.8 to 10.05 points. The spread is "
    "mostly the schedule's: 2000 steps, the most that 15 runs fit on 2 cores, leave every arm far from "
    "converged at this contrast. Fresh seeds, to see whether the direction holds beyond seeds 0-2 (seeds 3 "
    "and 4, all five K, 2000 steps; reported whatever it gave, and not a verdict: seeds added after a failed "
    "verdict cannot replace it): K = 16 71.75 / 75.85%, K = 64 83.45 / 85.35%, K = 256 84.30 / 85.35%, "
    "K = 1024 86.75 / 83.30%, K = 4095 86.70 / 86.80% (kNN 52.50 / 54.80% at K = 16, 68.25 / 68.95% at "
    "K = 4095). On those two seeds alone the criterion's figures are Spearman 1.00, +12.95 points, standard "
    "error 2.05; over seeds 0-4, means 68.6 -> 78.9 -> 80.9 -> 82.7 -> 84.0%, Spearman 1.00, +15.4 points, "
    "standard error 6.1. In each of the five seeds K = 4095 beats K = 16 (+12.45 / +16.25 / +22.50 / +14.95 / "
    "+10.95 points): Figure 6's direction is not noise on this data; the 3-seed verdict fails on the spread "
    "that one slow seed of an unconverged schedule puts into the unpaired standard error. "
    "The schedule toward CMC's, a third screen planned the same way before its runs: all five K at 4000 steps "
    "(125 epochs over the 4096 images; CMC trained 240 over ImageNet-100), seeds 0-2, judged by the unchanged "
    "criterion and recorded as a screen whatever it gave, because 4000 steps overrun the 30-minute budget "
    "about fourfold (131 min summed over its 15 runs, about 66 min wall-clock two at a time). Background linear "
    "87.6 +- 6.3 -> 93.0 +- 3.2 -> 95.2 +- 3.9 -> 95.7 +- 1.7 -> 96.5 +- 2.6% as K goes 16 -> 4095 (per seed: "
    "K = 16 90.45 / 91.90 / 80.40, K = 64 93.50 / 95.85 / 89.55, K = 256 98.50 / 96.30 / 90.90, K = 1024 "
    "97.50 / 95.60 / 94.05, K = 4095 98.10 / 97.90 / 93.45%), kNN 69.8 -> 82.1 -> 85.7 -> 87.9 -> 90.0%, I_NCE "
    "2.49 -> 3.51 -> 4.15 -> 4.51 -> 4.71 nats: Spearman 1.00, largest vs smallest K +8.9 points, standard "
    "error 3.9 (per seed +7.65 / +6.00 / +13.05), so the criterion's figures are met on the default seeds. "
    "With a schedule nearer CMC's, Figure 6 reproduces on this data by the criterion fixed before any run. "
    "The verdict above stays the 2000-step one: the cpu scale is bounded by the budget, and its schedule was "
    "fixed before these screens; moving the cpu scale to 4000 steps (these recipes and seeds) is a budget "
    "decision, not one to take after seeing it pass. The verdict's "
    "15 "
    "runs were trained by a script calling the command's own `train_seed`, two at a time with 1 CPU thread "
    "each (what `--jobs 2` now does), 58 min wall-clock on 2 cores (111.2 min summed, over the 30-minute "
    "budget); the command then read every record back. K = 16, seed 0 gave exactly the screen's numbers "
    "below (74.10%, I_NCE 2.08). "
    "Earlier, at 500 steps, full contrast and width-32 nets (the cpu verdict until 2026-12-07), seed noise was larger than any K effect: background linear accuracy at K = 16 was 71.9 / "
    "57.6 / 63.2% over seeds 0-2 (sd 7.2) and at K = 4095 63.65 / 57.45 / 64.45% (sd 3.8); the paired "
    "K = 4095 minus K = 16 difference was -8.25 / -0.15 / +1.25 points. The arms barely train: I_NCE peaks at "
    "1.0-1.3 nats (ceilings 2.8 and 8.3) and falls in the last 100 steps as the learning rate decays "
    "(1.31 -> 0.69 nats); in-batch negatives reach 96% on the same recipe. Variants toward CMC's set-up, none "
    "of which gives a rising trend: CMC's NCE loss (fixed Z; the slides call Figure 6's loss NCE-based) 62.3% "
    "(K = 16) vs 51.8% (K = 4095); a dataset 4x larger than the bank's K (16384 images) 46.4% vs 47.8%, about "
    "the untrained encoder's 44%, since each image is seen ~4 times; false negatives are not the cause: the "
    "bank already excludes the anchor's own row (`exclude_positive`, 0 draws measured; CMC's own code would "
    "draw it 1.03 times per anchor at K = 4095). The one change that makes the bank learn is a longer "
    "schedule: 800 steps gave 83.0% (K = 16) and 77.15% (K = 4095), seed 0, still no rise with K. CMC trained "
    "240 epochs over ImageNet-100 (126k images); 500 steps here are ~15 epochs over 4096 images: the measured "
    "cause is a schedule far too short for the bank objective to leave the regime where bank staleness, not "
    "K, decides the result. Momentum is CMC's 0.5. CMC's own optimiser and head were screened too "
    "(2026-12-06, seed 0, 500 steps, 2 CPU threads; train_CMC.py's defaults: SGD lr 0.03, momentum 0.9, "
    "weight decay 1e-4, no warm-up, the rate constant, as CMC first decays it at epoch 120 of 240; a 128-d "
    "embedding; crops of scale 0.2-1): 47.45% (K = 16) vs 40.1% (K = 4095), I_NCE 0.80 and 0.88 nats, at or "
    "below the untrained encoder, so the recipe keeps AdamW, with which the bank at least learns. "
    "The schedule, measured (2026-12-06, seed 0, 1 CPU thread per run, two runs sharing 2 cores): at 500 steps "
    "K = 16 reached 72.40% and K = 4095 65.65%; at 2000 steps (62 epochs) K = 16 reached 97.35% (kNN 89.20%, "
    "I_NCE 2.23 of its 2.83 nats) and K = 4095 97.30% (kNN 90.25%, I_NCE 3.22 of 8.32 nats). Given the "
    "schedule, the bank learns, and both ends of the sweep then meet the ceiling of about 97% at which raw and "
    "learned views also read the background class in `learned-views`: the converged probe has no room for "
    "CMC's few points, and the short one is noise. Five K x 3 seeds at 2000 steps take about 85 minutes on 2 "
    "cores. Class collision (same-class images drawn as negatives, 10% of any draw here against 1% on "
    "ImageNet-100) is not what separates the arms: over the whole bank the 500-step arms' softmax "
    "(T = 0.07) puts 16.8% (K = 16) and 16.1% (K = 4095) of its weight on same-class rows, and the anchor's "
    "own row of the other view's bank ranks 653rd and 796th of 4096 (median): neither bank tells instances "
    "apart yet. With room in the probe, textures at 0.3 contrast (the value `factors` uses; screened on the "
    "two ends only, 2000 steps, two runs of 1 CPU thread at a time): K = 16 78.95 / 67.15% over seeds 0 / 1 "
    "(kNN 54.20 / 46.40%, I_NCE 2.06 / 1.93 nats) and K = 4095 90.45 / 85.20% (kNN 69.35 / 65.75%, I_NCE "
    "3.27 / 3.28 nats): Figure 6's direction by 11.5 and 18.05 points, two seeds, not a verdict. That schedule "
    "does not fit 15 runs in the 30-minute budget at width 32; `--scale paper` (a GPU) draws its textures at "
    "0.3 contrast too. "
    "That earlier verdict (3 seeds, code e9e1fd547388ff50, 26.0 min): 65.0 -> 59.9 -> 63.0 -> 66.3 -> 61.2% "
    "as K goes 16 -> 4095, Spearman 0.00, largest vs smallest K -3.8 points (standard error 5.0). The cpu "
    "scale then moved to the converged schedule (2000 steps) at 0.3 contrast, with width-16 nets "
    "(channels_last) so that 15 runs fit 2 cores in about an hour, adopted by a rule fixed before the screen "
    "(2026-12-07, K = 16 only, seed 0, 0.3 contrast, 1 CPU thread per run): width 16 had to reach >= 90% of "
    "width 32's I_NCE and stay within 5 points of its accuracy, and 1000 steps would replace 2000 only if "
    "they reached >= 90% of the 2000-step I_NCE. Width 16 at 2000 steps: 74.10% (kNN 51.05%), I_NCE 2.08 "
    "nats, against width 32's 78.95% and 2.06 nats: adopted. Width 16 at 1000 steps: 48.95% (kNN 29.90%), "
    "I_NCE 1.13 nats: not enough, so the schedule keeps 2000 steps and runs over the budget."
)
#: The swept numbers of negatives per anchor (drawn with replacement from the 4096-image bank, as in CMC).
COUNTS = (16, 64, 256, 1024, 4095)
TASK = "background"
#: Steps per arm on the cpu scale: CMC's bank learns slowly (the positive is a bank row, refreshed once per
#: epoch). 500 steps (15 epochs) left the arms barely trained and seed noise larger than any K effect; 2000
#: steps (62 epochs) converge (EVIDENCE).
STEPS = 2000


@attrs.frozen
class Schedule:
    """One ``--scale`` of the experiment: steps per arm, images, the textures' contrast and the encoders' size.

    Example:
        >>> SCALES["paper"].steps, SCALES["paper"].background_contrast, SCALES["cpu"].width
        (20000, 0.3, 16)
    """

    steps: int
    size: int
    #: ``data.background_contrast``. Converged at full contrast, K = 16 and K = 4095 both read the
    #: background at ~97% (no room for Figure 6); at 0.3 (two seeds screened) they did not (EVIDENCE).
    background_contrast: float
    #: ``encoder.width`` of both conv nets: 16 on the cpu scale, where 32 cannot train 15 runs for 2000 steps
    #: (a width-16 net reached the width-32 net's I_NCE on the same schedule: EVIDENCE).
    width: int
    #: ``train.channels_last``: on for the cpu scale, whose small convolutions run faster in that layout on a CPU.
    channels_last: bool


#: Schedules: ``cpu`` for 2 CPU cores (over the 30-minute budget: EVIDENCE); ``paper`` for a GPU (``--device cuda``).
SCALES: dict[str, Schedule] = {
    "cpu": Schedule(steps=STEPS, size=4096, background_contrast=0.3, width=16, channels_last=True),
    "paper": Schedule(steps=20000, size=50000, background_contrast=0.3, width=32, channels_last=False),
}

_SETUP = (
    "colorful-moving-digits ({size} images of 32 px, colours drawn per image, textures at contrast "
    "{contrast:g}), random crop (scale 0.5-1) + flip "
    "shared by both views, CMC's L | ab split of Lab, one conv net per view (width {width}, depth 4), cosine critic "
    "with a linear 64-d head (T = 0.07), a memory bank per view (momentum 0.5) with K negatives drawn per anchor "
    "and the positive scored from the bank, as in CMC's code; two-way InfoNCE (CMC's softmax-CE form), AdamW "
    "2e-3, batch 128, {steps} steps per arm. Probes on the concatenated features of both encoders."
)


def recipe(num_negatives: int, schedule: Schedule = SCALES["cpu"]) -> dict[str, Any]:
    """The arm's recipe on ``schedule``: CMC's L | ab with a memory bank drawing ``num_negatives`` per anchor.

    Example:
        >>> recipe(256)["negatives"]
        {'name': 'memory-bank', 'num_negatives': 256, 'momentum': 0.5, 'positive': 'bank'}
        >>> recipe(256, SCALES["paper"])["train"]["max_steps"]
        20000
    """
    return {
        "data": {"name": "colorful-moving-digits", "size": schedule.size, "image_size": 32, "palette": "random",
                 "background_contrast": schedule.background_contrast},
        "augment": {"name": "crop-flip", "scale": [0.5, 1.0]},
        "views": {"name": "color-split", "space": "lab", "groups": [[0], [1, 2]]},
        "encoder": {"name": "convnet", "width": schedule.width, "depth": 4, "shared": False},
        "critic": {"name": "cosine", "head": "linear", "embedding_dim": 64, "temperature": 0.07},
        # CMC's positive, the bank row: this step's positive against stale negatives collapsed (17% at K = 4095,
        # below the untrained encoder's 44%; in-batch negatives reach 96% on the same recipe).
        "negatives": {"name": "memory-bank", "num_negatives": num_negatives, "momentum": 0.5, "positive": "bank"},
        "objective": {"name": "infonce", "two_way": True},
        "train": {"epochs": 1000, "max_steps": schedule.steps, "batch_size": 128, "optimizer": "adamw", "lr": 0.002,
                  "warmup_steps": 30, "seed": 0, "checkpoint_every_n_steps": 200,
                  "channels_last": schedule.channels_last},
        "eval": {"knn": True, "knn_k": 20, "linear": True, "labels": ["background", "digit", "position"]},
        "log": {"every_n_steps": 50},
    }


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Spearman's rank correlation (ties get their mean rank).

    Example:
        >>> spearman([1, 2, 3, 4], [10, 20, 15, 40])
        0.8
    """
    def ranks(values: Sequence[float]) -> list[float]:
        order = sorted(range(len(values)), key=lambda i: values[i])
        result = [0.0] * len(values)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
                j += 1
            for k in range(i, j + 1):
                result[order[k]] = (i + j) / 2
            i = j + 1
        return result

    if not all(math.isfinite(v) for v in [*xs, *ys]):
        return math.nan
    rx, ry = ranks(xs), ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    var = math.sqrt(sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry))
    return cov / var if var else math.nan


def run(settings: RunSettings, *, counts: Sequence[int] = COUNTS) -> ExperimentResult:
    """Train one arm per K (every seed), probe each, and judge whether the mean accuracy rises with K.

    Example:
        >>> from contrastkit.experiments.settings import smoke_run_settings
        >>> settings = smoke_run_settings()
        >>> result = run(settings, counts=(4, 16))
        >>> result.status, sorted(result.data["arms"])
        ('smoke run', ['K=16', 'K=4'])
    """
    if len(counts) < 2 or list(counts) != sorted(set(counts)):
        raise InvalidParameter("counts", "must be at least 2 increasing numbers of negatives", counts)
    schedule = SCALES[settings.scale]
    arms = train_arms({f"K={k}": recipe(k, schedule) for k in counts}, settings)
    header = ["K", f"{TASK} linear top-1 (%)", f"{TASK} kNN top-1 (%)", "digit linear top-1 (%)",
              "position linear error (px)", "final loss", "I_NCE at the end (nats)", "train min"]
    rows: list[list[Any]] = [[k, a.probe("linear", TASK), a.probe("knn", TASK), a.probe("linear", "digit"),
             a.probe("linear", "position"), a.metric("loss"), a.metric("mi_lower_bound/v1-v2"),
             round(a.seconds / 60, 1)]
            for k, a in zip(counts, arms.values())]
    table = markdown_table(header, rows)
    table += "\n\nEvery seed:\n\n" + seed_table(arms, [
        (f"{TASK} linear top-1 (%)", lambda r: r.probe("linear", TASK)),
        (f"{TASK} kNN top-1 (%)", lambda r: r.probe("knn", TASK)),
    ])
    linear = [row[1] for row in rows]
    rho = spearman(list(counts), [s.mean for s in linear])
    gain = difference(linear[-1], linear[0])
    rho_knn = spearman(list(counts), [row[2].mean for row in rows])
    reproduced = None if settings.quick else bool(rho >= 0.8 and clears(linear[-1], linear[0], 1.0, strictly=True))
    verdict = (
        f"Mean background linear accuracy over {len(settings.seeds)} seed(s) goes "
        f"{' -> '.join(f'{v.mean:.1f}' for v in linear)} % as K goes {' -> '.join(map(str, counts))}: Spearman rho = "
        f"{rho:.2f}, largest vs smallest K {gain.mean:+.1f} points (standard error {gain.se:.1f}) "
        f"(kNN: rho = {rho_knn:.2f})."
    )
    plot = line_plot(
        settings.out_dir / "plot.png",
        "CMC Figure 6 on the embedded data: accuracy against the number of negatives (mean, sd, seeds)",
        x_label="negatives per anchor K", y_label=f"{TASK} top-1 (%)",
        series=[("linear probe", list(zip(counts, linear))), ("kNN probe", [(k, r[2]) for k, r in zip(counts, rows)])],
        log2_x=True,
    )
    return ExperimentResult(
        name="negatives", title=TITLE, paper=PAPER, criterion=CRITERION, reproduced=reproduced, verdict=verdict,
        table=table, plot=plot.name, seconds=sum(a.seconds for a in arms.values()), budget_seconds=BUDGET_SECONDS,
        quick=settings.quick, command="contrastkit experiment negatives",
        setup=_SETUP.format(steps=schedule.steps, size=schedule.size, contrast=schedule.background_contrast,
                            width=schedule.width),
        data={"arms": {n: a.as_dict() for n, a in arms.items()}, "spearman": rho, "spearman_knn": rho_knn},
    )

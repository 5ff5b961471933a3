"""``reverse-u``: InfoMin's reverse U — downstream accuracy against how much the two views share.

A nested sweep of what the views share, from nothing to everything, on the embedded
colorful-moving-digits data, judged on the background class:

1. ``nothing``: two unrelated images (``factor-pair`` sharing no factor) — the views miss the
   task's information;
2. ``background``: images sharing only the background class — the task's information and nothing
   else, InfoMin's sweet spot;
3. ``background+position`` and 4. ``background+position+digit``: the same background plus
   nuisance factors (the digit's place, then the very same glyph) — seed 000's multi-factor rows;
5. ``same image``: two crops of one image — everything, the image's own colours and texture included.

Each point's I_NCE is estimated by :mod:`contrastkit.analysis` (fresh encoders and critic trained
with in-batch InfoNCE on the views, the bound ``log(K + 1) - L`` on held-out test batches), and
the same encoders are probed linearly on the background class — what ``contrastkit analyze
--sweep`` does for one key. InfoMin's finding is a reverse U: accuracy rises while the views gain
the task's information, then falls as they share more nuisance, which the encoder can match on
instead.

Seed 000 demonstrates the curve by moving two patches apart (Fig. 3). On this data every patch
shows the same background texture and colours, so patch distance cannot take the background away;
the factors can. The first design swept SimCLR's colour-jitter strength (0 to 2.5, 250 steps per
value). Its I_NCE fell from 3.02 to 0.08 nats, but accuracy only fell with it (48.2% to 28.3%), all
below the random encoder: in 250 CPU steps the jittered encoders learned no texture at all.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import attrs

from contrastkit.experiments.arms import probe_random_init
from contrastkit.experiments.plots import line_plot
from contrastkit.experiments.recipes import arm_recipe, recipe_toml
from contrastkit.experiments.records import code_version, saved_record, write_record
from contrastkit.experiments.results import ExperimentResult, markdown_table
from contrastkit.experiments.settings import RunSettings
from contrastkit.experiments.stats import Summary, clears, noise_note, summarize

__all__ = [
    "BUDGET_SECONDS",
    "CRITERION",
    "KEY",
    "LABEL",
    "PAPER",
    "POINTS",
    "SCALES",
    "TITLE",
    "SharePoint",
    "interior_peak",
    "recipe",
    "run",
]

TITLE = "accuracy against I_NCE: a reverse U (seed 000, InfoMin)"
PAPER = (
    "InfoMin (Tian et al. 2020), Fig. 2-3: as the views share more (higher I(v1; v2)), downstream accuracy first "
    "rises, while the shared information still misses what the task needs, then falls, as the views share "
    "nuisance the encoder can match on instead: a reverse U, with a sweet spot that shares the task's "
    "information and little else."
)
CRITERION = (
    "sorted by the mean I_NCE over seeds, the best mean background accuracy is at an interior point, at least 1 "
    "point and more than twice the standard error of the difference above the sweep's mean accuracy at both the "
    "lowest and the highest I_NCE."
)
BUDGET_SECONDS = 30 * 60
#: The swept quantity, the first column of the table.
KEY = "views share"
LABEL = "background"
STEPS = 400
BATCH = 128
#: Schedules: ``cpu`` fits 3 seeds in 30 minutes on 2 cores; ``paper`` is for a GPU (``--device cuda``).
SCALES: dict[str, dict[str, int]] = {"cpu": {"steps": STEPS, "size": 4096}, "paper": {"steps": 10000, "size": 50000}}


@attrs.frozen
class SharePoint:
    """One point of the sweep: a name (table, plot, run folder) and what the two views share.

    ``share`` lists the factors a ``factor-pair`` shares; ``None`` means two crops of the same image.

    Example:
        >>> SharePoint("background", ("background",)).folder
        'share=background'
    """

    name: str
    share: tuple[str, ...] | None

    @property
    def folder(self) -> str:
        """The point's run folder under the experiment's."""
        return f"share={self.name.replace(' ', '-')}"


#: From sharing nothing to sharing everything; each point shares what the one before does, and more.
POINTS: tuple[SharePoint, ...] = (
    SharePoint("nothing", ()),
    SharePoint("background", ("background",)),
    SharePoint("background+position", ("background", "position")),
    SharePoint("background+position+digit", ("background", "position", "digit")),
    SharePoint("same image", None),
)

_SETUP = (
    "colorful-moving-digits (4096 images of 32 px, colours drawn per image), one shared conv net (width 32, "
    "depth 4, features pooled to a 4 x 4 grid: 4096-d), cosine critic with an MLP head (4096 -> 512 -> 64, "
    "T = 0.2), two-way in-batch InfoNCE. Factor points: `factor-pair` views (second images redrawn every epoch, "
    "every factor not shared drawn different), no augmentation. `same image`: `augmented-copies`, random crop "
    "(scale 0.5-1) and flip per view. Per point {steps} AdamW steps (2e-3) at batch {batch}, I_NCE on up to 16 "
    "held-out test batches (K = {k}, ceiling log(K+1) = {ceiling:.2f} nats), then a linear probe of the background "
    "class on 2000 train / 2000 test images; the same seeds for every point."
)


def recipe(point: SharePoint = POINTS[1], *, size: int = 4096) -> dict[str, Any]:
    """The recipe of one point of the sweep.

    Example:
        >>> recipe(POINTS[2])["views"]
        {'name': 'factor-pair', 'share': ['background', 'position']}
        >>> recipe(POINTS[-1])["views"], recipe(POINTS[-1])["augment"]["name"]
        ({'name': 'augmented-copies'}, 'crop-flip')
    """
    if point.share is None:
        views: dict[str, Any] = {"name": "augmented-copies"}
        augment: dict[str, Any] = {"name": "crop-flip", "scale": [0.5, 1.0]}
    else:
        views = {"name": "factor-pair", "share": list(point.share)}
        augment = {"name": "none"}
    return {
        "data": {"name": "colorful-moving-digits", "size": size, "image_size": 32, "palette": "random"},
        "augment": augment,
        "views": views,
        # A 4x4 grid, as in `factors`: with global pooling a shared position is hardly visible to the encoder.
        "encoder": {"name": "convnet", "width": 32, "depth": 4, "shared": True, "pool_size": 4},
        "critic": {"name": "cosine", "head": "mlp", "hidden": [512], "embedding_dim": 64, "temperature": 0.2},
        "train": {"batch_size": BATCH, "seed": 0},
        "eval": {"linear": True, "labels": [LABEL]},
    }


def interior_peak(i_nce: Sequence[float], accuracy: Sequence[float | Summary], *, margin: float = 1.0) -> bool:
    """Whether, sorted by ``i_nce``, the best mean ``accuracy`` is interior and ``margin`` above both ends; with
    :class:`Summary` accuracies also by more than twice the standard error of each difference.

    Example:
        >>> interior_peak([1, 2, 3], [60, 70, 65]), interior_peak([1, 2, 3], [60, 70, 69.5])
        (True, False)
        >>> a, b = summarize([60, 61, 59]), summarize([70, 71, 69])
        >>> interior_peak([1, 2, 3], [a, b, a]), interior_peak([1, 2, 3], [a, summarize([70, 90, 50]), a])
        (True, False)
    """
    if not all(math.isfinite(v) for v in i_nce):
        return False
    order = sorted(range(len(i_nce)), key=lambda i: i_nce[i])
    ordered = [accuracy[i] for i in order]
    acc = [a if isinstance(a, Summary) else None for a in ordered]
    means = [a.mean if isinstance(a, Summary) else float(a) for a in ordered]
    if len(means) < 3 or not all(math.isfinite(m) for m in means):
        return False
    best = max(range(len(means)), key=lambda i: means[i])
    if not 0 < best < len(means) - 1:
        return False
    summaries = [a for a in acc if a is not None]
    if len(summaries) == len(acc):
        return clears(summaries[best], summaries[0], margin) and clears(summaries[best], summaries[-1], margin)
    return means[best] - means[0] >= margin and means[best] - means[-1] >= margin


def _point(point: SharePoint, settings: RunSettings, seed: int, steps: int, batch: int, size: int) -> dict[str, Any]:
    """One seed of one point: train the critic, estimate I_NCE, probe; cached in
    ``<out>/share=<name>/seed=<s>/point.json`` (same recipe and code only)."""
    import torch

    from contrastkit.analysis import estimate_view_information, probe_accuracy
    from contrastkit.config import config_from_dict
    from contrastkit.pipeline import Pipeline
    from contrastkit.training import select_device

    raw = arm_recipe(point.folder, recipe(point, size=size), settings, seed=seed)
    folder = settings.arm_dir(point.folder, seed)
    recipe_path, record = folder / "recipe.toml", folder / "point.json"
    text = recipe_toml(raw) + f"# analyze: --steps {steps} --batch {batch}\n"
    saved = saved_record(folder, text, "point.json", fresh=settings.fresh)
    if saved is not None:
        settings.print_fn(f"[{point.name} seed {seed}] unchanged recipe and code: reusing {record}")
        return saved
    config = config_from_dict(raw, path=str(recipe_path))
    start = time.perf_counter()
    torch.manual_seed(config.train.seed)
    pipeline = Pipeline.from_config(config, path=str(recipe_path)).to(select_device(config.train.device))
    test = pipeline.build_dataset("test")
    estimates = estimate_view_information(pipeline, pipeline.dataset, test, steps=steps, batch_size=batch,
                                          seed=config.train.seed)
    result = probe_accuracy(pipeline, pipeline.dataset, test, label=LABEL, config=config)
    saved_point = {
        "value": point.name, "seed": seed, "i_nce": estimates[0].i_nce, "num_negatives": estimates[0].num_negatives,
        "ceiling": estimates[0].ceiling, "saturated": estimates[0].saturated, "accuracy": float(result.value),
        "seconds": round(time.perf_counter() - start, 1), "code": code_version(),
    }
    write_record(record, saved_point)
    settings.print_fn(f"[{point.name} seed {seed}] I_NCE {saved_point['i_nce']:.3f} nats, {LABEL} linear top-1 "
                      f"{saved_point['accuracy']:.2f}% ({saved_point['seconds']:.0f} s)")
    return saved_point


def run(settings: RunSettings, *, points: Sequence[SharePoint] = POINTS) -> ExperimentResult:
    """Sweep what the views share (every seed): I_NCE and background accuracy per point, then judge the reverse U.

    Example:
        >>> from contrastkit.experiments.settings import smoke_run_settings
        >>> settings = smoke_run_settings()
        >>> result = run(settings, points=POINTS[:2])
        >>> result.status, [p["value"] for p in result.data["points"]]
        ('smoke run', ['nothing', 'background'])
    """
    steps, size, batch = SCALES[settings.scale]["steps"], SCALES[settings.scale]["size"], BATCH
    if settings.quick:
        steps, batch = 2, 16
    seeds = settings.seeds
    measured = [[_point(p, settings, seed, steps, batch, size) for seed in seeds] for p in points]
    # The untrained encoder of the sweet-spot recipe: what "learned nothing" looks like on this probe.
    baseline = probe_random_init("random-init", recipe(POINTS[1], size=size), settings).probe("linear", LABEL)
    i_nce = [summarize(r["i_nce"] for r in runs) for runs in measured]
    accuracy = [summarize(r["accuracy"] for r in runs) for runs in measured]
    num_negatives = measured[0][0]["num_negatives"]
    ceiling = math.log(num_negatives + 1)
    saturated = [p.name for p, runs in zip(points, measured) if any(r["saturated"] for r in runs)]
    # Saturated estimates sit at log(K + 1): their order along I_NCE is noise, so no shape can be read.
    peak = interior_peak([s.mean for s in i_nce], accuracy) and len(saturated) < 2
    order = sorted(range(len(points)), key=lambda i: i_nce[i].mean)
    best = max(order, key=lambda i: accuracy[i].mean)
    table = markdown_table(
        [KEY, "I_NCE v1-v2 (nats)", "K", "log(K+1)", f"{LABEL} linear top-1 (%)"],
        [[points[i].name, i_nce[i], num_negatives, ceiling, accuracy[i]] for i in order],
    )
    table += "\n\nEvery seed:\n\n" + markdown_table(
        [KEY, "seed", "I_NCE v1-v2 (nats)", f"{LABEL} linear top-1 (%)"],
        [[points[i].name, r["seed"], float(r["i_nce"]), float(r["accuracy"])] for i in order for r in measured[i]],
    )
    ends = [(f"{points[best].name} vs {points[order[j]].name}", accuracy[best], accuracy[order[j]])
            for j in (0, -1) if order[j] != best]
    verdict = (
        f"Sorted by the mean I_NCE over {len(seeds)} seed(s), mean accuracy goes "
        + " -> ".join(f"{accuracy[i].mean:.1f}% ({i_nce[i].mean:.2f} nats, {points[i].name})" for i in order)
        + f" (random init {baseline.mean:.1f}%). The best mean accuracy is at `{points[best].name}`"
        + (", an interior point clear of both ends: a reverse U." if peak
           else ", not an interior point clear of both ends: no reverse U at this budget.")
        + noise_note(ends)
        + (f" Saturated estimates (within 5% of log(K+1); raise the batch): {', '.join(saturated)}."
           if saturated else "")
    )
    plot = line_plot(
        settings.out_dir / "plot.png", "InfoMin's reverse U on the embedded data (mean, sd, seeds)",
        x_label="I_NCE(v1; v2) (nats, mean over seeds)", y_label=f"{LABEL} linear top-1 (%)",
        series=[("linear probe", [(i_nce[i].mean, accuracy[i]) for i in order])],
    )
    return ExperimentResult(
        name="reverse-u", title=TITLE, paper=PAPER, criterion=CRITERION,
        reproduced=None if settings.quick else peak, verdict=verdict, table=table, plot=plot.name,
        seconds=round(sum(r["seconds"] for runs in measured for r in runs), 1), budget_seconds=BUDGET_SECONDS,
        quick=settings.quick, command="contrastkit experiment reverse-u",
        setup=_SETUP.format(steps=steps, batch=batch, k=batch - 1, ceiling=math.log(batch)),
        data={"points": [{"value": p.name, "seeds": runs, "i_nce": {"mean": i.mean, "sd": i.sd},
                          "accuracy": {"mean": a.mean, "sd": a.sd}}
                         for p, runs, i, a in zip(points, measured, i_nce, accuracy)],
              "key": KEY, "label": LABEL, "random_init": baseline.mean},
    )

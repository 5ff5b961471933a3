"""``reverse-u``: InfoMin's reverse U — downstream accuracy against the views' mutual information.

One recipe, one knob that controls how much the two views share: the strength of SimCLR's colour
augmentation (brightness, contrast, saturation and hue jitter scale with it). Weak jitter leaves
the views sharing their colours, a nuisance here (colours are drawn per image, independent of every
label), so the encoder can tell images apart by colour alone; strong jitter destroys colour *and*
texture contrast, which the background class needs. For each value, :mod:`contrastkit.analysis`
trains fresh encoders and critic with in-batch InfoNCE on the views (the critic of the bound),
estimates ``I_NCE = log(K + 1) - L`` on held-out test batches, and probes the same encoders
linearly on the background class — what ``contrastkit analyze --sweep`` does.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from typing import Any

from contrastkit.experiments.base import (
    ExperimentResult, RunSettings, arm_recipe, recipe_toml, saved_record, set_key,
)

__all__ = ["BUDGET_SECONDS", "CRITERION", "KEY", "LABEL", "PAPER", "TITLE", "VALUES", "interior_peak", "recipe", "run"]

TITLE = "accuracy against I_NCE: a reverse U (seed 000, InfoMin)"
PAPER = (
    "InfoMin (Tian et al. 2020): as the views share less (lower I(v1; v2), e.g. stronger augmentation or "
    "patches further apart), downstream accuracy first rises then falls — a reverse-U relationship between "
    "I_NCE and accuracy, with a sweet spot that shares the task's information and little else."
)
CRITERION = (
    "sorted by I_NCE, the best background accuracy is at an interior point, at least 1 point above the sweep's "
    "accuracy at both the lowest and the highest I_NCE."
)
BUDGET_SECONDS = 30 * 60
KEY = "augment.strength"
VALUES = (0.0, 0.5, 1.0, 1.75, 2.5)
LABEL = "background"
STEPS = 250
BATCH = 128

_SETUP = (
    "colorful-moving-digits (4096 images of 32 px, colours drawn per image), `augmented-copies` with SimCLR's "
    "augmentation on the device (crop 0.2-1, flip, colour jitter (0.8, 0.8, 0.8, 0.2) x strength with p 0.8, "
    "grayscale p 0.2, no blur), one shared conv net (width 32, depth 4), cosine critic with an MLP head (64-d, "
    "T = 0.2), two-way in-batch InfoNCE; per value {steps} AdamW steps (2e-3) at batch {batch}, I_NCE on up to 16 "
    "held-out test batches (K = {k}, ceiling log(K+1) = {ceiling:.2f} nats), then a linear probe of the background "
    "class on 2000 train / 2000 test images; seed 0 for every value."
)


def recipe() -> dict[str, Any]:
    """The swept recipe (``augment.strength`` is set per value).

    Example:
        >>> recipe()["augment"]["name"]
        'simclr'
    """
    return {
        "data": {"name": "colorful-moving-digits", "size": 4096, "image_size": 32, "palette": "random"},
        "augment": {"name": "simclr", "strength": 1.0, "crop_scale": [0.2, 1.0], "blur_p": 0.0},
        "views": {"name": "augmented-copies"},
        "encoder": {"name": "convnet", "width": 32, "depth": 4, "shared": True},
        "critic": {"name": "cosine", "head": "mlp", "embedding_dim": 64, "temperature": 0.2},
        "train": {"batch_size": BATCH, "seed": 0},
        "eval": {"linear": True, "labels": [LABEL]},
    }


def interior_peak(i_nce: Sequence[float], accuracy: Sequence[float], *, margin: float = 1.0) -> bool:
    """Whether, sorted by ``i_nce``, the best ``accuracy`` is interior and ``margin`` above both ends.

    Example:
        >>> interior_peak([1, 2, 3], [60, 70, 65]), interior_peak([1, 2, 3], [60, 70, 69.5])
        (True, False)
    """
    if not all(math.isfinite(v) for v in i_nce):
        return False
    order = sorted(range(len(i_nce)), key=lambda i: i_nce[i])
    acc = [accuracy[i] for i in order]
    if len(acc) < 3 or not all(math.isfinite(a) for a in acc):
        return False
    best = max(range(len(acc)), key=lambda i: acc[i])
    return 0 < best < len(acc) - 1 and acc[best] - acc[0] >= margin and acc[best] - acc[-1] >= margin


def _point(value: float, settings: RunSettings, steps: int, batch: int) -> dict[str, Any]:
    """One sweep value: train the critic, estimate I_NCE, probe; cached in ``<out>/<key>=<value>/point.json``."""
    import torch

    from contrastkit.analysis import estimate_view_information, probe_accuracy
    from contrastkit.config import config_from_dict
    from contrastkit.pipeline import Pipeline
    from contrastkit.trainer import select_device

    base = recipe()
    set_key(base, KEY, value)
    name = f"{KEY}={value}"
    raw = arm_recipe(name, base, settings)
    folder = settings.arm_dir(name)
    recipe_path, record = folder / "recipe.toml", folder / "point.json"
    text = recipe_toml(raw) + f"# analyze: --steps {steps} --batch {batch}\n"
    saved = saved_record(folder, text, "point.json", fresh=settings.fresh)
    if saved is not None:
        settings.print_fn(f"[{name}] unchanged recipe: reusing {record}")
        return saved
    config = config_from_dict(raw, path=str(recipe_path))
    start = time.perf_counter()
    torch.manual_seed(config.train.seed)
    pipeline = Pipeline.from_config(config, path=str(recipe_path)).to(select_device(config.train.device))
    test = pipeline.build_dataset("test")
    estimates = estimate_view_information(pipeline, pipeline.dataset, test, steps=steps, batch_size=batch,
                                          seed=config.train.seed)
    result = probe_accuracy(pipeline, pipeline.dataset, test, label=LABEL, config=config)
    point = {
        "value": str(value), "i_nce": estimates[0].i_nce, "num_negatives": estimates[0].num_negatives,
        "ceiling": estimates[0].ceiling, "saturated": estimates[0].saturated, "accuracy": float(result.value),
        "seconds": round(time.perf_counter() - start, 1),
    }
    record.write_text(json.dumps(point, indent=2) + "\n")
    settings.print_fn(f"[{KEY}={value}] I_NCE {point['i_nce']:.3f} nats, {LABEL} linear top-1 {point['accuracy']:.2f}%"
                      f" ({point['seconds']:.0f} s)")
    return point


def run(settings: RunSettings, *, values: Sequence[float] = VALUES, steps: int = STEPS,
        batch: int = BATCH) -> ExperimentResult:
    """Sweep ``augment.strength``: I_NCE and background accuracy per value, then judge the reverse U.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from contrastkit.experiments.base import RunSettings
        >>> settings = RunSettings(out_dir=Path(tempfile.mkdtemp()), quick=True, device="cpu", print_fn=lambda m: None)
        >>> result = run(settings, values=(0.0, 1.0))
        >>> result.status, [p["value"] for p in result.data["points"]]
        ('smoke run', ['0.0', '1.0'])
    """
    from contrastkit.analysis import PairEstimate, SweepPoint, sweep_table, write_sweep_plot

    if settings.quick:
        steps, batch = 2, 16
    points = [_point(v, settings, steps, batch) for v in values]
    sweep = [
        SweepPoint(value=p["value"], estimates=[PairEstimate("v1-v2", p["i_nce"], math.log(p["num_negatives"] + 1)
                                                             - p["i_nce"], p["num_negatives"], 1)],
                   metric="top1", accuracy=p["accuracy"])
        for p in points
    ]
    table = sweep_table(KEY, sweep, label=LABEL)
    i_nce, accuracy = [p["i_nce"] for p in points], [p["accuracy"] for p in points]
    saturated = [p["value"] for p in points if p["saturated"]]
    # Saturated estimates sit at log(K + 1): their order along I_NCE is noise, so no shape can be read.
    peak = interior_peak(i_nce, accuracy) and len(saturated) < 2
    order = sorted(range(len(points)), key=lambda i: i_nce[i])
    best = max(order, key=lambda i: accuracy[i])
    verdict = (
        f"Sorted by I_NCE, accuracy goes "
        + " -> ".join(f"{accuracy[i]:.1f}% ({i_nce[i]:.2f} nats, strength {points[i]['value']})" for i in order)
        + f". The best accuracy is at strength {points[best]['value']}"
        + (", an interior point: a reverse U." if peak else ", not clearly interior: no reverse U at this budget.")
        + (f" Saturated estimates (within 5% of log(K+1); raise the batch): strengths {', '.join(saturated)}."
           if saturated else "")
    )
    plot = write_sweep_plot(settings.out_dir / "plot.png", KEY, sweep, label=LABEL)
    k = batch - 1
    return ExperimentResult(
        name="reverse-u", title=TITLE, paper=PAPER, criterion=CRITERION,
        reproduced=None if settings.quick else peak, verdict=verdict, table=table, plot=plot.name,
        seconds=sum(p["seconds"] for p in points), budget_seconds=BUDGET_SECONDS, quick=settings.quick,
        command="contrastkit experiment reverse-u",
        setup=_SETUP.format(steps=steps, batch=batch, k=k, ceiling=math.log(k + 1)),
        data={"points": points, "key": KEY, "label": LABEL},
    )

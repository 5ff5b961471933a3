"""How much do a recipe's views share? Estimate I_NCE between them, and sweep a recipe key (InfoMin's reverse-U).

``contrastkit analyze CONFIG`` builds the recipe's pipeline and data, makes the views exactly as
training makes them (view maker in training mode, augmentation included) but with the view maker
**frozen** (no gradient reaches it, it is never updated), and trains only the *critic*: fresh
encoders (the recipe's ``[encoder]`` table, initialised from ``train.seed``) plus the recipe's
``[critic]``, with in-batch InfoNCE (``K = B - 1`` negatives per anchor) in both directions.

As in InfoMin (Tian et al. 2020, seed 000), the encoders count as part of the critic: the critic
whose InfoNCE loss ``L`` bounds the views' mutual information is the whole function
``f(v1, v2) = score(g1(v1), g2(v2))``, so training "critics only" trains encoders and critic and
nothing else. The bound, on held-out batches of the test split (encoders in eval mode, so batch
norm does not mix the batch into the critic), is::

    I(v1; v2) >= I_NCE = log(K + 1) - L

It is a lower bound for any critic (a better-trained critic only tightens it), and it can never
exceed ``log(K + 1)``: when the estimate gets within 5% of that ceiling the views may share more
than ``B`` can measure (``saturated``); raise ``--batch``.

Example:
    >>> import math, torch
    >>> scores = torch.eye(4) * 10.0  # a critic that always finds the positive
    >>> round(float(in_batch_info_nce(scores)), 4), round(math.log(4), 4)
    (0.0001, 1.3863)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit.config import Config, PluginTable
from contrastkit.errors import ConfigError, InvalidParameter, close_matches

if TYPE_CHECKING:
    from contrastkit.pipeline import Pipeline

__all__ = [
    "SATURATION_FRACTION",
    "PairEstimate",
    "SweepPoint",
    "check_sweep_key",
    "estimate_view_information",
    "in_batch_info_nce",
    "known_recipe_keys",
    "parse_sweep",
    "probe_accuracy",
    "run_sweep",
    "sweep_table",
    "write_sweep_plot",
]

#: An estimate at or above this fraction of ``log(K + 1)`` is reported as saturated.
SATURATION_FRACTION = 0.95


@attrs.frozen
class PairEstimate:
    """The I_NCE lower bound (nats) of one view pair, with the ``K`` it was measured with.

    Example:
        >>> e = PairEstimate(pair="v1-v2", i_nce=4.0, loss=0.158, num_negatives=63, batches=2)
        >>> round(e.ceiling, 3), e.saturated
        (4.159, True)
        >>> print(e)
        I_NCE v1-v2 >= 4.000 nats (K = 63, ceiling log(K+1) = 4.159; saturated: within 5% of log(K+1), raise --batch)
    """

    pair: str
    i_nce: float
    loss: float
    num_negatives: int
    batches: int

    @property
    def ceiling(self) -> float:
        """``log(K + 1)``: the most this estimate can ever show."""
        return math.log(self.num_negatives + 1)

    @property
    def saturated(self) -> bool:
        """Whether the estimate is within 5% of ``log(K + 1)`` (the views may share more than K can measure)."""
        return self.i_nce >= SATURATION_FRACTION * self.ceiling

    def __str__(self) -> str:
        note = "; saturated: within 5% of log(K+1), raise --batch" if self.saturated else ""
        return (
            f"I_NCE {self.pair} >= {self.i_nce:.3f} nats (K = {self.num_negatives}, "
            f"ceiling log(K+1) = {self.ceiling:.3f}{note})"
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain data (``--json``), ceiling and saturation included.

        Example:
            >>> sorted(PairEstimate(pair="v1-v2", i_nce=1.0, loss=1.0, num_negatives=7, batches=1).as_dict())
            ['batches', 'ceiling', 'i_nce', 'loss', 'num_negatives', 'pair', 'saturated']
        """
        return {**attrs.asdict(self), "ceiling": self.ceiling, "saturated": self.saturated}


def in_batch_info_nce(scores: Tensor) -> Tensor:
    """Two-way in-batch InfoNCE of a ``[B, B]`` score matrix whose positives are on the diagonal.

    The mean of the row-wise (v1 -> v2) and column-wise (v2 -> v1) cross-entropies; each has
    ``K = B - 1`` negatives, so ``log(B) - loss`` is the mean of the two directions' bounds.

    Example:
        >>> import torch
        >>> round(float(in_batch_info_nce(torch.zeros(8, 8))), 4)  # chance: log 8
        2.0794
    """
    if scores.ndim != 2 or scores.shape[0] != scores.shape[1] or scores.shape[0] < 2:
        raise InvalidParameter("scores", "must be a square [B, B] matrix with B >= 2", tuple(scores.shape))
    target = torch.arange(scores.shape[0], device=scores.device)
    return (F.cross_entropy(scores, target) + F.cross_entropy(scores.t(), target)) / 2


# -- data ------------------------------------------------------------------------------------------
def _dataset_for_views(pipeline: Pipeline, dataset: Any, seed: int) -> Any:
    """Worker-side augmentations (albumentations) run per sample, as the trainer's loader runs them."""
    workers = pipeline.worker_augmentations
    if any(a is not None for a in workers):
        from contrastkit.augmentations.workers import WorkerAugmentedDataset

        return WorkerAugmentedDataset(dataset, workers, seed=seed)
    return dataset


def _batches(pipeline: Pipeline, dataset: Any, *, batch_size: int, seed: int, shuffle: bool) -> Iterator[Any]:
    """Full batches of ``batch_size`` (K stays ``B - 1``), epoch after epoch when ``shuffle``, else one pass."""
    from contrastkit.samplers import EpochBatchSampler

    if len(dataset) < batch_size:
        split = getattr(dataset, "split", "?")
        raise InvalidParameter(
            "batch", f"is larger than the {split} split ({len(dataset)} samples); lower --batch", batch_size
        )
    data = _dataset_for_views(pipeline, dataset, seed)
    if not shuffle:
        sampler: Any = torch.utils.data.BatchSampler(
            torch.utils.data.SequentialSampler(data), batch_size=batch_size, drop_last=True
        )
        yield from torch.utils.data.DataLoader(data, batch_sampler=sampler)
        return
    epoch_sampler = EpochBatchSampler(len(dataset), batch_size=batch_size, seed=seed)
    loader = torch.utils.data.DataLoader(data, batch_sampler=epoch_sampler)
    epoch = 0
    while True:
        epoch_sampler.set_epoch(epoch)
        if hasattr(data, "set_epoch"):
            data.set_epoch(epoch)
        yield from loader
        epoch += 1


def _embed_views(pipeline: Pipeline, batch: Any) -> list[Tensor]:
    """Views made as training makes them, but with no gradient to the view maker, then embedded."""
    prepared = pipeline.prepare_batch(batch)
    with torch.no_grad():
        views = [v.detach() for v in pipeline.make_views(prepared)]
    return [pipeline.critic.embed(f, view=i) for i, f in enumerate(pipeline.encode(views))]


def _pair_losses(pipeline: Pipeline, embeddings: list[Tensor]) -> Tensor:
    """``[P]``: the two-way in-batch InfoNCE of every contrasted pair."""
    return torch.stack([
        in_batch_info_nce(pipeline.critic.score(embeddings[i], embeddings[j])) for i, j in pipeline.pairs
    ])


# -- estimate --------------------------------------------------------------------------------------
def estimate_view_information(
    pipeline: Pipeline,
    train_dataset: Any,
    test_dataset: Any,
    *,
    steps: int = 200,
    batch_size: int = 128,
    lr: float = 2e-3,
    max_eval_batches: int = 16,
    seed: int = 0,
) -> list[PairEstimate]:
    """Train the critic (encoders + critic) for ``steps`` steps, then estimate I_NCE per view pair on ``test_dataset``.

    ``pipeline`` is a :class:`~contrastkit.Pipeline` (its encoders and critic are trained in place
    with AdamW at ``lr``; its view maker stays frozen). The estimate is averaged over up to
    ``max_eval_batches`` full held-out batches of ``batch_size`` (``K = batch_size - 1``).

    Example:
        >>> from contrastkit import Pipeline
        >>> from contrastkit.datasets.colorful_moving_digits import ColorfulMovingDigits
        >>> pipe = Pipeline(views="augmented-copies", encoder={"name": "convnet", "width": 4, "depth": 2})
        >>> est = estimate_view_information(pipe, ColorfulMovingDigits(size=32, image_size=16, digit_size=8),
        ...     ColorfulMovingDigits(split="test", size=32, image_size=16, digit_size=8), steps=2, batch_size=8)
        >>> [(e.pair, e.num_negatives, e.i_nce <= e.ceiling) for e in est]
        [('v1-v2', 7, True)]
    """
    limits = (("steps", steps, 1), ("batch", batch_size, 2), ("max_eval_batches", max_eval_batches, 1))
    for name, value, least in limits:
        if value < least:
            raise InvalidParameter(name, f"must be >= {least}", value)
    if not lr > 0:
        raise InvalidParameter("lr", "must be > 0", lr)
    view_maker = pipeline.view_maker
    for p in view_maker.parameters():  # frozen: the question is what these views share, not better views
        p.requires_grad_(False)
    trained = [p for name, p in pipeline.named_parameters() if not name.startswith("view_maker.") and p.requires_grad]
    if not trained:
        raise ConfigError("encoder: the pipeline has no trainable encoder or critic parameters to estimate with")
    optimizer = torch.optim.AdamW(trained, lr=lr)
    torch.manual_seed(seed)  # augmentations draw from the global RNG: the same draws for every sweep value

    pipeline.train()
    batches = _batches(pipeline, train_dataset, batch_size=batch_size, seed=seed, shuffle=True)
    for _, batch in zip(range(steps), batches):
        loss = _pair_losses(pipeline, _embed_views(pipeline, batch)).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    # Held out, encoders in eval mode: batch norm's running statistics, so each score depends on its
    # own pair only (a batch-dependent critic would not be a critic of the bound). The view maker and
    # augmentation stay in training mode: the estimate is about the views training sees.
    pipeline.eval()
    view_maker.train()
    total: Tensor | None = None
    count = 0
    with torch.no_grad():
        held_out = _batches(pipeline, test_dataset, batch_size=batch_size, seed=seed, shuffle=False)
        for batch in held_out:
            losses = _pair_losses(pipeline, _embed_views(pipeline, batch))
            total = losses if total is None else total + losses
            count += 1
            if count == max_eval_batches:
                break
    pipeline.train()
    assert total is not None  # _batches checked that one full batch exists
    mean = (total / count).tolist()  # one host copy, after the loop
    k = batch_size - 1
    names = [f"v{i + 1}-v{j + 1}" for i, j in pipeline.pairs]
    if not all(math.isfinite(v) for v in mean):
        raise ConfigError(f"train.lr: the critic's held-out loss is not finite ({mean}); lower --lr or check the data")
    return [
        PairEstimate(pair=n, i_nce=math.log(k + 1) - v, loss=v, num_negatives=k, batches=count)
        for n, v in zip(names, mean)
    ]


def probe_accuracy(pipeline: Pipeline, train_dataset: Any, test_dataset: Any, *, label: str, config: Config) -> Any:
    """The linear probe of ``pipeline``'s encoders on ``label`` (an :class:`~contrastkit.evaluation.EvalResult`).

    Uses the recipe's ``[eval]`` settings (``linear_epochs``, ``max_samples``) and ``train.seed``.

    Example:
        >>> from contrastkit import Pipeline
        >>> from contrastkit.datasets.colorful_moving_digits import ColorfulMovingDigits
        >>> pipe = Pipeline(encoder={"name": "convnet", "width": 4, "depth": 2})
        >>> r = probe_accuracy(pipe, ColorfulMovingDigits(size=32, image_size=16, digit_size=8),
        ...     ColorfulMovingDigits(split="test", size=16, image_size=16, digit_size=8), label="background",
        ...     config=Config())
        >>> r.probe, r.metric
        ('linear', 'top1')
    """
    from contrastkit.evaluation import evaluate

    (result,) = evaluate(
        pipeline, train_dataset, test_dataset, labels=[label], knn=False, linear=True,
        epochs=config.eval.linear_epochs, batch_size=config.train.batch_size,
        max_samples=config.eval.max_samples, seed=config.train.seed,
    )
    return result


# -- sweep -----------------------------------------------------------------------------------------
def _split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets and quotes, so ``["digit","position"],["digit"]`` is two values."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def parse_sweep(spec: str) -> tuple[str, list[str]]:
    """``KEY=V1,V2,...`` -> ``(KEY, [V1, V2, ...])``; each value is later applied like ``--set KEY=V``.

    Example:
        >>> parse_sweep('views.share=["digit"],["digit","position"]')
        ('views.share', ['["digit"]', '["digit","position"]'])
        >>> parse_sweep("train.lr=0.1")
        Traceback (most recent call last):
        ...
        contrastkit.errors.ConfigError: --sweep 'train.lr=0.1': give at least 2 values, e.g. --sweep train.lr=0.1,0.01
    """
    key, sep, text = spec.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--sweep {spec!r}: expected KEY=V1,V2,..., e.g. --sweep augment.strength=0.5,1,2")
    values = [v for v in _split_top_level(text) if v]
    if len(values) < 2:
        raise ConfigError(f"--sweep {spec!r}: give at least 2 values, e.g. --sweep {key}=0.1,0.01")
    return key, values


def _flat(table: Mapping[str, Any], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for key, value in table.items():
        if isinstance(value, Mapping) and value:
            keys |= _flat(value, f"{prefix}{key}.")
        else:
            keys.add(f"{prefix}{key}")
    return keys


def known_recipe_keys(raw: Mapping[str, Any]) -> set[str]:
    """Every dotted key a sweep may set: the recipe's own keys, every ``[train]``/``[eval]``/``[log]`` field,
    and each plugin table's ``name`` plus its plugin's parameters (injected ones excluded).

    Example:
        >>> keys = known_recipe_keys({"views": {"name": "factor-pair"}})
        >>> {"train.lr", "views.share", "critic.temperature", "views.name"} <= keys, "views.sharee" in keys
        (True, False)
    """
    from contrastkit.config import config_from_dict
    from contrastkit.factories import factory_parameters
    from contrastkit.registry import INJECTED, SLOTS, get_registry

    config = config_from_dict(raw)
    keys = _flat(raw)
    registry = get_registry()
    for field in attrs.fields(Config):
        default_type = type(field.default)
        if field.name not in SLOTS and attrs.has(default_type):  # [train], [eval], [log]
            keys |= {f"{field.name}.{sub.name}" for sub in attrs.fields(default_type)}
        if field.name not in SLOTS:
            continue
        kind = SLOTS[field.name]
        table = getattr(config, field.name)
        keys.add(f"{field.name}.name")
        if not isinstance(table, PluginTable):  # [[augment]] / [[encoder]]: per-view tables, not a dotted key
            continue
        if field.name == "encoder":
            keys.add("encoder.shared")
        try:
            params = factory_parameters(registry.get(kind, table.name).factory)
        except Exception:  # noqa: BLE001 - an unknown plugin name is reported when the pipeline is built
            continue
        keys |= {f"{field.name}.{p}" for p in params if p not in INJECTED[kind] and p != "self"}
    return keys


def check_sweep_key(key: str, raw: Mapping[str, Any]) -> None:
    """A one-line :class:`ConfigError` naming ``key`` with close matches when the recipe has no such key.

    Example:
        >>> check_sweep_key("augment.strenght", {"augment": {"name": "simclr"}})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        contrastkit.errors.ConfigError: --sweep: unknown recipe key 'augment.strenght'; did you mean 'augment.strength' ...
    """
    known = known_recipe_keys(raw)
    if key in known:
        return
    section = key.split(".", 1)[0]
    matches = close_matches(key, sorted(known))
    if matches:
        hint = "did you mean " + " or ".join(repr(m) for m in matches) + "?"
    else:
        same = sorted(k for k in known if k.startswith(section + "."))
        hint = f"keys of [{section}]: {', '.join(same)}" if same else "see docs/config.md for the recipe keys"
    raise ConfigError(f"--sweep: unknown recipe key {key!r}; {hint}")


@attrs.frozen
class SweepPoint:
    """One sweep value: its I_NCE estimates and the linear probe of the encoders trained to get them.

    Example:
        >>> estimates = [PairEstimate("v1-v2", 2.0, 1.0, 63, 1)]
        >>> p = SweepPoint(value="0.3", estimates=estimates, metric="top1", accuracy=81.0)
        >>> p.i_nce
        2.0
    """

    value: str
    estimates: list[PairEstimate]
    metric: str
    accuracy: float

    @property
    def i_nce(self) -> float:
        """The mean estimate over the view pairs (the x of the plot)."""
        return sum(e.i_nce for e in self.estimates) / len(self.estimates)

    def as_dict(self) -> dict[str, Any]:
        """Plain data (``--json``).

        Example:
            >>> SweepPoint("a", [], "top1", 1.0).as_dict()["estimates"]
            []
        """
        return {"value": self.value, "metric": self.metric, "accuracy": self.accuracy,
                "estimates": [e.as_dict() for e in self.estimates]}


def _metric_header(metric: str, label: str) -> str:
    return f"{label} linear top-1 (%)" if metric == "top1" else f"{label} linear error (px)"


def sweep_table(key: str, points: Sequence[SweepPoint], *, label: str) -> str:
    """A markdown table, one row per swept value: I_NCE per pair, K, log(K+1), the probe's score.

    Example:
        >>> pts = [SweepPoint("0.1", [PairEstimate("v1-v2", 1.5, 2.66, 63, 4)], "top1", 70.0)]
        >>> print(sweep_table("augment.scale_min", pts, label="digit"))
        | augment.scale_min | I_NCE v1-v2 (nats) | K | log(K+1) | digit linear top-1 (%) |
        | --- | --- | --- | --- | --- |
        | 0.1 | 1.500 | 63 | 4.159 | 70.00 |
    """
    if not points:
        raise InvalidParameter("points", "the sweep has no results", 0)
    pairs = [e.pair for e in points[0].estimates]
    header = [key, *(f"I_NCE {p} (nats)" for p in pairs), "K", "log(K+1)", _metric_header(points[0].metric, label)]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    for point in points:
        k = point.estimates[0].num_negatives
        cells = [point.value]
        cells += [f"{e.i_nce:.3f}" + (" (saturated)" if e.saturated else "") for e in point.estimates]
        cells += [str(k), f"{math.log(k + 1):.3f}", f"{point.accuracy:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_sweep_plot(path: str | Path, key: str, points: Sequence[SweepPoint], *, label: str) -> Path:
    """Draw the probe's score against I_NCE, one labelled point per swept value, to a PNG (PIL only).

    The points are joined in sweep order, so InfoMin's reverse-U shows as a rise then a fall.

    Example:
        >>> import tempfile, pathlib
        >>> pts = [SweepPoint(v, [PairEstimate("v1-v2", x, 1.0, 63, 1)], "top1", y)
        ...        for v, x, y in (("0.08", 1.0, 60.0), ("0.3", 2.0, 80.0), ("0.6", 3.0, 70.0))]
        >>> out = write_sweep_plot(pathlib.Path(tempfile.mkdtemp()) / "s.png", "augment.scale_min", pts, label="digit")
        >>> out.read_bytes()[:4] == b"\\x89PNG"
        True
    """
    from PIL import Image, ImageDraw

    from contrastkit.experiments.plots import nice_ticks

    if not points:
        raise InvalidParameter("points", "the sweep has no results", 0)
    width, height, left, right, top, bottom = 720, 480, 80, 30, 40, 60
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    xs, ys = [p.i_nce for p in points], [p.accuracy for p in points]

    def padded(values: list[float]) -> tuple[float, float]:
        low, high = min(values), max(values)
        pad = (high - low) * 0.1 or max(abs(high) * 0.1, 0.1)
        return low - pad, high + pad

    (x0, x1), (y0, y1) = padded(xs), padded(ys)

    def to_pixel(x: float, y: float) -> tuple[float, float]:
        px = left + (x - x0) / (x1 - x0) * (width - left - right)
        py = height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom)
        return px, py

    draw.line([(left, top), (left, height - bottom), (width - right, height - bottom)], fill="black", width=2)
    for tick in nice_ticks(x0, x1):
        px, _ = to_pixel(tick, y0)
        draw.line([(px, height - bottom), (px, height - bottom + 5)], fill="black")
        draw.text((px - 10, height - bottom + 8), f"{tick:g}", fill="black")
    for tick in nice_ticks(y0, y1):
        _, py = to_pixel(x0, tick)
        draw.line([(left - 5, py), (left, py)], fill="black")
        draw.text((left - 45, py - 6), f"{tick:g}", fill="black")
    draw.text((width // 2 - 120, height - 25), "I_NCE of the views (nats, mean over pairs)", fill="black")
    draw.text((10, 10), f"{_metric_header(points[0].metric, label)} vs I_NCE, sweeping {key}", fill="black")
    pixels = [to_pixel(x, y) for x, y in zip(xs, ys)]
    draw.line(pixels, fill=(120, 120, 200), width=1)
    for point, (px, py) in zip(points, pixels):
        draw.ellipse([px - 5, py - 5, px + 5, py + 5], fill=(200, 40, 40), outline="black")
        draw.text((px + 8, py - 14), point.value, fill="black")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out, format="PNG")
    return out


def run_sweep(
    key: str,
    values: Sequence[str],
    build: Callable[[str], tuple[list[PairEstimate], Any]],
) -> list[SweepPoint]:
    """Call ``build(value)`` (estimate + probe for the recipe with ``key = value``) for each value.

    Example:
        >>> fake = lambda v: ([PairEstimate("v1-v2", float(v), 0.0, 7, 1)], None)
        >>> [p.i_nce for p in run_sweep("train.lr", ["1", "2"], fake)]
        [1.0, 2.0]
    """
    points = []
    for value in values:
        estimates, result = build(value)
        metric = getattr(result, "metric", "top1")
        accuracy = float(getattr(result, "value", float("nan")))
        points.append(SweepPoint(value=value, estimates=estimates, metric=metric, accuracy=accuracy))
    return points

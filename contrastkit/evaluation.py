"""Probes of a pipeline's frozen features: a linear probe and a weighted k-nearest-neighbour probe.

Features are every view's encoder output concatenated (CMC's evaluation), extracted once per split
with the encoders frozen (``eval()`` mode, no gradients, batched, on the pipeline's device). Each
label is probed according to its dtype:

- integer labels (``digit``, ``background``) are classes: top-1 accuracy on the test split, in %;
- float labels (``position``, ``[2]`` pixels) are continuous: the mean Euclidean error, in pixels.

The linear probe standardises the features with the train split's statistics, then trains an
``nn.Linear`` with AdamW (classes) or solves a ridge regression in closed form (continuous labels).
The kNN probe is the weighted vote of Wu et al. (2018), as used by CMC and InfoMin: the ``k``
most cosine-similar train samples vote with weight ``exp(similarity / temperature)``.

Example:
    >>> import torch
    >>> train_x, train_y = torch.eye(4), torch.tensor([0, 1, 2, 3])
    >>> knn_predict(train_x, train_y, torch.eye(4), k=1).tolist()
    [0, 1, 2, 3]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.errors import InvalidParameter

if TYPE_CHECKING:
    from contrastkit.pipeline import Pipeline

__all__ = [
    "EvalResult",
    "collect_features",
    "evaluate",
    "knn_predict",
    "knn_probe",
    "linear_predict",
    "linear_probe",
    "score",
]

Probe = Literal["knn", "linear"]
Metric = Literal["top1", "pixel_error"]


@attrs.frozen
class EvalResult:
    """One probe's score on one label: ``metric`` is ``top1`` (accuracy, %) or ``pixel_error`` (mean distance).

    Example:
        >>> print(EvalResult(label="digit", probe="knn", metric="top1", value=91.5))
        kNN digit top-1 on test: 91.50%
        >>> print(EvalResult(label="position", probe="linear", metric="pixel_error", value=1.234))
        linear probe position error on test: 1.23 px
    """

    label: str
    probe: Probe
    metric: Metric
    value: float

    def __str__(self) -> str:
        probe = "kNN" if self.probe == "knn" else "linear probe"
        if self.metric == "top1":
            return f"{probe} {self.label} top-1 on test: {self.value:.2f}%"
        return f"{probe} {self.label} error on test: {self.value:.2f} px"

    def as_dict(self) -> dict[str, str | float]:
        """Plain data (what ``contrastkit eval --json`` prints).

        Example:
            >>> EvalResult(label="digit", probe="knn", metric="top1", value=50.0).as_dict()["probe"]
            'knn'
        """
        return attrs.asdict(self)


# -- features --------------------------------------------------------------------------------------
def _spread_indices(length: int, max_samples: int | None) -> list[int]:
    """Up to ``max_samples`` indices spread evenly over ``range(length)``.

    Evenly spaced rather than the first ones: folder datasets are sorted by class.
    """
    n = length if max_samples is None else min(length, max_samples)
    return [i * length // n for i in range(n)]


@torch.no_grad()
def collect_features(pipeline: Pipeline, dataset: torch.utils.data.Dataset, labels: Sequence[str], *,
                     batch_size: int = 256, max_samples: int | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    """Raw features ``[N, sum F]`` and the ``labels`` of up to ``max_samples`` samples, on the pipeline's device.

    Samples are spread evenly over the dataset. The pipeline's mode is left as it is: call
    ``eval()`` first (the probes do) so batch norm uses its running statistics.

    Example:
        >>> from contrastkit import Pipeline
        >>> from contrastkit.datasets.colorful_moving_digits import ColorfulMovingDigits
        >>> pipe = Pipeline(encoder={"name": "convnet", "width": 4, "depth": 2}).eval()
        >>> x, y = collect_features(pipe, ColorfulMovingDigits(size=10), ["digit"], batch_size=4, max_samples=6)
        >>> tuple(x.shape), tuple(y["digit"].shape)
        ((6, 16), (6,))
    """
    if batch_size < 1:
        raise InvalidParameter("batch_size", "must be >= 1", batch_size)
    # torch's Dataset declares no __len__ (map-style datasets have one): len() below is not a type error.
    subset = torch.utils.data.Subset(dataset, _spread_indices(len(dataset), max_samples))  # type: ignore[arg-type]
    loader = torch.utils.data.DataLoader(subset, batch_size=batch_size, shuffle=False)
    feats: list[Tensor] = []
    values: dict[str, list[Tensor]] = {label: [] for label in labels}
    for batch in loader:
        feats.append(pipeline.features(batch))
        for label in labels:
            values[label].append(torch.as_tensor(batch[label]).to(feats[-1].device))
    if not feats:
        raise InvalidParameter("dataset", "is empty; the probes need at least one sample", len(dataset))  # type: ignore[arg-type]
    return torch.cat(feats), {label: torch.cat(v) for label, v in values.items()}


# -- pure probes on feature tensors ----------------------------------------------------------------
def _is_classes(labels: Tensor) -> bool:
    return not torch.is_floating_point(labels) and not torch.is_complex(labels)


def _num_classes(train_y: Tensor) -> int:
    if train_y.ndim != 1:
        raise InvalidParameter("labels", "class labels must be one integer per sample, shape [N]", tuple(train_y.shape))
    if train_y.numel() and int(train_y.min()) < 0:
        raise InvalidParameter("labels", "class labels must be >= 0", int(train_y.min()))
    return int(train_y.max()) + 1 if train_y.numel() else 1


def knn_predict(train_x: Tensor, train_y: Tensor, test_x: Tensor, *, k: int = 200, temperature: float = 0.1,
                chunk_size: int = 256) -> Tensor:
    """Predict labels of ``test_x`` from its ``k`` most cosine-similar rows of ``train_x``.

    Each neighbour weighs ``exp(cosine / temperature)``. Class labels (integer dtype): the class with
    the largest summed weight. Continuous labels: the weighted mean of the neighbours' labels.
    ``k`` is clipped to the train size; test rows are processed ``chunk_size`` at a time, so the
    largest similarity matrix is ``[chunk_size, N_train]``.

    Example:
        >>> import torch
        >>> x = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
        >>> knn_predict(x, torch.tensor([0, 0, 1]), torch.tensor([[0.2, 1.0]]), k=1).tolist()
        [1]
        >>> knn_predict(torch.eye(2), torch.tensor([[0.0], [4.0]]), torch.tensor([[1.0, 1.0]])).tolist()
        [[2.0]]
    """
    if k < 1:
        raise InvalidParameter("k", "must be >= 1", k)
    if temperature <= 0:
        raise InvalidParameter("temperature", "must be > 0", temperature)
    if chunk_size < 1:
        raise InvalidParameter("chunk_size", "must be >= 1", chunk_size)
    if train_x.shape[0] != train_y.shape[0]:
        raise InvalidParameter("train_y", f"needs one label per train row ({train_x.shape[0]})", tuple(train_y.shape))
    k = min(k, train_x.shape[0])
    train_x = F.normalize(train_x.float(), dim=1)
    test_x = F.normalize(test_x.float(), dim=1)
    classes = _is_classes(train_y)
    if classes:
        num_classes = _num_classes(train_y)
    else:
        targets = train_y.float().reshape(train_y.shape[0], -1)
    out = []
    for start in range(0, test_x.shape[0], chunk_size):
        sims, idx = (test_x[start : start + chunk_size] @ train_x.T).topk(k, dim=1)
        if classes:
            votes = torch.zeros(idx.shape[0], num_classes, device=train_x.device)
            votes.scatter_add_(1, train_y[idx].long(), (sims / temperature).exp())
            out.append(votes.argmax(dim=1))
        else:
            weights = (sims / temperature).softmax(dim=1)  # = exp(s/T) / sum exp(s/T), without overflow
            out.append(torch.einsum("ck,ckd->cd", weights, targets[idx]))
    if not out:
        return train_y.new_zeros((0, *train_y.shape[1:]))
    pred = torch.cat(out)
    return pred if classes else pred.reshape(-1, *train_y.shape[1:])


def _standardise(train_x: Tensor, test_x: Tensor) -> tuple[Tensor, Tensor]:
    mean = train_x.mean(dim=0)
    std = train_x.std(dim=0, unbiased=False).clamp_min(1e-6)  # constant features become 0, not inf
    return (train_x - mean) / std, (test_x - mean) / std


def _fit_classifier(x: Tensor, y: Tensor, num_classes: int, *, epochs: int, lr: float, weight_decay: float,
                    batch_size: int, seed: int) -> nn.Linear:
    with torch.random.fork_rng(devices=[]):  # a reproducible head without touching the caller's RNG
        torch.manual_seed(seed)
        head = nn.Linear(x.shape[1], num_classes)
    head = head.to(x.device)
    n = x.shape[0]
    batch_size = min(batch_size, n)
    steps_per_epoch = math.ceil(n / batch_size)
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(seed)
    with torch.enable_grad():  # the probes may be called under no_grad
        for _ in range(epochs):
            order = torch.randperm(n, generator=generator).to(x.device) if batch_size < n else None
            for start in range(0, n, batch_size):
                rows = order[start : start + batch_size] if order is not None else slice(None)
                xb, yb = x[rows], y[rows]
                loss = F.cross_entropy(head(xb), yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
    return head.eval()


def _ridge(x: Tensor, y: Tensor, test_x: Tensor, *, ridge: float) -> Tensor:
    # float64 where the device has it: the normal equations square the condition number
    dtype = torch.float32 if x.device.type == "mps" else torch.float64
    x, test_x = x.to(dtype), test_x.to(dtype)
    targets = y.to(dtype).reshape(y.shape[0], -1)
    y_mean = targets.mean(dim=0)
    gram = x.T @ x + ridge * x.shape[0] * torch.eye(x.shape[1], dtype=dtype, device=x.device)
    weights = torch.linalg.solve(gram, x.T @ (targets - y_mean))  # x is centred: the bias is y_mean
    return (test_x @ weights + y_mean).float().reshape(-1, *y.shape[1:])


def linear_predict(train_x: Tensor, train_y: Tensor, test_x: Tensor, *, epochs: int = 100, lr: float = 0.01,
                   weight_decay: float = 1e-3, batch_size: int = 1024, ridge: float = 1e-2, seed: int = 0) -> Tensor:
    """Fit a linear model on standardised ``train_x`` and predict ``test_x``'s labels.

    Class labels (integer dtype): ``nn.Linear`` trained with AdamW (cosine schedule) on
    cross-entropy for ``epochs`` passes of ``batch_size`` (full batch when larger than the data).
    Continuous labels: closed-form ridge regression, penalty ``ridge`` per sample on the
    standardised features.

    Example:
        >>> import torch
        >>> x = torch.tensor([[0.0, 1.0], [0.1, 1.0], [1.0, 0.0], [1.0, 0.2]])
        >>> linear_predict(x, torch.tensor([0, 0, 1, 1]), x, epochs=50).tolist()
        [0, 0, 1, 1]
        >>> y = (x @ torch.tensor([[2.0], [-1.0]]) + 3.0).squeeze(1)
        >>> torch.allclose(linear_predict(x, y, x, ridge=0.0), y, atol=1e-4)
        True
    """
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if value < 1:
            raise InvalidParameter(name, "must be >= 1", value)
    if lr <= 0:
        raise InvalidParameter("lr", "must be > 0", lr)
    for name, amount in (("weight_decay", weight_decay), ("ridge", ridge)):
        if amount < 0:
            raise InvalidParameter(name, "must be >= 0", amount)
    if train_x.shape[0] != train_y.shape[0]:
        raise InvalidParameter("train_y", f"needs one label per train row ({train_x.shape[0]})", tuple(train_y.shape))
    train_x, test_x = _standardise(train_x.float(), test_x.float())
    if not _is_classes(train_y):
        return _ridge(train_x, train_y, test_x, ridge=ridge)
    head = _fit_classifier(train_x, train_y.long(), _num_classes(train_y), epochs=epochs, lr=lr,
                           weight_decay=weight_decay, batch_size=batch_size, seed=seed)
    with torch.no_grad():
        return head(test_x).argmax(dim=1)


def score(pred: Tensor, truth: Tensor) -> tuple[Metric, float]:
    """``("top1", accuracy %)`` for class labels, ``("pixel_error", mean Euclidean distance)`` otherwise.

    Example:
        >>> import torch
        >>> score(torch.tensor([1, 2, 3, 0]), torch.tensor([1, 2, 3, 3]))
        ('top1', 75.0)
        >>> score(torch.tensor([[3.0, 4.0]]), torch.tensor([[0.0, 0.0]]))
        ('pixel_error', 5.0)
    """
    if _is_classes(truth):
        return "top1", float((pred.to(truth.device) == truth).float().mean() * 100)
    diff = pred.float().to(truth.device) - truth.float()
    return "pixel_error", float(diff.reshape(len(truth), -1).norm(dim=1).mean())


# -- probes of a pipeline ----------------------------------------------------------------------------
def evaluate(pipeline: Pipeline, train_dataset: torch.utils.data.Dataset, test_dataset: torch.utils.data.Dataset,
             *, labels: Sequence[str], knn: bool = True, linear: bool = True, k: int = 200,
             temperature: float = 0.1, epochs: int = 100, lr: float = 0.01, weight_decay: float = 1e-3,
             linear_batch_size: int = 1024, ridge: float = 1e-2, batch_size: int = 256,
             max_samples: int | None = None, seed: int = 0) -> list[EvalResult]:
    """Linear and/or kNN probes of ``pipeline``'s frozen features for each of ``labels``.

    Features of each split are extracted once (``batch_size`` at a time, up to ``max_samples``
    per split) and shared by both probes; the pipeline's training mode is restored afterwards.
    Results come per label, linear probe first. The other arguments are those of
    :func:`linear_predict` (``linear_batch_size`` is its ``batch_size``) and :func:`knn_predict`.

    Example:
        >>> from contrastkit import Pipeline
        >>> from contrastkit.datasets.colorful_moving_digits import ColorfulMovingDigits
        >>> pipe = Pipeline(encoder={"name": "convnet", "width": 4, "depth": 2})
        >>> results = evaluate(pipe, ColorfulMovingDigits(size=40), ColorfulMovingDigits(split="test", size=20),
        ...                    labels=["digit", "position"], epochs=5)
        >>> [(r.label, r.probe, r.metric) for r in results][:2], pipe.training
        ([('digit', 'linear', 'top1'), ('digit', 'knn', 'top1')], True)
    """
    if not (knn or linear):
        return []
    was_training = pipeline.training
    pipeline.eval()
    try:
        train_x, train_y = collect_features(pipeline, train_dataset, labels, batch_size=batch_size,
                                            max_samples=max_samples)
        test_x, test_y = collect_features(pipeline, test_dataset, labels, batch_size=batch_size,
                                          max_samples=max_samples)
    finally:
        pipeline.train(was_training)
    results = []
    for label in labels:
        tr_x, tr_y, te_x, te_y = train_x, train_y[label], test_x, test_y[label]
        if _is_classes(tr_y):  # class -1 marks an unlabelled sample (STL-10's unlabeled images): left out
            tr_x, tr_y = tr_x[tr_y >= 0], tr_y[tr_y >= 0]
            te_x, te_y = te_x[te_y >= 0], te_y[te_y >= 0]
            if not (len(tr_y) and len(te_y)):
                raise InvalidParameter("labels", f"{label!r} has no labelled samples (all -1) in one split", label)
        if linear:
            pred = linear_predict(tr_x, tr_y, te_x, epochs=epochs, lr=lr, weight_decay=weight_decay,
                                  batch_size=linear_batch_size, ridge=ridge, seed=seed)
            metric, value = score(pred, te_y)
            results.append(EvalResult(label=label, probe="linear", metric=metric, value=value))
        if knn:
            pred = knn_predict(tr_x, tr_y, te_x, k=k, temperature=temperature)
            metric, value = score(pred, te_y)
            results.append(EvalResult(label=label, probe="knn", metric=metric, value=value))
    return results


def knn_probe(pipeline: Pipeline, train_set: torch.utils.data.Dataset, test_set: torch.utils.data.Dataset,
              *, labels: Sequence[str], k: int = 200, temperature: float = 0.1, batch_size: int = 256,
              max_samples: int | None = 2000) -> list[EvalResult]:
    """Weighted kNN probe of ``pipeline``'s features for each of ``labels`` (cheap enough to run during training).

    Example:
        >>> from contrastkit import Pipeline
        >>> from contrastkit.datasets.colorful_moving_digits import ColorfulMovingDigits
        >>> train, test = ColorfulMovingDigits(size=40), ColorfulMovingDigits(split="test", size=20)
        >>> pipe = Pipeline(encoder={"name": "convnet", "width": 4, "depth": 2})
        >>> results = knn_probe(pipe, train, test, labels=["background", "position"], k=5)
        >>> [r.metric for r in results], results == evaluate(pipe, train, test, labels=["background", "position"],
        ...                                                  linear=False, k=5)
        (['top1', 'pixel_error'], True)
    """
    return evaluate(pipeline, train_set, test_set, labels=labels, knn=True, linear=False, k=k,
                    temperature=temperature, batch_size=batch_size, max_samples=max_samples)


def linear_probe(pipeline: Pipeline, train_set: torch.utils.data.Dataset, test_set: torch.utils.data.Dataset,
                 *, labels: Sequence[str], epochs: int = 100, lr: float = 0.01, weight_decay: float = 1e-3,
                 linear_batch_size: int = 1024, ridge: float = 1e-2, batch_size: int = 256,
                 max_samples: int | None = None, seed: int = 0) -> list[EvalResult]:
    """Linear probe of ``pipeline``'s frozen features for each of ``labels`` (see :func:`linear_predict`).

    Any map-style dataset of dicts serves, as here a list of plain grey images labelled by their shade.

    Example:
        >>> import torch
        >>> from contrastkit import Pipeline
        >>> data = [{"image": torch.full((3, 32, 32), i / 8), "dark": int(i < 4)} for i in range(8)]
        >>> pipe = Pipeline(encoder={"name": "convnet", "width": 4, "depth": 2})
        >>> [(r.probe, r.metric) for r in linear_probe(pipe, data, data, labels=["dark"], epochs=5)]
        [('linear', 'top1')]
    """
    return evaluate(pipeline, train_set, test_set, labels=labels, knn=False, linear=True, epochs=epochs, lr=lr,
                    weight_decay=weight_decay, linear_batch_size=linear_batch_size, ridge=ridge,
                    batch_size=batch_size, max_samples=max_samples, seed=seed)

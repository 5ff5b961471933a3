"""k-nearest-neighbour probe of a pipeline's frozen features.

Features are every view's encoder output concatenated (CMC's evaluation), L2-normalised. A test
sample's label is predicted from its ``k`` most cosine-similar training samples: a
similarity-weighted vote for class labels (int64), the mean for continuous labels (e.g. the digit
``position``, reported as mean Euclidean error in label units).

Example:
    >>> import torch
    >>> train_x, train_y = torch.eye(4), torch.tensor([0, 1, 2, 3])
    >>> knn_predict(train_x, train_y, torch.eye(4), k=1).tolist()
    [0, 1, 2, 3]
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["KnnResult", "collect_features", "knn_predict", "knn_probe"]


@attrs.frozen
class KnnResult:
    """Outcome of :func:`knn_probe`: ``metric`` is ``accuracy`` (%) or ``mean_error`` (label units).

    Example:
        >>> print(KnnResult(label="digit", k=20, metric="accuracy", value=91.5))
        kNN (k=20) digit accuracy on test: 91.50%
    """

    label: str
    k: int
    metric: str
    value: float

    def __str__(self) -> str:
        unit = "%" if self.metric == "accuracy" else ""
        return f"kNN (k={self.k}) {self.label} {self.metric.replace('_', ' ')} on test: {self.value:.2f}{unit}"


@torch.no_grad()
def collect_features(pipeline: torch.nn.Module, dataset: torch.utils.data.Dataset, labels: Sequence[str], *,
                     batch_size: int, max_samples: int) -> tuple[Tensor, dict[str, Tensor]]:
    """Features ``[N, sum F]`` (normalised, on the pipeline's device) and the ``labels`` of the first ``max_samples``.

    Example:
        >>> from contrastkit import Pipeline
        >>> from contrastkit.datasets.colorful_moving_digits import ColorfulMovingDigits
        >>> pipe = Pipeline(encoder={"name": "convnet", "width": 4, "depth": 2}).eval()
        >>> x, y = collect_features(pipe, ColorfulMovingDigits(size=10), ["digit"], batch_size=4, max_samples=6)
        >>> tuple(x.shape), tuple(y["digit"].shape)
        ((6, 16), (6,))
    """
    n = min(len(dataset), max_samples)
    subset = torch.utils.data.Subset(dataset, range(n))
    loader = torch.utils.data.DataLoader(subset, batch_size=batch_size, shuffle=False)
    feats: list[Tensor] = []
    values: dict[str, list[Tensor]] = {label: [] for label in labels}
    for batch in loader:
        feats.append(F.normalize(pipeline.features(batch), dim=1))
        for label in labels:
            values[label].append(batch[label].to(feats[-1].device))
    return torch.cat(feats), {label: torch.cat(v) for label, v in values.items()}


def knn_predict(train_x: Tensor, train_y: Tensor, test_x: Tensor, *, k: int, temperature: float = 0.07,
                chunk: int = 1024) -> Tensor:
    """Predict labels of ``test_x`` from its ``k`` nearest (cosine) rows of ``train_x``.

    Class labels (integer dtype): vote weighted by ``exp(similarity / temperature)``.
    Continuous labels: mean of the neighbours' labels.

    Example:
        >>> import torch
        >>> x = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]), dim=1)
        >>> knn_predict(x, torch.tensor([[0.0], [2.0], [10.0]]), x[:1], k=2).tolist()
        [[1.0]]
    """
    k = min(k, train_x.shape[0])
    classification = not torch.is_floating_point(train_y)
    num_classes = int(train_y.max()) + 1 if classification else 0
    out = []
    for start in range(0, test_x.shape[0], chunk):  # bounded memory: [chunk, N_train] at a time
        sims, idx = (test_x[start : start + chunk] @ train_x.T).topk(k, dim=1)
        neighbours = train_y[idx]
        if classification:
            votes = torch.zeros(idx.shape[0], num_classes, device=train_x.device)
            votes.scatter_add_(1, neighbours, (sims / temperature).exp())
            out.append(votes.argmax(dim=1))
        else:
            out.append(neighbours.float().mean(dim=1))
    return torch.cat(out)


def knn_probe(pipeline: torch.nn.Module, train_set: torch.utils.data.Dataset, test_set: torch.utils.data.Dataset,
              *, labels: Sequence[str], k: int, batch_size: int = 256, max_samples: int = 2000) -> list[KnnResult]:
    """kNN evaluation of ``pipeline``'s features for each of ``labels`` (features extracted once).

    Restores the pipeline's training mode afterwards.

    Example:
        >>> from contrastkit import Pipeline
        >>> from contrastkit.datasets.colorful_moving_digits import ColorfulMovingDigits
        >>> pipe = Pipeline(encoder={"name": "convnet", "width": 4, "depth": 2})
        >>> results = knn_probe(pipe, ColorfulMovingDigits(size=40), ColorfulMovingDigits(split="test", size=20),
        ...                     labels=["background", "position"], k=5)
        >>> [r.metric for r in results], pipe.training
        (['accuracy', 'mean_error'], True)
    """
    was_training = pipeline.training
    pipeline.eval()
    try:
        train_x, train_y = collect_features(pipeline, train_set, labels, batch_size=batch_size, max_samples=max_samples)
        test_x, test_y = collect_features(pipeline, test_set, labels, batch_size=batch_size, max_samples=max_samples)
    finally:
        pipeline.train(was_training)
    results = []
    for label in labels:
        truth = test_y[label]
        pred = knn_predict(train_x, train_y[label], test_x, k=k)
        if torch.is_floating_point(truth):
            error = (pred - truth.float()).reshape(len(truth), -1).norm(dim=1).mean()
            results.append(KnnResult(label=label, k=k, metric="mean_error", value=float(error)))
        else:
            accuracy = (pred == truth).float().mean() * 100
            results.append(KnnResult(label=label, k=k, metric="accuracy", value=float(accuracy)))
    return results

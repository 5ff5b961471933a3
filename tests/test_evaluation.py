"""The linear and kNN probes: accuracy on separable data, the weighting against a naive reference, pipelines."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from contrastkit.errors import InvalidParameter
from contrastkit.evaluation import (
    EvalResult,
    collect_features,
    evaluate,
    knn_predict,
    knn_probe,
    linear_predict,
    linear_probe,
    score,
)


def blobs(n: int, *, classes: int = 4, dim: int = 16, spread: float = 0.3, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Gaussian blobs around random unit centres (separable by direction and linearly)."""
    g = torch.Generator().manual_seed(seed)
    centres = nn.functional.normalize(torch.randn(classes, dim, generator=torch.Generator().manual_seed(99)), dim=1)
    y = torch.randint(0, classes, (n,), generator=g)
    x = centres[y] * 3 + spread * torch.randn(n, dim, generator=g)
    return x, y


def positions(n: int, *, dim: int = 12, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Features whose first two coordinates are a linear function of a pixel position, plus distractors."""
    g = torch.Generator().manual_seed(seed)
    pos = torch.rand(n, 2, generator=g) * 24 + 4  # pixels
    mixing = torch.randn(2, dim, generator=torch.Generator().manual_seed(7))
    x = pos @ mixing + 0.5 + 1e-3 * torch.randn(n, dim, generator=g)
    return x, pos


# -- pure functions ---------------------------------------------------------------------------------
def test_linear_probe_separates_blobs() -> None:
    train_x, train_y = blobs(400)
    test_x, test_y = blobs(200, seed=1)
    pred = linear_predict(train_x, train_y, test_x, epochs=30)
    metric, value = score(pred, test_y)
    assert metric == "top1"
    assert value > 95.0


def test_linear_probe_is_not_fooled_by_shifted_scaled_features() -> None:
    # standardisation: a huge offset and scale on the features must not matter
    train_x, train_y = blobs(400)
    test_x, test_y = blobs(200, seed=1)
    pred = linear_predict(train_x * 1000 + 5000, train_y, test_x * 1000 + 5000, epochs=30)
    assert score(pred, test_y)[1] > 95.0


def test_linear_probe_is_reproducible_and_leaves_the_global_rng_alone() -> None:
    train_x, train_y = blobs(64)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = linear_predict(train_x, train_y, train_x, epochs=3, batch_size=16, seed=5)
    after = torch.rand(1)
    b = linear_predict(train_x, train_y, train_x, epochs=3, batch_size=16, seed=5)
    assert torch.equal(before, after)
    assert torch.equal(a, b)


def test_linear_regression_recovers_linear_positions() -> None:
    train_x, train_pos = positions(300)
    test_x, test_pos = positions(100, seed=1)
    pred = linear_predict(train_x, train_pos, test_x)
    assert pred.shape == test_pos.shape and pred.dtype == torch.float32
    metric, value = score(pred, test_pos)
    assert metric == "pixel_error"
    assert value < 0.1


def test_knn_separates_blobs() -> None:
    train_x, train_y = blobs(400)
    test_x, test_y = blobs(200, seed=1)
    metric, value = score(knn_predict(train_x, train_y, test_x), test_y)  # default k=200 > class size
    assert (metric, value > 95.0) == ("top1", True)


def test_knn_regression_of_positions_on_a_dense_grid() -> None:
    # features on the unit circle encode an angle; the label is the point's position in pixels
    def circle(angles: Tensor) -> tuple[Tensor, Tensor]:
        x = torch.stack([angles.cos(), angles.sin()], dim=1)
        return x, 10 + 10 * x

    train_x, train_pos = circle(torch.linspace(0, 2 * math.pi, 2001)[:-1])
    test_x, test_pos = circle(torch.rand(50, generator=torch.Generator().manual_seed(0)) * 2 * math.pi)
    pred = knn_predict(train_x, train_pos, test_x, k=5, temperature=0.01)
    metric, value = score(pred, test_pos)
    assert metric == "pixel_error"
    assert value < 0.05


def naive_knn(train_x: Tensor, train_y: Tensor, test_x: Tensor, k: int, temperature: float) -> list:
    """Sample by sample, in float64: the definition of the weighted vote / weighted mean."""
    train_x = train_x.double() / train_x.double().norm(dim=1, keepdim=True)
    out = []
    for row in test_x.double():
        sims = [(float(row @ t / row.norm()), i) for i, t in enumerate(train_x)]
        top = sorted(sims, reverse=True)[:k]
        if train_y.dtype == torch.int64:
            votes: dict[int, float] = {}
            for s, i in top:
                votes[int(train_y[i])] = votes.get(int(train_y[i]), 0.0) + math.exp(s / temperature)
            out.append(max(votes, key=votes.get))
        else:
            weights = [math.exp(s / temperature) for s, _ in top]
            total = sum(weights)
            out.append([sum(w * float(train_y[i][d]) for w, (_, i) in zip(weights, top)) / total for d in range(2)])
    return out


def test_knn_weighting_matches_a_naive_float64_reference() -> None:
    g = torch.Generator().manual_seed(3)
    train_x, test_x = torch.randn(30, 5, generator=g), torch.randn(12, 5, generator=g)
    classes = torch.randint(0, 3, (30,), generator=g)
    pos = torch.rand(30, 2, generator=g) * 32
    for k, temperature in ((7, 0.1), (30, 0.5), (1, 0.1)):
        assert knn_predict(train_x, classes, test_x, k=k, temperature=temperature).tolist() == naive_knn(
            train_x, classes, test_x, k, temperature
        )
        expected = torch.tensor(naive_knn(train_x, pos, test_x, k, temperature), dtype=torch.float64)
        got = knn_predict(train_x, pos, test_x, k=k, temperature=temperature)
        assert torch.allclose(got.double(), expected, atol=1e-4), (k, temperature)


def test_knn_weights_change_the_vote() -> None:
    # two far neighbours of class 1 outvote one close neighbour of class 0 only if weights are flat
    train_x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-0.1, 1.0]])
    train_y = torch.tensor([0, 1, 1])
    query = torch.tensor([[1.0, 0.3]])
    assert knn_predict(train_x, train_y, query, k=3, temperature=0.1).tolist() == [0]
    assert knn_predict(train_x, train_y, query, k=3, temperature=100.0).tolist() == [1]


def test_knn_chunking_and_k_clipping_do_not_change_predictions() -> None:
    train_x, train_y = blobs(50)
    test_x, _ = blobs(37, seed=2)
    whole = knn_predict(train_x, train_y, test_x, k=10, chunk_size=1000)
    assert torch.equal(knn_predict(train_x, train_y, test_x, k=10, chunk_size=4), whole)
    assert torch.equal(knn_predict(train_x, train_y, test_x, k=1000), knn_predict(train_x, train_y, test_x, k=50))


@pytest.mark.parametrize(
    ("call", "param"),
    [
        (lambda x, y: knn_predict(x, y, x, k=0), "k"),
        (lambda x, y: knn_predict(x, y, x, temperature=0.0), "temperature"),
        (lambda x, y: knn_predict(x, y[:3], x), "train_y"),
        (lambda x, y: linear_predict(x, y, x, epochs=0), "epochs"),
        (lambda x, y: linear_predict(x, y, x, lr=-1.0), "lr"),
        (lambda x, y: linear_predict(x, y - 5, x), "labels"),
    ],
)
def test_bad_arguments_name_the_parameter(call, param: str) -> None:
    x, y = blobs(8)
    with pytest.raises(InvalidParameter) as info:
        call(x, y)
    assert info.value.parameter == param


def test_score_and_result_formatting() -> None:
    assert score(torch.tensor([0, 1]), torch.tensor([0, 0])) == ("top1", 50.0)
    assert score(torch.tensor([[0.0, 0.0], [6.0, 8.0]]), torch.zeros(2, 2)) == ("pixel_error", 5.0)
    assert str(EvalResult("digit", "linear", "top1", 97.123)) == "linear probe digit top-1 on test: 97.12%"
    assert EvalResult("position", "knn", "pixel_error", 1.5).as_dict() == {
        "label": "position", "probe": "knn", "metric": "pixel_error", "value": 1.5
    }


# -- probes of a pipeline ---------------------------------------------------------------------------
class FakePipeline(nn.Module):
    """``features`` returns the batch's precomputed ``x``, on the pipeline's device; counts its calls."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))
        self.calls = 0
        self.modes: list[bool] = []

    def features(self, batch: dict[str, Tensor]) -> Tensor:
        self.calls += 1
        self.modes.append(self.training)
        assert not torch.is_grad_enabled()
        return batch["x"].to(self.anchor.device)


def as_dataset(x: Tensor, **labels: Tensor) -> list[dict[str, Tensor]]:
    return [{"x": x[i], **{k: v[i] for k, v in labels.items()}} for i in range(len(x))]


def test_evaluate_extracts_features_once_for_both_probes_and_every_label() -> None:
    train_x, train_y = blobs(120)
    test_x, test_y = blobs(60, seed=1)
    train_px, train_pos = positions(120)
    test_px, test_pos = positions(60, seed=1)
    # position features scaled down so they do not dominate the cosine of the kNN class vote
    train = as_dataset(torch.cat([train_x, train_px * 1e-3], 1), cls=train_y, pos=train_pos)
    test = as_dataset(torch.cat([test_x, test_px * 1e-3], 1), cls=test_y, pos=test_pos)
    pipe = FakePipeline()
    results = evaluate(pipe, train, test, labels=["cls", "pos"], k=20, epochs=30, batch_size=32)
    assert pipe.calls == 4 + 2  # 120 / 32 -> 4 train batches, 60 / 32 -> 2 test batches
    assert pipe.modes == [False] * 6 and pipe.training  # eval() while extracting, train mode restored
    by_key = {(r.label, r.probe): r for r in results}
    assert list(by_key) == [("cls", "linear"), ("cls", "knn"), ("pos", "linear"), ("pos", "knn")]
    assert by_key["cls", "linear"].metric == "top1" and by_key["cls", "linear"].value > 95.0
    assert by_key["cls", "knn"].value > 95.0
    assert by_key["pos", "linear"].metric == "pixel_error" and by_key["pos", "linear"].value < 0.5
    assert by_key["pos", "knn"].metric == "pixel_error"


def test_probes_respect_max_samples_spread_over_the_dataset() -> None:
    x = torch.arange(100, dtype=torch.float32)[:, None].repeat(1, 2)
    features, labels = collect_features(FakePipeline(), as_dataset(x, y=torch.arange(100)), ["y"], max_samples=10)
    assert labels["y"].tolist() == list(range(0, 100, 10))  # evenly spaced, not the first ten
    assert features.shape == (10, 2)


def test_knn_probe_and_linear_probe_keep_their_pipeline_level_signatures() -> None:
    x, y = blobs(40)
    data = as_dataset(x, cls=y)
    pipe = FakePipeline()
    knn = knn_probe(pipe, data, data, labels=["cls"], k=5, batch_size=16, max_samples=30)
    assert [(r.probe, r.metric) for r in knn] == [("knn", "top1")]
    assert pipe.calls == 2 + 2  # 30 samples per split, 16 per batch
    linear = linear_probe(pipe, data, data, labels=["cls"], epochs=5)
    assert [(r.probe, r.metric) for r in linear] == [("linear", "top1")]
    assert evaluate(pipe, data, data, labels=["cls"], knn=False, linear=False) == []


def test_unlabelled_samples_are_left_out_of_the_class_probes() -> None:
    train_x, train_y = blobs(120)
    test_x, test_y = blobs(60, seed=1)
    # Half the train samples unlabelled (-1, as STL-10's unlabeled split) and given misleading features.
    train_y = train_y.clone()
    train_y[::2] = -1
    train_x = train_x.clone()
    train_x[::2] = -train_x[::2]
    results = evaluate(FakePipeline(), as_dataset(train_x, cls=train_y), as_dataset(test_x, cls=test_y),
                       labels=["cls"], k=10, epochs=30, batch_size=32)
    assert [r.probe for r in results] == ["linear", "knn"] and all(r.value > 95.0 for r in results)
    with pytest.raises(InvalidParameter, match="no labelled samples"):
        evaluate(FakePipeline(), as_dataset(train_x, cls=torch.full_like(train_y, -1)),
                 as_dataset(test_x, cls=test_y), labels=["cls"], batch_size=32)

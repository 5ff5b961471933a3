"""``in-batch`` negatives and ``infonce``'s NT-Xent form (same-view negatives) against SimCLR's algorithm."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pytest
import torch

from contrastkit.critics.cosine import CosineCritic
from contrastkit.errors import ConfigError, ShapeError
from contrastkit.interfaces import PairLogits
from contrastkit.negatives.in_batch import InBatchNegatives, drop_diagonal
from contrastkit.objectives.infonce import InfoNCE
from contrastkit.pipeline import Pipeline
from contrastkit.testing import check_negative_sampler, check_objective


def naive_nt_xent(u: torch.Tensor, v: torch.Tensor, tau: float) -> float:
    """SimCLR's Algorithm 1 in float64: 2N views, the 2N x 2N cosine matrix, loss averaged over 2N anchors.

    The views of image ``k`` are ``x_{2k}`` (from ``u``) and ``x_{2k+1}`` (from ``v``), interleaved
    as in the paper; ``l(i, j) = -log(exp(s_ij / tau) / sum_{m != i} exp(s_im / tau))``.
    """
    n = u.shape[0]
    z = torch.empty(2 * n, u.shape[1], dtype=torch.float64)
    z[0::2], z[1::2] = u.double(), v.double()
    z = z / z.norm(dim=1, keepdim=True)
    s = [[float(z[i] @ z[j]) for j in range(2 * n)] for i in range(2 * n)]

    def ell(i: int, j: int) -> float:
        denominator = sum(math.exp(s[i][m] / tau) for m in range(2 * n) if m != i)
        return -math.log(math.exp(s[i][j] / tau) / denominator)

    return sum(ell(2 * k, 2 * k + 1) + ell(2 * k + 1, 2 * k) for k in range(n)) / (2 * n)


def _setup(n: int, d: int, tau: float) -> tuple[CosineCritic, InBatchNegatives]:
    critic = CosineCritic(feature_dims=(d, d), head="none", temperature=tau)
    return critic, InBatchNegatives(num_views=2, dataset_size=n, embedding_dim=d)


def _two_way(
    critic: CosineCritic, sampler: Any, u: torch.Tensor, v: torch.Tensor, same_view: bool
) -> tuple[torch.Tensor, list[PairLogits]]:
    """contrastkit's two-way InfoNCE of one view pair, as the pipeline computes it."""
    objective = InfoNCE(two_way=True, same_view_negatives=same_view)
    z1, z2 = critic.embed(u, 0), critic.embed(v, 1)
    index = torch.arange(u.shape[0])
    pairs = [
        sampler.pair_logits(critic, a, p, index=index, anchor_view=i, target_view=1 - i, same_view=same_view)
        for i, (a, p) in enumerate(((z1, z2), (z2, z1)))
    ]
    return sum(objective(pl.logits, pl.target) for pl in pairs), pairs


@pytest.mark.parametrize("seed", range(6))
def test_nt_xent_matches_simclr_float64_reference(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    n = int(torch.randint(2, 24, (1,), generator=gen))
    d = int(torch.randint(2, 16, (1,), generator=gen))
    tau = float(torch.empty(1, dtype=torch.float64).uniform_(0.05, 1.0, generator=gen))
    u = torch.randn(n, d, generator=gen, dtype=torch.float64)
    v = torch.randn(n, d, generator=gen, dtype=torch.float64)
    critic, sampler = _setup(n, d, tau)
    loss, pairs = _two_way(critic, sampler, u, v, same_view=True)
    # contrastkit's two-way sum L(V1->V2) + L(V2->V1) (each a mean over N anchors) is twice
    # SimCLR's mean over the 2N anchors.
    assert float(loss) / 2 == pytest.approx(naive_nt_xent(u, v, tau), rel=1e-10, abs=1e-10)
    for pl in pairs:
        assert pl.logits.shape == (n, 2 * n - 1)
        assert pl.num_negatives == 2 * n - 2
        assert torch.isfinite(pl.logits).all()  # the anchor itself is left out, not masked
        assert pl.target.tolist() == list(range(n))


def test_same_view_logits_layout() -> None:
    n, d, tau = 4, 3, 0.5
    critic, sampler = _setup(n, d, tau)
    z1 = critic.embed(torch.randn(n, d, dtype=torch.float64), 0)
    z2 = critic.embed(torch.randn(n, d, dtype=torch.float64), 1)
    pl = sampler.pair_logits(critic, z1, z2, index=torch.arange(n), anchor_view=0, target_view=1, same_view=True)
    for b in range(n):
        others = [c for c in range(n) if c != b]
        expected = torch.cat([z1[b] @ z2.T, z1[b] @ z1[others].T]) / tau
        torch.testing.assert_close(pl.logits[b], expected)
    cross = sampler.pair_logits(critic, z1, z2, index=torch.arange(n), anchor_view=0, target_view=1)
    torch.testing.assert_close(cross.logits, z1 @ z2.T / tau)
    assert cross.num_negatives == n - 1


def test_same_view_batch_of_one_has_only_the_positive() -> None:
    critic, sampler = _setup(1, 3, 0.5)
    z = critic.embed(torch.randn(1, 3), 0)
    pl = sampler.pair_logits(critic, z, z, index=torch.arange(1), anchor_view=0, target_view=1, same_view=True)
    assert pl.logits.shape == (1, 1) and pl.num_negatives == 0


def test_drop_diagonal() -> None:
    m = torch.randn(6, 6)
    expected = torch.stack([torch.cat([m[i, :i], m[i, i + 1 :]]) for i in range(6)])
    assert torch.equal(drop_diagonal(m), expected)
    with pytest.raises(ShapeError, match="square"):
        drop_diagonal(torch.zeros(2, 3))


def test_same_view_logits_gradcheck_float64() -> None:
    critic, sampler = _setup(4, 3, 0.7)
    u = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    v = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)

    def loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return _two_way(critic, sampler, a, b, same_view=True)[0]

    assert torch.autograd.gradcheck(loss, (u, v))


class _SameViewAlways:
    """Runs the sampler contract with ``same_view=True``."""

    def __init__(self, sampler: InBatchNegatives) -> None:
        self.sampler = sampler

    def pair_logits(self, *args: Any, **kwargs: Any) -> PairLogits:
        return self.sampler.pair_logits(*args, same_view=True, **kwargs)

    def update(self, embeddings: Sequence[torch.Tensor], index: torch.Tensor) -> None:
        self.sampler.update(embeddings, index)


def test_contracts() -> None:
    sampler = InBatchNegatives(num_views=2, dataset_size=64, embedding_dim=16)
    check_negative_sampler(sampler)
    check_negative_sampler(_SameViewAlways(sampler))
    check_objective(InfoNCE(same_view_negatives=True))


def test_shape_mismatch_is_a_shape_error() -> None:
    critic, sampler = _setup(4, 3, 0.5)
    with pytest.raises(ShapeError, match="view 1 embeddings"):
        sampler.pair_logits(critic, torch.randn(4, 3), torch.randn(3, 3), index=torch.arange(4),
                            anchor_view=0, target_view=1)


def _pipeline(**objective: Any) -> Pipeline:
    torch.manual_seed(0)
    return Pipeline(
        encoder={"name": "convnet", "width": 4, "depth": 2},
        critic={"name": "cosine", "temperature": 0.3},
        objective={"name": "infonce", **objective},
    ).eval()


@pytest.mark.parametrize("batch", [2, 9])
def test_pipeline_nt_xent_loss_and_mi_bound(batch: int) -> None:
    pipe = _pipeline(same_view_negatives=True)
    out = pipe({"image": torch.rand(batch, 3, 16, 16), "index": torch.arange(batch)})
    expected = naive_nt_xent(out.embeddings[0].detach(), out.embeddings[1].detach(), 0.3)
    assert float(out.metrics["loss/v1-v2"]) / 2 == pytest.approx(expected, rel=1e-4)
    # The bound uses the true K = 2B - 2: mean over the two directions of log(K + 1) - L(direction).
    bound = math.log(2 * batch - 1) - float(out.metrics["loss/v1-v2"]) / 2
    assert float(out.metrics["mi_lower_bound/v1-v2"]) == pytest.approx(bound, abs=1e-4)


def test_pipeline_default_is_cross_view_only() -> None:
    pipe = _pipeline()
    assert pipe.objective.same_view_negatives is False
    out = pipe({"image": torch.rand(6, 3, 16, 16), "index": torch.arange(6)})
    loss = float(out.metrics["loss/v1-v2"])
    assert float(out.metrics["mi_lower_bound/v1-v2"]) == pytest.approx(math.log(6) - loss / 2, abs=1e-4)


class _NoSameView:
    """A third-party sampler written before ``same_view`` existed."""

    registered_name = "no-same-view"

    def __init__(self) -> None:
        self.inner = InBatchNegatives(num_views=2, dataset_size=8, embedding_dim=128)

    def pair_logits(self, critic: Any, anchors: torch.Tensor, positives: torch.Tensor, *, index: torch.Tensor,
                    anchor_view: int, target_view: int) -> PairLogits:
        return self.inner.pair_logits(critic, anchors, positives, index=index, anchor_view=anchor_view,
                                      target_view=target_view)

    def update(self, embeddings: Sequence[torch.Tensor], index: torch.Tensor) -> None:
        pass


def test_samplers_without_same_view_keep_working_and_refuse_nt_xent() -> None:
    kwargs: dict[str, Any] = {"encoder": {"name": "convnet", "width": 4, "depth": 2}}
    pipe = Pipeline(negatives=_NoSameView(), **kwargs)
    pipe({"image": torch.rand(4, 3, 16, 16), "index": torch.arange(4)})  # no same_view keyword passed
    with pytest.raises(ConfigError, match=r"objective\.same_view_negatives: .*negatives\.no-same-view cannot") as err:
        Pipeline(negatives=_NoSameView(), objective={"name": "infonce", "same_view_negatives": True}, **kwargs)
    assert err.value.key == "objective.same_view_negatives"


def test_memory_bank_refuses_nt_xent() -> None:
    with pytest.raises(ConfigError, match=r"negatives\.memory-bank cannot"):
        Pipeline(encoder={"name": "convnet", "width": 4, "depth": 2}, dataset_size=16,
                 negatives={"name": "memory-bank"}, objective={"name": "infonce", "same_view_negatives": True})


def test_same_view_negatives_is_type_checked() -> None:
    with pytest.raises(ConfigError, match="same_view_negatives"):
        Pipeline(encoder={"name": "convnet", "width": 4, "depth": 2},
                 objective={"name": "infonce", "same_view_negatives": "yes"})


# -- the reverse direction as the forward transposed ------------------------------------------------
def _loss_and_grads(pipe: Pipeline, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    pipe.zero_grad()
    out = pipe(batch)
    out.loss.backward()
    return out.loss.detach(), [p.grad.clone() for p in pipe.parameters() if p.grad is not None]


def test_two_way_reuses_the_transposed_scores_with_the_same_loss_and_gradients(monkeypatch: Any) -> None:
    batch = {"image": torch.rand(7, 3, 16, 16), "index": torch.arange(7)}
    pipe = _pipeline()
    assert pipe._transpose_reverse
    calls: list[tuple[int, ...]] = []
    score = pipe.critic.score
    monkeypatch.setattr(pipe.critic, "score", lambda a, c: calls.append(tuple(c.shape)) or score(a, c))
    fast = _loss_and_grads(pipe, batch)
    assert len(calls) == 1  # one [B, B] product for both directions
    pipe._transpose_reverse = False
    slow = _loss_and_grads(pipe, batch)
    assert len(calls) == 3
    torch.testing.assert_close(fast[0], slow[0])
    for a, b in zip(fast[1], slow[1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_the_transpose_is_not_used_where_it_would_be_wrong() -> None:
    kwargs: dict[str, Any] = {"encoder": {"name": "convnet", "width": 4, "depth": 2}}
    assert not Pipeline(critic={"name": "bilinear"}, **kwargs)._transpose_reverse  # f1' W f2 is not symmetric
    assert not _pipeline(same_view_negatives=True)._transpose_reverse
    assert not Pipeline(negatives="memory-bank", data={"name": "colorful-moving-digits", "size": 20,
                                                      "image_size": 16, "digit_size": 8}, **kwargs)._transpose_reverse
    forward = PairLogits(logits=torch.zeros(3, 5), target=torch.arange(3), anchor_view=0, target_view=1)
    assert InBatchNegatives(num_views=2, dataset_size=3, embedding_dim=4).reverse_pair_logits(forward) is None

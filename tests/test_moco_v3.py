"""MoCo v3 from the existing pieces: in-batch negatives with an EMA key encoder and an online-only predictor."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from contrastkit import Pipeline
from contrastkit.errors import InvalidParameter

DATA = {"name": "colorful-moving-digits", "size": 32}
VIEWS = {"name": "augmented-copies", "num_views": 2, "channels": 3}


def moco_v3(tau: float = 0.2) -> Pipeline:
    torch.manual_seed(0)
    return Pipeline(data=DATA, views=VIEWS, encoder={"name": "convnet", "width": 4, "depth": 2}, shared_encoder=True,
                    critic={"name": "cosine", "head": "mlp", "hidden": [16], "embedding_dim": 8, "predictor": [16],
                            "temperature": tau},
                    negatives={"name": "in-batch", "momentum": 0.99}, objective="infonce")


def batch_of(pipe: Pipeline, n: int = 12) -> dict[str, torch.Tensor]:
    items = [pipe.dataset[i] for i in range(n)]
    return {k: torch.stack([torch.as_tensor(it[k]) for it in items]) for k in items[0]}


def test_the_loss_is_the_symmetric_ctr_of_queries_against_momentum_keys() -> None:
    pipe = moco_v3()
    pipe.eval()  # batch norm from running statistics: the reference below sees the same numbers
    batch = pipe.prepare_batch(batch_of(pipe))
    output = pipe(batch)
    views = output.views
    critic, target = pipe.critic, pipe.momentum_target
    assert target is not None, "in-batch momentum must build the EMA key encoder"
    q = [critic.embed(pipe.encoders[0](v), i) for i, v in enumerate(views)]
    k = [target.critic.embed_target(target.encoders[0](v), i) for i, v in enumerate(views)]
    labels = torch.arange(len(views[0]))
    ctr = lambda a, b: F.cross_entropy(a @ b.T / 0.2, labels)  # noqa: E731
    expected = ctr(q[0], k[1]) + ctr(q[1], k[0])
    assert torch.allclose(output.loss, expected, atol=1e-6)


def test_keys_skip_the_predictor_and_carry_no_gradient() -> None:
    pipe = moco_v3()
    output = pipe(batch_of(pipe))
    output.loss.backward()
    assert all(p.grad is not None for p in pipe.critic.predictor.parameters())
    assert all(p.grad is None for p in pipe.momentum_target.parameters())
    features = torch.randn(4, pipe.feature_dims[0])
    assert not torch.allclose(pipe.critic.embed(features, 0), pipe.critic.embed_target(features, 0))


def test_without_momentum_the_targets_are_the_online_projection() -> None:
    torch.manual_seed(0)
    pipe = Pipeline(data=DATA, views=VIEWS, encoder={"name": "convnet", "width": 4, "depth": 2}, shared_encoder=True,
                    critic={"name": "cosine", "head": "mlp", "embedding_dim": 8, "predictor": [16]})
    assert pipe.momentum_target is None and not pipe._transpose_reverse
    assert torch.isfinite(pipe(batch_of(pipe)).loss)


def test_bad_predictor_and_momentum_are_named() -> None:
    with pytest.raises(Exception, match="predictor"):
        Pipeline(critic={"name": "cosine", "predictor": "big"})
    with pytest.raises(InvalidParameter, match="momentum"):
        from contrastkit.negatives.in_batch import InBatchNegatives

        InBatchNegatives(num_views=2, dataset_size=4, embedding_dim=2, momentum=1.5)

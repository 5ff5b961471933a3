"""``MomentumTarget``: deep, frozen copies; the EMA against a naive float64 reference; buffers copied;
the pipeline's ``update_momentum`` is a no-op without a momentum target."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from contrastkit.critics.cosine import CosineCritic
from contrastkit.errors import InvalidParameter, ShapeError
from contrastkit.momentum import MomentumTarget, ema_
from contrastkit.pipeline import Pipeline


def online_modules() -> tuple[nn.ModuleList, CosineCritic]:
    torch.manual_seed(0)
    encoders = nn.ModuleList(
        [nn.Sequential(nn.Linear(5, 6), nn.BatchNorm1d(6)), nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6))]
    )
    return encoders, CosineCritic(feature_dims=(6, 6), head="linear", embedding_dim=3)


def test_copies_are_deep_frozen_and_equal_at_the_start() -> None:
    encoders, critic = online_modules()
    target = MomentumTarget(encoders, critic, view_encoder=[0, 1], momentum=0.99)
    online = list(encoders.parameters()) + list(critic.parameters())
    copies = list(target.encoders.parameters()) + list(target.critic.parameters())
    assert len(online) == len(copies)
    for o, c in zip(online, copies):
        assert torch.equal(o, c) and o.data_ptr() != c.data_ptr()
        assert o.requires_grad and not c.requires_grad


@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.999, 1.0])
def test_ema_matches_a_naive_float64_reference(momentum: float) -> None:
    encoders, critic = online_modules()
    target = MomentumTarget(encoders, critic, view_encoder=[0, 1], momentum=momentum)
    gen = torch.Generator().manual_seed(1)
    reference = [p.double().clone() for p in list(target.encoders.parameters()) + list(target.critic.parameters())]
    for _ in range(3):
        with torch.no_grad():
            for p in list(encoders.parameters()) + list(critic.parameters()):
                p.add_(torch.randn(p.shape, generator=gen))
        encoders.train()
        encoders[0](torch.randn(8, 5, generator=gen))  # batch-norm running statistics move
        target.update(encoders, critic)
        online = [p.double() for p in list(encoders.parameters()) + list(critic.parameters())]
        reference = [momentum * r + (1.0 - momentum) * o for r, o in zip(reference, online)]
        got = list(target.encoders.parameters()) + list(target.critic.parameters())
        for g, r in zip(got, reference):
            torch.testing.assert_close(g.double(), r, rtol=1e-6, atol=1e-6)
        for tb, ob in zip(target.encoders.buffers(), encoders.buffers()):
            assert torch.equal(tb, ob)


def test_embed_uses_the_copies_without_gradient() -> None:
    encoders, critic = online_modules()
    target = MomentumTarget(encoders, critic, view_encoder=[0, 1], momentum=0.9).eval()
    encoders.eval()
    views = [torch.randn(4, 5), torch.randn(4, 4)]
    keys = target.embed(views)
    expected = [critic.embed(encoders[i](v), view=i) for i, v in enumerate(views)]
    for k, e in zip(keys, expected):
        assert not k.requires_grad
        torch.testing.assert_close(k, e.detach())


def test_ema_helper_and_errors() -> None:
    t = [torch.tensor([1.0, 2.0])]
    ema_(t, [torch.tensor([3.0, 4.0])], 0.5)
    assert t[0].tolist() == [2.0, 3.0]
    ema_([], [], 0.5)  # nothing to do
    with pytest.raises(ShapeError):
        ema_(t, [], 0.5)
    encoders, critic = online_modules()
    for bad in (-0.1, 1.5, True):
        with pytest.raises(InvalidParameter, match="momentum"):
            MomentumTarget(encoders, critic, view_encoder=[0, 1], momentum=bad)  # type: ignore[arg-type]
    target = MomentumTarget(encoders, critic, view_encoder=[0, 1], momentum=0.5)
    with pytest.raises(ShapeError, match="no longer match"):
        target.update(nn.ModuleList([nn.Linear(5, 6)]), critic)


def test_update_momentum_without_a_momentum_target_is_a_no_op() -> None:
    pipe = Pipeline(encoder={"name": "convnet", "width": 4, "depth": 2}, dataset_size=8)
    state = {k: v.clone() for k, v in pipe.state_dict().items()}
    pipe.update_momentum()
    assert pipe.momentum_target is None
    assert all(torch.equal(v, state[k]) for k, v in pipe.state_dict().items())

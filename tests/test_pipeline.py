"""Pipeline from Python: slot forms, graphs, the min-max sign for trainable view makers."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch import nn

from contrastkit import Pipeline
from contrastkit.config import config_from_dict
from contrastkit.encoders.convnet import ConvNetEncoder
from contrastkit.objectives.infonce import InfoNCE
from contrastkit.pipeline import view_pairs
from contrastkit.slots import SLOT_TABLE

SMALL = {"name": "convnet", "width": 4, "depth": 2}


def batch(n: int = 8, size: int = 16) -> dict[str, torch.Tensor]:
    return {"image": torch.rand(n, 3, size, size), "index": torch.arange(n)}


@pytest.mark.parametrize(("m", "core", "full"), [(2, 1, 1), (3, 2, 3), (4, 3, 6)])
def test_pair_counts(m: int, core: int, full: int) -> None:
    assert len(view_pairs(m, "core")) == core
    assert len(view_pairs(m, "full")) == full
    groups = [[0], [1], [2], [0, 1, 2]][:m]
    for graph, count in (("core", core), ("full", full)):
        pipe = Pipeline(views={"name": "color-split", "groups": groups}, encoder=SMALL, graph=graph)
        out = pipe(batch())
        assert len([k for k in out.metrics if k.startswith("loss/")]) == count
        total = sum(v for k, v in out.metrics.items() if k.startswith("loss/"))
        assert torch.allclose(out.loss.detach(), total)


def test_slots_accept_instances_names_and_dicts() -> None:
    torch.manual_seed(0)
    shared = ConvNetEncoder(in_channels=3, width=4, depth=2)
    pipe = Pipeline(views={"name": "color-split", "groups": [[0, 1, 2], [0, 1, 2]]}, encoder=shared,
                    objective=InfoNCE(two_way=False), negatives="in-batch")
    assert len(pipe.encoders) == 1 and pipe.view_encoder == [0, 0]
    assert pipe.two_way is False
    out = pipe(batch())
    assert torch.isfinite(out.loss)


def test_one_way_objective_scores_one_direction() -> None:
    torch.manual_seed(0)
    two = Pipeline(encoder=SMALL).eval()
    one = Pipeline(encoder=SMALL, objective={"name": "infonce", "two_way": False})
    one.load_state_dict(two.state_dict())
    one.eval()
    b = batch()
    fwd = two(b)
    single = one(b)
    assert float(single.loss.detach()) < float(fwd.loss.detach())


def test_regularizer_adds_its_metric() -> None:
    pipe = Pipeline(encoder=SMALL, regularizer={"name": "relic", "alpha": 2.0})
    out = pipe(batch())
    assert "regularizer/v1-v2" in out.metrics
    assert float(out.metrics["regularizer/v1-v2"]) >= 0


class LearnedTint(nn.Module):
    """A toy trainable view maker: view 2 is the image times a learnable gain."""

    view_channels = (3, 3)

    def __init__(self, contrast_sign: float) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(3))
        self.contrast_sign = contrast_sign

    def forward(self, batch, augment):
        x = batch["image"]
        return [x, x * self.gain.view(1, 3, 1, 1)]


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_view_maker_gradient_follows_contrast_sign(sign: float) -> None:
    """InfoMin's min-max: a view maker with contrast_sign -1 receives the negated loss gradient."""
    torch.manual_seed(0)
    encoder = ConvNetEncoder(in_channels=3, width=4, depth=2)
    b = batch()
    reference = LearnedTint(contrast_sign=1.0)
    torch.manual_seed(1)  # same critic initialisation for both pipelines
    pipe_ref = Pipeline(views=reference, encoder=encoder)
    pipe_ref(b).loss.backward()
    expected = reference.gain.grad.clone()
    encoder.zero_grad()

    maker = LearnedTint(contrast_sign=sign)
    torch.manual_seed(1)
    pipe = Pipeline(views=maker, encoder=encoder)
    pipe(b).loss.backward()
    assert torch.allclose(maker.gain.grad, sign * expected, atol=1e-6)
    # The encoders still descend the loss either way.
    assert pipe.reverse_view_gradient is (sign < 0)


def test_describe_lists_every_slot() -> None:
    text = Pipeline(encoder=SMALL, dataset_size=10).describe()
    for needle in ("color-split", "channels (1, 2)", "in_channels 1 -> features 8", "in_channels 2 -> features 8",
                   "embedding 128", "in-batch", "infonce (two-way)", "regularizer  none"):
        assert needle in text


def test_every_slot_is_a_keyword_argument_with_the_slot_default() -> None:
    """The Pipeline takes each slot by its recipe table's name; ``data`` is optional from Python."""
    params = inspect.signature(Pipeline).parameters
    for slot in SLOT_TABLE:
        assert params[slot.table].kind is inspect.Parameter.KEYWORD_ONLY
        assert params[slot.table].default == (None if slot.table == "data" else slot.default), slot.table


def test_from_config_passes_every_slot_table() -> None:
    config = config_from_dict({"encoder": {**SMALL, "shared": True}, "views": {"name": "augmented-copies", "channels": 3},
                               "negatives": {"name": "memory-bank", "num_negatives": 4},
                               "regularizer": {"name": "relic"}, "data": {"name": "colorful-moving-digits", "size": 16}})
    pipe = Pipeline.from_config(config)
    assert [pipe.view_maker.registered_name, pipe.negatives.registered_name, pipe.regularizer.registered_name] == [
        "augmented-copies", "memory-bank", "relic"]
    assert len(pipe.encoders) == 1 and pipe.negatives.dataset_size == 16

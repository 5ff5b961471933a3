"""The richer objective contract in the pipeline: embeddings, same-label positive masks and labels reach
objectives and regularisers; a label the data lacks or a sampler that cannot mark positives fails at build."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor, nn

from contrastkit import Pipeline
from contrastkit.errors import ConfigError
from contrastkit.interfaces import PairLogits
from contrastkit.objectives.supcon import SupCon

SMALL = {"name": "convnet", "width": 4, "depth": 2}
DATA = {"name": "colorful-moving-digits", "size": 32}


def first_batch(pipe: Pipeline, n: int = 16) -> dict[str, Tensor]:
    items = [pipe.dataset[i] for i in range(n)]
    return {key: torch.stack([torch.as_tensor(item[key]) for item in items]) for key in items[0]}


class Recording(SupCon):
    """SupCon that keeps every pair it was given."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pairs: list[PairLogits] = []

    def pair_loss(self, pair: PairLogits) -> Tensor:
        self.pairs.append(pair)
        return super().pair_loss(pair)


def test_a_labelled_objective_gets_the_same_label_mask_and_the_embeddings() -> None:
    objective = Recording(label="digit")
    pipe = Pipeline(data=DATA, encoder=SMALL, objective=objective)
    batch = first_batch(pipe)
    output = pipe(batch)
    assert torch.isfinite(output.loss)
    forward, backward = objective.pairs  # two-way: both directions
    digits = batch["digit"]
    same = digits.view(-1, 1) == digits.view(1, -1)
    cross = forward.positive_mask[:, : len(digits)]
    assert torch.equal(cross, same), "the cross-view block marks exactly the same-digit samples"
    assert forward.positive_mask.shape == forward.logits.shape == (16, 31)  # same-view negatives: 2B - 1
    assert torch.equal(forward.labels, digits)
    assert torch.equal(forward.anchors, output.embeddings[0]) and torch.equal(forward.positives, output.embeddings[1])
    assert torch.equal(backward.anchors, output.embeddings[1])


def test_the_label_changes_the_loss_and_none_is_nt_xent() -> None:
    torch.manual_seed(0)
    supervised = Pipeline(data=DATA, encoder=SMALL, objective={"name": "supcon", "label": "digit"})
    torch.manual_seed(0)
    unsupervised = Pipeline(data=DATA, encoder=SMALL, objective={"name": "supcon"})
    torch.manual_seed(0)
    nt_xent = Pipeline(data=DATA, encoder=SMALL, objective={"name": "infonce", "same_view_negatives": True})
    batch = first_batch(supervised)
    a, b, c = (float(p(batch).loss) for p in (supervised, unsupervised, nt_xent))
    assert b == pytest.approx(c, rel=1e-6)
    assert abs(a - b) > 1e-4


def test_a_label_the_dataset_lacks_is_named_with_a_close_match() -> None:
    with pytest.raises(ConfigError, match=r"objective.label: .*'digits'.*did you mean 'digit'"):
        Pipeline(data=DATA, encoder=SMALL, objective={"name": "supcon", "label": "digits"})


def test_a_sampler_that_cannot_mark_positives_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"objective.label: .*negatives.memory-bank cannot"):
        Pipeline(data=DATA, encoder=SMALL, negatives={"name": "memory-bank", "num_negatives": 8},
                 objective={"name": "supcon", "label": "digit", "same_view_negatives": False})


def test_a_loss_on_embeddings_trains_through_the_pipeline() -> None:
    pipe = Pipeline(data=DATA, encoder=SMALL, objective="align-uniform")
    output = pipe(first_batch(pipe))
    assert torch.isfinite(output.loss)
    output.loss.backward()
    grads = [p.grad for p in pipe.encoders.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads) and any(g.abs().sum() > 0 for g in grads)


class ContextRegularizer(nn.Module):
    """Records that a regulariser sees the pair's embeddings too."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[PairLogits, PairLogits]] = []

    def forward(self, forward: PairLogits, backward: PairLogits) -> Tensor:
        self.seen.append((forward, backward))
        return (forward.anchors - forward.positives).pow(2).mean() * 0.0


def test_a_regularizer_sees_the_embeddings() -> None:
    regularizer = ContextRegularizer()
    pipe = Pipeline(data=DATA, encoder=SMALL, regularizer=regularizer)
    output = pipe(first_batch(pipe))
    forward, backward = regularizer.seen[0]
    assert torch.equal(forward.anchors, output.embeddings[0]) and torch.equal(backward.anchors, output.embeddings[1])
    assert forward.positive_mask is None and forward.labels is None  # nothing asked for a label


@pytest.mark.parametrize("instance", ["shared", "list"])
def test_an_encoder_instance_with_the_wrong_channels_fails_at_build(instance: str) -> None:
    from contrastkit.encoders.convnet import ConvNetEncoder
    from contrastkit.errors import ShapeError

    rgb = ConvNetEncoder(in_channels=3, width=4, depth=2)
    spec: Any = rgb if instance == "shared" else [rgb, ConvNetEncoder(in_channels=2, width=4, depth=2)]
    with pytest.raises(ShapeError, match=r"encoder: the instance .* view 1 takes 3 input channels.*\(1, 2\)"):
        Pipeline(encoder=spec)  # color-split: views of 1 and 2 channels
    Pipeline(encoder=[ConvNetEncoder(in_channels=1, width=4, depth=2), ConvNetEncoder(in_channels=2, width=4, depth=2)])

"""``classifier_depth``: each view classifier is the convnet encoder of that depth plus a linear layer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from contrastkit.encoders.convnet import ConvNetEncoder
from contrastkit.errors import InvalidParameter
from contrastkit.views.learned_flow import LearnedFlowViews, ViewClassifiers


def test_depth_builds_the_encoder_architecture_per_view() -> None:
    maker = LearnedFlowViews(num_layers=1, hidden=4, supervised_label="digit", num_classes=10,
                             classifier_width=8, classifier_depth=3)
    assert maker.classifiers is not None
    for head, channels in zip(maker.classifiers.heads, maker.view_channels):
        body, linear = head
        assert isinstance(body, ConvNetEncoder) and isinstance(linear, nn.Linear)
        assert body.in_channels == channels and len(body.body) == 3 * 3  # conv, norm, relu per block
        assert linear.in_features == body.feature_dim == 8 * 2**2 and linear.out_features == 10


def test_without_depth_the_two_layer_head_is_kept() -> None:
    head = ViewClassifiers(view_channels=(1,), num_classes=10, width=8).heads[0]
    assert [type(m).__name__ for m in head] == ["Conv2d", "ReLU", "Conv2d", "ReLU", "AdaptiveAvgPool2d", "Flatten",
                                                "Linear"]


@pytest.mark.parametrize("depth", [0, 9, 2.5, True])
def test_bad_depth_is_refused_naming_the_key(depth: object) -> None:
    with pytest.raises(InvalidParameter, match="classifier_depth"):
        LearnedFlowViews(num_layers=1, hidden=4, supervised_label="digit", num_classes=10,
                         classifier_depth=depth)  # type: ignore[arg-type]


def test_deep_classifiers_learn_a_separable_label_where_the_loss_leaves_chance() -> None:
    torch.manual_seed(0)
    classifiers = ViewClassifiers(view_channels=(1, 2), num_classes=2, width=4, depth=2)
    labels = torch.arange(64) % 2
    views = [torch.randn(64, 1, 8, 8) + labels.view(-1, 1, 1, 1).float() * 2, torch.randn(64, 2, 8, 8)
             + labels.view(-1, 1, 1, 1).float() * 2]
    optimizer = torch.optim.Adam(classifiers.parameters(), lr=1e-2)
    first = float(classifiers(views, labels))
    for _ in range(30):
        loss = classifiers(views, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert first > 1.2 and float(loss) < 0.2  # chance is 2 log 2 = 1.39 for the two classifiers

"""``learned-flow``'s view classifiers see only the labelled samples of a batch (same loss, less compute)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from contrastkit.views.learned_flow import LearnedFlowViews, ViewClassifiers, view_classification_loss


def test_only_labelled_samples_reach_the_classifiers_and_the_loss_is_unchanged() -> None:
    torch.manual_seed(0)
    classifiers = ViewClassifiers(view_channels=(1, 2), num_classes=5, width=4)
    views = [torch.rand(6, 1, 8, 8), torch.rand(6, 2, 8, 8)]
    labels = torch.tensor([0, -1, 3, -1, -1, 4])
    seen: list[int] = []
    hooks = [h.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[0])) for h in classifiers.heads]
    loss = classifiers(views, labels)
    for hook in hooks:
        hook.remove()
    assert seen == [3, 3]
    keep = labels >= 0
    expected = sum(nn.functional.cross_entropy(z, labels[keep]) for z in classifiers.logits([v[keep] for v in views]))
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-6)


def test_an_all_unlabelled_batch_gives_zero_with_every_classifier_in_the_graph() -> None:
    classifiers = ViewClassifiers(view_channels=(1, 2), num_classes=5, width=4)
    views = [torch.rand(4, 1, 8, 8), torch.rand(4, 2, 8, 8)]
    loss = classifiers(views, torch.full((4,), -1))
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert all(p.grad is not None for p in classifiers.parameters())  # DDP: no unused parameter
    assert float(view_classification_loss(views, torch.full((4,), -1), list(classifiers.heads)).detach()) == 0.0


def test_the_flow_gets_the_supervised_gradient_through_the_labelled_samples_only() -> None:
    torch.manual_seed(0)
    maker = LearnedFlowViews(num_layers=1, hidden=4, supervised_label="digit", num_classes=10, classifier_width=4,
                             labelled_fraction=0.5)
    images = torch.rand(8, 3, 8, 8, requires_grad=True)
    batch = {"image": images, "index": torch.arange(8), "digit": torch.arange(8)}
    loss = maker.auxiliary_loss(batch, maker(batch, lambda x, view: x))
    loss.backward()
    labelled = maker.labelled_mask(torch.arange(8))
    touched = images.grad.abs().flatten(1).sum(1) > 0  # pixel-wise flow: each image's gradient is its own
    assert touched.tolist() == labelled.tolist()
    assert all(p.grad is not None for p in maker.flow.parameters())

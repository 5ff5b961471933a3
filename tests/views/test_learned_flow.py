"""``learned-flow``: InfoMin's adversarial view generator — contract, the min-max sign, stage handoff."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from contrastkit.critics.cosine import CosineCritic
from contrastkit.errors import InvalidParameter, ShapeError
from contrastkit.interfaces import is_trainable
from contrastkit.objectives.infonce import info_nce, info_nce_mi_bound
from contrastkit.pipeline import Pipeline
from contrastkit.testing import check_view_maker
from contrastkit.views.learned_flow import LearnedFlowViews, ViewClassifiers, view_classification_loss

IDENTITY = lambda images, view: images  # noqa: E731 - the augmentation that changes nothing

# SECAM YDbDr, written out here independently of contrastkit.views.color_spaces.
YDBDR = np.array([[0.299, 0.587, 0.114], [-0.450, -0.883, 1.333], [-1.333, 1.116, 0.217]])


def _perturb(module: nn.Module, seed: int, scale: float = 0.3) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=generator, dtype=p.dtype))


def _rgb(batch: int = 4, size: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def test_contract_adversarial_and_frozen() -> None:
    adversarial = LearnedFlowViews(num_layers=2, hidden=8)
    check_view_maker(adversarial)  # trainable: its gradient check runs
    assert is_trainable(adversarial) and adversarial.contrast_sign == -1.0
    frozen = LearnedFlowViews(num_layers=2, hidden=8, mode="frozen")
    check_view_maker(frozen)
    assert not is_trainable(frozen) and frozen.contrast_sign == 1.0
    assert [p for p in frozen.parameters() if p.requires_grad] == []


def test_registered_name_passes_the_contract_once_registered() -> None:
    from contrastkit.registry import get_registry
    from contrastkit.testing import check_registered

    if "learned-flow" not in get_registry().names("view_makers"):
        pytest.skip("learned-flow is not registered in builtin_plugins yet")
    check_registered("view_makers", "learned-flow")


def test_identity_init_gives_the_raw_ydbdr_split() -> None:
    images = _rgb()
    maker = LearnedFlowViews(num_layers=2, hidden=4).double()
    y, dbdr = maker({"image": images}, IDENTITY)
    pixels = images.permute(0, 2, 3, 1).numpy() @ YDBDR.T  # [B, H, W, 3]
    expected = (pixels - [0.5, 0.0, 0.0]) / [0.5, 1.333, 1.333]
    np.testing.assert_allclose(y.permute(0, 2, 3, 1).detach().numpy(), expected[..., :1], atol=1e-12)
    np.testing.assert_allclose(dbdr.permute(0, 2, 3, 1).detach().numpy(), expected[..., 1:], atol=1e-12)


@pytest.mark.parametrize(("vp", "lu"), [(True, True), (False, False)])
def test_the_image_is_recoverable_from_the_learned_views(vp: bool, lu: bool) -> None:
    """Invertibility is what keeps InfoMin's adversary from destroying information."""
    torch.manual_seed(1)
    maker = LearnedFlowViews(num_layers=3, hidden=6, volume_preserving=vp, lu=lu, init="rotation").double()
    _perturb(maker, 2)
    images = _rgb(seed=3)
    v1, v2 = maker({"image": images}, IDENTITY)
    ydbdr = maker.flow.inverse(torch.cat([v1, v2], dim=1)).permute(0, 2, 3, 1).detach().numpy()
    ydbdr = ydbdr * [0.5, 1.333, 1.333] + [0.5, 0.0, 0.0]
    recovered = ydbdr @ np.linalg.inv(YDBDR).T
    np.testing.assert_allclose(recovered, images.permute(0, 2, 3, 1).numpy(), atol=1e-6)
    assert (v1 - maker.transform(images)[0][:, :1]).abs().max() == 0


def test_split_selects_channels_of_g_x_and_augment_is_called_once() -> None:
    torch.manual_seed(4)
    maker = LearnedFlowViews(space="rgb", split=[[2, 0], [1], [0, 1, 2]], num_layers=2, hidden=4, init="rotation")
    calls: list[int] = []

    def augment(images: torch.Tensor, view: int) -> torch.Tensor:
        calls.append(view)
        return images.flip(-1)

    images = torch.rand(3, 3, 5, 5)
    views = maker({"image": images}, augment)
    x_hat, _ = maker.transform(images.flip(-1))
    assert calls == [0], "all views share one augmentation (CMC's shared crop)"
    assert maker.view_channels == (2, 1, 3)
    assert torch.equal(views[0], x_hat[:, [2, 0]]) and torch.equal(views[1], x_hat[:, 1:2])
    assert torch.equal(views[2], x_hat)


def _toy_game(seed: int = 0):
    torch.manual_seed(seed)
    maker = LearnedFlowViews(space="rgb", num_layers=2, hidden=8, init="rotation").double()
    encoders = nn.ModuleList([nn.Linear(1 * 8 * 8, 16), nn.Linear(2 * 8 * 8, 16)]).double()
    critic = CosineCritic(feature_dims=(16, 16), head="none", temperature=0.5)
    images = torch.rand(16, 3, 8, 8, dtype=torch.float64)
    return maker, encoders, critic, images


def _contrast_loss(maker, encoders, critic, images) -> torch.Tensor:
    views = maker({"image": images}, IDENTITY)
    z1, z2 = (critic.embed(enc(v.flatten(1)), view=i) for i, (enc, v) in enumerate(zip(encoders, views)))
    return info_nce(critic.score(z1, z2), torch.arange(images.shape[0]))


def _sgd_step(params: list[nn.Parameter], objective: torch.Tensor, lr: float) -> None:
    grads = torch.autograd.grad(objective, params)
    with torch.no_grad():
        for p, g in zip(params, grads):
            p.sub_(lr * g)


def test_adversarial_step_raises_the_loss_and_encoder_step_lowers_it() -> None:
    """min_g max_f I_NCE: one step of g with its declared sign lowers I_NCE, one step of f raises it."""
    maker, encoders, critic, images = _toy_game()
    before = _contrast_loss(maker, encoders, critic, images).detach()

    g = copy.deepcopy(maker)
    g_params = [p for p in g.parameters() if p.requires_grad]
    _sgd_step(g_params, g.contrast_sign * _contrast_loss(g, encoders, critic, images), lr=0.05)
    after_g = _contrast_loss(g, encoders, critic, images).detach()
    assert float(after_g) > float(before) + 1e-4, "the generator's step must ascend the InfoNCE loss"
    bound = lambda loss: float(info_nce_mi_bound(loss, images.shape[0] - 1))  # noqa: E731
    assert bound(after_g) < bound(before)

    f = copy.deepcopy(encoders)
    _sgd_step(list(f.parameters()), _contrast_loss(maker, f, critic, images), lr=0.05)
    after_f = _contrast_loss(maker, f, critic, images).detach()
    assert float(after_f) < float(before) - 1e-4, "the encoders' step must descend the InfoNCE loss"


def test_pipeline_reverses_the_generator_gradient() -> None:
    torch.manual_seed(5)
    maker = LearnedFlowViews(num_layers=1, hidden=4, init="rotation")
    _perturb(maker, 6)
    pipe = Pipeline(views=maker, encoder={"name": "convnet", "width": 4})
    assert pipe.reverse_view_gradient
    batch = {"image": torch.rand(6, 3, 16, 16), "index": torch.arange(6)}
    grads = []
    for reverse in (True, False):
        pipe.zero_grad()
        pipe.reverse_view_gradient = reverse
        pipe(batch).loss.backward()
        grads.append(([p.grad.clone() for p in maker.parameters()], [p.grad.clone() for p in pipe.encoders.parameters()]))
    (g_rev, f_rev), (g_plain, f_plain) = grads
    assert any(g.abs().sum() > 0 for g in g_plain)
    for a, b in zip(g_rev, g_plain):
        torch.testing.assert_close(a, -b)
    for a, b in zip(f_rev, f_plain):
        torch.testing.assert_close(a, b)


def test_frozen_stage_two_reuses_the_stage_one_generator() -> None:
    torch.manual_seed(7)
    stage1 = LearnedFlowViews(num_layers=2, hidden=4, init="rotation")
    _perturb(stage1, 8)
    stage2 = LearnedFlowViews(num_layers=2, hidden=4, mode="frozen")
    stage2.load_state_dict(stage1.state_dict())
    assert not is_trainable(stage2), "loading weights must not unfreeze the generator"
    images = torch.rand(2, 3, 4, 4)
    for a, b in zip(stage1({"image": images}, IDENTITY), stage2({"image": images}, IDENTITY)):
        torch.testing.assert_close(a, b)
    assert not stage2({"image": images}, IDENTITY)[0].requires_grad


def test_display_views_are_min_max_scaled_grey_and_padded() -> None:
    torch.manual_seed(9)
    maker = LearnedFlowViews(num_layers=2, hidden=4, init="rotation").double()
    images = _rgb(batch=3, size=5, seed=10)
    grey, colour = maker.learned_views_for_display(images)
    x_hat = maker.transform(images)[0].detach().numpy()
    expected = np.empty_like(x_hat)
    for c in range(3):  # naive per-channel min-max over the whole batch
        channel = x_hat[:, c]
        expected[:, c] = (channel - channel.min()) / (channel.max() - channel.min())
    for k in range(3):
        np.testing.assert_allclose(grey[:, k].numpy(), expected[:, 0], atol=1e-12)
    np.testing.assert_allclose(colour[:, :2].numpy(), expected[:, 1:], atol=1e-12)
    assert torch.equal(colour[:, 2], torch.zeros_like(colour[:, 2]))
    assert grey.shape == colour.shape == (3, 3, 5, 5)


def _reference_ce(logits: np.ndarray, labels: list[int]) -> float:
    terms = []
    for row, label in zip(logits, labels):
        if label == -1:
            continue
        normaliser = math.log(sum(math.exp(v) for v in row))
        terms.append(normaliser - row[label])
    return sum(terms) / len(terms)


def test_view_classification_loss_matches_reference_and_skips_unlabelled() -> None:
    torch.manual_seed(11)
    classifiers = ViewClassifiers(view_channels=(1, 2), num_classes=4, width=4).double()
    views = [torch.rand(5, 1, 6, 6, dtype=torch.float64), torch.rand(5, 2, 6, 6, dtype=torch.float64)]
    labels = [3, -1, 0, 2, -1]
    loss = classifiers(views, torch.tensor(labels))
    logits = [z.detach().numpy() for z in classifiers.logits(views)]
    expected = _reference_ce(logits[0], labels) + _reference_ce(logits[1], labels)
    assert float(loss.detach()) == pytest.approx(expected, abs=1e-12)
    nothing = classifiers(views, torch.full((5,), -1))
    assert float(nothing.detach()) == 0.0


def test_classification_term_trains_the_generator_to_keep_labels() -> None:
    """The semi-supervised term is minimised by g (no reversal): a g step on it lowers it."""
    torch.manual_seed(12)
    maker = LearnedFlowViews(num_layers=2, hidden=8, init="rotation").double()
    classifiers = ViewClassifiers(view_channels=maker.view_channels, num_classes=3, width=4).double()
    images, labels = _rgb(batch=8, size=6, seed=13), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])

    def loss() -> torch.Tensor:
        return view_classification_loss(maker({"image": images}, IDENTITY), labels, list(classifiers.heads))

    before = float(loss().detach())
    _sgd_step([p for p in maker.parameters() if p.requires_grad], loss(), lr=0.05)
    assert float(loss().detach()) < before - 1e-5


def test_classification_loss_checks_its_inputs() -> None:
    views = [torch.zeros(2, 1, 4, 4), torch.zeros(2, 2, 4, 4)]
    head = lambda v: torch.zeros(v.shape[0], 3)  # noqa: E731
    with pytest.raises(ShapeError, match="2 views but 1 classifiers"):
        view_classification_loss(views, torch.zeros(2, dtype=torch.long), [head])
    with pytest.raises(ShapeError, match="labels must be"):
        view_classification_loss(views, torch.zeros(3, dtype=torch.long), [head, head])
    with pytest.raises(InvalidParameter) as info:
        ViewClassifiers(view_channels=(1, 2), num_classes=1)
    assert info.value.parameter == "num_classes"


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"split": [[0], [3]]}, "split"),
        ({"split": [[0, 1, 2]]}, "split"),
        ({"split": [[0], []]}, "split"),
        ({"split": [[0, 0], [1]]}, "split"),
        ({"num_layers": 0}, "num_layers"),
        ({"hidden": 0}, "hidden"),
        ({"mode": "cooperative"}, "mode"),
        ({"space": "ycrcb"}, "space"),
        ({"init": "zeros"}, "init"),
    ],
)
def test_invalid_parameters_are_named(params: dict, parameter: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        LearnedFlowViews(**params)
    assert info.value.parameter == parameter


def test_non_rgb_images_are_a_shape_error() -> None:
    with pytest.raises(ShapeError, match=r"learned-flow: expected RGB images \[B, 3, H, W\]"):
        LearnedFlowViews(num_layers=1, hidden=2)({"image": torch.zeros(2, 1, 4, 4)}, IDENTITY)

"""contrastkit-sobel's own tests: the contract checks, plus what each component promises."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from ck_sobel import DecoupledContrastiveLoss, SobelViews, decoupled_contrastive_loss, sobel_edges
from contrastkit import ConfigError, InvalidParameter, Pipeline
from contrastkit.factories import build_component
from contrastkit.registry import get_registry
from contrastkit.testing import check_objective, check_registered, check_view_maker

IDENTITY = lambda images, view: images  # noqa: E731 - an AugmentFn that changes nothing


# -- the contract ---------------------------------------------------------------------------------
def test_sobel_view_maker_passes_the_contract() -> None:
    check_registered("view_makers", "sobel")


def test_dcl_objective_passes_the_contract() -> None:
    check_registered("objectives", "dcl")


@pytest.mark.parametrize(
    ("first", "edges", "normalize", "augment"),
    list(itertools.product(["gray", "rgb"], ["magnitude", "xy"], ["fixed", "per-image", "none"], ["shared", "per-view"])),
)
def test_every_option_combination_passes_the_contract(first: str, edges: str, normalize: str, augment: str) -> None:
    check_view_maker(SobelViews(first=first, edges=edges, normalize=normalize, augment=augment))  # type: ignore[arg-type]


def test_dcl_without_two_way_passes_the_contract() -> None:
    check_objective(DecoupledContrastiveLoss(two_way=False))


# -- DCL ------------------------------------------------------------------------------------------
def naive_dcl(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The paper's formula anchor by anchor, in float64: mean_b(-s+ + log sum_{k != +} exp(s-_k))."""
    terms = []
    for b in range(logits.shape[0]):
        positive = logits[b, int(target[b])]
        negatives = [logits[b, k] for k in range(logits.shape[1]) if k != int(target[b]) and logits[b, k] > -math.inf]
        if not negatives:
            continue  # no negative: no DCL term for this anchor
        terms.append(-positive + torch.log(sum(torch.exp(s) for s in negatives)))
    if not terms:
        return logits.new_zeros(())
    return sum(terms) / len(terms)


@pytest.mark.parametrize("seed", range(5))
def test_dcl_matches_the_naive_loop_in_value_and_gradient(seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(7, 9, generator=generator, dtype=torch.float64) * 3
    target = torch.randint(0, 9, (7,), generator=generator)
    fast_in = logits.clone().requires_grad_(True)
    slow_in = logits.clone().requires_grad_(True)
    fast = decoupled_contrastive_loss(fast_in, target)
    slow = naive_dcl(slow_in, target)
    fast.backward()
    slow.backward()
    assert torch.allclose(fast, slow, atol=1e-10)
    assert torch.allclose(fast_in.grad, slow_in.grad, atol=1e-10)


def test_dcl_in_float32_matches_float64() -> None:
    logits = torch.randn(16, 17, dtype=torch.float64) * 5
    target = torch.arange(16)
    assert torch.allclose(
        decoupled_contrastive_loss(logits.float(), target).double(), naive_dcl(logits, target), atol=1e-4
    )


def test_dcl_ignores_minus_inf_columns_and_drops_anchors_without_negatives() -> None:
    logits = torch.randn(5, 6, dtype=torch.float64)
    target = torch.tensor([0, 1, 2, 3, 4])
    logits[:, 5] = -math.inf  # an excluded column in every row
    logits[1, 0] = -math.inf  # one more in row 1
    logits[3, [0, 1, 2, 4]] = -math.inf  # row 3: only its positive is left
    x = logits.clone().requires_grad_(True)
    loss = decoupled_contrastive_loss(x, target)
    loss.backward()
    assert torch.isfinite(loss) and torch.allclose(loss, naive_dcl(logits, target), atol=1e-10)
    assert torch.isfinite(x.grad).all()
    assert (x.grad[3] == 0).all() and (x.grad[:, 5] == 0).all()


def test_dcl_with_no_usable_anchor_is_zero_with_finite_gradient() -> None:
    logits = torch.tensor([[1.0, -math.inf], [-math.inf, 2.0]], requires_grad=True)
    loss = decoupled_contrastive_loss(logits, torch.tensor([0, 1]))
    loss.backward()
    assert float(loss.detach()) == 0.0 and torch.isfinite(logits.grad).all()


def test_dcl_differs_from_infonce_by_the_positive_in_the_denominator() -> None:
    logits = torch.randn(4, 5, dtype=torch.float64)
    target = torch.tensor([0, 2, 4, 1])
    infonce = torch.nn.functional.cross_entropy(logits, target)
    # InfoNCE = mean(log(exp(s+) + sum exp(s-)) - s+) >= DCL = mean(log(sum exp(s-)) - s+)
    assert float(decoupled_contrastive_loss(logits, target)) < float(infonce)


def test_dcl_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="logits must be"):
        decoupled_contrastive_loss(torch.zeros(4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="target must be"):
        decoupled_contrastive_loss(torch.zeros(4, 3), torch.zeros(3, dtype=torch.long))


def test_dcl_has_no_mi_bound_and_two_way_by_default() -> None:
    objective = DecoupledContrastiveLoss()
    assert objective.two_way is True
    assert objective.mi_lower_bound(torch.tensor(1.0), 63) is None


def test_pipeline_with_dcl_logs_no_mi_bound() -> None:
    pipe = Pipeline(views="sobel", encoder={"name": "convnet", "width": 4, "depth": 2}, objective="dcl", dataset_size=8)
    out = pipe({"image": torch.rand(8, 3, 16, 16), "index": torch.arange(8)})
    assert torch.isfinite(out.loss)
    assert not any(key.startswith("mi_lower_bound/") for key in out.metrics)
    assert pipe.view_channels == (1, 1)


# -- Sobel views ----------------------------------------------------------------------------------
def vertical_step(height: int = 8, width: int = 10, at: int = 5) -> torch.Tensor:
    """Black left of column ``at``, white from it on: one vertical edge."""
    image = torch.zeros(1, 3, height, width)
    image[..., at:] = 1.0
    return image


def test_sobel_edges_of_a_vertical_step_are_nonzero_only_next_to_the_step() -> None:
    gray = vertical_step()[:, :1]
    magnitude = sobel_edges(gray, "magnitude")[0, 0]
    gx, gy = sobel_edges(gray, "xy")[0]
    near = torch.zeros(10, dtype=torch.bool)
    near[[4, 5]] = True  # the 3x3 kernel straddles the step only at columns 4 and 5
    assert (magnitude[:, near] > 0).all()
    assert (magnitude[:, ~near] == 0).all()  # exactly zero, borders included (replicate padding)
    assert (gx[:, near] > 0).all() and (gx[:, ~near] == 0).all()  # dark -> bright to the right: gx > 0
    assert (gy == 0).all()  # no horizontal edge


def test_sobel_edges_of_a_horizontal_step_are_in_gy() -> None:
    gray = vertical_step()[:, :1].transpose(2, 3)
    gx, gy = sobel_edges(gray, "xy")[0]
    assert (gx == 0).all() and (gy != 0).any()


def test_view_maker_edges_of_the_step_are_confined_to_the_step() -> None:
    maker = SobelViews(first="gray", edges="magnitude", normalize="fixed")
    intensity, edges = maker({"image": vertical_step()}, IDENTITY)
    columns = (edges[0, 0] != 0).any(dim=0).nonzero().flatten().tolist()
    assert columns == [4, 5]
    assert float(edges.max()) <= 1.0 and float(intensity.min()) == -1.0 and float(intensity.max()) == 1.0


def test_magnitude_has_finite_gradient_where_the_image_is_flat() -> None:
    image = vertical_step().requires_grad_(True)
    _, edges = SobelViews(normalize="none")({"image": image}, IDENTITY)
    edges.sum().backward()
    assert torch.isfinite(image.grad).all()


@pytest.mark.parametrize(
    ("first", "edges", "channels"),
    [("gray", "magnitude", (1, 1)), ("gray", "xy", (1, 2)), ("rgb", "magnitude", (3, 1)), ("rgb", "xy", (3, 2))],
)
def test_channel_counts_per_option(first: str, edges: str, channels: tuple[int, int]) -> None:
    maker = SobelViews(first=first, edges=edges)  # type: ignore[arg-type]
    assert maker.view_channels == channels
    views = maker({"image": torch.rand(2, 3, 12, 12)}, IDENTITY)
    assert tuple(v.shape[1] for v in views) == channels
    assert all(v.shape[2:] == (12, 12) for v in views)


def test_gray_view_is_the_luminance() -> None:
    image = torch.rand(2, 3, 6, 6)
    (gray, _) = SobelViews(normalize="none")({"image": image}, IDENTITY)
    expected = 0.299 * image[:, 0:1] + 0.587 * image[:, 1:2] + 0.114 * image[:, 2:3]
    assert torch.allclose(gray, expected, atol=1e-6)


def test_per_image_normalisation_standardises_each_view() -> None:
    views = SobelViews(normalize="per-image")({"image": torch.rand(3, 3, 16, 16)}, IDENTITY)
    for view in views:
        assert torch.allclose(view.mean(dim=(2, 3)), torch.zeros(3, 1), atol=1e-4)
        assert torch.allclose(view.std(dim=(2, 3), unbiased=False), torch.ones(3, 1), atol=1e-3)


@pytest.mark.parametrize(("augment", "calls"), [("shared", [0]), ("per-view", [0, 1])])
def test_augment_option_controls_how_often_the_batch_is_augmented(augment: str, calls: list[int]) -> None:
    seen: list[int] = []

    def record(images: torch.Tensor, view: int) -> torch.Tensor:
        seen.append(view)
        return images.flip(-1)

    SobelViews(augment=augment)({"image": torch.rand(2, 3, 8, 8)}, record)  # type: ignore[arg-type]
    assert seen == calls


@pytest.mark.parametrize(
    ("parameter", "value"),
    [("first", "lab"), ("edges", "laplace"), ("normalize", "minmax"), ("augment", "twice")],
)
def test_bad_option_raises_invalid_parameter_naming_it(parameter: str, value: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        SobelViews(**{parameter: value})
    assert info.value.parameter == parameter
    assert info.value.got == value
    assert str(info.value).startswith(f"{parameter}: ")


def test_bad_option_in_a_recipe_names_the_table_key() -> None:
    with pytest.raises(ConfigError, match=r"^views\.edges: must be one of"):
        build_component(get_registry(), "view_makers", {"name": "sobel", "edges": "laplace"}, table="views")


def test_rgb_view_needs_rgb_images() -> None:
    with pytest.raises(ValueError, match="needs RGB images"):
        SobelViews(first="rgb")({"image": torch.rand(2, 1, 8, 8)}, IDENTITY)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_views_and_loss_stay_on_the_device() -> None:
    image = vertical_step().cuda()
    views = SobelViews(edges="xy")({"image": image}, IDENTITY)
    assert all(v.device == image.device for v in views)
    logits = torch.randn(4, 5, device="cuda")
    loss = decoupled_contrastive_loss(logits, torch.arange(4, device="cuda"))
    assert loss.device == logits.device
    assert torch.allclose(loss.cpu().double(), naive_dcl(logits.cpu().double(), torch.arange(4)), atol=1e-5)

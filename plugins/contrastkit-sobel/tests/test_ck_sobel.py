"""contrastkit-sobel's own tests: the contract checks, plus what each component promises."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from contrastkit import ConfigError, InvalidParameter, Pipeline
from contrastkit.factories import build_component
from contrastkit.registry import get_registry
from contrastkit.testing import check_objective, check_registered, check_view_maker

from ck_sobel import RobustInfoNCE, SobelViews, robust_info_nce, sobel_edges

IDENTITY = lambda images, view: images  # noqa: E731 - an AugmentFn that changes nothing


# -- the contract ---------------------------------------------------------------------------------
def test_sobel_view_maker_passes_the_contract() -> None:
    check_registered("view_makers", "sobel")


def test_rince_objective_passes_the_contract() -> None:
    check_registered("objectives", "rince")


@pytest.mark.parametrize(
    ("first", "edges", "normalize", "augment"),
    list(itertools.product(["gray", "rgb"], ["magnitude", "xy"], ["fixed", "per-image", "none"], ["shared", "per-view"])),
)
def test_every_option_combination_passes_the_contract(first: str, edges: str, normalize: str, augment: str) -> None:
    check_view_maker(SobelViews(first=first, edges=edges, normalize=normalize, augment=augment))  # type: ignore[arg-type]


@pytest.mark.parametrize(("q", "lam"), [(1.0, 1.0), (0.1, 0.5)])
def test_rince_options_pass_the_contract(q: float, lam: float) -> None:
    check_objective(RobustInfoNCE(two_way=False, q=q, lam=lam))


# -- RINCE ----------------------------------------------------------------------------------------
def naive_rince(logits: torch.Tensor, target: torch.Tensor, q: float, lam: float) -> torch.Tensor:
    """The paper's eq. 3 anchor by anchor, in float64: -e^{q s+} / q + (lam (e^{s+} + sum_k e^{s-_k}))^q / q."""
    terms = []
    for b in range(logits.shape[0]):
        positive = logits[b, int(target[b])]
        everything = [logits[b, k] for k in range(logits.shape[1]) if logits[b, k] > -math.inf]
        terms.append(-torch.exp(q * positive) / q + (lam * sum(torch.exp(s) for s in everything)) ** q / q)
    return sum(terms) / len(terms)


@pytest.mark.parametrize(("q", "lam"), [(0.5, 0.01), (0.1, 0.5), (1.0, 1.0), (0.3, 0.025)])
@pytest.mark.parametrize("seed", range(4))
def test_rince_matches_the_naive_loop_in_value_and_gradient(seed: int, q: float, lam: float) -> None:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(7, 9, generator=generator, dtype=torch.float64) * 3
    target = torch.randint(0, 9, (7,), generator=generator)
    logits[0, (int(target[0]) + 1) % 9] = -math.inf  # an excluded column
    fast_in = logits.clone().requires_grad_(True)
    slow_in = logits.clone().requires_grad_(True)
    fast = robust_info_nce(fast_in, target, q=q, lam=lam)
    slow = naive_rince(slow_in, target, q, lam)
    fast.backward()
    slow.backward()
    assert torch.allclose(fast, slow, rtol=1e-10, atol=1e-10)
    assert torch.allclose(fast_in.grad, torch.nan_to_num(slow_in.grad), rtol=1e-10, atol=1e-10)
    assert fast_in.grad[0, (int(target[0]) + 1) % 9] == 0
    assert torch.allclose(robust_info_nce(logits.float(), target, q=q, lam=lam).double(), slow.detach(), rtol=1e-5)


def test_rince_tends_to_infonce_plus_log_lam_as_q_goes_to_zero() -> None:
    logits = torch.randn(6, 5, dtype=torch.float64)
    target = torch.tensor([0, 1, 2, 3, 4, 0])
    infonce = torch.nn.functional.cross_entropy(logits, target)
    for lam in (1.0, 0.1):
        got = robust_info_nce(logits, target, q=1e-9, lam=lam)
        assert float(got) == pytest.approx(float(infonce) + math.log(lam), abs=1e-6)


def test_rince_with_q_one_is_linear_in_the_exponentials() -> None:
    logits = torch.tensor([[1.0, 0.5, -2.0], [0.0, 3.0, 1.0]], dtype=torch.float64)
    target = torch.tensor([0, 1])
    lam = 0.2
    expected = sum((lam - 1) * math.exp(float(row[t])) + lam * sum(math.exp(float(s)) for j, s in enumerate(row) if j != t)
                   for row, t in zip(logits, target.tolist())) / 2
    assert float(robust_info_nce(logits, target, q=1.0, lam=lam)) == pytest.approx(expected, rel=1e-12)


def test_rince_never_rises_when_the_positive_rises() -> None:
    logits = torch.randn(8, 6, dtype=torch.float64)
    target = torch.arange(6).repeat(2)[:8]
    for q, lam in ((0.5, 0.01), (1.0, 1.0), (0.1, 0.9)):
        base = float(robust_info_nce(logits, target, q=q, lam=lam))
        better = logits.clone()
        better[torch.arange(8), target] += 0.5
        assert float(robust_info_nce(better, target, q=q, lam=lam)) <= base


def test_rince_bounds_the_weight_of_a_hopeless_positive() -> None:
    """InfoNCE's gradient on a very badly scored (noisy) positive stays near -1; RINCE's vanishes with q < 1."""
    logits = torch.tensor([[-8.0, 2.0, 2.0]], dtype=torch.float64, requires_grad=True)
    robust_info_nce(logits, torch.tensor([0]), q=0.5, lam=0.01).backward()
    rince_push = float(logits.grad[0, 0])
    logits.grad = None
    torch.nn.functional.cross_entropy(logits, torch.tensor([0])).backward()
    assert abs(rince_push) < 0.05 * abs(float(logits.grad[0, 0]))


@pytest.mark.parametrize(("parameter", "bad"), [("q", 0.0), ("q", 1.5), ("q", True), ("lam", 0.0), ("lam", 2.0),
                                                ("lam", "0.1")])
def test_rince_bad_parameter_raises_invalid_parameter(parameter: str, bad: object) -> None:
    with pytest.raises(InvalidParameter, match=f"^{parameter}: ") as caught:
        RobustInfoNCE(**{parameter: bad})
    assert caught.value.parameter == parameter


def test_rince_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="logits must be"):
        robust_info_nce(torch.zeros(4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="logits must be"):
        robust_info_nce(torch.zeros(4, 3), torch.zeros(3, dtype=torch.long))


def test_rince_has_no_mi_bound_and_two_way_by_default() -> None:
    objective = RobustInfoNCE()
    assert objective.two_way is True and (objective.q, objective.lam) == (0.5, 0.01)
    assert objective.mi_lower_bound(torch.tensor(1.0), 63) is None


def test_pipeline_with_rince_logs_no_mi_bound() -> None:
    pipe = Pipeline(views="sobel", encoder={"name": "convnet", "width": 4, "depth": 2}, objective="rince", dataset_size=8)
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
    loss = robust_info_nce(logits, torch.arange(4, device="cuda"))
    assert loss.device == logits.device
    assert torch.allclose(loss.cpu().double(), naive_rince(logits.cpu().double(), torch.arange(4), 0.5, 0.01), atol=1e-5)

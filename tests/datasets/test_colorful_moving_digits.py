"""The embedded dataset: deterministic, labelled, with the digit really at its labelled position."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import torch

from contrastkit.datasets.colorful_moving_digits import ColorfulMovingDigits
from contrastkit.datasets.digit_backgrounds import NUM_BACKGROUNDS
from contrastkit.errors import InvalidParameter

if TYPE_CHECKING:
    import numpy as np


def test_deterministic_from_seed() -> None:
    a = ColorfulMovingDigits(split="train", size=64, seed=3)
    b = ColorfulMovingDigits(split="train", size=64, seed=3)
    c = ColorfulMovingDigits(split="train", size=64, seed=4)
    assert torch.equal(a.images, b.images) and torch.equal(a.digit, b.digit)
    assert not torch.equal(a.images, c.images)


def test_splits_differ() -> None:
    train = ColorfulMovingDigits(split="train", size=64)
    test = ColorfulMovingDigits(split="test", size=64)
    assert not torch.equal(train.images, test.images)


def test_labels_cover_their_ranges() -> None:
    ds = ColorfulMovingDigits(split="train", size=2000, image_size=32, digit_size=16)
    assert set(ds.digit.tolist()) == set(range(10))
    assert set(ds.background.tolist()) == set(range(NUM_BACKGROUNDS))
    assert float(ds.position.min()) >= 8 and float(ds.position.max()) <= 24


def test_digit_is_drawn_at_its_position(monkeypatch: pytest.MonkeyPatch) -> None:
    """On black backgrounds, the only lit pixels are the digit's, and they lie in its labelled box."""
    import numpy as np

    from contrastkit.datasets import colorful_moving_digits as module

    def black(classes: np.ndarray, image_size: int, rng: np.random.Generator, *, palette: str) -> np.ndarray:
        return np.zeros((len(classes), 3, image_size, image_size), dtype=np.float32)

    monkeypatch.setattr(module, "render_backgrounds", black)
    ds = module.ColorfulMovingDigits(split="train", size=64, image_size=40, digit_size=16, seed=0)
    for i in range(len(ds)):
        item = ds[i]
        lit = item["image"].amax(dim=0) > 0
        ys, xs = torch.nonzero(lit, as_tuple=True)
        assert len(ys) > 10, "the digit is missing"
        cx, cy = item["position"].tolist()
        assert xs.min() >= cx - 8 and xs.max() < cx + 8
        assert ys.min() >= cy - 8 and ys.max() < cy + 8


def test_items_and_bounds() -> None:
    ds = ColorfulMovingDigits(split="test", size=10)
    item = ds[-1]
    assert int(item["index"]) == 9 and item["image"].dtype == torch.uint8
    with pytest.raises(IndexError, match="out of range"):
        ds[10]


@pytest.mark.parametrize(("kwargs", "param"), [({"size": 0}, "size"), ({"digit_size": 40}, "digit_size"), ({"split": "val"}, "split")])
def test_bad_parameters(kwargs: dict, param: str) -> None:
    with pytest.raises(InvalidParameter, match=f"^{param}: "):
        ColorfulMovingDigits(**kwargs)


def test_pair_shares_exactly_the_listed_factors() -> None:
    plain = ColorfulMovingDigits(size=64, seed=2)
    ds = ColorfulMovingDigits(size=64, seed=2, pair=["digit", "position"])
    assert torch.equal(ds.images, plain.images), "adding a pair must not change the first images"
    assert ds[0]["image_pair"].shape == ds[0]["image"].shape and "image_pair" not in plain[0]
    # Same glyph at the same place, in another colour on another background: the digit's mask
    # (pixels that differ from the background) lies inside the same square in both images.
    assert not torch.equal(ds.image_pairs, ds.images)
    none = ColorfulMovingDigits(size=64, seed=2, pair=[])
    assert not torch.equal(none.image_pairs, ds.image_pairs)


def test_pair_with_all_factors_differs_only_in_texture_and_colour_draws() -> None:
    ds = ColorfulMovingDigits(size=32, seed=0, pair=["digit", "background", "position"], palette="class")
    # Same background class and palette: the mean colour of each pair is close (texture phase aside).
    diff = (ds.images.float().mean((2, 3)) - ds.image_pairs.float().mean((2, 3))).abs().mean()
    other = ColorfulMovingDigits(size=32, seed=0, pair=["digit", "position"])
    diff_other = (other.images.float().mean((2, 3)) - other.image_pairs.float().mean((2, 3))).abs().mean()
    assert diff < diff_other


def test_unknown_pair_factor_and_palette_are_refused() -> None:
    with pytest.raises(InvalidParameter, match="pair: unknown factor 'colour'"):
        ColorfulMovingDigits(size=4, pair=["colour"])
    with pytest.raises(InvalidParameter, match="palette: must be 'class' or 'random'"):
        ColorfulMovingDigits(size=4, palette="rainbow")  # type: ignore[arg-type]


def test_random_palette_keeps_labels_and_changes_colours() -> None:
    a = ColorfulMovingDigits(size=64, seed=1)
    b = ColorfulMovingDigits(size=64, seed=1, palette="random")
    assert torch.equal(a.background, b.background) and torch.equal(a.digit, b.digit)
    assert not torch.equal(a.images, b.images)


# -- sequence (video) mode ----------------------------------------------------------------------------
def _black_backgrounds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Render every background black, so a pixel is lit exactly where the digit covers it."""
    import numpy as np

    from contrastkit.datasets import colorful_moving_digits as module

    def black(classes: np.ndarray, image_size: int, rng: np.random.Generator, *, palette: str) -> np.ndarray:
        return np.zeros((len(classes), 3, image_size, image_size), dtype=np.float32)

    monkeypatch.setattr(module, "render_backgrounds", black)


def _shifted(image: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """Naive reference: every pixel (x, y) moved to (x + dx, y + dy); what leaves the canvas is dropped."""
    out = torch.zeros_like(image)
    size = image.shape[-1]
    for y in range(size):
        for x in range(size):
            if 0 <= y + dy < size and 0 <= x + dx < size:
                out[:, y + dy, x + dx] = image[:, y, x]
    return out


def test_sequence_items_shapes_and_contract() -> None:
    from contrastkit.testing import check_dataset

    ds = ColorfulMovingDigits(size=16, image_size=24, digit_size=12, sequence=True, offset=2, velocity=3.0)
    check_dataset(ds, samples=len(ds))
    item = ds[3]
    assert item["next_image"].shape == item["image"].shape == (3, 24, 24) and item["next_image"].dtype == torch.uint8
    assert item["flow"].shape == (2, 24, 24) and item["flow"].dtype == torch.float32
    assert item["displacement"].shape == (2,) and item["displacement"].dtype == torch.float32
    assert ds.label_keys == ("digit", "background", "position", "displacement")
    assert ColorfulMovingDigits.label_keys == ("digit", "background", "position"), "the class attribute must not change"
    assert "next_image" not in ColorfulMovingDigits(size=4)[0]
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["flow"].shape == (4, 2, 24, 24) and batch["displacement"].shape == (4, 2)


def test_sequence_first_frame_is_the_plain_image_and_background_is_static() -> None:
    plain = ColorfulMovingDigits(size=48, seed=7)
    ds = ColorfulMovingDigits(size=48, seed=7, sequence=True, velocity=4.0)
    assert torch.equal(ds.images, plain.images)
    assert not torch.equal(ds.next_images, ds.images)
    # Outside the digit's box in both frames, nothing changes.
    half = ds.digit_size // 2
    size = ds.image_size
    for i in range(len(ds)):
        item = ds[i]
        cx, cy = item["position"].tolist()
        dx, dy = item["displacement"].tolist()
        still = torch.ones(size, size, dtype=torch.bool)
        for x0, y0 in ((cx, cy), (cx + dx, cy + dy)):
            still[int(y0) - half:int(y0) + half, int(x0) - half:int(x0) + half] = False
        assert torch.equal(item["next_image"][:, still], item["image"][:, still]), f"sample {i}: the background moved"


def test_next_image_is_the_digit_moved_by_the_displacement(monkeypatch: pytest.MonkeyPatch) -> None:
    _black_backgrounds(monkeypatch)
    ds = ColorfulMovingDigits(size=24, image_size=24, digit_size=12, seed=1, sequence=True, offset=3, velocity=2.0)
    moved = 0
    for i in range(len(ds)):
        item = ds[i]
        dx, dy = (int(v) for v in item["displacement"].tolist())
        assert item["displacement"].tolist() == [dx, dy], "displacements are whole pixels"
        assert torch.equal(item["next_image"], _shifted(item["image"], dx, dy)), f"sample {i}"
        moved += (dx, dy) != (0, 0)
    assert moved >= len(ds) // 2


def test_flow_is_the_displacement_on_the_digit_and_zero_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    _black_backgrounds(monkeypatch)
    ds = ColorfulMovingDigits(size=24, image_size=24, digit_size=12, seed=2, sequence=True, velocity=3.0)
    for i in range(len(ds)):
        item = ds[i]
        flow, image, nxt = item["flow"], item["image"], item["next_image"]
        # On black, the brightest channel is round(255 * alpha) (every bright colour has a channel at 1.0).
        coverage = image.amax(dim=0).to(torch.int64)
        shift = item["displacement"]
        solid, clear = coverage >= 129, coverage <= 126  # alpha > 0.5 and < 0.5, away from rounding ties
        assert torch.equal(flow[:, solid], shift[:, None].expand(2, int(solid.sum())))
        assert not flow[:, clear].any(), f"sample {i}: flow off the digit"
        # OpenCV's convention: next_image[y + dy, x + dx] == image[y, x] where the flow is.
        ys, xs = torch.nonzero(flow.abs().sum(0) > 0, as_tuple=True)
        if len(ys):
            tx, ty = xs + flow[0, ys, xs].long(), ys + flow[1, ys, xs].long()
            assert torch.equal(nxt[:, ty, tx], image[:, ys, xs])


def test_sequence_speed_bounce_and_zero_velocity() -> None:
    import numpy as np

    ds = ColorfulMovingDigits(size=400, image_size=32, digit_size=16, seed=3, sequence=True, offset=2, velocity=5.0)
    shift = ds.displacement
    assert shift.abs().max() <= 10 and (shift > 0).any() and (shift < 0).any()
    target = ds.position + shift  # centres of frame t + offset: still fully on the canvas
    assert float(target.min()) >= 8 and float(target.max()) <= 24
    still = ColorfulMovingDigits(size=16, seed=3, sequence=True, velocity=0.0)
    assert torch.equal(still.next_images, still.images) and not still.displacement.any()
    assert not still[0]["flow"].any()
    assert np.isfinite(ds.displacement.numpy()).all()


def test_bounce_matches_a_step_by_step_walk() -> None:
    from contrastkit.datasets.colorful_moving_digits import bounce

    def walk(start: int, shift: int, limit: int) -> int:
        position, step = start, 1 if shift > 0 else -1
        for _ in range(abs(shift)):
            if not 0 <= position + step <= limit:
                step = -step  # turn around at the wall
            position += step
        return position

    import numpy as np

    for limit in (1, 4, 7):
        starts = np.repeat(np.arange(limit + 1), 41)
        shifts = np.tile(np.arange(-20, 21), limit + 1)
        expected = [walk(int(s), int(d), limit) for s, d in zip(starts, shifts)]
        assert bounce(starts + shifts, limit).tolist() == expected
    assert bounce(np.array([3, -2]), 0).tolist() == [0, 0]


def test_sequence_is_deterministic_from_seed() -> None:
    a = ColorfulMovingDigits(size=32, seed=5, sequence=True, velocity=3.0)
    b = ColorfulMovingDigits(size=32, seed=5, sequence=True, velocity=3.0)
    c = ColorfulMovingDigits(size=32, seed=6, sequence=True, velocity=3.0)
    assert torch.equal(a.next_images, b.next_images) and torch.equal(a.displacement, b.displacement)
    assert torch.equal(a[4]["flow"], b[4]["flow"])
    assert not torch.equal(a.displacement, c.displacement)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"offset": 2}, "offset: only applies to sequences; set sequence = true or remove it"),
        ({"velocity": 1.0}, "velocity: only applies to sequences"),
        ({"sequence": True, "offset": 0}, "offset: must be >= 1"),
        ({"sequence": True, "velocity": -1.0}, "velocity: must be >= 0"),
        ({"sequence": True, "pair": ["digit"]}, "sequence: cannot be combined with pair"),
        ({"sequence": True, "depth": True}, "depth: cannot be combined with sequence"),
        ({"normals": True}, "normals: needs depth = true"),
    ],
)
def test_mode_combinations_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidParameter, match="^" + message.replace("(", r"\(")):
        ColorfulMovingDigits(size=4, **kwargs)


# -- depth mode ---------------------------------------------------------------------------------------
def _plane_fit(depth: torch.Tensor, keep: torch.Tensor) -> tuple[np.ndarray, float]:
    """The plane a + b x + c y closest to ``depth`` over the pixels ``keep`` in the max norm: ((a, b, c), max |residual|).

    A minimax fit (a float64 linear program), because rounding a true plane to uint8 leaves every
    residual within 0.5 of it, so the best plane's worst residual is <= 0.5 exactly when the data
    is a rounded plane (least squares can miss by more where rounding errors are correlated).
    """
    import numpy as np
    from scipy.optimize import linprog

    ys, xs = np.nonzero(keep.numpy())
    values = depth.numpy()[ys, xs].astype(np.float64)
    design = np.stack([np.ones(len(xs)), xs, ys], axis=1).astype(np.float64)
    slack = -np.ones((len(xs), 1))
    # variables (a, b, c, t): minimise t subject to |design @ (a, b, c) - values| <= t
    bounds = [(None, None)] * 3 + [(0, None)]
    result = linprog([0, 0, 0, 1], A_ub=np.block([[design, slack], [-design, slack]]),
                     b_ub=np.concatenate([values, -values]), bounds=bounds, method="highs")
    assert result.success, result.message
    return result.x[:3], float(result.x[3])


def _outside_box(item: dict, half: int, size: int, margin: int = 0) -> torch.Tensor:
    cx, cy = (int(v) for v in item["position"].tolist())
    keep = torch.ones(size, size, dtype=torch.bool)
    keep[max(cy - half - margin, 0):cy + half + margin, max(cx - half - margin, 0):cx + half + margin] = False
    return keep


def test_depth_shapes_groups_and_contract() -> None:
    from contrastkit.testing import check_dataset

    plain = ColorfulMovingDigits(size=16, seed=4)
    ds = ColorfulMovingDigits(size=16, seed=4, depth=True)
    check_dataset(ds, samples=len(ds))
    assert ds[0]["image"].shape == (4, 32, 32) and ds[0]["image"].dtype == torch.uint8
    assert ds.channel_groups == {"rgb": (0, 3), "depth": (3, 4)} and plain.channel_groups == {"rgb": (0, 3)}
    assert torch.equal(ds.images[:, :3], plain.images), "depth must leave the RGB channels unchanged"
    assert ds.label_keys == plain.label_keys
    with_normals = ColorfulMovingDigits(size=16, seed=4, depth=True, normals=True)
    check_dataset(with_normals)
    assert with_normals[0]["image"].shape == (7, 32, 32)
    assert with_normals.channel_groups == {"rgb": (0, 3), "depth": (3, 4), "normals": (4, 7)}
    assert torch.equal(with_normals.images[:, :4], ds.images)


def test_depth_is_a_tilted_plane_with_the_digit_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    from contrastkit.datasets.digit_depth import RELIEF

    _black_backgrounds(monkeypatch)
    ds = ColorfulMovingDigits(size=60, image_size=32, digit_size=16, seed=0, depth=True)
    slopes = []
    for i in range(len(ds)):
        item = ds[i]
        depth = item["image"][3]
        coef, residual = _plane_fit(depth, _outside_box(item, 8, 32))
        assert residual <= 0.5 + 1e-6, f"sample {i}: the background is not a plane (residual {residual:.3f})"
        assert int(depth.min()) >= 40 and int(depth.max()) <= 215
        slopes.append(coef[1:])
        # Strokes stand RELIEF * alpha nearer than the plane; on black, alpha = brightest channel / 255
        # (every bright colour has a channel at 1.0), known to within 0.5 / 255.
        coverage = item["image"][:3].amax(0)
        ys, xs = torch.nonzero(coverage > 0, as_tuple=True)
        assert int(coverage.max()) >= 128, f"sample {i}: the digit is missing"
        plane = coef[0] + coef[1] * xs.double().numpy() + coef[2] * ys.double().numpy()
        raised = plane - depth[ys, xs].double().numpy()
        expected = RELIEF * coverage[ys, xs].double().numpy() / 255
        # tolerance: 0.5 of depth rounding, up to 0.5 for the fitted plane, RELIEF * 0.5 / 255 from alpha
        assert abs(raised - expected).max() <= 1.25, f"sample {i}: relief off by {abs(raised - expected).max():.2f}"
    import numpy as np

    slopes = np.array(slopes)
    assert slopes.std(axis=0).min() > 0.3, "planes should have random tilts"


def test_normals_off_the_digit_are_the_planes(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    _black_backgrounds(monkeypatch)
    ds = ColorfulMovingDigits(size=12, image_size=32, digit_size=16, seed=9, depth=True, normals=True)
    for i in range(len(ds)):
        item = ds[i]
        keep = _outside_box(item, 8, 32, margin=1)  # central differences reach one pixel into the box
        coef, _ = _plane_fit(item["image"][3], _outside_box(item, 8, 32))
        expected = np.array([coef[1], coef[2], -1.0]) / np.linalg.norm([coef[1], coef[2], -1.0])
        normals = item["image"][4:7].double().numpy() / 255 * 2 - 1
        got = normals[:, keep.numpy()]
        # uint8 encoding (1/255) plus the fit's error on the slopes (the depth channel was rounded)
        assert np.abs(got - expected[:, None]).max() < 0.02, f"sample {i}"
        on_digit = normals[:, item["image"][:3].amax(0).numpy() > 0]
        assert np.abs(np.linalg.norm(on_digit, axis=0) - 1).max() < 0.02
        assert (on_digit[2] < 0).all(), "normals face the camera (negative z)"


def test_pair_with_depth_gives_the_second_image_its_own_depth(monkeypatch: pytest.MonkeyPatch) -> None:
    _black_backgrounds(monkeypatch)
    ds = ColorfulMovingDigits(size=8, seed=1, depth=True, pair=["position"])
    item = ds[0]
    assert item["image_pair"].shape == (4, 32, 32)
    keep = _outside_box(item, 8, 32)
    _, residual = _plane_fit(item["image_pair"][3], keep)
    assert residual <= 0.5 + 1e-6
    assert not torch.equal(ds.image_pairs[:, 3], ds.images[:, 3])


@pytest.mark.parametrize("share", [["digit"], ["background"], ["position"], ["digit", "background"], [],
                                   ["digit", "background", "position"]])
def test_pairs_share_exactly_the_listed_factors(share: list[str]) -> None:
    ds = ColorfulMovingDigits(size=300, seed=4, pair=share, image_size=32, digit_size=12)
    assert ds.pair_digit is not None and ds.pair_background is not None and ds.pair_position is not None
    same = {
        "digit": ds.pair_digit == ds.digit,
        "background": ds.pair_background == ds.background,
        # Not shared: at least digit_size // 2 px apart along one axis.
        "position": (ds.pair_position - ds.position).abs().amax(dim=1) < 6,
    }
    for factor, equal in same.items():
        if factor in share:
            assert bool(equal.all()), f"{factor} should be shared by every pair"
        else:
            assert not bool(equal.any()), f"{factor} should differ in every pair"
    # The second image's labels are those of what was drawn: its digit class is a real glyph class.
    assert set(ds.pair_digit.tolist()) <= set(range(10))


def test_a_canvas_too_small_to_move_the_digit_is_refused_for_unshared_positions() -> None:
    with pytest.raises(InvalidParameter, match=r"pair: a position that is not shared must move the digit by at least 12 px"):
        ColorfulMovingDigits(size=8, image_size=32, digit_size=24, pair=["digit"])
    assert ColorfulMovingDigits(size=8, image_size=32, digit_size=24, pair=["digit", "position"]).pair_position is not None


def test_pairs_sharing_the_digit_share_its_glyph_or_only_its_class() -> None:
    by_class = ColorfulMovingDigits(size=200, seed=3, pair=["digit", "position"], palette="class", same_glyph=False)
    by_glyph = ColorfulMovingDigits(size=200, seed=3, pair=["digit", "position"], palette="class")
    assert torch.equal(by_class.pair_digit, by_class.digit) and torch.equal(by_glyph.pair_digit, by_glyph.digit)
    assert torch.equal(by_glyph.pair_glyph, by_glyph.glyph), "same_glyph: the very same handwritten glyph"
    assert bool((by_class.pair_glyph != by_class.glyph).all()), "class-level: always another glyph of the class"
    by_class.set_epoch(1)
    assert bool((by_class.pair_glyph != by_class.glyph).all()) and torch.equal(by_class.pair_digit, by_class.digit)


def test_same_glyph_needs_a_shared_digit() -> None:
    with pytest.raises(InvalidParameter, match="^same_glyph: only applies when pair includes"):
        ColorfulMovingDigits(size=4, pair=["background"], same_glyph=False)


@pytest.mark.parametrize("share", [["digit"], ["background"], ["position"], ["digit", "position"]])
def test_pairs_are_redrawn_every_epoch_and_still_share_exactly_the_factors(share: list[str]) -> None:
    ds = ColorfulMovingDigits(size=200, seed=4, pair=share, image_size=32, digit_size=12)
    first, images = ds.image_pairs.clone(), ds.images.clone()
    ds.set_epoch(1)
    assert not torch.equal(ds.image_pairs, first), "epoch 1 must bring new second images"
    assert torch.equal(ds.images, images), "the first images never change"
    same = {"digit": ds.pair_digit == ds.digit, "background": ds.pair_background == ds.background,
            "position": (ds.pair_position - ds.position).abs().amax(dim=1) < 6}
    for factor, equal in same.items():
        assert bool(equal.all()) if factor in share else not bool(equal.any()), factor
    again = ColorfulMovingDigits(size=200, seed=4, pair=share, image_size=32, digit_size=12)
    again.set_epoch(1)
    assert torch.equal(again.image_pairs, ds.image_pairs), "epoch e's pairs depend only on seed, split and e"
    ds.set_epoch(0)
    assert torch.equal(ds.image_pairs, first)


def test_dataloader_workers_see_the_epochs_pairs() -> None:
    ds = ColorfulMovingDigits(size=16, seed=1, pair=["background"], image_size=16, digit_size=8)
    loader = torch.utils.data.DataLoader(ds, batch_size=16, num_workers=1, persistent_workers=True)
    epoch0 = next(iter(loader))["image_pair"]
    ds.set_epoch(2)
    epoch2 = next(iter(loader))["image_pair"]  # the persistent worker's copy must catch up
    assert torch.equal(epoch0, ColorfulMovingDigits(size=16, seed=1, pair=["background"], image_size=16,
                                                    digit_size=8).image_pairs)
    assert torch.equal(epoch2, ds.image_pairs) and not torch.equal(epoch0, epoch2)


def test_worker_augmented_dataset_forwards_the_epoch() -> None:
    from contrastkit.training.worker_augmentation import WorkerAugmentedDataset

    ds = ColorfulMovingDigits(size=8, seed=1, pair=["background"], image_size=16, digit_size=8)
    wrapped = WorkerAugmentedDataset(ds, [None], seed=0)
    wrapped.set_epoch(3)
    assert ds.epoch == 3


def test_background_contrast_softens_the_texture_not_the_digit_or_labels() -> None:
    full = ColorfulMovingDigits(size=64, seed=2, palette="random", pair=["digit"])
    soft = ColorfulMovingDigits(size=64, seed=2, palette="random", pair=["digit"], background_contrast=0.3)
    explicit = ColorfulMovingDigits(size=64, seed=2, palette="random", pair=["digit"], background_contrast=1.0)
    assert torch.equal(full.images, explicit.images), "1.0 is the default and changes nothing"
    for name in ("digit", "background", "position", "pair_digit", "pair_background", "pair_position"):
        assert torch.equal(getattr(full, name), getattr(soft, name)), name
    # the texture's spread around the image's mean drops (the digit's pixels aside)
    assert float(soft.images.float().std(dim=(2, 3)).mean()) < 0.7 * float(full.images.float().std(dim=(2, 3)).mean())
    assert float(soft.image_pairs.float().std(dim=(2, 3)).mean()) < float(full.image_pairs.float().std(dim=(2, 3)).mean())


@pytest.mark.parametrize("value", [0.0, -0.5, 1.5, True])
def test_background_contrast_out_of_range_is_refused(value: float) -> None:
    with pytest.raises(InvalidParameter, match=r"^background_contrast: must be in \(0, 1\]"):
        ColorfulMovingDigits(size=4, background_contrast=value)

"""``rgbd`` views: contract on RGB-D batches, the four modalities, shared augmentation with turned normals, errors."""

from __future__ import annotations

import math
from typing import Any

import kornia.geometry.transform as KT
import pytest
import torch

from contrastkit.augmentations.basic import CropFlip
from contrastkit.augmentations.infomin import InfoMinAugmentation
from contrastkit.augmentations.simclr import SimCLRAugmentation
from contrastkit.errors import InvalidParameter, ShapeError
from contrastkit.pipeline import Pipeline
from contrastkit.testing import check_view_maker
from contrastkit.views.color_split import to_color_space
from contrastkit.views.normals import depth_to_normals
from contrastkit.views.rgbd import RGBDViews, orientation_from_probe, probe_channels, turn_normals


class WithDepth:
    """Runs ``check_view_maker``'s 3-channel batches through ``rgbd`` with depth (and normals) appended."""

    def __init__(self, maker: RGBDViews, *, normals: bool) -> None:
        self.maker, self.normals = maker, normals
        self.view_channels = maker.view_channels

    def __call__(self, batch: dict[str, torch.Tensor], augment: Any) -> list[torch.Tensor]:
        image = batch["image"]
        extra = [image[:, :1] * 0.5 + 0.25]
        if self.normals:
            extra.append((depth_to_normals(extra[0]) + 1) / 2)
        return self.maker({**batch, "image": torch.cat([image, *extra], dim=1)}, augment)


def _tilted_plane(batch: int, size: int, *, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Depth ``[B, 1, S, S]`` in (0, 1] of a plane tilted in both directions (no symmetry a flip would hide)."""
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, size, dtype=dtype), torch.linspace(-1, 1, size, dtype=dtype), indexing="ij")
    depth = 0.6 + 0.2 * xs - 0.1 * ys
    return depth.expand(batch, 1, size, size).contiguous()


@pytest.mark.parametrize("normals", [False, True])
@pytest.mark.parametrize("views", [None, ["L", "ab"], ["depth", "normals"], ["normals", "L", "depth"]])
def test_contract(views, normals: bool) -> None:
    torch.manual_seed(0)
    check_view_maker(WithDepth(RGBDViews(views=views), normals=normals))


@pytest.mark.parametrize(
    ("views", "expected"),
    [(None, (1, 2, 1, 3)), (["ab", "L"], (2, 1)), (["depth", "normals"], (1, 3)), (["normals", "ab", "depth"], (3, 2, 1))],
)
def test_view_channels(views, expected) -> None:
    maker = RGBDViews(views=views)
    assert maker.view_channels == expected
    assert tuple(v.shape[1] for v in maker({"image": torch.rand(2, 7, 8, 8)}, lambda x, view: x)) == expected


def test_each_modality_unaugmented() -> None:
    torch.manual_seed(0)
    rgb = torch.rand(2, 3, 10, 10, dtype=torch.float64)
    depth = _tilted_plane(2, 10)
    stored = torch.randn(2, 3, 10, 10, dtype=torch.float64)
    stored = stored / stored.norm(dim=1, keepdim=True)
    image = torch.cat([rgb, depth, (stored + 1) / 2], dim=1)
    calls: list[int] = []

    def identity(x: torch.Tensor, view: int) -> torch.Tensor:
        calls.append(view)
        return x

    l_view, ab, d, normals = RGBDViews()({"image": image}, identity)
    assert calls == [0]  # one shared augmentation
    lab = to_color_space(rgb, "lab", normalize=True)
    assert torch.allclose(l_view, lab[:, :1]) and torch.allclose(ab, lab[:, 1:])
    assert torch.allclose(d, 2 * depth - 1)
    assert torch.allclose(normals, stored, atol=1e-12)  # the image's own normals, decoded
    computed = RGBDViews(views=["L", "normals"], normals_source="depth")({"image": image}, identity)[1]
    assert torch.allclose(computed, depth_to_normals(depth), atol=1e-12)
    from_four = RGBDViews(views=["L", "normals"], field_of_view=70.0)({"image": image[:, :4]}, identity)[1]
    assert torch.allclose(from_four, depth_to_normals(depth, field_of_view=70.0), atol=1e-12)


@pytest.mark.parametrize(
    "name",
    ["hflip", "vflip", "rot90", "rot270"],
)
@pytest.mark.parametrize("stored", [False, True])
def test_flips_and_rotations_turn_the_normals(name: str, stored: bool) -> None:
    """Normals after a flip or 90-degree turn equal the normals of the flipped or turned depth (float64)."""
    moves = {
        "hflip": lambda x: x.flip(-1),
        "vflip": lambda x: x.flip(-2),
        "rot90": lambda x: torch.rot90(x, 1, dims=(-2, -1)),
        "rot270": lambda x: torch.rot90(x, 3, dims=(-2, -1)),
    }
    move = moves[name]
    depth = _tilted_plane(2, 12)
    parts = [torch.rand(2, 3, 12, 12, dtype=torch.float64), depth]
    if stored:
        parts.append((depth_to_normals(depth) + 1) / 2)
    normals = RGBDViews(views=["depth", "normals"])({"image": torch.cat(parts, dim=1)}, lambda x, view: move(x))[1]
    expected = depth_to_normals(move(depth))
    assert torch.allclose(normals, expected, atol=1e-9)
    unturned = (move(depth_to_normals(depth)) - expected).abs().amax()
    assert unturned > 0.1  # moving the pixels alone would have been wrong


def test_probe_reads_a_known_rotation() -> None:
    size, angle = 33, 30.0
    probe = probe_channels(1, size, size, like=torch.zeros((), dtype=torch.float64))
    turned = KT.rotate(probe, torch.tensor([angle], dtype=torch.float64))  # counter-clockwise on screen
    got = orientation_from_probe(turned, height=size, width=size)[0]
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    # On screen (y down) a counter-clockwise turn sends right (1, 0) to (c, -s) and down (0, 1) to (s, c).
    assert torch.allclose(got, torch.tensor([[c, s], [-s, c]], dtype=torch.float64), atol=1e-6)


def test_probe_under_the_recipes() -> None:
    torch.manual_seed(0)
    size = 24
    probe = probe_channels(16, size, size, like=torch.zeros(()))
    stack = torch.cat([torch.rand(16, 4, size, size), probe], dim=1)
    flipped = orientation_from_probe(CropFlip(flip_p=1.0)(stack)[:, 4:], height=size, width=size)
    kept = orientation_from_probe(CropFlip(flip_p=0.0)(stack)[:, 4:], height=size, width=size)
    assert torch.allclose(flipped, torch.tensor([[-1.0, 0.0], [0.0, 1.0]]).expand(16, 2, 2), atol=1e-4)
    assert torch.allclose(kept, torch.eye(2).expand(16, 2, 2), atol=1e-4)
    mixed = orientation_from_probe(InfoMinAugmentation(size=20)(stack)[:, 4:], height=size, width=size)
    assert torch.allclose(mixed @ mixed.transpose(1, 2), torch.eye(2).expand(16, 2, 2), atol=1e-4)  # orthogonal
    assert torch.allclose(orientation_from_probe(torch.zeros(2, 2, 5, 5), height=5, width=5), torch.eye(2).expand(2, 2, 2))


def test_turn_normals_keeps_the_depth_component() -> None:
    normals = torch.tensor([0.6, 0.0, -0.8], dtype=torch.float64).view(1, 3, 1, 1)
    quarter = torch.tensor([[[0.0, -1.0], [1.0, 0.0]]], dtype=torch.float64)
    assert torch.allclose(turn_normals(normals, quarter).flatten(), torch.tensor([0.0, 0.6, -0.8], dtype=torch.float64))


def test_colour_augmentation_never_touches_depth_or_normals() -> None:
    torch.manual_seed(0)
    image = torch.cat([torch.rand(8, 3, 16, 16), torch.full((8, 1, 16, 16), 0.3), torch.full((8, 3, 16, 16), 0.5)], 1)
    image[:, 6] = 0.0  # stored normal (0, 0, -1): fronto-parallel
    strong = SimCLRAugmentation(strength=1.0, jitter_p=1.0, grayscale_p=1.0, blur_p=1.0)
    _, depth, normals = RGBDViews(views=["L", "depth", "normals"])({"image": image}, lambda x, view: strong(x))
    assert torch.allclose(depth, torch.full_like(depth, 2 * 0.3 - 1), atol=1e-5)
    assert torch.allclose(normals, torch.tensor([0.0, 0.0, -1.0]).view(1, 3, 1, 1).expand_as(normals), atol=1e-5)


def test_uint8_images_are_accepted() -> None:
    image = torch.randint(0, 256, (2, 4, 8, 8), dtype=torch.uint8)
    l_view, depth = RGBDViews(views=["L", "depth"])({"image": image}, lambda x, view: x)
    assert l_view.dtype == torch.float32 and torch.allclose(depth, image[:, 3:4].float() / 255 * 2 - 1)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"views": ["L"]}, "views: must list 2 to 4 different views"),
        ({"views": ["L", "L"]}, "views: must list 2 to 4"),
        ({"views": ["L", "flow"]}, "views: unknown view .flow.; must list 2 to 4"),
        ({"normals_source": "batch"}, "normals_source: must be 'auto'"),
        ({"field_of_view": 200.0}, "field_of_view: must be in"),
    ],
)
def test_parameter_errors(params: dict, message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        RGBDViews(**params)


def test_batch_errors() -> None:
    with pytest.raises(ShapeError, match=r"got \(2, 3, 8, 8\); use a dataset with depth \(paired-folder, or colorful-moving-digits with data.depth = true\)"):
        RGBDViews()({"image": torch.rand(2, 3, 8, 8)}, lambda x, view: x)
    with pytest.raises(ShapeError, match=r"got \(2, 5, 8, 8\)"):
        RGBDViews()({"image": torch.rand(2, 5, 8, 8)}, lambda x, view: x)
    worker_copy = torch.rand(2, 7, 8, 8)  # what a DataLoader-worker augmentation hands back: the dataset's channels
    with pytest.raises(ShapeError, match="needs a device augmentation that keeps the channels"):
        RGBDViews()({"image": torch.rand(2, 7, 8, 8)}, lambda x, view: worker_copy)


def test_trains_through_the_pipeline() -> None:  # 4 channels: normals computed (paired-folder's test below has 7)
    torch.manual_seed(0)
    batch = {"image": torch.randint(0, 256, (8, 4, 16, 16), dtype=torch.uint8)}
    pipe = Pipeline(views=RGBDViews(), augment="simclr", encoder={"name": "convnet", "width": 4, "depth": 2}, graph="full")
    out = pipe(batch)
    assert torch.isfinite(out.loss) and [v.shape[1] for v in out.views] == [1, 2, 1, 3]
    out.loss.backward()
    assert pipe.eval().features(batch).shape[0] == 8


def test_reads_paired_folder_batches(tmp_path) -> None:
    from contrastkit.datasets.paired_folder import PairedFolderDataset

    dataset = PairedFolderDataset(split="train", **PairedFolderDataset.contract_params_for(tmp_path))
    pipe = Pipeline(data=dataset, views=RGBDViews(), augment="crop-flip", encoder={"name": "convnet", "width": 4, "depth": 2})
    out = pipe(torch.utils.data.default_collate([dataset[i] for i in range(len(dataset))]))
    assert torch.isfinite(out.loss) and [tuple(v.shape) for v in out.views] == [(3, 1, 16, 16), (3, 2, 16, 16), (3, 1, 16, 16), (3, 3, 16, 16)]

"""The shared image helpers: centre-square fitting, fast JPEG decoding, depth scaling, listing, messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from contrastkit.datasets import images
from contrastkit.errors import ContrastkitError, InvalidParameter


def test_fit_square_keeps_the_centre_of_tall_images() -> None:
    pixels = np.zeros((30, 10), dtype=np.uint8)
    pixels[10:20] = 255  # the middle third of the rows
    out = np.asarray(images.fit_square(Image.fromarray(pixels), 10))
    assert out.shape == (10, 10) and out.min() == 255


def test_large_jpeg_is_decoded_small_and_right(tmp_path: Path) -> None:
    """The reduced-scale JPEG decode still gives the requested size and the right colours."""
    pixels = np.zeros((800, 1200, 3), dtype=np.uint8)
    pixels[:, :600] = (250, 10, 10)
    pixels[:, 600:] = (10, 10, 250)
    Image.fromarray(pixels).save(tmp_path / "big.jpg", quality=95)
    image = images.load_image(tmp_path / "big.jpg", size=32, channels="rgb")
    assert image.shape == (3, 32, 32)
    left, right = image[:, :, :12].float().mean((1, 2)), image[:, :, 20:].float().mean((1, 2))
    assert left[0] > 200 and left[2] < 50 and right[2] > 200 and right[0] < 50


def test_upscaling_small_images(tmp_path: Path) -> None:
    Image.new("RGB", (4, 6), (1, 2, 3)).save(tmp_path / "tiny.png")
    image = images.load_image(tmp_path / "tiny.png", size=16, channels="rgb")
    assert image.shape == (3, 16, 16) and image[:, 8, 8].tolist() == [1, 2, 3]


def test_palette_and_alpha_images_become_rgb(tmp_path: Path) -> None:
    Image.new("RGBA", (8, 8), (9, 8, 7, 100)).save(tmp_path / "a.png")
    Image.new("P", (8, 8), 3).save(tmp_path / "p.gif")
    assert images.load_image(tmp_path / "a.png", size=4, channels="rgb")[:, 0, 0].tolist() == [9, 8, 7]
    assert images.load_image(tmp_path / "p.gif", size=4, channels="rgb").shape == (3, 4, 4)


def test_depth_all_zero_stays_zero(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((6, 6), np.uint16)).save(tmp_path / "d.png")
    assert int(images.load_depth(tmp_path / "d.png", size=3, depth_scale=None).max()) == 0


def test_depth_beyond_scale_is_clipped(tmp_path: Path) -> None:
    Image.fromarray(np.full((6, 6), 9000, np.uint16)).save(tmp_path / "d.png")
    depth = images.load_depth(tmp_path / "d.png", size=3, depth_scale=1000.0)
    assert depth.dtype == torch.uint8 and int(depth.min()) == 255


def test_unreadable_file_message(tmp_path: Path) -> None:
    path = tmp_path / "x.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0 not really")
    with pytest.raises(ContrastkitError) as info:
        images.load_image(path, size=4, channels="rgb")
    message = str(info.value)
    assert message.startswith(f"{path}: cannot decode image (") and message.endswith("); remove or replace the file")
    with pytest.raises(ContrastkitError, match="x.jpg: cannot decode image"):
        images.load_depth(path, size=4, depth_scale=None)


def test_listing_is_recursive_sorted_and_filtered(tmp_path: Path) -> None:
    for name in ("b/2.png", "b/10.png", "a.PNG", "c.txt", ".h/x.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    found = images.list_images(tmp_path, (".png",))
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a.PNG", "b/2.png", "b/10.png"]
    assert [p.name for p in images.list_images(tmp_path, (".png",), recursive=False)] == ["a.PNG"]


def test_small_helpers() -> None:
    assert images.summarize(["a", "b"]) == "a, b"
    assert images.summarize(list("abcdef"), limit=2) == "a, b and 4 more"
    assert sorted(["x10", "x9", "y1", "x09a"], key=images.natural_key) == ["x9", "x09a", "x10", "y1"]
    assert images.normalize_extensions(["JPG", " .Png "]) == (".jpg", ".png")
    with pytest.raises(InvalidParameter, match="^extensions: must list"):
        images.normalize_extensions([])
    with pytest.raises(InvalidParameter, match="^extensions: must list"):
        images.normalize_extensions(["."])

"""``decode = "device"``: JPEG bytes from the workers, decoded as a batch where the pipeline runs.

Tested on the CPU: the batched decode gives the same pixels as decoding each file, and as the
Pillow worker path wherever no resize is involved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from contrastkit.config import config_from_dict
from contrastkit.datasets.encoded_images import decode_batch, encoded_item, square_resize
from contrastkit.datasets.image_folder import ImageFolderDataset
from contrastkit.datasets.images import load_image
from contrastkit.errors import ConfigError, ContrastkitError, InvalidParameter
from contrastkit.training import Trainer

CPU = torch.device("cpu")


def smooth_image(rng: np.random.Generator, height: int, width: int) -> Image.Image:
    """Smooth colour gradients plus mild noise: JPEG-friendly, like a photo."""
    y, x = np.mgrid[0:height, 0:width]
    base = [np.sin(x / rng.uniform(3, 9) + rng.uniform(0, 6)) + np.cos(y / rng.uniform(3, 9)) for _ in range(3)]
    pixels = np.stack(base, -1) * 60 + 128 + rng.normal(0, 8, (height, width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def jpeg_folder(root: Path, sizes: list[tuple[int, int]], *, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for i, (height, width) in enumerate(sizes):
        folder = root / ("cat" if i % 2 else "dog")
        folder.mkdir(parents=True, exist_ok=True)
        smooth_image(rng, height, width).save(folder / f"{i:03d}.jpg", quality=90)
    return root


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    return torch.utils.data.default_collate(items)


@pytest.fixture
def cuda_present(monkeypatch: pytest.MonkeyPatch) -> None:
    """Items carry bytes only where CUDA exists; pretend it does, and decode on the CPU."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)


@pytest.mark.parametrize("channels", ["rgb", "gray"])
def test_decoded_pixels_equal_the_pillow_worker_path_when_files_are_image_size(
    tmp_path: Path, channels: str, cuda_present: None
) -> None:
    root = jpeg_folder(tmp_path / "jpegs", [(24, 24)] * 6)
    device_ds = ImageFolderDataset(root=str(root), image_size=24, decode="device", channels=channels)
    worker_ds = ImageFolderDataset(root=str(root), image_size=24, channels=channels)
    assert device_ds.decodes_on_device and "encoded" in device_ds[0] and "image" not in device_ds[0]
    batch = decode_batch(collate([device_ds[i] for i in range(6)]), CPU)
    expected = torch.stack([worker_ds[i]["image"] for i in range(6)])
    assert batch["image"].dtype == torch.uint8 and torch.equal(batch["image"], expected)
    assert torch.equal(batch["index"], torch.arange(6)) and torch.equal(batch["class"], expected.new_tensor(
        [int(worker_ds[i]["class"]) for i in range(6)], dtype=torch.int64))


def test_mixed_sizes_are_cropped_and_resized_per_image_in_batch_order(tmp_path: Path) -> None:
    from torchvision.io import ImageReadMode, decode_jpeg

    sizes = [(40, 30), (24, 24), (31, 57), (40, 30), (16, 64)]
    root = jpeg_folder(tmp_path / "jpegs", sizes)
    paths = sorted(root.rglob("*.jpg"))
    items = [encoded_item(p, size=20, channels=3) for p in paths]
    images = decode_batch(collate(items), CPU)["image"]
    for path, image in zip(paths, images):
        own = decode_jpeg(torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8), mode=ImageReadMode.RGB)
        assert torch.equal(image, square_resize(own[None], 20)[0])  # the batch decodes as each file alone
        pillow = load_image(path, size=20, channels="rgb")  # Pillow resizes (and draft-scales) its own way
        assert (image.float() - pillow.float()).abs().mean() < 3.0


def test_square_resize_takes_the_centred_square() -> None:
    image = torch.zeros(1, 1, 4, 8, dtype=torch.uint8)
    image[..., 2:6] = 200  # the centred 4 x 4 square
    assert torch.equal(square_resize(image, 4), torch.full((1, 1, 4, 4), 200, dtype=torch.uint8))
    assert square_resize(image, 2).unique().tolist() == [200]


def test_a_file_that_does_not_decode_is_named(tmp_path: Path) -> None:
    root = jpeg_folder(tmp_path / "jpegs", [(16, 16)] * 3)
    broken = sorted(root.rglob("*.jpg"))[1]
    broken.write_bytes(broken.read_bytes()[:40])
    items = [encoded_item(p, size=16, channels=3) for p in sorted(root.rglob("*.jpg"))]
    with pytest.raises(ContrastkitError, match=rf"^{broken}: cannot be decoded as JPEG \(.*\); replace or remove"):
        decode_batch(collate(items), CPU)


def test_device_decode_refuses_non_jpeg_files_and_bad_values(tmp_path: Path) -> None:
    root = jpeg_folder(tmp_path / "jpegs", [(16, 16)] * 2)
    Image.new("RGB", (16, 16)).save(root / "dog" / "extra.png")
    with pytest.raises(InvalidParameter, match=r"'device' decodes JPEG files only, and .*extra.png is not one"):
        ImageFolderDataset(root=str(root), image_size=16, decode="device")
    with pytest.raises(InvalidParameter, match="must be 'workers'") as info:
        ImageFolderDataset(root=str(root), image_size=16, decode="gpu")
    assert info.value.parameter == "decode"


def test_without_cuda_the_workers_decode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    root = jpeg_folder(tmp_path / "jpegs", [(16, 16)] * 2)
    ds = ImageFolderDataset(root=str(root), image_size=16, decode="device")
    assert not ds.decodes_on_device and ds[0]["image"].shape == (3, 16, 16)


def recipe(root: Path, tmp_path: Path, **data: Any) -> dict[str, Any]:
    return {
        "data": {"name": "image-folder", "root": str(root), "image_size": 16, **data},
        "augment": {"name": "simclr", "strength": 0.5},
        "views": {"name": "augmented-copies", "num_views": 2, "channels": 3},
        "encoder": {"name": "convnet", "width": 4, "depth": 2},
        "train": {"batch_size": 4, "max_steps": 3, "device": "cpu", "num_workers": 1,
                  "out_dir": str(tmp_path / "run")},
        "eval": {"knn": True, "linear": False, "labels": ["class"]},
        "log": {"progress": False},
    }


def test_a_run_with_device_decoding_trains_and_probes(tmp_path: Path) -> None:
    root = jpeg_folder(tmp_path / "jpegs", [(20, 20)] * 8)
    trainer = Trainer.from_config(config_from_dict(recipe(root, tmp_path, decode="device")), print_fn=lambda m: None)
    assert not trainer.pipeline.dataset.decodes_on_device  # no CUDA here: the workers decode...
    trainer.pipeline.dataset.decodes_on_device = True  # ...unless told to ship bytes to the (CPU) pipeline
    raw = next(iter(trainer.make_loader()))  # through a worker process: bytes, not pixels
    assert isinstance(raw["encoded"][0], bytes) and "image" not in raw
    assert trainer.pipeline.prepare_batch(raw)["image"].shape == (4, 3, 16, 16)
    result = trainer.fit()
    assert result.steps == 3 and any(r.label == "class" for r in result.knn)


def test_device_decoding_with_a_worker_augmentation_fails_before_training(tmp_path: Path, cuda_present: None) -> None:
    pytest.importorskip("albumentations")
    root = jpeg_folder(tmp_path / "jpegs", [(20, 20)] * 8)
    raw = recipe(root, tmp_path, decode="device") | {"augment": {"name": "albumentations", "recipe": "simclr"}}
    with pytest.raises(ConfigError, match="data.decode: 'device' sends JPEG bytes to the device, but augment "):
        Trainer.from_config(config_from_dict(raw), print_fn=lambda m: None)
    assert not (tmp_path / "run").exists()

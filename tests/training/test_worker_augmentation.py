"""WorkerAugmentedDataset: per-view uint8 copies whose randomness depends only on (seed, epoch, index, view)."""

from __future__ import annotations

import random

import pytest
import torch

from contrastkit.augmentations.albumentations_recipes import AlbumentationsAugmentation
from contrastkit.errors import InvalidParameter, ShapeError
from contrastkit.training.worker_augmentation import WorkerAugmentedDataset, sample_seed


class TinyDataset:
    """Smooth random float images with two labels."""

    label_keys = ("digit", "position")

    def __init__(self, n: int = 6, channels: int = 3, size: int = 16) -> None:
        generator = torch.Generator().manual_seed(0)
        coarse = torch.rand(n, channels, 4, 4, generator=generator)
        self.images = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"image": self.images[i], "index": torch.tensor(i), "digit": torch.tensor(i % 3),
                "position": torch.tensor([i / 2, 1.0])}


def _wrap(seed: int = 0, channels: int = 3) -> WorkerAugmentedDataset:
    views = [AlbumentationsAugmentation(recipe="simclr"), AlbumentationsAugmentation(recipe="infomin"), None]
    return WorkerAugmentedDataset(TinyDataset(channels=channels), views, seed=seed)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_items_carry_uint8_views_and_keep_their_keys(channels: int) -> None:
    data = _wrap(channels=channels)
    item = data[4]
    views = item["image_views"]
    assert views.shape == (3, channels, 16, 16) and views.dtype == torch.uint8
    original = TinyDataset(channels=channels)[4]
    assert torch.equal(item["image"], original["image"])
    assert int(item["index"]) == 4 and int(item["digit"]) == 1 and torch.equal(item["position"], original["position"])
    as_uint8 = original["image"].mul(255).round().to(torch.uint8)
    assert torch.equal(views[2], as_uint8), "an unaugmented view must be the image"
    assert not torch.equal(views[0], views[1]) and not torch.equal(views[0], views[2])
    assert data.label_keys == TinyDataset.label_keys and len(data) == 6


def test_same_output_whatever_the_call_order() -> None:
    in_order = [_wrap()[i]["image_views"] for i in range(6)]
    shuffled = list(range(6)) * 2
    random.Random(0).shuffle(shuffled)
    other = _wrap()  # another "worker", serving samples in another order, some twice
    for i in shuffled:
        assert torch.equal(other[i]["image_views"], in_order[i])


def test_views_of_one_recipe_differ() -> None:
    aug = AlbumentationsAugmentation(recipe="simclr")
    item = WorkerAugmentedDataset(TinyDataset(), [aug, aug], seed=0)[0]
    assert not torch.equal(item["image_views"][0], item["image_views"][1])


def test_epoch_and_seed_change_the_copies() -> None:
    data = _wrap()
    epoch0 = data[1]["image_views"]
    data.set_epoch(1)
    assert data.epoch == 1 and not torch.equal(data[1]["image_views"], epoch0)
    data.set_epoch(0)
    assert torch.equal(data[1]["image_views"], epoch0)
    assert not torch.equal(_wrap(seed=1)[1]["image_views"], epoch0)


def test_sample_seed_depends_on_every_coordinate() -> None:
    base = sample_seed(3, epoch=1, index=2, view=0)
    assert base == sample_seed(3, epoch=1, index=2, view=0)
    others = {sample_seed(4, epoch=1, index=2, view=0), sample_seed(3, epoch=2, index=2, view=0),
              sample_seed(3, epoch=1, index=3, view=0), sample_seed(3, epoch=1, index=2, view=1)}
    assert base not in others and len(others) == 4
    assert sample_seed(-1, epoch=0, index=0, view=0) >= 0


def test_dataloader_workers_match_the_main_process() -> None:
    data = _wrap()
    expected = torch.stack([data[i]["image_views"] for i in range(6)])
    data.set_epoch(2)
    expected_epoch2 = torch.stack([data[i]["image_views"] for i in range(6)])
    data.set_epoch(0)
    loader = torch.utils.data.DataLoader(data, batch_size=2, num_workers=2, persistent_workers=True)
    assert torch.equal(torch.cat([b["image_views"] for b in loader]), expected)
    data.set_epoch(2)  # persistent workers must see it
    assert torch.equal(torch.cat([b["image_views"] for b in loader]), expected_epoch2)


def test_views_of_different_sizes_are_rejected() -> None:
    data = WorkerAugmentedDataset(TinyDataset(), [AlbumentationsAugmentation(size=8), None], seed=0)
    with pytest.raises(ShapeError, match="same size"):
        data[0]


def test_invalid_arguments() -> None:
    with pytest.raises(InvalidParameter):
        WorkerAugmentedDataset(TinyDataset(), [], seed=0)
    with pytest.raises(InvalidParameter):
        WorkerAugmentedDataset(TinyDataset(), [object()], seed=0)  # type: ignore[list-item]
    with pytest.raises(InvalidParameter):
        _wrap().set_epoch(-1)

"""``image-pair``: views from two images of a sample; checked against the recipe before training."""

from __future__ import annotations

import pytest
import torch

from contrastkit.config import config_from_dict
from contrastkit.errors import ConfigError, ShapeError
from contrastkit.pipeline import Pipeline
from contrastkit.training import Trainer
from contrastkit.views.image_pair import ImagePairViews


def test_training_views_are_image_and_pair_eval_views_are_image() -> None:
    maker = ImagePairViews()
    image, pair = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    seen: list[int] = []

    def augment(x: torch.Tensor, view: int) -> torch.Tensor:
        seen.append(view)
        return x * 2

    v1, v2 = maker({"image": image, "image_pair": pair}, augment)
    assert torch.equal(v1, image * 2) and torch.equal(v2, pair * 2) and seen == [0, 1]
    e1, e2 = maker.eval()({"image": image, "image_pair": pair}, lambda x, view: x)
    assert torch.equal(e1, image) and torch.equal(e2, image)


def test_missing_pair_and_wrong_channels_are_shape_errors() -> None:
    with pytest.raises(ShapeError, match="no 'image_pair'"):
        ImagePairViews()({"image": torch.rand(2, 3, 8, 8)}, lambda x, view: x)
    with pytest.raises(ShapeError, match="set views.channels = 1"):
        ImagePairViews()({"image": torch.rand(2, 1, 8, 8), "image_pair": torch.rand(2, 1, 8, 8)}, lambda x, v: x)


def _recipe(tmp_path, data: dict, augment: object = "none") -> dict:
    return {
        "data": data, "views": "image-pair", "augment": augment,
        "encoder": {"name": "convnet", "width": 4, "depth": 2, "shared": True},
        "train": {"max_steps": 2, "batch_size": 8, "device": "cpu", "out_dir": str(tmp_path)},
        "eval": {"knn": False}, "log": {"progress": False, "tensorboard": False},
    }


def test_a_dataset_without_pairs_fails_before_training(tmp_path) -> None:
    config = config_from_dict(_recipe(tmp_path, {"size": 16}))
    with pytest.raises(ConfigError, match=r"views: .*'image_pair'.*data.pair"):
        Trainer.from_config(config, print_fn=lambda _: None)


def test_trains_on_digit_pairs(tmp_path) -> None:
    config = config_from_dict(_recipe(tmp_path, {"size": 16, "pair": ["digit"]}))
    result = Trainer.from_config(config, print_fn=lambda _: None).fit()
    assert result.steps == 2 and torch.isfinite(torch.tensor(result.final_metrics["loss"]))


def test_worker_augmentation_is_refused_with_pairs(tmp_path) -> None:
    config = config_from_dict(_recipe(tmp_path, {"size": 16, "pair": ["digit"]}, augment="albumentations"))
    with pytest.raises(ConfigError, match="augment: a DataLoader-worker augmentation augments only 'image'"):
        Pipeline.from_config(config)

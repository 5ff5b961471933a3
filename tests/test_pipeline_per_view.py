"""Per-view recipes: ``[[augment]]`` and ``[[encoder]]`` arrays, and one shared encoder (SimCLR)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from contrastkit import Pipeline
from contrastkit.config import load_config
from contrastkit.errors import ConfigError


def recipe(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "r.toml"
    path.write_text('[data]\nname = "colorful-moving-digits"\nsize = 32\nimage_size = 16\ndigit_size = 8\n' + text)
    return path


def test_shared_encoder_from_toml_is_one_module_used_by_every_view(tmp_path: Path) -> None:
    path = recipe(tmp_path, '[views]\nname = "augmented-copies"\n[encoder]\nname = "convnet"\nwidth = 4\nshared = true\n')
    pipe = Pipeline.from_toml(path)
    assert len(pipe.encoders) == 1 and pipe.view_encoder == [0, 0]
    assert "(shared)" in pipe.describe()
    out = pipe({"image": torch.rand(4, 3, 16, 16)})
    out.loss.backward()
    assert all(p.grad is not None for p in pipe.encoders[0].parameters())


def test_per_view_encoders_by_default_and_from_an_array(tmp_path: Path) -> None:
    pipe = Pipeline.from_toml(recipe(tmp_path, '[encoder]\nname = "convnet"\nwidth = 4\n'))
    assert len(pipe.encoders) == 2 and pipe.view_encoder == [0, 1]
    path = recipe(
        tmp_path,
        '[[encoder]]\nname = "convnet"\nwidth = 4\n[[encoder]]\nname = "convnet"\nwidth = 8\n',
    )
    pipe = Pipeline.from_toml(path)
    assert [e.feature_dim for e in pipe.encoders] != [] and pipe.feature_dims[0] != pipe.feature_dims[1]


def test_per_view_augmentations_apply_to_their_own_view(tmp_path: Path) -> None:
    path = recipe(
        tmp_path,
        '[views]\nname = "augmented-copies"\n[[augment]]\nname = "none"\n[[augment]]\nname = "crop-flip"\n'
        '[encoder]\nname = "convnet"\nwidth = 4\nshared = true\n',
    )
    pipe = Pipeline.from_toml(path)
    image = torch.rand(4, 3, 16, 16)
    torch.manual_seed(0)
    v1, v2 = pipe.make_views(pipe.prepare_batch({"image": image}))
    assert torch.equal(v1, image)  # "none" for view 1
    assert not torch.equal(v2, image)  # crop-flip for view 2
    assert "v1 none, v2 crop-flip" in pipe.describe()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[augment]]\nname = "none"\n[[augment]]\nname = "none"\n[[augment]]\nname = "none"\n',
            "augment: 3 per-view entries for 2 views (color-split makes 2); give one per view or a single table",
        ),
        (
            '[encoder]\nname = "convnet"\nshared = true\n',
            "encoder.shared: a shared encoder needs views with equal channel counts, but color-split makes (1, 2)",
        ),
        ('[encoder]\nname = "convnet"\nshared = "yes"\n', "encoder.shared: expected true or false (got 'yes')"),
        ('[[augment]]\nname = "none"\n[[augment]]\nname = "nope"\n', "augment[1]"),
    ],
)
def test_per_view_mistakes_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    path = recipe(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        Pipeline.from_config(load_config(path), path=str(path))
    assert message in str(info.value) and "\n" not in str(info.value)
    assert str(info.value).startswith(str(path))

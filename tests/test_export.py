"""Encoder export: checkpoint -> safetensors -> load_encoder gives the trained encoders back, bit for bit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from contrastkit import Pipeline
from contrastkit.config import config_from_dict
from contrastkit.errors import ContrastkitError, InvalidParameter
from contrastkit.export import (
    EXPORT_FORMAT,
    export_checkpoint,
    export_encoders,
    load_encoder,
    read_checkpoint,
    read_export,
)
from contrastkit.training import Trainer, save_checkpoint

TINY = {
    "data": {"name": "colorful-moving-digits", "size": 64},
    "encoder": {"name": "convnet", "width": 4, "depth": 2},
    "train": {"max_steps": 2, "batch_size": 16, "device": "cpu"},
    "eval": {"knn": False},
    "log": {"progress": False, "tensorboard": False},
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trainer:
    run = tmp_path_factory.mktemp("run")
    raw = {**TINY, "train": {**TINY["train"], "out_dir": str(run)}}
    trainer = Trainer.from_config(config_from_dict(raw), print_fn=lambda line: None)
    trainer.fit()
    trainer.pipeline.eval()
    return trainer


@pytest.fixture(scope="module")
def checkpoint(trained: Trainer) -> Path:
    path = trained.out_dir / "checkpoints" / "final.pt"
    assert path.is_file()
    return path


def test_round_trip_gives_identical_features(trained: Trainer, checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "encoder.safetensors"
    info = export_checkpoint(checkpoint, out)
    assert (info.view_channels, info.view_encoder, info.feature_dims, info.step) == ((1, 2), (0, 1), (8, 8), 2)

    encoders = load_encoder(out)
    assert len(encoders) == 2 and not encoders.training
    pipeline = trained.pipeline
    batch = torch.utils.data.default_collate([pipeline.dataset[i] for i in range(8)])
    views = pipeline.make_views(pipeline.prepare_batch(batch), augment=False)
    with torch.no_grad():
        loaded = torch.cat([encoder(view) for encoder, view in zip(encoders, views)], dim=1)
        single = load_encoder(out, view=1)(views[1])
    assert torch.equal(loaded, pipeline.features(batch))
    assert torch.equal(single, loaded[:, 8:])


def test_export_holds_encoder_weights_keyed_as_in_the_pipeline_and_the_recipe(
    trained: Trainer, checkpoint: Path, tmp_path: Path
) -> None:
    out = tmp_path / "encoder.safetensors"
    export_checkpoint(checkpoint, out)
    expected = trained.pipeline.encoders.state_dict()
    with safe_open(str(out), framework="pt") as fh:
        assert set(fh.keys()) == set(expected)
        for key in expected:
            assert torch.equal(fh.get_tensor(key), expected[key].cpu()), key
        assert fh.metadata()["format"] == EXPORT_FORMAT
    info = read_export(out)
    assert info.config == read_checkpoint(checkpoint)["config"]
    assert info.config["encoder"] == {"name": "convnet", "width": 4, "depth": 2}


def test_export_from_a_live_pipeline_matches_the_checkpoint_export(
    trained: Trainer, checkpoint: Path, tmp_path: Path
) -> None:
    live, saved = tmp_path / "live.safetensors", tmp_path / "saved.safetensors"
    export_encoders(trained.pipeline, live, step=2)
    export_checkpoint(checkpoint, saved)
    assert read_export(live) == read_export(saved)
    a, b = load_encoder(live), load_encoder(saved)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_checkpoint_errors_are_one_line(trained: Trainer, checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(ContrastkitError, match=r"missing\.pt: checkpoint not found; train first or pass --checkpoint$"):
        export_checkpoint(tmp_path / "missing.pt", tmp_path / "x.safetensors")

    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ContrastkitError, match=r"garbage\.pt: not a torch checkpoint file"):
        read_checkpoint(garbage)

    payload = read_checkpoint(checkpoint)
    no_recipe = tmp_path / "no-recipe.pt"
    save_checkpoint(no_recipe, {**payload, "config": None})
    with pytest.raises(ContrastkitError, match="has no recipe"):
        export_checkpoint(no_recipe, tmp_path / "x.safetensors")

    wider = tmp_path / "wider.pt"  # the recipe says width 8, the weights are width 4
    config = {**payload["config"], "encoder": {"name": "convnet", "width": 8, "depth": 2}}
    save_checkpoint(wider, {**payload, "config": config})
    with pytest.raises(ContrastkitError, match="weights do not fit the recipe's encoders"):
        export_checkpoint(wider, tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


def test_load_encoder_errors(checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(ContrastkitError, match="file not found"):
        load_encoder(tmp_path / "none.safetensors")
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(ContrastkitError, match="not a contrastkit encoder export"):
        load_encoder(foreign)
    out = tmp_path / "encoder.safetensors"
    export_checkpoint(checkpoint, out)
    with pytest.raises(InvalidParameter, match="view: must be between 0 and 1"):
        load_encoder(out, view=2)


def features_through(encoders: torch.nn.Module, pipeline: Pipeline, n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """(loaded encoders' features, the pipeline's own features) of the first ``n`` samples."""
    batch = torch.utils.data.default_collate([pipeline.dataset[i] for i in range(n)])
    views = pipeline.make_views(pipeline.prepare_batch(batch), augment=False)
    with torch.no_grad():
        return torch.cat([encoder(view) for encoder, view in zip(encoders, views)], dim=1), pipeline.features(batch)


COPIES = {"data": {"size": 8}, "views": {"name": "augmented-copies"}}
LAYOUTS = {
    "per-view": ({**COPIES, "encoder": [{"name": "convnet", "width": 4, "depth": 1},
                                        {"name": "convnet", "width": 2, "depth": 2}]}, (0, 1), (4, 4)),
    "shared": ({**COPIES, "encoder": {"name": "convnet", "width": 4, "depth": 1, "shared": True}}, (0, 0), (4, 4)),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_per_view_and_shared_encoders_round_trip(layout: str, tmp_path: Path) -> None:
    raw, view_encoder, feature_dims = LAYOUTS[layout]
    config = config_from_dict(raw)
    torch.manual_seed(0)
    pipeline = Pipeline.from_config(config).eval()
    checkpoint = tmp_path / "c.pt"
    save_checkpoint(checkpoint, {"model": pipeline.state_dict(), "config": config.as_dict(), "step": 0})
    outputs: dict[str, Any] = {}
    for source in ("live", "checkpoint"):
        out = tmp_path / f"{source}.safetensors"
        info = export_encoders(pipeline, out) if source == "live" else export_checkpoint(checkpoint, out)
        assert (info.view_encoder, info.feature_dims) == (view_encoder, feature_dims)
        encoders = load_encoder(out)
        assert len(encoders) == 2 and (encoders[0] is encoders[1]) == (layout == "shared")
        loaded, expected = features_through(encoders, pipeline)
        assert torch.equal(loaded, expected)
        outputs[source] = loaded
    assert torch.equal(outputs["live"], outputs["checkpoint"])

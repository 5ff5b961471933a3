"""``[[stages]]`` recipes (InfoMin's two stages) and learned-flow's semi-supervised term, end to end on CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from contrastkit.cli import main
from contrastkit.config import config_from_dict, stages_from_dict
from contrastkit.errors import ConfigError, InvalidParameter
from contrastkit.pipeline import Pipeline
from contrastkit.training import StagedTrainer, Trainer
from contrastkit.training.checkpoint import load_checkpoint
from contrastkit.training.reporting import log_learned_views
from contrastkit.views.learned_flow import LearnedFlowViews, labelled_mask


def _recipe(out_dir: Path, *, stage2_steps: int = 2, **views: Any) -> dict[str, Any]:
    return {
        "data": {"name": "colorful-moving-digits", "size": 32},
        "views": {"name": "learned-flow", "num_layers": 1, "hidden": 4, **views},
        "encoder": {"name": "convnet", "width": 4, "depth": 2},
        "train": {"max_steps": 2, "batch_size": 8, "device": "cpu", "out_dir": str(out_dir), "lr": 0.01,
                  "checkpoint_every_n_steps": 1},
        "eval": {"knn": False},
        "log": {"progress": False, "tensorboard": False},
        "stages": [
            {"name": "views", "set": {"views.mode": "adversarial"}},
            {"name": "contrast", "set": {"views.mode": "frozen", "train.max_steps": stage2_steps},
             "carry": ["view_maker"]},
        ],
    }


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _sub(model: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) + 1 :]: v for k, v in model.items() if k.startswith(prefix + ".")}


def _equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_stage_two_gets_stage_one_generator_frozen_and_fresh_encoders(tmp_path: Path) -> None:
    stages = stages_from_dict(_recipe(tmp_path, supervised_label="background", num_classes=10))
    staged = StagedTrainer(stages, print_fn=lambda _: None)
    second = staged.trainers[1].pipeline
    encoders_at_start = _state(second.encoders)
    fresh = Trainer.from_config(stages[1].config, print_fn=lambda _: None).pipeline  # a fresh init with the seed
    assert _equal(encoders_at_start, _state(fresh.encoders))

    results = staged.fit()

    assert [r.checkpoint for r in results] == [tmp_path / "views/checkpoints/final.pt",
                                               tmp_path / "contrast/checkpoints/final.pt"]
    stage1 = load_checkpoint(results[0].checkpoint)["model"]
    stage2 = load_checkpoint(results[1].checkpoint)["model"]
    g1 = _sub(stage1, "view_maker")
    assert not _equal(g1, _state(fresh.view_maker)), "stage 1 did not train g"
    assert _equal(g1, _state(second.view_maker)), "stage 2 does not use stage 1's g"
    assert _equal(g1, _sub(stage2, "view_maker")), "g changed during stage 2"
    assert not any(p.requires_grad for p in second.view_maker.parameters())
    # fresh encoders: stage 2 started from the seed's init, not from stage 1's trained encoders
    assert not _equal(_sub(stage1, "encoders"), encoders_at_start)
    assert not _equal(_sub(stage2, "encoders"), encoders_at_start), "stage 2 did not train its encoders"
    assert (tmp_path / "views/checkpoints").is_dir() and (tmp_path / "contrast/checkpoints").is_dir()
    assert load_checkpoint(results[1].checkpoint)["config"]["views"]["mode"] == "frozen"


def test_resume_skips_the_finished_stage_and_resumes_the_interrupted_one(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, stage2_steps=3)
    StagedTrainer(stages_from_dict(recipe), print_fn=lambda _: None).fit()
    stage1_final = tmp_path / "views/checkpoints/final.pt"
    written = stage1_final.stat().st_mtime_ns
    folder = tmp_path / "contrast/checkpoints"
    for path in folder.iterdir():  # stage 2 "interrupted" after its first step
        if path.name != "step-00000001.pt":
            path.unlink()
    lines: list[str] = []
    results = StagedTrainer(stages_from_dict(recipe), print_fn=lines.append).fit(resume=True)
    assert any("views" in line and "skipped" in line for line in lines), lines
    assert stage1_final.stat().st_mtime_ns == written
    assert results[1].resumed_from == folder / "step-00000001.pt"
    assert results[1].steps == 3


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        ({"name": "b", "set": {"train.epoch": 3}}, 'stages[1].set."train.epoch": unknown key; did you mean \'epochs\'?'),
        ({"name": "b", "set": {"train.lr": -1.0}}, 'stages[1].set."train.lr": must be > 0 (got -1.0)'),
        ({"name": "b", "set": {"train": {"batch_size": "x"}}}, 'stages[1].set."train.batch_size": expected an integer'),
        ({"name": "b", "sett": {}}, "stages[1].sett: unknown key; did you mean 'set'?"),
        ({"name": "a"}, "stages[1].name: two stages are named 'a'"),
        ({"name": "b", "set": {"train.out_dir": "x"}}, 'stages[1].set."train.out_dir": a stage cannot set this'),
    ],
)
def test_bad_stage_keys_are_one_line_errors_naming_stage_and_key(stage: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({"stages": [{"name": "a"}, stage]}, path="r.toml")
    text = str(info.value)
    assert text.startswith("r.toml: " + message) and "\n" not in text, text


def test_bad_plugin_value_and_carry_name_the_stage(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path)
    recipe["stages"][1]["set"]["views.mode"] = "thawed"
    with pytest.raises(ConfigError, match=r"stages\[1\] \(contrast\): views.*mode"):
        StagedTrainer(stages_from_dict(recipe), print_fn=lambda _: None)
    recipe = _recipe(tmp_path)
    recipe["stages"][1]["carry"] = ["generator"]
    with pytest.raises(ConfigError, match=r"stages\[1\]\.carry: the pipeline has no module 'generator'"):
        StagedTrainer(stages_from_dict(recipe), print_fn=lambda _: None)


def test_command_line_set_wins_over_stage_set_and_probes_run_after_the_last_stage(tmp_path: Path) -> None:
    stages = stages_from_dict(_recipe(tmp_path, stage2_steps=7), ["train.max_steps=3", "eval.knn=true"])
    assert [s.config.train.max_steps for s in stages] == [3, 3]
    assert [s.config.views.params["mode"] for s in stages] == ["adversarial", "frozen"]
    plain = stages_from_dict({**_recipe(tmp_path), "eval": {"knn": True, "linear": True}})
    assert [(s.config.eval.knn, s.config.eval.linear) for s in plain] == [(False, False), (True, True)]
    assert stages_from_dict({"train": {"max_steps": 2}}) == []  # no stages: the recipe as before


def test_cli_dry_run_describes_every_stage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = tmp_path / "two.toml"
    recipe.write_text(
        '[data]\nsize = 32\n[views]\nname = "learned-flow"\nnum_layers = 1\nhidden = 4\n'
        '[encoder]\nwidth = 4\ndepth = 2\n[train]\nbatch_size = 8\ndevice = "cpu"\n'
        f'out_dir = "{tmp_path / "runs"}"\n'
        '[[stages]]\nname = "views"\n[[stages]]\nname = "contrast"\nset = { "views.mode" = "frozen" }\n'
        'carry = ["view_maker"]\n'
    )
    assert main(["train", str(recipe), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "== stage 1/2 views" in out and "== stage 2/2 contrast" in out
    assert "carry        view_maker" in out and out.count("dry run ok") == 2
    assert not (tmp_path / "runs").exists()


# -- semi-supervised learned views ----------------------------------------------------------------
def _toy_batch(size: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (size,), generator=generator)
    # the label is the image's dominant colour channel: something the views can keep or lose
    images = 0.2 * torch.rand(size, 3, 8, 8, generator=generator)
    images[torch.arange(size), labels] += 0.7
    return {"image": images, "index": torch.arange(size), "digit": labels}


def _supervised_pipeline(weight: float = 1.0, fraction: float = 1.0) -> Pipeline:
    torch.manual_seed(0)
    views = {"name": "learned-flow", "num_layers": 1, "hidden": 4, "supervised_label": "digit", "num_classes": 3,
             "classifier_width": 4, "supervised_weight": weight, "labelled_fraction": fraction}
    return Pipeline(views=views, encoder={"name": "convnet", "width": 4, "depth": 2}, dataset_size=16)


def test_semi_supervised_term_is_added_unreversed_and_lowers_the_cross_entropy() -> None:
    batch = _toy_batch()
    with_term, without = _supervised_pipeline(1.0), _supervised_pipeline(0.0)
    without.load_state_dict(with_term.state_dict())
    out = with_term(batch)
    aux = out.metrics["view_maker/classification"]
    contrastive = out.metrics["loss/v1-v2"]
    assert torch.allclose(out.loss, contrastive + aux) and float(aux) > 0
    flow = list(with_term.view_maker.flow.parameters())
    grad_total = torch.autograd.grad(out.loss, flow, allow_unused=True)
    grad_contrast = torch.autograd.grad(without(batch).loss, list(without.view_maker.flow.parameters()), allow_unused=True)
    # the CE's own gradient, taken on the views directly (no reversal): g *minimises* it
    maker = with_term.view_maker
    views = maker(with_term.prepare_batch(batch), lambda x, view: x)
    grad_ce = torch.autograd.grad(maker.classifiers(views, batch["digit"]), flow, allow_unused=True)
    for total, contrast, ce in zip(grad_total, grad_contrast, grad_ce):
        if ce is not None:
            assert torch.allclose(total - (contrast if contrast is not None else 0), ce, atol=1e-5)
    assert any(ce is not None and ce.abs().sum() > 0 for ce in grad_ce)

    optimizer = torch.optim.Adam(maker.parameters(), lr=0.01)  # the trainer's view-maker optimizer: g, c1, c2
    first = float(aux)
    for _ in range(15):
        optimizer.zero_grad()
        with_term(batch).loss.backward()
        optimizer.step()
    assert float(with_term(batch).metrics["view_maker/classification"]) < 0.8 * first
    with_term.eval()
    assert "view_maker/classification" not in with_term(batch).metrics  # training mode only


def _cross_entropy_reference(logits: list[torch.Tensor], labels: torch.Tensor, labelled: torch.Tensor) -> float:
    total = 0.0
    count = max(int(labelled.sum()), 1)
    for z in logits:
        z = z.double()
        log_probs = z - torch.log(torch.exp(z - z.max(1, keepdim=True).values).sum(1, keepdim=True)) - z.max(1, keepdim=True).values
        total += float(-(log_probs[torch.arange(len(labels)), labels] * labelled).sum().detach()) / count
    return total


def test_labelled_fraction_masks_the_expected_share_of_samples() -> None:
    index = torch.arange(10_000)
    for fraction in (0.05, 0.3, 0.5):
        assert abs(int(labelled_mask(index, fraction).sum()) - fraction * 10_000) <= 10
    order = torch.randperm(10_000, generator=torch.Generator().manual_seed(1))
    assert torch.equal(labelled_mask(order, 0.3), labelled_mask(index, 0.3)[order])  # a property of the sample
    window = labelled_mask(torch.arange(5_000, 5_128), 0.25)
    assert 24 <= int(window.sum()) <= 40  # mixed within a batch, not one labelled block

    maker = LearnedFlowViews(num_layers=1, hidden=4, supervised_label="digit", num_classes=3, classifier_width=4,
                             labelled_fraction=0.5)
    batch = _toy_batch()
    views = maker(batch, lambda x, view: x)
    labelled = labelled_mask(batch["index"], 0.5)
    assert 0 < int(labelled.sum()) < len(labelled)
    expected = _cross_entropy_reference(maker.classifiers.logits(views), batch["digit"], labelled.double())
    assert float(maker.auxiliary_loss(batch, views).detach()) == pytest.approx(expected, rel=1e-5)
    frozen = LearnedFlowViews(num_layers=1, hidden=4, supervised_label="digit", num_classes=3, mode="frozen")
    assert frozen.auxiliary_loss(batch, views) is None and frozen.required_keys == ()


def test_missing_label_and_num_classes_fail_before_training(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, supervised_label="colour", num_classes=10)
    with pytest.raises(ConfigError, match=r"stages\[0\] \(views\): views: .*'colour'.*supervised_label"):
        StagedTrainer(stages_from_dict(recipe), print_fn=lambda _: None)
    assert not (tmp_path / "views").exists()
    with pytest.raises(ConfigError, match=r"views.*'colour'"):
        Trainer.from_config(stages_from_dict(recipe)[0].config, print_fn=lambda _: None)
    with pytest.raises(InvalidParameter, match="num_classes"):
        LearnedFlowViews(supervised_label="digit")
    with pytest.raises(InvalidParameter, match="labelled_fraction"):
        LearnedFlowViews(supervised_label="digit", num_classes=10, labelled_fraction=0.0)


class _Writer:
    def __init__(self) -> None:
        self.images: dict[str, torch.Tensor] = {}

    def add_images(self, tag: str, images: torch.Tensor, step: int) -> None:
        self.images[tag] = images


def test_learned_views_are_logged_as_displayable_images() -> None:
    pipeline = _supervised_pipeline()
    writer = _Writer()
    batch = {"image": (torch.rand(4, 3, 8, 8) * 255).to(torch.uint8)}
    log_learned_views(writer, pipeline, batch, step=1)
    assert sorted(writer.images) == ["learned_views/input", "learned_views/v1", "learned_views/v2"]
    for images in writer.images.values():
        assert images.shape == (4, 3, 8, 8) and float(images.min()) >= 0 and float(images.max()) <= 1
    expected = pipeline.view_maker.learned_views_for_display(batch["image"].float() / 255)
    assert torch.allclose(writer.images["learned_views/v2"], expected[1])
    plain = _Writer()
    log_learned_views(plain, Pipeline(encoder={"name": "convnet", "width": 4}), batch, step=1)
    assert plain.images == {}


def test_num_classes_below_the_label_range_is_refused_before_training() -> None:
    from contrastkit.config import config_from_dict
    from contrastkit.errors import ConfigError
    from contrastkit.training import Trainer

    raw = {
        "data": {"name": "colorful-moving-digits", "size": 32, "image_size": 16, "digit_size": 8},
        "views": {"name": "learned-flow", "num_layers": 1, "hidden": 4, "supervised_label": "digit", "num_classes": 3},
        "encoder": {"name": "convnet", "width": 4, "depth": 2},
        "train": {"device": "cpu", "batch_size": 8, "max_steps": 1},
        "log": {"progress": False, "tensorboard": False},
    }
    with pytest.raises(ConfigError, match=r"views\.num_classes: label 'digit' has values up to \d; set num_classes >= \d+ \(got 3\)"):
        Trainer.from_config(config_from_dict(raw), print_fn=lambda _: None)
    raw["views"]["supervised_label"] = "position"
    raw["views"]["num_classes"] = 10
    with pytest.raises(ConfigError, match=r"views\.supervised_label: 'position' is a continuous label"):
        Trainer.from_config(config_from_dict(raw), print_fn=lambda _: None)

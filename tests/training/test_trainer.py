"""The trainer: resume to the bit, kill-safety, the NaN guard, optimizers, precision and logging."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from contrastkit.config import config_from_dict
from contrastkit.errors import CheckpointError, ConfigError, TrainingError
from contrastkit.optim import LARS, param_groups
from contrastkit.pipeline import Pipeline
from contrastkit.training import Trainer
from contrastkit.training import checkpoint as checkpoint_module
from contrastkit.training.checkpoint import CheckpointDir, load_checkpoint
from contrastkit.training.samplers import EpochBatchSampler

REPO = Path(__file__).resolve().parents[1]


def tiny(out_dir: Path, **train: Any) -> dict[str, Any]:
    """A recipe that trains in well under a second per few steps on the CPU."""
    return {
        "data": {"name": "colorful-moving-digits", "size": 96, "image_size": 16, "digit_size": 8},
        "augment": {"name": "crop-flip"},  # device randomness: resume must restore the RNG
        "encoder": {"name": "convnet", "width": 4, "depth": 2},
        "critic": {"name": "cosine", "embedding_dim": 8},
        "train": {"batch_size": 16, "device": "cpu", "out_dir": str(out_dir), "deterministic": True, **train},
        "eval": {"knn": False},
        "log": {"progress": False, "every_n_steps": 2, "images_every_n_steps": 0, "projector_samples": 0},
    }


def trainer_for(raw: dict[str, Any]) -> Trainer:
    return Trainer.from_config(config_from_dict(raw), print_fn=lambda _: None)


def weights(path: Path) -> dict[str, Tensor]:
    return load_checkpoint(path)["model"]


def assert_same_weights(a: dict[str, Tensor], b: dict[str, Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs"


# -- resume ------------------------------------------------------------------------------------
def test_resume_from_a_mid_run_checkpoint_equals_the_uninterrupted_run(tmp_path: Path) -> None:
    # 96 samples / 16 = 6 batches per epoch: 9 steps cross an epoch boundary
    raw = tiny(tmp_path / "a", max_steps=9, checkpoint_every_n_steps=2, keep_checkpoints=10, optimizer="sgd")
    result = trainer_for(raw).fit()
    folder = CheckpointDir(tmp_path / "a" / "checkpoints")
    assert [p.name for p in folder.periodic()] == [f"step-{s:08d}.pt" for s in (2, 4, 6, 8)]
    reference = weights(result.checkpoint)

    for resume_at in (4, 6):  # mid-epoch, and exactly at the epoch end
        run_dir = tmp_path / f"b{resume_at}"
        (run_dir / "checkpoints").mkdir(parents=True)
        source = folder.path / f"step-{resume_at:08d}.pt"
        (run_dir / "checkpoints" / source.name).write_bytes(source.read_bytes())
        resumed = trainer_for({**raw, "train": {**raw["train"], "out_dir": str(run_dir)}}).fit(resume=True)
        assert resumed.resumed_from == run_dir / "checkpoints" / source.name
        assert resumed.steps == 9
        assert_same_weights(weights(resumed.checkpoint), reference)


def test_resume_with_a_changed_recipe_is_refused(tmp_path: Path) -> None:
    raw = tiny(tmp_path, max_steps=2, checkpoint_every_n_steps=1)
    trainer_for(raw).fit()
    (tmp_path / "checkpoints" / "final.pt").unlink()
    changed = {**raw, "train": {**raw["train"], "lr": 0.5}}
    with pytest.raises(ConfigError, match=r"train\.lr: differs from the recipe of checkpoint"):
        trainer_for(changed).fit(resume=True)


def test_resume_without_checkpoints_starts_fresh_and_after_the_end_does_nothing(tmp_path: Path) -> None:
    raw = tiny(tmp_path, max_steps=2)
    first = trainer_for(raw).fit(resume=True)
    assert first.resumed_from is None and first.steps == 2
    again = trainer_for(raw).fit(resume=True)
    assert again.resumed_from == first.checkpoint and again.steps == 2
    assert_same_weights(weights(again.checkpoint), weights(first.checkpoint))


@pytest.mark.timeout(240)
def test_sigkill_mid_run_then_resume_gives_the_uninterrupted_weights(tmp_path: Path) -> None:
    recipe = tmp_path / "run.toml"
    recipe.write_text(
        """
[data]
name = "colorful-moving-digits"
size = 128
image_size = 16
digit_size = 8
[augment]
name = "crop-flip"
[encoder]
name = "convnet"
width = 4
depth = 2
[train]
max_steps = 60
batch_size = 16
device = "cpu"
deterministic = true
checkpoint_every_n_steps = 5
keep_checkpoints = 50
[eval]
knn = false
[log]
every_n_steps = 5
images_every_n_steps = 0
projector_samples = 0
"""
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "contrastkit", "train", str(recipe), "--quiet"]

    killed_dir = tmp_path / "killed"
    proc = subprocess.Popen(
        [*command, "--set", f"train.out_dir='{killed_dir}'"], env=env, cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    checkpoints = killed_dir / "checkpoints"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (checkpoints.is_dir() and any(checkpoints.glob("step-*.pt"))):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (checkpoints / "final.pt").exists(), "the run finished before it could be killed"
    assert not list(checkpoints.glob(".*.tmp")) or True  # a temp file may remain; it is never loaded
    assert CheckpointDir(checkpoints).latest() is not None

    resumed = subprocess.run(
        [*command, "--set", f"train.out_dir='{killed_dir}'", "--resume"], env=env, cwd=tmp_path,
        capture_output=True, text=True,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stdout

    straight_dir = tmp_path / "straight"
    straight = subprocess.run(
        [*command, "--set", f"train.out_dir='{straight_dir}'"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert straight.returncode == 0, straight.stderr
    assert_same_weights(weights(checkpoints / "final.pt"), weights(straight_dir / "checkpoints" / "final.pt"))


# -- kill safety and the NaN guard ---------------------------------------------------------------
def test_a_crash_while_writing_a_checkpoint_leaves_the_previous_one_loadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = tiny(tmp_path, max_steps=4, checkpoint_every_n_steps=2)
    real_save = torch.save
    calls = {"n": 0}

    def failing_save(obj: Any, fh: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # the step-4 checkpoint: write half of it, then die
            real_save(obj, fh)
            fh.truncate(fh.tell() // 2)
            raise OSError("disk full")
        real_save(obj, fh)

    monkeypatch.setattr(checkpoint_module.torch, "save", failing_save)
    with pytest.raises(CheckpointError, match=r"step-00000004\.pt: cannot write: disk full \(no partial file"):
        trainer_for(raw).fit()
    folder = tmp_path / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["step-00000002.pt"]  # no partial or temp file
    assert load_checkpoint(folder / "step-00000002.pt")["step"] == 2


class _NaNAfter(nn.Module):
    """Wraps an objective; returns NaN from the ``bad_call``-th call on."""

    def __init__(self, objective: nn.Module, bad_call: int) -> None:
        super().__init__()
        self.objective, self.bad_call, self.calls = objective, bad_call, 0
        self.two_way = objective.two_way

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        self.calls += 1
        loss = self.objective(logits, target)
        return loss * float("nan") if self.calls >= self.bad_call else loss

    def mi_lower_bound(self, loss: Tensor, num_negatives: int) -> Tensor | None:
        return self.objective.mi_lower_bound(loss, num_negatives)


def test_a_nan_loss_stops_the_run_at_that_step_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    raw = tiny(tmp_path, max_steps=10, checkpoint_every_n_steps=1)
    trainer = trainer_for(raw)
    # two-way InfoNCE calls the objective twice per step: call 5 is in step 3
    trainer.pipeline.objective = _NaNAfter(trainer.pipeline.objective, bad_call=5)
    with pytest.raises(TrainingError, match=r"loss became nan at step 3; stopped \(the last good checkpoint is .*step-00000002\.pt"):
        trainer.fit()
    folder = CheckpointDir(tmp_path / "checkpoints")
    assert folder.latest() == folder.path / "step-00000002.pt"
    state = load_checkpoint(folder.latest())
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


# -- data order ----------------------------------------------------------------------------------
def test_epoch_batch_sampler_depends_only_on_seed_and_epoch() -> None:
    a = EpochBatchSampler(50, batch_size=8, seed=3)
    b = EpochBatchSampler(50, batch_size=8, seed=3)
    assert list(a) == list(b) and len(list(a)) == 6
    flat = [i for batch in a for i in batch]
    assert len(set(flat)) == 48 and all(0 <= i < 50 for i in flat)
    b.set_epoch(1)
    assert list(a) != list(b)
    a.set_epoch(1, start_batch=4)
    assert list(a) == list(b)[4:] and len(a) == 2


# -- optimisation --------------------------------------------------------------------------------
def test_no_weight_decay_on_norms_and_biases() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(2))
    net(torch.rand(1, 3, 5, 5))
    decayed, plain = param_groups(net, weight_decay=0.1)
    assert {id(p) for p in decayed["params"]} == {id(net[0].weight), id(net[3].weight)}
    assert plain["weight_decay"] == 0.0 and plain["lars_adapt"] is False
    assert {id(p) for p in plain["params"]} == {id(net[0].bias), id(net[1].weight), id(net[1].bias), id(net[3].bias)}


def test_lars_matches_its_formula() -> None:
    w = nn.Parameter(torch.tensor([3.0, 4.0]))  # ||w|| = 5
    opt = LARS([w], lr=0.5, momentum=0.0, weight_decay=0.1, trust=0.01)
    w.grad = torch.tensor([0.0, 2.0])
    opt.step()
    g = torch.tensor([0.0, 2.0]) + 0.1 * torch.tensor([3.0, 4.0])
    ratio = 0.01 * 5.0 / torch.linalg.vector_norm(g)
    assert torch.allclose(w.detach(), torch.tensor([3.0, 4.0]) - 0.5 * ratio * g)


@pytest.mark.parametrize("optimizer", ["sgd", "adamw", "lars"])
def test_each_optimizer_trains_with_warmup_cosine_and_clipping(tmp_path: Path, optimizer: str) -> None:
    raw = tiny(tmp_path, max_steps=4, optimizer=optimizer, lr=0.1, warmup_steps=2, grad_clip=1.0, nesterov=True)
    trainer = trainer_for(raw)
    before = {k: v.clone() for k, v in trainer.pipeline.state_dict().items()}
    result = trainer.fit()
    after = trainer.pipeline.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert "grad_norm" in result.final_metrics
    state = load_checkpoint(result.checkpoint)
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.0)  # cosine reaches 0 at the end


def test_gradient_accumulation_steps_once_per_group_of_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = tiny(tmp_path, max_steps=3, accumulate_steps=2)
    trainer = trainer_for(raw)
    forwards = {"n": 0}
    original = trainer.pipeline.forward

    def counting(batch: Any) -> Any:
        forwards["n"] += 1
        return original(batch)

    monkeypatch.setattr(trainer.pipeline, "forward", counting)
    result = trainer.fit()
    assert result.steps == 3 and forwards["n"] == 6
    state = load_checkpoint(result.checkpoint)
    assert (state["epoch"], state["position"]) == (0, 6)  # 6 batches per epoch: exactly one epoch used


def test_bf16_autocast_and_channels_last_on_cpu(tmp_path: Path) -> None:
    raw = tiny(tmp_path, max_steps=2, precision="bf16", channels_last=True)
    trainer = trainer_for(raw)
    result = trainer.fit()
    assert torch.isfinite(torch.tensor(result.final_metrics["loss"]))
    batch = next(iter(trainer.make_loader()))
    views = trainer.pipeline.make_views(trainer.pipeline.prepare_batch(batch))
    assert all(v.is_contiguous(memory_format=torch.channels_last) for v in views)


def test_fp16_on_cpu_is_refused_before_training(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="train.precision: fp16 autocast is for GPUs"):
        trainer_for(tiny(tmp_path, precision="fp16"))


class _LearnedScaleViews(nn.Module):
    """A trainable two-view maker that plays against the encoders (contrast_sign = -1)."""

    contrast_sign = -1.0
    view_channels = (1, 2)

    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(1))

    def forward(self, batch: dict[str, Tensor], augment: Any) -> list[Tensor]:
        image = augment(batch["image"], 0)
        return [image[:, :1] * self.gain, image[:, 1:]]


def test_a_trainable_view_maker_gets_its_own_optimizer_and_ascends_the_loss(tmp_path: Path) -> None:
    raw = tiny(tmp_path, max_steps=1, view_maker_lr=0.05, optimizer="sgd", lr=0.1)
    config = config_from_dict(raw)
    pipeline = Pipeline(
        data=config.data, views=_LearnedScaleViews(), encoder={"name": "convnet", "width": 4, "depth": 2},
        critic={"name": "cosine", "embedding_dim": 8},
    )
    trainer = Trainer(pipeline, train=config.train, eval=config.eval, log=config.log, print_fn=lambda _: None)
    optimizer, view_optimizer = trainer.make_optimizers()
    assert view_optimizer is not None
    assert [id(p) for p in view_optimizer.param_groups[0]["params"]] == [id(pipeline.view_maker.gain)]
    assert all(id(p) != id(pipeline.view_maker.gain) for g in optimizer.param_groups for p in g["params"])
    assert view_optimizer.param_groups[0]["lr"] == 0.05

    # the gradient the view maker receives is the negated loss gradient: its descent ascends the loss
    batch = next(iter(trainer.make_loader()))
    out = pipeline(batch)
    (grad_through_pipeline,) = torch.autograd.grad(out.loss, pipeline.view_maker.gain)
    pipeline.reverse_view_gradient = False
    out = pipeline(batch)
    (loss_gradient,) = torch.autograd.grad(out.loss, pipeline.view_maker.gain)
    assert torch.allclose(grad_through_pipeline, -loss_gradient)


# -- observability -------------------------------------------------------------------------------
def test_tensorboard_gets_view_images_and_the_embedding_projector(tmp_path: Path) -> None:
    raw = tiny(tmp_path, max_steps=4)
    raw["log"] = {"progress": False, "every_n_steps": 2, "images_every_n_steps": 2, "projector_samples": 32}
    trainer_for(raw).fit()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = tmp_path / "tensorboard"
    accumulator = EventAccumulator(str(next(tb.glob("events.out.tfevents.*"))), size_guidance={"images": 0})
    accumulator.Reload()
    assert set(accumulator.Tags()["images"]) >= {"views/v1", "views/v2"}
    assert [e.step for e in accumulator.Images("views/v1")] == [1, 2, 4]
    assert {"data_wait_fraction", "images_per_second", "lr"} <= set(accumulator.Tags()["scalars"])
    projector = (tb / "projector_config.pbtxt").read_text()
    assert "features" in projector and "metadata" in projector
    tensors = next(tb.rglob("tensors.tsv")).read_text().splitlines()
    assert len(tensors) == 32


def test_quiet_mode_prints_no_progress_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trainer_for(tiny(tmp_path, max_steps=2)).fit()
    captured = capsys.readouterr()
    assert "train" not in captured.out and "img/s" not in captured.out + captured.err


def test_progress_bar_shows_loss_rate_and_eta(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rich.progress
    from rich.console import Console

    console = Console(record=True, width=120, force_terminal=True)

    class RecordedProgress(rich.progress.Progress):
        def __init__(self, *columns: Any, **options: Any) -> None:
            super().__init__(*columns, **{**options, "console": console})

    monkeypatch.setattr(rich.progress, "Progress", RecordedProgress)
    raw = tiny(tmp_path, max_steps=2)
    raw["log"] = {**raw["log"], "progress": True}
    trainer_for(raw).fit()
    text = console.export_text()
    assert "2/2" in text and "loss" in text and "img/s" in text


# -- evaluation during training and worker augmentation ----------------------------------------------
def test_online_knn_every_epoch_and_final_linear_probe_reach_tensorboard(tmp_path: Path) -> None:
    raw = tiny(tmp_path, epochs=2)
    raw["eval"] = {"knn": True, "knn_k": 5, "linear": True, "linear_epochs": 5, "knn_every_n_epochs": 1,
                   "labels": ["background", "position"], "max_samples": 64}
    raw["log"] = {"progress": False, "every_n_steps": 2, "images_every_n_steps": 0, "projector_samples": 0}
    result = trainer_for(raw).fit()
    assert [(r.label, r.probe) for r in result.knn] == [
        ("background", "linear"), ("background", "knn"), ("position", "linear"), ("position", "knn")
    ]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(next((tmp_path / "tensorboard").glob("events.out.tfevents.*"))))
    accumulator.Reload()
    steps_per_epoch = 96 // 16
    # online kNN after epoch 1; after the last epoch the final probes stand in for it
    assert [e.step for e in accumulator.Scalars("knn/background_top1")] == [steps_per_epoch, 2 * steps_per_epoch]
    assert [e.step for e in accumulator.Scalars("linear/position_pixel_error")] == [2 * steps_per_epoch]


def test_albumentations_in_loader_workers_trains_and_is_seeded(tmp_path: Path) -> None:
    def run(out: Path) -> dict[str, Tensor]:
        raw = tiny(out, max_steps=3, num_workers=2)
        raw["augment"] = {"name": "albumentations", "recipe": "simclr", "size": 16}
        raw["views"] = {"name": "augmented-copies"}
        raw["encoder"] = {"name": "convnet", "width": 4, "depth": 2, "shared": True}
        trainer = trainer_for(raw)
        assert trainer.pipeline.worker_augmentations[0] is not None
        result = trainer.fit()
        assert result.steps == 3
        return weights(result.checkpoint)

    # Worker-side randomness follows train.seed, whatever the worker scheduling: two runs agree.
    assert_same_weights(run(tmp_path / "a"), run(tmp_path / "b"))

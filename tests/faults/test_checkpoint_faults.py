"""Broken, foreign and non-finite checkpoints under ``train --resume``, ``eval`` and ``export``.

Each fault is one ``error:`` line naming the file and leaves every file as it was; where a valid
checkpoint is left, ``--resume`` and ``eval`` use it and say which newer file they skipped.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from contrastkit.training.checkpoint import load_checkpoint, nonfinite_in_checkpoint, save_checkpoint
from tests.faults.conftest import Outcome, Run, snapshot


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def empty(path: Path) -> None:
    path.write_bytes(b"")


def garbage(path: Path) -> None:
    path.write_text("this is a text file, not a checkpoint\n")


class Foreign:
    """A pickled object of a class only this test defines: the safe loader must refuse it."""


def unsafe(path: Path) -> None:
    torch.save({"model": Foreign()}, path)


def no_model(path: Path) -> None:
    torch.save({"weights": {"w": torch.ones(1)}}, path)


def not_a_dict(path: Path) -> None:
    torch.save([torch.ones(1)], path)


def old_format(path: Path) -> None:
    payload = load_checkpoint(path)
    payload["format"] = 1
    save_checkpoint(path, payload)


def nan_weights(path: Path) -> None:
    payload = load_checkpoint(path)
    name = next(k for k in payload["model"] if k.startswith("encoders.") and k.endswith("weight"))
    payload["model"][name] = torch.full_like(payload["model"][name], float("nan"))
    save_checkpoint(path, payload)


def inf_running_var(path: Path) -> None:
    payload = load_checkpoint(path)
    name = next(k for k in payload["model"] if k.endswith("running_var"))
    payload["model"][name] = torch.full_like(payload["model"][name], float("inf"))
    save_checkpoint(path, payload)


def inf_optimizer_state(path: Path) -> None:
    payload = load_checkpoint(path)
    slot = next(iter(payload["optimizer"]["state"].values()))
    slot["exp_avg_sq"] = torch.full_like(slot["exp_avg_sq"], float("inf"))
    save_checkpoint(path, payload)


BREAKS: dict[str, Callable[[Path], None]] = {
    "truncated": truncate, "empty": empty, "garbage": garbage, "unsafe-pickle": unsafe, "no-model": no_model,
    "not-a-dict": not_a_dict, "old-format": old_format, "nan-weights": nan_weights,
    "inf-batchnorm-stats": inf_running_var, "inf-optimizer-state": inf_optimizer_state,
}
# What the one line must say about each (besides the file's name).
SAYS = {
    "truncated": "truncated or damaged", "empty": "empty file", "garbage": "not a torch checkpoint", "unsafe-pickle": "safe loader",
    "no-model": "not a contrastkit checkpoint", "not-a-dict": "not a contrastkit checkpoint",
    "old-format": "not a resumable checkpoint", "nan-weights": "NaN or inf", "inf-batchnorm-stats": "NaN or inf",
    "inf-optimizer-state": "NaN or inf",
}


@pytest.mark.parametrize("fault", sorted(BREAKS))
def test_resume_skips_a_broken_final_and_continues_from_the_newest_valid(
    fault: str, run: Run, cli: Callable[..., Outcome]
) -> None:
    BREAKS[fault](run.final)
    outcome = cli("train", str(run.recipe), "--quiet", "--resume")
    assert outcome.status == 0, outcome.err
    assert f"resume: skipped {run.final}" in outcome.out and SAYS[fault] in outcome.out
    assert f"resuming from {run.checkpoints / 'step-00000004.pt'} at step 4" in outcome.out
    rewritten = load_checkpoint(run.final)  # final.pt is written again from the valid state
    assert rewritten["step"] == 4 and nonfinite_in_checkpoint(rewritten) is None


@pytest.mark.parametrize("fault", sorted(BREAKS))
def test_resume_with_no_valid_checkpoint_is_one_line_and_changes_nothing(
    fault: str, run: Run, cli: Callable[..., Outcome]
) -> None:
    for path in run.checkpoints.glob("*.pt"):
        BREAKS[fault](path)
    before = snapshot(run.out_dir)
    line = cli("train", str(run.recipe), "--quiet", "--resume").error_line()
    assert "final.pt" in line and SAYS[fault] in line and "no valid checkpoint" in line
    assert snapshot(run.out_dir) == before


@pytest.mark.parametrize("fault", sorted(set(BREAKS) - {"old-format", "inf-optimizer-state"}))
def test_eval_of_a_broken_checkpoint_is_one_line(fault: str, run: Run, cli: Callable[..., Outcome]) -> None:
    BREAKS[fault](run.final)
    before = snapshot(run.out_dir)
    line = cli("eval", str(run.recipe), "--checkpoint", str(run.final)).error_line()
    assert str(run.final) in line and SAYS[fault] in line
    assert snapshot(run.out_dir) == before


@pytest.mark.parametrize("fault", sorted(set(BREAKS) - {"old-format", "inf-batchnorm-stats", "inf-optimizer-state"}))
def test_export_of_a_broken_checkpoint_is_one_line_and_writes_nothing(
    fault: str, run: Run, cli: Callable[..., Outcome]
) -> None:
    BREAKS[fault](run.final)
    out = run.out_dir / "encoder.safetensors"
    before = snapshot(run.out_dir)
    line = cli("export", str(run.final), "--out", str(out)).error_line()
    assert str(run.final) in line and SAYS[fault] in line
    assert snapshot(run.out_dir) == before and not out.exists()


def test_eval_without_checkpoint_uses_the_newest_finite_one(run: Run, cli: Callable[..., Outcome]) -> None:
    nan_weights(run.final)
    outcome = cli("eval", str(run.recipe), "--json")
    assert outcome.status == 0, outcome.err
    assert f"skipped {run.final}" in outcome.err
    assert '"checkpoint": "' + str(run.checkpoints / "step-00000004.pt") in outcome.out


def test_resume_of_another_recipe_without_its_config_is_one_line(run: Run, cli: Callable[..., Outcome]) -> None:
    for path in run.checkpoints.glob("*.pt"):  # weights of a wider encoder, recipe not stored
        payload = load_checkpoint(path)
        payload["config"] = None
        payload["model"] = {k: torch.cat([v, v]) if v.ndim else v for k, v in payload["model"].items()}
        save_checkpoint(path, payload)
    before = snapshot(run.out_dir)
    line = cli("train", str(run.recipe), "--quiet", "--resume").error_line()
    assert "final.pt: its weights do not fit this recipe's pipeline" in line and "size mismatch" in line
    assert snapshot(run.out_dir) == before


def test_resume_with_a_changed_lr_names_the_key_and_the_way_out(run: Run, cli: Callable[..., Outcome]) -> None:
    before = snapshot(run.out_dir)
    line = cli("train", str(run.recipe), "--quiet", "--resume", "--set", "train.lr=0.0001").error_line()
    assert "train.lr: differs from the recipe of checkpoint" in line and "--allow-change train.lr" in line
    assert snapshot(run.out_dir) == before


def test_allow_change_resumes_with_the_new_learning_rate(run: Run, cli: Callable[..., Outcome]) -> None:
    outcome = cli("train", str(run.recipe), "--quiet", "--resume", "--set", "train.lr=0.0001", "--set",
                  "train.max_steps=6", "--set", "train.schedule=constant", "--allow-change", "train.lr",
                  "--allow-change", "train.schedule")
    assert outcome.status == 0, outcome.err
    assert "resume: train.lr changed from 0.001 to 0.0001 (--allow-change train.lr)" in outcome.out
    assert "optimizer reloaded" in outcome.out
    state = load_checkpoint(run.final)
    assert state["step"] == 6
    assert [g["lr"] for g in state["optimizer"]["param_groups"]] == pytest.approx([1e-4] * len(
        state["optimizer"]["param_groups"]))


def test_an_extended_run_resumes_from_its_newest_periodic_checkpoint(run: Run, cli: Callable[..., Outcome]) -> None:
    first_final = run.final.read_bytes()
    assert cli("train", str(run.recipe), "--quiet", "--resume", "--set", "train.max_steps=6").status == 0
    run.final.write_bytes(first_final)  # as if the extended run was killed after step 6, before its final.pt
    outcome = cli("train", str(run.recipe), "--quiet", "--resume", "--set", "train.max_steps=8")
    assert outcome.status == 0, outcome.err
    assert f"resuming from {run.checkpoints / 'step-00000006.pt'} at step 6" in outcome.out
    assert load_checkpoint(run.final)["step"] == 8


def test_a_stale_temp_file_of_a_killed_save_is_removed(run: Run, cli: Callable[..., Outcome]) -> None:
    stale = run.checkpoints / ".step-00000006.pt.k2j4h1.tmp"
    stale.write_bytes(b"half a checkpoint")
    outcome = cli("train", str(run.recipe), "--quiet", "--resume", "--set", "train.max_steps=6")
    assert outcome.status == 0, outcome.err
    assert f"removed {stale}" in outcome.out and not stale.exists()


@pytest.mark.parametrize("target", ["same-file", "folder", "under-a-file"])
def test_export_refuses_a_target_that_would_destroy_or_cannot_hold_it(
    target: str, run: Run, cli: Callable[..., Outcome]
) -> None:
    (run.out_dir / "notes.txt").write_text("keep me")
    out = {"same-file": run.final, "folder": run.checkpoints,
           "under-a-file": run.out_dir / "notes.txt" / "encoder.safetensors"}[target]
    before = snapshot(run.out_dir)
    line = cli("export", str(run.final), "--out", str(out)).error_line()
    assert str(out) in line
    assert snapshot(run.out_dir) == before


def test_a_failed_export_keeps_the_previous_export(run: Run, cli: Callable[..., Outcome]) -> None:
    out = run.out_dir / "encoder.safetensors"
    assert cli("export", str(run.final), "--out", str(out)).status == 0
    previous = out.read_bytes()
    nan_weights(run.final)
    cli("export", str(run.final), "--out", str(out)).error_line()
    assert out.read_bytes() == previous


def test_load_encoder_refuses_an_export_with_nan(run: Run, cli: Callable[..., Outcome]) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from contrastkit.errors import CheckpointError
    from contrastkit.export import load_encoder

    out = run.out_dir / "encoder.safetensors"
    assert cli("export", str(run.final), "--out", str(out)).status == 0
    with safe_open(str(out), framework="pt") as fh:
        meta = fh.metadata()
    weights = load_file(str(out))
    name = next(k for k, v in weights.items() if v.is_floating_point())
    weights[name] = torch.full_like(weights[name], float("inf"))
    save_file(weights, str(out), metadata=meta)
    with pytest.raises(CheckpointError, match="NaN or inf"):
        load_encoder(out)


def test_a_pickle_protocol_file_is_never_unpickled(run: Run, cli: Callable[..., Outcome], tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    evil = run.checkpoints / "final.pt"
    evil.write_bytes(pickle.dumps(Evil(str(marker))))
    cli("eval", str(run.recipe), "--checkpoint", str(evil)).error_line()
    assert not marker.exists(), "loading a checkpoint must not run its code"


class Evil:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (open, (self.path, "w"))

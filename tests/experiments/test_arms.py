"""``contrastkit.experiments.arms``: arms are trained once per seed and recipe, then read back; the random-init probe."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import attrs
import pytest
import torch

from contrastkit.errors import ConfigError, TrainingError
from contrastkit.experiments import learned_views
from contrastkit.experiments.arms import probe_random_init, train_arm, train_arms, train_seed
from contrastkit.experiments.recipes import apply_quick_settings, recipe_toml, set_key
from contrastkit.experiments.records import code_version, started_seconds
from contrastkit.experiments.results import ArmSeeds
from contrastkit.experiments.settings import QUICK_SETTINGS, RunSettings, smoke_run_settings
from contrastkit.pipeline import Pipeline
from contrastkit.training import StagedTrainer, Trainer, TrainResult

#: A recipe that trains in a few seconds (16 px images, a 4-wide conv net, one kNN probe).
TINY = {
    "data": {"name": "colorful-moving-digits", "image_size": 16, "digit_size": 8},
    "encoder": {"name": "convnet", "width": 4, "depth": 2},
    "eval": {"labels": ["background"], "knn": True, "linear": False},
}


def quiet(out_dir: Path, **kwargs: Any) -> RunSettings:
    return RunSettings(out_dir=out_dir, device="cpu", print_fn=lambda message: None, **kwargs)


def expected_text(recipe: dict[str, Any], settings: RunSettings, name: str, *, seed: int = 0,
                  random_init: bool = False) -> str:
    """The recipe.toml ``train_arm`` (or ``probe_random_init``) writes, built here from its documented edits."""
    raw = copy.deepcopy(recipe)
    if random_init:
        raw.pop("stages", None)
    if settings.quick:
        apply_quick_settings(raw)
    set_key(raw, "train.seed", seed)
    set_key(raw, "train.out_dir", settings.arm_dir(name, seed).as_posix())
    set_key(raw, "train.device", settings.device)
    set_key(raw, "log.progress", False)
    return recipe_toml(raw)


def fake_train_result(steps: int, probes: dict[str, float], loss: float = 1.5) -> TrainResult:
    knn = [SimpleNamespace(probe=key.split("/")[0], label=key.split("/")[1], value=value) for key, value in probes.items()]
    return TrainResult(steps=steps, seconds=0.0, images_per_second=0.0, final_metrics={"loss": loss},
                       checkpoint=Path("final.pt"), tensorboard_dir=None, knn=knn)


def test_train_arm_trains_once_then_reuses_the_saved_arm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fits: list[int] = []
    real_fit = Trainer.fit

    def counting_fit(self: Trainer, **kwargs: Any) -> TrainResult:
        fits.append(self.train_cfg.max_steps)
        return real_fit(self, **kwargs)

    monkeypatch.setattr(Trainer, "fit", counting_fit)
    settings = quiet(tmp_path, quick=True)
    first = train_arm("tiny", TINY, settings).runs[0]
    assert fits == [QUICK_SETTINGS["train.max_steps"]] and first.steps == 2
    assert sorted(first.probes) == ["knn/background"] and 0 <= first.probes["knn/background"] <= 100
    folder = tmp_path / "tiny" / "seed=0"
    assert (folder / "recipe.toml").read_text() == expected_text(TINY, settings, "tiny")
    assert json.loads((folder / "arm.json").read_text()) == first.as_dict()
    assert first.code == code_version() and first.seed == 0
    assert (folder / "checkpoints").is_dir()  # it ran in the arm's folder

    again = train_arm("tiny", TINY, settings).runs[0]
    assert fits == [2]  # not retrained
    assert again == first and again.seconds == first.seconds


def test_fresh_or_a_changed_recipe_retrains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fits: list[int] = []

    def fake_fit(self: Trainer, **kwargs: Any) -> TrainResult:
        fits.append(1)
        return fake_train_result(len(fits), {"knn/background": 10.0 * len(fits)})

    monkeypatch.setattr(Trainer, "fit", fake_fit)
    settings = quiet(tmp_path, quick=True)
    folder = tmp_path / "tiny" / "seed=0"

    def probes(arm: ArmSeeds) -> dict[str, float]:
        return arm.runs[0].probes

    assert probes(train_arm("tiny", TINY, settings)) == {"knn/background": 10.0}
    assert probes(train_arm("tiny", TINY, settings)) == {"knn/background": 10.0} and len(fits) == 1

    fresh = train_arm("tiny", TINY, quiet(tmp_path, quick=True, fresh=True))
    assert len(fits) == 2 and probes(fresh) == {"knn/background": 20.0} and fresh.steps == 2
    assert json.loads((folder / "arm.json").read_text())["probes"] == {"knn/background": 20.0}

    wider = copy.deepcopy(TINY)
    wider["encoder"]["width"] = 6
    changed = train_arm("tiny", wider, settings)
    assert len(fits) == 3 and probes(changed) == {"knn/background": 30.0}
    assert "width = 6" in (folder / "recipe.toml").read_text()
    assert probes(train_arm("tiny", wider, settings)) == {"knn/background": 30.0} and len(fits) == 3

    # the full (not quick) recipe is another recipe too
    train_arm("tiny", wider, quiet(tmp_path))
    assert len(fits) == 4
    # a lost arm.json is retrained even though recipe.toml matches
    (folder / "arm.json").unlink()
    train_arm("tiny", wider, quiet(tmp_path))
    assert len(fits) == 5
    # another seed is another run, in its own folder; the seed already trained is reused
    both = train_arm("tiny", wider, quiet(tmp_path, seeds=(0, 1)))
    assert len(fits) == 6 and both.seeds == (0, 1) and (tmp_path / "tiny" / "seed=1" / "arm.json").is_file()
    assert "seed = 1" in (tmp_path / "tiny" / "seed=1" / "recipe.toml").read_text()


def test_the_cache_refuses_a_result_trained_by_other_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fits: list[int] = []

    def fake_fit(self: Trainer, **kwargs: Any) -> TrainResult:
        fits.append(1)
        return fake_train_result(2, {"knn/background": 10.0 * len(fits)})

    monkeypatch.setattr(Trainer, "fit", fake_fit)
    settings = quiet(tmp_path, quick=True)
    record = tmp_path / "tiny" / "seed=0" / "arm.json"
    train_arm("tiny", TINY, settings)
    saved = json.loads(record.read_text())
    assert saved["code"] == code_version() and len(fits) == 1
    for other in ({**saved, "code": "0123456789abcdef"}, {k: v for k, v in saved.items() if k != "code"}):
        record.write_text(json.dumps(other))  # the same recipe and seed, trained by other (or unknown) code
        again = train_arm("tiny", TINY, settings)
        assert again.runs[0].probes == {"knn/background": 10.0 * len(fits)} and again.runs[0].code == code_version()
    assert len(fits) == 3
    record.write_text('{"name": "tiny", "pro')  # a record cut short by a kill
    train_arm("tiny", TINY, settings)
    assert len(fits) == 4


def test_a_staged_arm_sums_its_stages_steps_and_keeps_the_last_stages_probes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []

    def fake_staged_fit(self: StagedTrainer, **kwargs: Any) -> list[TrainResult]:
        calls.append([stage.name for stage in self.stages])
        return [fake_train_result(3, {"knn/background": 11.0}), fake_train_result(4, {"linear/background": 55.0})]

    monkeypatch.setattr(StagedTrainer, "fit", fake_staged_fit)
    recipe = learned_views.learned_recipe(supervised=True)
    recipe["data"] |= {"image_size": 16, "digit_size": 8}
    recipe["encoder"] = {"name": "convnet", "width": 4, "depth": 2}
    settings = quiet(tmp_path, quick=True)
    arm = train_arm("learned", recipe, settings).runs[0]
    assert calls == [["views", "contrast"]]
    assert arm.steps == 7 and arm.probes == {"linear/background": 55.0} and arm.final_metrics == {"loss": 1.5}
    assert (tmp_path / "learned" / "seed=0" / "recipe.toml").read_text() == expected_text(recipe, settings, "learned")
    assert train_arm("learned", recipe, settings).runs[0] == arm and len(calls) == 1


def test_probe_random_init_is_seeded_drops_stages_and_is_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import contrastkit.evaluation

    seen: list[dict[str, Any]] = []

    def fake_evaluate(pipeline: Pipeline, *args: Any, **kwargs: Any) -> list[Any]:
        first_weight = next(p for p in pipeline.parameters() if p.dim() > 1)
        seen.append({**kwargs, "weight": first_weight.detach().clone()})
        return [SimpleNamespace(probe="knn", label="background", value=42.0)]

    monkeypatch.setattr(contrastkit.evaluation, "evaluate", fake_evaluate)
    recipe = {**copy.deepcopy(TINY), "train": {"seed": 99},
              "stages": [{"name": "views", "set": {"views.mode": "adversarial"}}]}
    settings = quiet(tmp_path / "a", quick=True, seeds=(3,))
    arm = probe_random_init("random-init", recipe, settings)
    assert arm.steps == 0 and arm.runs[0].probes == {"knn/background": 42.0} and arm.seeds == (3,)
    text = (tmp_path / "a" / "random-init" / "seed=3" / "recipe.toml").read_text()
    assert text == expected_text(recipe, settings, "random-init", seed=3, random_init=True)
    assert "[[stages]]" not in text
    assert seen[0]["labels"] == ["background"] and seen[0]["max_samples"] == QUICK_SETTINGS["eval.max_samples"]
    assert seen[0]["seed"] == 3

    assert probe_random_init("random-init", recipe, settings) == arm and len(seen) == 1  # cached
    probe_random_init("random-init", recipe, quiet(tmp_path / "b", quick=True, seeds=(3,)))  # another folder
    torch.testing.assert_close(seen[1]["weight"], seen[0]["weight"], rtol=0, atol=0)
    probe_random_init("random-init", recipe, quiet(tmp_path / "c", quick=True, seeds=(4,)))
    assert not torch.equal(seen[2]["weight"], seen[0]["weight"])


# -- train_arms: several arms, --jobs runs at a time --------------------------------------------


def test_parallel_jobs_write_the_records_one_process_reads_back(tmp_path: Path) -> None:
    """Runs trained by ``--jobs 2`` workers are the cached records a one-process rerun reuses (not retrains)."""
    settings = smoke_run_settings(tmp_path, seeds=(0, 1), jobs=2)
    arms = train_arms({"a": TINY, "b": {**TINY, "encoder": {"name": "convnet", "width": 2, "depth": 2}}}, settings)
    assert list(arms) == ["a", "b"] and all(arm.seeds == (0, 1) for arm in arms.values())
    for name, arm in arms.items():
        for run in arm.runs:
            assert run.name == name and run.steps == 2 and run.code == code_version()
            assert (settings.arm_dir(name, run.seed) / "arm.json").is_file()
    again = train_arms({"a": TINY}, attrs.evolve(settings, jobs=1))
    assert again["a"].runs == arms["a"].runs  # read back: same seconds, same probes


def test_a_failing_worker_run_raises_its_own_error_here(tmp_path: Path) -> None:
    bad = {**TINY, "critic": {"name": "cosine", "temperature": -1.0}}
    with pytest.raises(ConfigError, match=r"critic\.temperature: must be > 0 \(got -1\.0\)"):
        train_arms({"bad": bad}, smoke_run_settings(tmp_path, seeds=(0, 1), jobs=2))


def test_jobs_report_finished_runs_to_any_print_function(tmp_path: Path,
                                                          capfd: pytest.CaptureFixture[str]) -> None:
    """A print_fn that cannot cross into a worker (a lambda, a collector) stays here: the workers are silent
    and each finished run's line reaches it from the parent."""
    said: list[str] = []
    settings = RunSettings(out_dir=tmp_path, quick=True, device="cpu", print_fn=said.append, jobs=2, seeds=(0, 1))
    arms = train_arms({"a": TINY}, settings)
    assert arms["a"].seeds == (0, 1)
    assert sorted(line.split(" 2 steps in ")[0] for line in said) == ["[a seed 0]", "[a seed 1]"]
    assert all("knn/background" in line for line in said)
    assert "[a seed" not in capfd.readouterr().out


def test_jobs_with_print_let_the_workers_print_their_runs(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    settings = RunSettings(out_dir=tmp_path, quick=True, device="cpu", jobs=2, seeds=(0, 1))
    train_arms({"a": TINY}, settings)
    out = capfd.readouterr().out
    assert "[a seed 0] 2 steps in" in out and "[a seed 1] 2 steps in" in out


@pytest.mark.parametrize("jobs", [0, -1, 1.5])
def test_run_settings_refuse_jobs_below_one(tmp_path: Path, jobs: Any) -> None:
    with pytest.raises((ValueError, TypeError), match="jobs"):
        RunSettings(out_dir=tmp_path, jobs=jobs)


#: TINY trained for 6 real steps with a checkpoint every 2 (not shrunk by ``quick``): room to interrupt it.
RESUMABLE = {
    **TINY,
    "data": {**TINY["data"], "size": 256},
    "train": {"batch_size": 32, "max_steps": 6, "warmup_steps": 0, "checkpoint_every_n_steps": 2},
    "eval": {**TINY["eval"], "max_samples": 96, "knn_k": 5},
}


def interrupt_at_step(monkeypatch: pytest.MonkeyPatch, stop: int) -> None:
    """Ctrl-C right after step ``stop`` (its periodic checkpoint, if due, is written first)."""
    after_step = Trainer._after_step

    def interrupted(self: Trainer, run: Any, *args: Any, **kwargs: Any) -> None:
        after_step(self, run, *args, **kwargs)
        if run.step == stop:
            raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_after_step", interrupted)


def test_an_interrupted_seed_resumes_from_its_checkpoint_and_counts_its_time(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    reference = train_seed("a", RESUMABLE, quiet(tmp_path / "reference"), seed=0)
    said: list[str] = []
    settings = RunSettings(out_dir=tmp_path / "run", device="cpu", print_fn=said.append)
    folder = settings.arm_dir("a", 0)
    interrupt_at_step(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        train_seed("a", RESUMABLE, settings, seed=0)
    banked = started_seconds(folder)
    assert banked is not None and banked > 0 and not (folder / "arm.json").exists()
    monkeypatch.undo()

    arm = train_seed("a", RESUMABLE, settings, seed=0)
    assert [line for line in said if "resuming from" in line] == [
        f"[a seed 0] resuming from {folder / 'checkpoints' / 'step-00000002.pt'} at step 2 (epoch 1, batch 2)"]
    assert arm.steps == 6 and arm.probes == reference.probes  # as if never interrupted
    assert arm.seconds >= banked and started_seconds(folder) is None


def test_fresh_does_not_resume_an_interrupted_seed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    said: list[str] = []
    settings = RunSettings(out_dir=tmp_path, device="cpu", print_fn=said.append)
    interrupt_at_step(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        train_seed("a", RESUMABLE, settings, seed=0)
    monkeypatch.undo()
    arm = train_seed("a", RESUMABLE, attrs.evolve(settings, fresh=True), seed=0)
    assert arm.steps == 6 and not any("resuming" in line for line in said)


def test_a_killed_worker_is_one_line_naming_the_unfinished_runs(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker killed outright (the out-of-memory killer, kill -9) breaks the pool: one TrainingError line."""
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    from contrastkit.experiments import arms

    class KilledPool:
        def __init__(self, **kwargs: Any) -> None:
            self.calls = 0

        def __enter__(self) -> KilledPool:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def submit(self, fn: Any, name: str, recipe: Any, fields: Any, echo: bool, seed: int) -> Future[Any]:
            future: Future[Any] = Future()
            self.calls += 1
            if self.calls == 1:  # the first run finished before the kill
                future.set_result(arms.train_seed(name, recipe, smoke_run_settings(tmp_path), seed=seed).as_dict())
            else:
                future.set_exception(BrokenProcessPool("A process in the process pool was terminated abruptly"))
            return future

    monkeypatch.setattr(arms, "ProcessPoolExecutor", KilledPool)
    with pytest.raises(TrainingError) as caught:
        train_arms({"a": TINY}, smoke_run_settings(tmp_path, seeds=(0, 1, 2), jobs=2))
    message = str(caught.value)
    assert "\n" not in message and message.startswith("--jobs 2: a worker process ended abruptly")
    assert "with a (seed 1, 2) unfinished;" in message

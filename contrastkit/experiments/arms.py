"""Training an experiment's arms: one seed of a recipe, every seed of it, and the untrained baseline.

:func:`train_seed` trains one seed of an arm in its folder (:meth:`RunSettings.arm_dir`) and
:func:`train_arm` every seed of ``settings.seeds``; :func:`train_arms` every seed of several arms,
``settings.jobs`` runs at a time, each in its own process; :func:`probe_random_init` probes freshly
initialised encoders instead, the baseline of "learned nothing". Each seed's record is cached by
recipe and code (:mod:`contrastkit.experiments.records`), so a rerun trains only what changed.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import attrs

from contrastkit.errors import TrainingError
from contrastkit.experiments.recipes import arm_recipe, recipe_toml
from contrastkit.experiments.records import banking_time, clear_started, code_version, saved_record, write_record
from contrastkit.experiments.results import ArmResult, ArmSeeds
from contrastkit.experiments.settings import RunSettings, discard

__all__ = ["probe_random_init", "train_arm", "train_arms", "train_seed"]


def _probe_dict(results: Sequence[Any]) -> dict[str, float]:
    return {f"{r.probe}/{r.label}": float(r.value) for r in results}


def train_seed(name: str, recipe: Mapping[str, Any], settings: RunSettings, *, seed: int) -> ArmResult:
    """Train one seed of one arm (a recipe, ``[[stages]]`` allowed) in ``settings.arm_dir(name, seed)``.

    The recipe is written to ``recipe.toml`` next to the run; when ``arm.json`` there holds the result
    of the same recipe trained by the same code, it is returned without training (``settings.fresh`` retrains).
    A run of the same recipe by the same code that was interrupted (Ctrl-C, a crash, a kill) resumes from
    its newest checkpoint, as ``contrastkit train --resume`` would.

    Example:
        >>> from contrastkit.experiments.settings import smoke_run_settings
        >>> recipe = {"data": {"name": "colorful-moving-digits", "image_size": 16, "digit_size": 8},
        ...           "encoder": {"name": "convnet", "width": 4, "depth": 2},
        ...           "eval": {"labels": ["background"], "knn": True, "linear": False}}
        >>> s = smoke_run_settings()
        >>> arm = train_seed("tiny", recipe, s, seed=0)
        >>> arm.steps, sorted(arm.probes), arm.code == code_version()
        (2, ['knn/background'], True)
        >>> train_seed("tiny", recipe, s, seed=0).seconds == arm.seconds  # same recipe and code: read back
        True
    """
    from contrastkit.config import config_from_dict, stages_from_dict
    from contrastkit.training import StagedTrainer, Trainer

    raw = arm_recipe(name, recipe, settings, seed=seed)
    folder = settings.arm_dir(name, seed)
    recipe_path, record = folder / "recipe.toml", folder / "arm.json"
    saved = saved_record(folder, recipe_toml(raw), "arm.json", fresh=settings.fresh)
    tag = f"{name} seed {seed}"
    if saved is not None:
        settings.print_fn(f"[{tag}] unchanged recipe and code: reusing {record} (--fresh retrains)")
        return ArmResult(**saved)

    def say(message: str) -> None:
        settings.print_fn(f"[{tag}] {message}")

    # A run this code started and that was interrupted resumes from its newest checkpoint (a fresh
    # folder has none); its record counts the time spent before the interruption too.
    with banking_time(folder) as trained:
        if "stages" in raw:
            stages = stages_from_dict(raw, (), path=str(recipe_path))
            results = StagedTrainer(stages, path=str(recipe_path), print_fn=say).fit(resume=True)
            steps = sum(r.steps for r in results)
            result = results[-1]
        else:
            config = config_from_dict(raw, path=str(recipe_path))
            result = Trainer.from_config(config, path=str(recipe_path), print_fn=say).fit(resume=True)
            steps = result.steps
        seconds = trained()
    arm = ArmResult(
        name=name,
        probes=_probe_dict(result.knn),
        steps=steps,
        seconds=round(seconds, 1),
        final_metrics={k: float(v) for k, v in result.final_metrics.items()},
        run_dir=folder.as_posix(),
        seed=seed,
        code=code_version(),
    )
    write_record(record, arm.as_dict())
    clear_started(folder)
    say(_finished(arm))
    return arm


def _finished(arm: ArmResult) -> str:
    return f"{arm.steps} steps in {arm.seconds:.0f} s; " + ", ".join(f"{k} {v:.2f}" for k, v in arm.probes.items())


def train_arm(name: str, recipe: Mapping[str, Any], settings: RunSettings) -> ArmSeeds:
    """Train (or read back) every seed of ``settings.seeds`` of one arm: :func:`train_seed` per seed.

    Example:
        >>> from contrastkit.experiments.settings import smoke_run_settings
        >>> recipe = {"data": {"name": "colorful-moving-digits", "image_size": 16, "digit_size": 8},
        ...           "encoder": {"name": "convnet", "width": 4, "depth": 2},
        ...           "eval": {"labels": ["background"], "knn": True, "linear": False}}
        >>> arm = train_arm("tiny", recipe, smoke_run_settings(seeds=(0, 1)))
        >>> arm.seeds, arm.probe("knn", "background").n
        ((0, 1), 2)
    """
    return ArmSeeds(name, tuple(train_seed(name, recipe, settings, seed=seed) for seed in settings.seeds))


def _set_worker_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _train_in_worker(name: str, recipe: dict[str, Any], fields: dict[str, Any], echo: bool, seed: int
                     ) -> dict[str, Any]:
    # Plain data both ways: the settings are rebuilt here and the record goes back as a dict.
    settings = RunSettings(**fields, print_fn=print if echo else discard)
    return train_seed(name, recipe, settings, seed=seed).as_dict()


def train_arms(recipes: Mapping[str, Mapping[str, Any]], settings: RunSettings) -> dict[str, ArmSeeds]:
    """Train (or read back) every seed of every arm in ``recipes`` (name -> recipe), ``settings.jobs`` at a time.

    With ``jobs = 1`` the runs go one after another in this process, as :func:`train_arm` per arm.
    With ``jobs > 1`` each run (one seed of one arm) trains in a spawned worker process with
    ``torch.get_num_threads() // jobs`` threads (at least one); ``benchmarks/experiment_jobs.py``
    measures what that buys. The records are the ones :func:`train_seed` writes either way (a
    cached run is read back, not retrained); the numbers can differ in the last digits from a
    one-process run, as any change of thread count reorders floating-point sums. Workers print
    their runs' lines to standard output when ``print_fn`` is ``print``; otherwise they are silent
    and each finished run's line (``[<arm> seed <s>] <steps> steps in ...``) goes to ``print_fn`` from here.
    If a run fails, no further run starts, the ones in flight finish and are saved, and the error
    is raised here as itself; a worker process that dies (killed) raises :class:`TrainingError`
    naming the unfinished runs.

    Example:
        >>> from contrastkit.experiments.settings import smoke_run_settings
        >>> recipe = {"data": {"name": "colorful-moving-digits", "image_size": 16, "digit_size": 8},
        ...           "encoder": {"name": "convnet", "width": 4, "depth": 2},
        ...           "eval": {"labels": ["background"], "knn": True, "linear": False}}
        >>> arms = train_arms({"a": recipe, "b": recipe}, smoke_run_settings(seeds=(0, 1), jobs=2))
        >>> sorted(arms), arms["b"].seeds
        (['a', 'b'], (0, 1))
    """
    if settings.jobs == 1:
        return {name: train_arm(name, recipe, settings) for name, recipe in recipes.items()}
    import torch

    fields = {f.name: getattr(settings, f.name) for f in attrs.fields(RunSettings) if f.name != "print_fn"}
    echo = settings.print_fn is print
    runs = [(name, seed) for name in recipes for seed in settings.seeds]
    pool = ProcessPoolExecutor(max_workers=min(settings.jobs, len(runs)),
                               mp_context=multiprocessing.get_context("spawn"),  # no forked torch threads
                               initializer=_set_worker_threads,
                               initargs=(max(1, torch.get_num_threads() // settings.jobs),))
    with pool:
        futures = {pool.submit(_train_in_worker, run[0], dict(recipes[run[0]]), fields, echo, run[1]): run
                   for run in runs}
        done: dict[tuple[str, int], ArmResult] = {}
        try:
            for future in as_completed(futures):
                arm = done[futures[future]] = ArmResult(**future.result())
                if not echo:  # the worker was silent: its run is reported here, as it finishes
                    settings.print_fn(f"[{arm.name} seed {arm.seed}] {_finished(arm)}")
        except BrokenProcessPool:
            # Every future is settled once the pool breaks; some may hold results not yet read above.
            finished = {run for future, run in futures.items()
                        if future.done() and not future.cancelled() and future.exception() is None}
            unfinished = ", ".join(
                f"{name} (seed {', '.join(str(seed) for seed in seeds)})"
                for name in recipes if (seeds := [seed for seed in settings.seeds if (name, seed) not in finished]))
            raise TrainingError(
                f"--jobs {settings.jobs}: a worker process ended abruptly (killed, for example by the out-of-memory "
                f"killer) with {unfinished} unfinished; the finished runs are saved and an interrupted one resumes "
                "from its newest checkpoint: run the command again (with fewer --jobs if memory ran out)"
            ) from None
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return {name: ArmSeeds(name, tuple(done[(name, seed)] for seed in settings.seeds)) for name in recipes}


def _probe_random_seed(name: str, recipe: Mapping[str, Any], settings: RunSettings, seed: int) -> ArmResult:
    import torch

    from contrastkit.config import config_from_dict
    from contrastkit.evaluation import evaluate
    from contrastkit.pipeline import Pipeline
    from contrastkit.training import select_device

    raw = arm_recipe(name, recipe, settings, seed=seed, stages=False)
    folder = settings.arm_dir(name, seed)
    recipe_path, record = folder / "recipe.toml", folder / "arm.json"
    saved = saved_record(folder, recipe_toml(raw), "arm.json", fresh=settings.fresh)
    if saved is not None:
        return ArmResult(**saved)
    config = config_from_dict(raw, path=str(recipe_path))
    start = time.perf_counter()
    torch.manual_seed(config.train.seed)  # the weights training would start from
    pipeline = Pipeline.from_config(config, path=str(recipe_path)).to(select_device(config.train.device))
    assert pipeline.dataset is not None  # from_config always builds the [data] slot
    labels = list(config.eval.labels or tuple(getattr(pipeline.dataset, "label_keys", ())))
    results = evaluate(
        pipeline, pipeline.dataset, pipeline.build_dataset("test"), labels=labels, knn=config.eval.knn,
        linear=config.eval.linear, k=config.eval.knn_k, temperature=config.eval.knn_temperature,
        epochs=config.eval.linear_epochs, batch_size=config.train.batch_size, max_samples=config.eval.max_samples,
        seed=config.train.seed,
    )
    arm = ArmResult(name=name, probes=_probe_dict(results), steps=0, seconds=round(time.perf_counter() - start, 1),
                    final_metrics={}, run_dir=folder.as_posix(), seed=seed, code=code_version())
    write_record(record, arm.as_dict())
    settings.print_fn(f"[{name} seed {seed}] random-init encoders: "
                      + ", ".join(f"{k} {v:.2f}" for k, v in arm.probes.items()))
    return arm


def probe_random_init(name: str, recipe: Mapping[str, Any], settings: RunSettings) -> ArmSeeds:
    """The recipe's probes with freshly initialised encoders, one set per seed (``train.seed``): the untrained
    baseline, what ``contrastkit eval --random-init`` reports; cached in ``<arm>/seed=<s>/arm.json`` like
    :func:`train_seed`'s.

    Example:
        >>> from contrastkit.experiments.settings import smoke_run_settings
        >>> recipe = {"data": {"name": "colorful-moving-digits", "image_size": 16, "digit_size": 8},
        ...           "encoder": {"name": "convnet", "width": 4, "depth": 2},
        ...           "eval": {"labels": ["digit"], "knn": False, "linear": True}}
        >>> arm = probe_random_init("random-init", recipe, smoke_run_settings())
        >>> arm.steps, sorted(arm.runs[0].probes)
        (0, ['linear/digit'])
    """
    return ArmSeeds(name, tuple(_probe_random_seed(name, recipe, settings, seed) for seed in settings.seeds))

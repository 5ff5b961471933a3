"""What every reproduction shares: running one arm of a recipe, its result record, and the report.

An experiment (``contrastkit experiment NAME``) trains a few *arms* — recipes that differ in the
one thing the paper varies — with the same data and schedule, once per seed (``--seeds N``: seeds
``0 .. N-1``, the same seeds for every arm), probes each, and writes under its run directory
``<out>/<name>/``:

- ``<arm>/seed=<s>/recipe.toml``: the full recipe of one seed of an arm (rerun it alone with
  ``contrastkit train``);
- ``<arm>/seed=<s>/arm.json``: its probes, training figures and the :func:`code_version` that
  trained it. It is reused when the experiment is rerun only if the recipe (seed included) and the
  code are both unchanged (``--fresh`` retrains), so an interrupted experiment resumes where it
  stopped and a result of other code is never shown as this code's;
- ``results.md`` (the table), ``plot.png`` and ``result.json`` (every seed's numbers, read by the report).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
import numbers
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from contrastkit.errors import ConfigError, InvalidParameter, close_matches
from contrastkit.experiments.stats import Summary, summarize

__all__ = [
    "QUICK_SETTINGS",
    "SCALES",
    "ArmResult",
    "ArmSeeds",
    "ExperimentResult",
    "RunSettings",
    "apply_quick_settings",
    "arm_recipe",
    "code_version",
    "markdown_table",
    "parse_scale",
    "parse_seeds",
    "probe_random_init",
    "recipe_toml",
    "saved_record",
    "seed_table",
    "set_key",
    "train_arm",
    "train_seed",
]

#: Applied to every arm by ``--quick``: a smoke run of the whole experiment (tests, CI), not a result.
QUICK_SETTINGS: dict[str, Any] = {
    "data.size": 512,  # 10% labelled (learned-views) must still fill a whole batch of 32
    "train.batch_size": 32,
    "train.max_steps": 2,
    "train.warmup_steps": 0,
    "eval.linear_epochs": 2,
    "eval.max_samples": 96,
    "eval.knn_k": 5,
}


#: The schedules an experiment knows: ``cpu`` (the default: minutes on 2 CPU cores) and ``paper``
#: (longer schedules and more data, for a GPU with ``--device cuda``); each experiment's ``SCALES``
#: says what they mean for it.
SCALES = ("cpu", "paper")
#: Seeds per arm when ``--seeds`` is not given: 3 for a result (the docs page), 1 for a ``--quick`` smoke run.
DEFAULT_SEEDS = 3


def parse_seeds(text: str | int) -> tuple[int, ...]:
    """``--seeds N``: the seeds ``0 .. N-1`` (a one-line :class:`ConfigError` naming the option otherwise).

    Example:
        >>> parse_seeds("3")
        (0, 1, 2)
        >>> parse_seeds("0")
        Traceback (most recent call last):
        ...
        contrastkit.errors.ConfigError: --seeds: must be a whole number of seeds >= 1 (got '0'); e.g. --seeds 3
    """
    try:
        count = int(str(text).strip())
    except ValueError:
        count = 0
    if count < 1:
        raise ConfigError(f"--seeds: must be a whole number of seeds >= 1 (got {str(text)!r}); e.g. --seeds 3")
    return tuple(range(count))


def parse_scale(text: str) -> str:
    """``--scale NAME``: one of :data:`SCALES` (a one-line :class:`ConfigError` with close matches otherwise).

    Example:
        >>> parse_scale("paper")
        'paper'
        >>> parse_scale("papr")
        Traceback (most recent call last):
        ...
        contrastkit.errors.ConfigError: --scale: unknown scale 'papr'; did you mean 'paper'? (choose from cpu, paper)
    """
    if text in SCALES:
        return text
    matches = close_matches(text, list(SCALES))
    hint = f"did you mean {matches[0]!r}? " if matches else ""
    raise ConfigError(f"--scale: unknown scale {text!r}; {hint}(choose from {', '.join(SCALES)})")


def _seed_tuple(seeds: Iterable[int]) -> tuple[int, ...]:
    return tuple(seeds)  # a typed converter=tuple: the attrs mypy plugin cannot solve tuple's type variable


def _check_seeds(instance: Any, attribute: Any, value: tuple[int, ...]) -> None:
    if not value or len(set(value)) != len(value) or any(not isinstance(v, int) or v < 0 for v in value):
        raise InvalidParameter("seeds", "must be distinct whole numbers >= 0, at least one", value)


@attrs.frozen
class RunSettings:
    """How an experiment runs: where, on which device, with which seeds and schedule (``scale``), full or
    ``quick`` (a smoke run), and who prints.

    Example:
        >>> s = RunSettings(out_dir=Path("runs/experiments/factors"), quick=True, seeds=(0, 1))
        >>> s.arm_dir("share-digit", 1).as_posix()
        'runs/experiments/factors/share-digit/seed=1'
    """

    out_dir: Path
    quick: bool = False
    device: str = "auto"
    fresh: bool = False
    print_fn: Callable[[str], None] = print
    seeds: tuple[int, ...] = attrs.field(default=(0,), converter=_seed_tuple, validator=_check_seeds)
    scale: str = attrs.field(default="cpu", validator=attrs.validators.in_(SCALES))

    def arm_dir(self, arm: str, seed: int) -> Path:
        """The run folder of one seed of one arm."""
        return self.out_dir / arm / f"seed={seed}"


def _package_files() -> list[Path]:
    root = Path(__file__).resolve().parents[1]
    return sorted(p for p in root.rglob("*") if p.suffix in {".py", ".json", ".toml"} and "__pycache__" not in p.parts)


@functools.cache
def code_version() -> str:
    """A fingerprint of the code that trains an arm: the SHA-256 (first 16 hex digits) of every source file
    of the installed ``contrastkit`` package, by path and content. A saved arm is reused only under the
    same fingerprint, so an edit anywhere in the package retrains.

    Example:
        >>> len(code_version()), code_version() == code_version()
        (16, True)
    """
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parents[1]
    for path in _package_files():
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@functools.cache
def git_commit() -> str:
    """The git commit of the package's checkout, with ``+dirty`` when its files differ from it ("" outside git).

    Example:
        >>> isinstance(git_commit(), str)
        True
    """
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "contrastkit"], cwd=root, capture_output=True,
                               text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return head + ("+dirty" if dirty else "")


def set_key(raw: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``table.key`` (any depth) in a raw recipe, creating tables on the way.

    Example:
        >>> r = {"train": {"lr": 0.1}}
        >>> set_key(r, "train.lr", 0.5); set_key(r, "views.share", ["digit"]); r
        {'train': {'lr': 0.5}, 'views': {'share': ['digit']}}
    """
    *tables, key = dotted.split(".")
    node = raw
    for table in tables:
        node = node.setdefault(table, {})
        if not isinstance(node, dict):
            raise ConfigError(f"experiment: {dotted}: {table!r} holds {node!r}, not a table; remove it or set a key beside it")
    node[key] = value


def _toml_key(key: Any) -> str:
    """A bare key when TOML allows one, else a quoted key (a dot would otherwise nest a table)."""
    text = str(key)
    return text if text and all(c.isalnum() or c in "_-" for c in text) and text.isascii() else json.dumps(text)


def _toml_value(value: Any, key: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return repr(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))  # numpy scalars repr as np.float64(...), which TOML cannot read
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")  # a JSON string is a TOML one
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v, key) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v, f'{key}.{k}')}" for k, v in value.items()) + " }"
    raise ConfigError(
        f"experiment: {key}: TOML cannot hold {value!r} ({type(value).__name__}); "
        "give a bool, number, string, list or table, or leave the key out"
    )


def recipe_toml(raw: Mapping[str, Any]) -> str:
    """A recipe (plain data: tables of scalars and lists, ``stages`` as an array of tables) as TOML text.

    Example:
        >>> print(recipe_toml({"data": {"name": "colorful-moving-digits", "size": 64},
        ...                    "views": {"name": "factor-pair", "share": ["digit"]}}))
        [data]
        name = "colorful-moving-digits"
        size = 64
        <BLANKLINE>
        [views]
        name = "factor-pair"
        share = ["digit"]
        <BLANKLINE>
    """
    lines: list[str] = []
    for table, body in raw.items():
        if table == "stages":
            continue
        if not isinstance(body, Mapping):
            raise ConfigError(f"experiment: recipe table {table!r} must be a table (got {body!r})")
        lines.append(f"[{table}]")
        lines += [f"{_toml_key(key)} = {_toml_value(value, f'{table}.{key}')}" for key, value in body.items()]
        lines.append("")
    for index, stage in enumerate(raw.get("stages", ())):
        lines.append("[[stages]]")
        lines += [f"{_toml_key(key)} = {_toml_value(value, f'stages[{index}].{key}')}" for key, value in stage.items()]
        lines.append("")
    return "\n".join(lines)


@attrs.frozen
class ArmResult:
    """One seed of one trained arm: its probes (``"linear/digit"`` -> value), training figures, where it ran,
    its seed and the :func:`code_version` that trained it.

    ``probes`` hold top-1 accuracy in % for class labels and the mean error in pixels for ``position``.

    Example:
        >>> a = ArmResult(name="share-digit", probes={"linear/digit": 61.5}, steps=10, seconds=2.0,
        ...               final_metrics={"loss": 3.2}, run_dir="runs/x", seed=1)
        >>> a.probe("linear", "digit")
        61.5
    """

    name: str
    probes: dict[str, float]
    steps: int
    seconds: float
    final_metrics: dict[str, float]
    run_dir: str
    seed: int = 0
    code: str = ""

    def probe(self, probe: str, label: str) -> float:
        """The value of one probe on one label (``nan`` when the arm did not run it)."""
        return self.probes.get(f"{probe}/{label}", math.nan)

    def as_dict(self) -> dict[str, Any]:
        """Plain data (``arm.json``)."""
        return attrs.asdict(self)


@attrs.frozen
class ArmSeeds:
    """Every seed of one arm: per-seed :class:`ArmResult` records and their :class:`Summary` per quantity.

    Example:
        >>> runs = [ArmResult(name="a", probes={"linear/digit": v}, steps=10, seconds=2.0, final_metrics={"loss": 1.0},
        ...                   run_dir="r", seed=s) for s, v in enumerate([60.0, 64.0])]
        >>> arm = ArmSeeds("a", tuple(runs))
        >>> str(arm.probe("linear", "digit")), arm.seconds, arm.seeds
        ('62.00 ± 2.83', 4.0, (0, 1))
    """

    name: str
    runs: tuple[ArmResult, ...]

    @property
    def seeds(self) -> tuple[int, ...]:
        """The seeds, in run order."""
        return tuple(r.seed for r in self.runs)

    @property
    def seconds(self) -> float:
        """Training (or probing) time over every seed."""
        return round(sum(r.seconds for r in self.runs), 1)

    @property
    def steps(self) -> int:
        """Steps per seed (the same schedule for every seed)."""
        return max((r.steps for r in self.runs), default=0)

    def probe(self, probe: str, label: str) -> Summary:
        """One probe on one label over the seeds."""
        return summarize(r.probe(probe, label) for r in self.runs)

    def metric(self, key: str) -> Summary:
        """A final training metric (``loss``, ``mi_lower_bound/v1-v2``, ...) over the seeds."""
        return summarize(r.final_metrics.get(key, math.nan) for r in self.runs)

    def as_dict(self) -> dict[str, Any]:
        """Plain data (``result.json``): every seed's record, and each probe's mean and sd."""
        keys = sorted({k for r in self.runs for k in r.probes})
        summary = {k: {"mean": s.mean, "sd": s.sd, "n": s.n}
                   for k in keys for s in [summarize(r.probes.get(k, math.nan) for r in self.runs)]}
        return {"name": self.name, "seeds": [r.as_dict() for r in self.runs], "summary": summary}


def apply_quick_settings(raw: dict[str, Any]) -> None:
    """Shrink a raw recipe in place to :data:`QUICK_SETTINGS` (stages keep no ``train.*`` of their own).

    Example:
        >>> r = {"train": {"max_steps": 900}, "stages": [{"name": "a", "set": {"train.epochs": 5, "views.mode": "x"}}]}
        >>> apply_quick_settings(r); r["train"]["max_steps"], r["stages"][0]["set"]
        (2, {'views.mode': 'x'})
    """
    for dotted, value in QUICK_SETTINGS.items():
        set_key(raw, dotted, value)
    for stage in raw.get("stages", ()):  # a stage's own schedule would undo the smoke run's
        stage["set"] = {k: v for k, v in stage.get("set", {}).items() if not k.startswith("train.")}


def arm_recipe(name: str, recipe: Mapping[str, Any], settings: RunSettings, *, seed: int,
               stages: bool = True) -> dict[str, Any]:
    """The recipe one seed of an arm runs: a copy of ``recipe`` (``stages`` dropped unless ``stages``), shrunk
    by ``quick``, with ``train.seed = seed``, run in its folder on ``settings.device`` without a progress bar.

    Example:
        >>> r = arm_recipe("a", {"train": {"max_steps": 900}}, RunSettings(out_dir=Path("runs/x"), quick=True,
        ...                device="cpu"), seed=2)
        >>> r["train"]["max_steps"], r["train"]["seed"], r["train"]["out_dir"], r["log"]["progress"]
        (2, 2, 'runs/x/a/seed=2', False)
    """
    raw = copy.deepcopy(dict(recipe))
    if not stages:
        raw.pop("stages", None)
    if settings.quick:
        apply_quick_settings(raw)
    set_key(raw, "train.seed", seed)
    set_key(raw, "train.out_dir", settings.arm_dir(name, seed).as_posix())
    set_key(raw, "train.device", settings.device)
    set_key(raw, "log.progress", False)
    return raw


def saved_record(folder: Path, text: str, record_name: str, *, fresh: bool) -> dict[str, Any] | None:
    """The record saved in ``folder`` for the recipe ``text`` by this :func:`code_version`, else ``None`` (then
    ``recipe.toml`` holds ``text``, and no record, checkpoints or TensorBoard logs of another recipe or other
    code are left behind).

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> saved_record(d, "a = 1\\n", "arm.json", fresh=False) is None
        True
        >>> _ = (d / "arm.json").write_text(json.dumps({"x": 1, "code": code_version()}))
        >>> saved_record(d, "a = 1\\n", "arm.json", fresh=False)["x"], saved_record(d, "a = 2\\n", "arm.json", fresh=False)
        (1, None)
        >>> (d / "arm.json").exists()
        False
        >>> _ = (d / "arm.json").write_text(json.dumps({"x": 1, "code": "other code"}))
        >>> saved_record(d, "a = 2\\n", "arm.json", fresh=False) is None  # same recipe, trained by other code
        True
    """
    folder.mkdir(parents=True, exist_ok=True)
    recipe_path, record = folder / "recipe.toml", folder / record_name
    if not fresh and record.is_file() and recipe_path.is_file() and recipe_path.read_text() == text:
        try:
            saved = json.loads(record.read_text())
        except json.JSONDecodeError:
            saved = None  # a record cut short by a kill: train again
        if isinstance(saved, dict) and saved.get("code") == code_version():
            return saved
    recipe_path.write_text(text)
    record.unlink(missing_ok=True)
    for stale in folder.iterdir():  # another recipe's run outputs (stages too): curves and weights would mix in
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    return None


def _write_record(path: Path, record: Mapping[str, Any]) -> None:
    """Write ``record`` as JSON through a temporary file, so a kill never leaves half a record."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(path)


def _probe_dict(results: Sequence[Any]) -> dict[str, float]:
    return {f"{r.probe}/{r.label}": float(r.value) for r in results}


def train_seed(name: str, recipe: Mapping[str, Any], settings: RunSettings, *, seed: int) -> ArmResult:
    """Train one seed of one arm (a recipe, ``[[stages]]`` allowed) in ``settings.arm_dir(name, seed)``.

    The recipe is written to ``recipe.toml`` next to the run; when ``arm.json`` there holds the result
    of the same recipe trained by the same code, it is returned without training (``settings.fresh`` retrains).

    Example:
        >>> import tempfile
        >>> recipe = {"data": {"name": "colorful-moving-digits", "image_size": 16, "digit_size": 8},
        ...           "encoder": {"name": "convnet", "width": 4, "depth": 2},
        ...           "eval": {"labels": ["background"], "knn": True, "linear": False}}
        >>> s = RunSettings(out_dir=Path(tempfile.mkdtemp()), quick=True, device="cpu", print_fn=lambda m: None)
        >>> arm = train_seed("tiny", recipe, s, seed=0)
        >>> arm.steps, sorted(arm.probes), arm.code == code_version()
        (2, ['knn/background'], True)
        >>> train_seed("tiny", recipe, s, seed=0).seconds == arm.seconds  # same recipe and code: read back
        True
    """
    from contrastkit.config import config_from_dict, stages_from_dict
    from contrastkit.trainer import StagedTrainer, Trainer

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

    start = time.perf_counter()
    if "stages" in raw:
        stages = stages_from_dict(raw, (), path=str(recipe_path))
        results = StagedTrainer(stages, path=str(recipe_path), print_fn=say).fit()
        steps = sum(r.steps for r in results)
        result = results[-1]
    else:
        config = config_from_dict(raw, path=str(recipe_path))
        result = Trainer.from_config(config, path=str(recipe_path), print_fn=say).fit()
        steps = result.steps
    seconds = time.perf_counter() - start
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
    _write_record(record, arm.as_dict())
    say(f"{steps} steps in {seconds:.0f} s; " + ", ".join(f"{k} {v:.2f}" for k, v in arm.probes.items()))
    return arm


def train_arm(name: str, recipe: Mapping[str, Any], settings: RunSettings) -> ArmSeeds:
    """Train (or read back) every seed of ``settings.seeds`` of one arm: :func:`train_seed` per seed.

    Example:
        >>> import tempfile
        >>> recipe = {"data": {"name": "colorful-moving-digits", "image_size": 16, "digit_size": 8},
        ...           "encoder": {"name": "convnet", "width": 4, "depth": 2},
        ...           "eval": {"labels": ["background"], "knn": True, "linear": False}}
        >>> s = RunSettings(out_dir=Path(tempfile.mkdtemp()), quick=True, device="cpu", print_fn=lambda m: None,
        ...                 seeds=(0, 1))
        >>> arm = train_arm("tiny", recipe, s)
        >>> arm.seeds, arm.probe("knn", "background").n
        ((0, 1), 2)
    """
    return ArmSeeds(name, tuple(train_seed(name, recipe, settings, seed=seed) for seed in settings.seeds))


def _probe_random_seed(name: str, recipe: Mapping[str, Any], settings: RunSettings, seed: int) -> ArmResult:
    import torch

    from contrastkit.config import config_from_dict
    from contrastkit.evaluation import evaluate
    from contrastkit.pipeline import Pipeline
    from contrastkit.trainer import select_device

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
    _write_record(record, arm.as_dict())
    settings.print_fn(f"[{name} seed {seed}] random-init encoders: "
                      + ", ".join(f"{k} {v:.2f}" for k, v in arm.probes.items()))
    return arm


def probe_random_init(name: str, recipe: Mapping[str, Any], settings: RunSettings) -> ArmSeeds:
    """The recipe's probes with freshly initialised encoders, one set per seed (``train.seed``): the untrained
    baseline, what ``contrastkit eval --random-init`` reports; cached in ``<arm>/seed=<s>/arm.json`` like
    :func:`train_seed`'s.

    Example:
        >>> import tempfile
        >>> recipe = {"data": {"name": "colorful-moving-digits", "image_size": 16, "digit_size": 8},
        ...           "encoder": {"name": "convnet", "width": 4, "depth": 2},
        ...           "eval": {"labels": ["digit"], "knn": False, "linear": True}}
        >>> s = RunSettings(out_dir=Path(tempfile.mkdtemp()), quick=True, device="cpu", print_fn=lambda m: None)
        >>> arm = probe_random_init("random-init", recipe, s)
        >>> arm.steps, sorted(arm.runs[0].probes)
        (0, ['linear/digit'])
    """
    return ArmSeeds(name, tuple(_probe_random_seed(name, recipe, settings, seed) for seed in settings.seeds))


@attrs.frozen
class ExperimentResult:
    """What one experiment found: the paper's claim, the table, the plot and a verdict computed from the numbers.

    ``reproduced`` is ``True``/``False`` from the experiment's stated criterion (``criterion``), or
    ``None`` for a ``quick`` smoke run, whose numbers mean nothing.

    Example:
        >>> r = ExperimentResult(name="x", title="X", paper="a claim", criterion="a rule", reproduced=True,
        ...     verdict="it held", table="| a |", plot="plot.png", seconds=1.0, budget_seconds=1800.0,
        ...     quick=False, command="contrastkit experiment x", data={})
        >>> r.status
        'reproduced'
    """

    name: str
    title: str
    paper: str
    criterion: str
    reproduced: bool | None
    verdict: str
    table: str
    plot: str
    seconds: float
    budget_seconds: float
    quick: bool
    command: str
    data: dict[str, Any]
    setup: str = ""
    device: str = ""
    versions: str = ""
    date: str = ""
    seeds: list[int] = attrs.field(factory=list)
    scale: str = "cpu"
    code: str = ""
    evidence: str = ""

    @property
    def over_budget(self) -> bool:
        """Whether the experiment took longer than its budget."""
        return self.seconds > self.budget_seconds

    @property
    def status(self) -> str:
        """``reproduced``, ``not reproduced`` or ``smoke run``."""
        if self.reproduced is None:
            return "smoke run"
        return "reproduced" if self.reproduced else "not reproduced"

    def as_dict(self) -> dict[str, Any]:
        """Plain data (``result.json``)."""
        return attrs.asdict(self)

    def markdown(self, *, plot_link: str | None = None, heading: str = "#") -> str:
        """The experiment's section: claim, setup, table, plot, verdict and timing."""
        minutes = self.seconds / 60
        parts = [
            f"{heading} `{self.name}`: {self.title}",
            "",
            f"**Paper:** {self.paper}",
            "",
            f"**Result: {self.status}.** {self.verdict}",
            "",
            f"**Criterion:** {self.criterion}",
            "",
        ]
        if self.setup:
            parts += [f"**Setup:** {self.setup}", ""]
        if self.seeds:
            parts += [f"**Seeds:** {len(self.seeds)} per arm ({', '.join(map(str, self.seeds))}), the same for every "
                      "arm; tables show mean ± sample standard deviation over seeds, the plot every seed's value."
                      + (" One seed: the noise rule cannot be met." if len(self.seeds) < 2 else ""), ""]
        parts += [self.table, ""]
        if plot_link:
            parts += [f"![{self.name}]({plot_link})", ""]
        if self.evidence:
            parts += [f"**Why, measured:** {self.evidence}", ""]
        parts.append(
            f"Command: `{self.command}` — ran in {minutes:.1f} min (budget {self.budget_seconds / 60:.0f} min"
            + ("; **over budget**)" if self.over_budget else ")")
            + (f" on {self.device}" if self.device else "")
            + (f", {self.date}" if self.date else "")
            + "."
        )
        if self.versions:
            parts.append(f"Versions: {self.versions}" + (f"; code {self.code}" if self.code else "") + ".")
        return "\n".join(parts) + "\n"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table; floats are printed with 2 decimals, a :class:`Summary` as ``mean ± sd``.

    Example:
        >>> print(markdown_table(["arm", "digit top-1 (%)", "seeds"], [["share digit", 61.456, summarize([1, 3])]]))
        | arm | digit top-1 (%) | seeds |
        | --- | --- | --- |
        | share digit | 61.46 | 2.00 ± 1.41 |
    """
    def cell(value: Any) -> str:
        if isinstance(value, Summary):
            return value.format()
        if isinstance(value, float):
            return "–" if math.isnan(value) else f"{value:.2f}"
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def seed_table(arms: Mapping[str, ArmSeeds], columns: Sequence[tuple[str, Callable[[ArmResult], float]]]) -> str:
    """Every seed's numbers: one row per arm and seed, one column per ``(header, value of a seed)``.

    Example:
        >>> runs = tuple(ArmResult(name="a", probes={"linear/digit": v}, steps=1, seconds=1.0, final_metrics={},
        ...                        run_dir="r", seed=s) for s, v in enumerate([60.0, 64.0]))
        >>> print(seed_table({"a": ArmSeeds("a", runs)}, [("digit (%)", lambda r: r.probe("linear", "digit"))]))
        | arm | seed | digit (%) |
        | --- | --- | --- |
        | a | 0 | 60.00 |
        | a | 1 | 64.00 |
    """
    rows = [[name, run.seed, *(float(value(run)) for _, value in columns)] for name, arm in arms.items() for run in arm.runs]
    return markdown_table(["arm", "seed", *(header for header, _ in columns)], rows)

"""What every reproduction shares: running one arm of a recipe, its result record, and the report.

An experiment (``contrastkit experiment NAME``) trains a few *arms* — recipes that differ in the
one thing the paper varies — with the same seed, data and schedule, probes each, and writes under
its run directory ``<out>/<name>/``:

- ``<arm>/recipe.toml``: the arm's full recipe (rerun it alone with ``contrastkit train``);
- ``<arm>/arm.json``: its probes and training figures; an arm whose recipe is unchanged is not
  trained again when the experiment is rerun (``--fresh`` retrains), so an interrupted experiment
  resumes where it stopped;
- ``results.md`` (the table), ``plot.png`` and ``result.json`` (everything, read by the report).
"""

from __future__ import annotations

import copy
import json
import math
import numbers
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from contrastkit.errors import ConfigError

__all__ = [
    "QUICK_SETTINGS",
    "apply_quick_settings",
    "arm_recipe",
    "ArmResult",
    "ExperimentResult",
    "RunSettings",
    "markdown_table",
    "recipe_toml",
    "saved_record",
    "set_key",
    "probe_random_init",
    "train_arm",
]

#: Applied to every arm by ``--quick``: a smoke run of the whole experiment (tests, CI), not a result.
QUICK_SETTINGS: dict[str, Any] = {
    "data.size": 128,
    "train.batch_size": 32,
    "train.max_steps": 2,
    "train.warmup_steps": 0,
    "eval.linear_epochs": 2,
    "eval.max_samples": 96,
    "eval.knn_k": 5,
}


@attrs.frozen
class RunSettings:
    """How an experiment runs: where, on which device, full or ``quick`` (a smoke run), and who prints.

    Example:
        >>> s = RunSettings(out_dir=Path("runs/experiments/factors"), quick=True)
        >>> s.arm_dir("share-digit").as_posix()
        'runs/experiments/factors/share-digit'
    """

    out_dir: Path
    quick: bool = False
    device: str = "auto"
    fresh: bool = False
    print_fn: Callable[[str], None] = print

    def arm_dir(self, arm: str) -> Path:
        """The run folder of one arm."""
        return self.out_dir / arm


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
    """One trained arm: its probes (``"linear/digit"`` -> value), training figures and where it ran.

    ``probes`` hold top-1 accuracy in % for class labels and the mean error in pixels for ``position``.

    Example:
        >>> a = ArmResult(name="share-digit", probes={"linear/digit": 61.5}, steps=10, seconds=2.0,
        ...               final_metrics={"loss": 3.2}, run_dir="runs/x")
        >>> a.probe("linear", "digit")
        61.5
    """

    name: str
    probes: dict[str, float]
    steps: int
    seconds: float
    final_metrics: dict[str, float]
    run_dir: str

    def probe(self, probe: str, label: str) -> float:
        """The value of one probe on one label (``nan`` when the arm did not run it)."""
        return self.probes.get(f"{probe}/{label}", math.nan)

    def as_dict(self) -> dict[str, Any]:
        """Plain data (``arm.json``)."""
        return attrs.asdict(self)


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


def arm_recipe(name: str, recipe: Mapping[str, Any], settings: RunSettings, *, stages: bool = True) -> dict[str, Any]:
    """The recipe an arm runs: a copy of ``recipe`` (``stages`` dropped unless ``stages``), shrunk by
    ``quick``, run in the arm's folder on ``settings.device`` without a progress bar.

    Example:
        >>> r = arm_recipe("a", {"train": {"max_steps": 900}}, RunSettings(out_dir=Path("runs/x"), quick=True, device="cpu"))
        >>> r["train"]["max_steps"], r["train"]["out_dir"], r["log"]["progress"]
        (2, 'runs/x/a', False)
    """
    raw = copy.deepcopy(dict(recipe))
    if not stages:
        raw.pop("stages", None)
    if settings.quick:
        apply_quick_settings(raw)
    set_key(raw, "train.out_dir", settings.arm_dir(name).as_posix())
    set_key(raw, "train.device", settings.device)
    set_key(raw, "log.progress", False)
    return raw


def saved_record(folder: Path, text: str, record_name: str, *, fresh: bool) -> dict[str, Any] | None:
    """The record saved in ``folder`` for the recipe ``text``, else ``None`` (then ``recipe.toml`` holds
    ``text``, and no record, checkpoints or TensorBoard logs of another recipe are left behind).

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> saved_record(d, "a = 1\\n", "arm.json", fresh=False) is None
        True
        >>> _ = (d / "arm.json").write_text('{"x": 1}')
        >>> saved_record(d, "a = 1\\n", "arm.json", fresh=False), saved_record(d, "a = 2\\n", "arm.json", fresh=False)
        ({'x': 1}, None)
        >>> (d / "arm.json").exists()
        False
    """
    folder.mkdir(parents=True, exist_ok=True)
    recipe_path, record = folder / "recipe.toml", folder / record_name
    if not fresh and record.is_file() and recipe_path.is_file() and recipe_path.read_text() == text:
        return json.loads(record.read_text())
    recipe_path.write_text(text)
    record.unlink(missing_ok=True)
    for stale in folder.iterdir():  # another recipe's run outputs (stages too): curves and weights would mix in
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    return None


def _probe_dict(results: Sequence[Any]) -> dict[str, float]:
    return {f"{r.probe}/{r.label}": float(r.value) for r in results}


def train_arm(name: str, recipe: Mapping[str, Any], settings: RunSettings) -> ArmResult:
    """Train one arm (a recipe, ``[[stages]]`` allowed) in ``settings.arm_dir(name)`` and return its probes.

    The recipe is written to ``recipe.toml`` next to the run; when ``arm.json`` there holds the
    result of the same recipe, that result is returned without training (``settings.fresh`` retrains).

    Example:
        >>> import tempfile
        >>> recipe = {"data": {"name": "colorful-moving-digits", "image_size": 16, "digit_size": 8},
        ...           "encoder": {"name": "convnet", "width": 4, "depth": 2},
        ...           "eval": {"labels": ["background"], "knn": True, "linear": False}}
        >>> s = RunSettings(out_dir=Path(tempfile.mkdtemp()), quick=True, device="cpu", print_fn=lambda m: None)
        >>> arm = train_arm("tiny", recipe, s)
        >>> arm.steps, sorted(arm.probes)
        (2, ['knn/background'])
        >>> train_arm("tiny", recipe, s).seconds == arm.seconds  # same recipe: read back, not retrained
        True
    """
    from contrastkit.config import config_from_dict, stages_from_dict
    from contrastkit.trainer import StagedTrainer, Trainer

    raw = arm_recipe(name, recipe, settings)
    folder = settings.arm_dir(name)
    recipe_path, record = folder / "recipe.toml", folder / "arm.json"
    saved = saved_record(folder, recipe_toml(raw), "arm.json", fresh=settings.fresh)
    if saved is not None:
        settings.print_fn(f"[{name}] unchanged recipe: reusing {record} (--fresh retrains)")
        return ArmResult(**saved)

    def say(message: str) -> None:
        settings.print_fn(f"[{name}] {message}")

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
    )
    record.write_text(json.dumps(arm.as_dict(), indent=2) + "\n")
    say(f"{steps} steps in {seconds:.0f} s; " + ", ".join(f"{k} {v:.2f}" for k, v in arm.probes.items()))
    return arm


def probe_random_init(name: str, recipe: Mapping[str, Any], settings: RunSettings) -> ArmResult:
    """The recipe's probes with freshly initialised encoders (seeded by ``train.seed``): the untrained baseline.

    What ``contrastkit eval --random-init`` reports; the result is cached in ``<arm>/arm.json`` like
    :func:`train_arm`'s.

    Example:
        >>> import tempfile
        >>> recipe = {"data": {"name": "colorful-moving-digits", "image_size": 16, "digit_size": 8},
        ...           "encoder": {"name": "convnet", "width": 4, "depth": 2},
        ...           "eval": {"labels": ["digit"], "knn": False, "linear": True}}
        >>> s = RunSettings(out_dir=Path(tempfile.mkdtemp()), quick=True, device="cpu", print_fn=lambda m: None)
        >>> arm = probe_random_init("random-init", recipe, s)
        >>> arm.steps, sorted(arm.probes)
        (0, ['linear/digit'])
    """
    import torch

    from contrastkit.config import config_from_dict
    from contrastkit.evaluation import evaluate
    from contrastkit.pipeline import Pipeline
    from contrastkit.trainer import select_device

    raw = arm_recipe(name, recipe, settings, stages=False)
    folder = settings.arm_dir(name)
    recipe_path, record = folder / "recipe.toml", folder / "arm.json"
    saved = saved_record(folder, recipe_toml(raw), "arm.json", fresh=settings.fresh)
    if saved is not None:
        return ArmResult(**saved)
    config = config_from_dict(raw, path=str(recipe_path))
    start = time.perf_counter()
    torch.manual_seed(config.train.seed)  # the weights training would start from
    pipeline = Pipeline.from_config(config, path=str(recipe_path)).to(select_device(config.train.device))
    labels = list(config.eval.labels or getattr(pipeline.dataset, "label_keys", ()))
    results = evaluate(
        pipeline, pipeline.dataset, pipeline.build_dataset("test"), labels=labels, knn=config.eval.knn,
        linear=config.eval.linear, k=config.eval.knn_k, temperature=config.eval.knn_temperature,
        epochs=config.eval.linear_epochs, batch_size=config.train.batch_size, max_samples=config.eval.max_samples,
        seed=config.train.seed,
    )
    arm = ArmResult(name=name, probes=_probe_dict(results), steps=0, seconds=round(time.perf_counter() - start, 1),
                    final_metrics={}, run_dir=folder.as_posix())
    record.write_text(json.dumps(arm.as_dict(), indent=2) + "\n")
    settings.print_fn(f"[{name}] random-init encoders: " + ", ".join(f"{k} {v:.2f}" for k, v in arm.probes.items()))
    return arm


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
        parts += [self.table, ""]
        if plot_link:
            parts += [f"![{self.name}]({plot_link})", ""]
        parts.append(
            f"Command: `{self.command}` — ran in {minutes:.1f} min (budget {self.budget_seconds / 60:.0f} min"
            + ("; **over budget**)" if self.over_budget else ")")
            + (f" on {self.device}" if self.device else "")
            + (f", {self.date}" if self.date else "")
            + "."
        )
        if self.versions:
            parts.append(f"Versions: {self.versions}.")
        return "\n".join(parts) + "\n"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table; floats are printed with 2 decimals.

    Example:
        >>> print(markdown_table(["arm", "digit top-1 (%)"], [["share digit", 61.456]]))
        | arm | digit top-1 (%) |
        | --- | --- |
        | share digit | 61.46 |
    """
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "–" if math.isnan(value) else f"{value:.2f}"
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)

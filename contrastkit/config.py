"""Typed recipes: TOML -> frozen attrs classes through a strict cattrs converter.

A recipe has one table per slot. Plugin tables (``[data]``, ``[augment]``, ``[views]``,
``[encoder]``, ``[critic]``, ``[negatives]``, ``[objective]``, ``[regularizer]``) hold ``name``
plus that plugin's parameters; ``[train]``, ``[eval]`` and ``[log]`` have fixed keys. Unknown keys,
wrong types and bad values fail with one line: ``file: table.key: problem (got X)``.

Example:
    >>> cfg = config_from_dict({"critic": {"name": "cosine", "temperature": 0.2}, "train": {"max_steps": 5}})
    >>> cfg.critic.name, dict(cfg.critic.params), cfg.train.max_steps
    ('cosine', {'temperature': 0.2}, 5)
    >>> config_from_dict({"train": {"lr": -1.0}})
    Traceback (most recent call last):
    ...
    contrastkit.errors.ConfigError: train.lr: must be > 0 (got -1.0)
"""

from __future__ import annotations

import re
import sys
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError

from contrastkit.errors import ConfigError, InvalidParameter, close_matches
from contrastkit.registry import SLOTS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "Config",
    "EvalConfig",
    "LogConfig",
    "PluginTable",
    "Stage",
    "StageConfig",
    "TrainConfig",
    "apply_overrides",
    "config_from_dict",
    "converter",
    "load_config",
    "load_stages",
    "stages_from_dict",
    "structure_value",
]


# -- validators ----------------------------------------------------------------------------------
def _check(predicate: Callable[[Any], bool], problem: str) -> Callable[[Any, attrs.Attribute, Any], None]:
    def validator(_: Any, attribute: attrs.Attribute, value: Any) -> None:
        if value is not None and not predicate(value):
            raise InvalidParameter(attribute.name, problem, value)

    return validator


_positive = _check(lambda v: v > 0, "must be > 0")
_non_negative = _check(lambda v: v >= 0, "must be >= 0")
_at_least_one = _check(lambda v: v >= 1, "must be >= 1")
#: ``train.seed`` range: the trainer derives per-rank and per-epoch seeds from it (``seed * 1_000_003 + n``),
#: which must stay inside torch's 64-bit generator seed.
SEED_MAX = 2**32 - 1


def _min_lr_at_most_lr(instance: Any, attribute: attrs.Attribute, value: float) -> None:
    # A floor above the peak would make the cosine "decay" raise the learning rate.
    if value > instance.lr:
        raise InvalidParameter(attribute.name, f"must be <= train.lr ({instance.lr!r}); lower min_lr or raise lr", value)


def _non_empty_path(_: Any, attribute: attrs.Attribute, value: str | None) -> None:
    if value is not None and not value.strip():
        raise InvalidParameter(attribute.name, "must be a folder path; omit the key for runs/<recipe file stem>", value)


_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


@attrs.frozen
class PluginTable:
    """A plugin table: the registered ``name`` and the factory's keyword arguments.

    Example:
        >>> PluginTable("cosine", {"temperature": 0.1}).as_dict()
        {'name': 'cosine', 'temperature': 0.1}
    """

    name: str
    params: Mapping[str, Any] = attrs.field(factory=dict, converter=dict)

    def as_dict(self) -> dict[str, Any]:
        """The table as it would appear in TOML."""
        return {"name": self.name, **self.params}


@attrs.frozen
class TrainConfig:
    """``[train]``: optimisation, precision, checkpointing and run settings.

    Example:
        >>> TrainConfig(batch_size=64).batch_size
        64
        >>> TrainConfig(precision="bf16", optimizer="lars").optimizer
        'lars'
    """

    epochs: int = attrs.field(default=1, validator=_at_least_one)
    #: Train exactly this many optimizer steps, over as many epochs as that takes (``epochs`` is then
    #: ignored); ``None`` trains ``epochs`` full epochs.
    max_steps: int | None = attrs.field(default=None, validator=_at_least_one)
    batch_size: int = attrs.field(default=128, validator=_check(lambda v: v >= 2, "must be >= 2 (contrastive losses need negatives)"))
    lr: float = attrs.field(default=1e-3, validator=_positive)
    weight_decay: float = attrs.field(default=1e-4, validator=_non_negative)
    #: Decay norm-layer weights and biases too (off by default, as in SimCLR/LARS practice).
    weight_decay_norms_and_biases: bool = False
    optimizer: Literal["adamw", "sgd", "lars"] = "adamw"
    momentum: float = attrs.field(default=0.9, validator=_check(lambda v: 0 <= v < 1, "must be in [0, 1)"))
    nesterov: bool = False
    #: LARS trust coefficient (eta).
    lars_trust: float = attrs.field(default=0.001, validator=_positive)
    #: Learning-rate schedule after warm-up: ``cosine`` decays to ``min_lr``; ``constant`` keeps ``lr``.
    schedule: Literal["cosine", "constant"] = "cosine"
    warmup_steps: int = attrs.field(default=0, validator=_non_negative)
    min_lr: float = attrs.field(default=0.0, validator=[_non_negative, _min_lr_at_most_lr])
    #: Clip the global gradient norm to this value; ``None`` disables clipping.
    grad_clip: float | None = attrs.field(default=None, validator=_positive)
    #: Micro-batches per optimizer step (effective batch = batch_size x accumulate_steps).
    accumulate_steps: int = attrs.field(default=1, validator=_at_least_one)
    #: ``32`` (float32), ``bf16`` (autocast to bfloat16) or ``fp16`` (autocast to float16 with a grad scaler).
    precision: Literal["32", "bf16", "fp16"] = "32"
    channels_last: bool = False
    #: ``torch.compile`` each encoder.
    compile: bool = False
    #: Under ``torchrun`` (several processes): batch norm statistics over the global batch (CUDA only).
    sync_batchnorm: bool = False
    #: Deterministic algorithms (and bit-exact ``--resume`` on CPU); may be slower on GPU.
    deterministic: bool = False
    #: Learning rate of a trainable view maker's own optimizer (Adam); ``None`` uses ``lr``.
    view_maker_lr: float | None = attrs.field(default=None, validator=_positive)
    seed: int = attrs.field(default=0, validator=_check(lambda v: 0 <= v <= SEED_MAX, f"must be in [0, {SEED_MAX}]"))
    #: ``auto`` picks cuda, then mps, then cpu.
    device: str = attrs.field(default="auto", validator=_check(lambda v: bool(_DEVICE.match(v)), "must be auto, cpu, mps, cuda or cuda:N"))
    #: Run directory for TensorBoard logs and checkpoints; default ``runs/<recipe file stem>``.
    out_dir: str | None = attrs.field(default=None, validator=_non_empty_path)
    #: Write a checkpoint every N optimizer steps (and always at each epoch end); ``None``: epoch ends only.
    checkpoint_every_n_steps: int | None = attrs.field(default=None, validator=_at_least_one)
    #: How many periodic checkpoints to keep (the final one is always kept).
    keep_checkpoints: int = attrs.field(default=3, validator=_at_least_one)
    num_workers: int = attrs.field(default=0, validator=_non_negative)
    #: Which view pairs are contrasted: ``core`` (view 1 with every other) or ``full`` (all pairs).
    graph: Literal["core", "full"] = "core"


@attrs.frozen
class EvalConfig:
    """``[eval]``: probes of the frozen representation on the test split.

    Example:
        >>> EvalConfig().knn_k, EvalConfig(labels=["digit"]).labels
        (200, ['digit'])
    """

    #: Weighted kNN probe (Wu et al. 2018) at the end of training.
    knn: bool = True
    knn_k: int = attrs.field(default=200, validator=_at_least_one)
    knn_temperature: float = attrs.field(default=0.1, validator=_positive)
    #: Linear probe (features extracted once, a linear classifier trained on the device) at the end.
    linear: bool = False
    linear_epochs: int = attrs.field(default=100, validator=_at_least_one)
    #: Online kNN every N epochs during training; ``None`` disables it.
    knn_every_n_epochs: int | None = attrs.field(default=None, validator=_at_least_one)
    #: Dataset labels to probe (each must be in the dataset's ``label_keys``); default: all of them.
    labels: list[str] | None = None
    #: Cap on train and test samples used by the probes.
    max_samples: int = attrs.field(default=2000, validator=_at_least_one)


@attrs.frozen
class LogConfig:
    """``[log]``: TensorBoard and console output.

    Example:
        >>> LogConfig(progress=False).progress
        False
    """

    #: Scalars (and the progress bar) are synced from the device once every N steps, never every step.
    every_n_steps: int = attrs.field(default=10, validator=_at_least_one)
    tensorboard: bool = True
    progress: bool = True
    #: An image grid of every view at the first step and every N steps; ``0`` disables it.
    images_every_n_steps: int = attrs.field(default=500, validator=_non_negative)
    #: Embedding projector of a held-out test batch at the end of training (``0`` disables it).
    projector_samples: int = attrs.field(default=256, validator=_non_negative)


_STAGE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


@attrs.frozen
class StageConfig:
    """One ``[[stages]]`` entry: the base recipe with dotted overrides, trained as its own run.

    ``set`` maps dotted keys to values (``{"views.mode" = "frozen"}``, validated like ``--set``);
    ``carry`` names pipeline modules (``view_maker``, ``encoders``, ``critic``, ...) whose weights
    are loaded from the previous stage's final checkpoint; everything else starts fresh.

    Example:
        >>> StageConfig("contrast", {"views.mode": "frozen"}, ["view_maker"]).carry
        ['view_maker']
        >>> StageConfig("bad name")
        Traceback (most recent call last):
        ...
        contrastkit.errors.InvalidParameter: name: must be letters, digits, '-' or '_' (it names the stage's run folder) (got 'bad name')
    """

    name: str = attrs.field(
        validator=_check(lambda v: bool(_STAGE_NAME.match(v)), "must be letters, digits, '-' or '_' (it names the stage's run folder)")
    )
    set: Mapping[str, Any] = attrs.field(factory=dict, converter=dict)
    carry: list[str] = attrs.field(factory=list)


@attrs.frozen
class Config:
    """A whole recipe. Every table has a default, so ``Config()`` is the README's demo.

    Example:
        >>> Config().views.name, Config().regularizer
        ('color-split', None)
    """

    data: PluginTable = PluginTable("colorful-moving-digits")
    #: One table for every view, or an array of tables ``[[augment]]``, one per view.
    augment: PluginTable | list[PluginTable] = PluginTable("none")
    views: PluginTable = PluginTable("color-split")
    #: One table (``shared = true`` shares one encoder across views) or ``[[encoder]]``, one per view.
    encoder: PluginTable | list[PluginTable] = PluginTable("convnet")
    critic: PluginTable = PluginTable("cosine")
    negatives: PluginTable = PluginTable("in-batch")
    objective: PluginTable = PluginTable("infonce")
    regularizer: PluginTable | None = None
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    log: LogConfig = LogConfig()
    #: ``[[stages]]``: train the recipe several times in a row, each with overrides (see :func:`stages_from_dict`).
    stages: list[StageConfig] | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain-data form (what checkpoints store and ``--dry-run`` prints)."""
        return converter.unstructure(self)


# -- the converter -------------------------------------------------------------------------------
class _Problem(Exception):
    """A leaf structuring failure; the walker prefixes the dotted key."""

    def __init__(self, problem: str, got: Any, where: str = "") -> None:
        self.problem, self.got, self.where = problem, got, where  # where: "[1][0]" inside a list
        super().__init__(f"{problem} (got {got!r})")


def _strict_int(value: Any, _: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Problem("expected an integer", value)
    return value


def _strict_float(value: Any, _: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Problem("expected a number", value)
    return float(value)


def _strict_bool(value: Any, _: Any) -> bool:
    if not isinstance(value, bool):
        raise _Problem("expected true or false", value)
    return value


def _strict_str(value: Any, _: Any) -> str:
    if not isinstance(value, str):
        raise _Problem("expected a string", value)
    return value


def _structure_literal(value: Any, tp: Any) -> Any:
    choices = typing.get_args(tp)
    if value not in choices or type(value) is not type(choices[0]):
        raise _Problem("must be one of " + ", ".join(repr(c) for c in choices), value)
    return value


def _structure_sequence(value: Any, tp: Any) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if not isinstance(value, (list, tuple)):
        raise _Problem("expected a list", value)
    if origin is tuple and args and args[-1] is not Ellipsis:
        if len(args) != len(value):
            raise _Problem(f"expected a list of {len(args)} items", value)
        item_types = list(args)
    else:
        item_types = [args[0] if args else Any] * len(value)
    items = []
    for i, (v, item_type) in enumerate(zip(value, item_types)):
        try:
            items.append(converter.structure(v, item_type))
        except _Problem as exc:
            raise _Problem(exc.problem, exc.got, f"[{i}]{exc.where}") from None
    return tuple(items) if origin is tuple else items


def _structure_plugin_table(value: Any, _: Any) -> PluginTable:
    if isinstance(value, str):  # shorthand: views = "color-split"
        return PluginTable(value)
    if not isinstance(value, Mapping):
        raise _Problem("expected a table with a name, e.g. {name = \"...\"}", value)
    if "name" not in value:
        raise _Problem("missing key 'name' (the registered plugin name)", dict(value))
    name = value["name"]
    if not isinstance(name, str) or not name:
        raise _Problem("'name' must be a non-empty string", name)
    return PluginTable(name, {k: v for k, v in value.items() if k != "name"})


def _structure_tables(value: Any, _: Any) -> PluginTable | list[PluginTable]:
    """One table for every view, or a list (``[[augment]]``) with one table per view."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise _Problem("expected at least one table", value)
        tables = []
        for i, item in enumerate(value):
            try:
                tables.append(_structure_plugin_table(item, PluginTable))
            except _Problem as exc:
                raise _Problem(exc.problem, exc.got, f"[{i}]{exc.where}") from None
        return tables
    return _structure_plugin_table(value, PluginTable)


def _is_tables_union(tp: Any) -> bool:
    args = typing.get_args(tp)
    return PluginTable in args and list[PluginTable] in args


def _structure_any(value: Any, _: Any) -> Any:
    return value


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True)
    conv.register_structure_hook(int, _strict_int)
    conv.register_structure_hook(float, _strict_float)
    conv.register_structure_hook(bool, _strict_bool)
    conv.register_structure_hook(str, _strict_str)
    conv.register_structure_hook(PluginTable, _structure_plugin_table)
    conv.register_unstructure_hook(PluginTable, PluginTable.as_dict)
    conv.register_structure_hook_func(lambda t: t is Any, _structure_any)
    conv.register_structure_hook_func(_is_tables_union, _structure_tables)
    conv.register_unstructure_hook_func(
        _is_tables_union, lambda v: [t.as_dict() for t in v] if isinstance(v, list) else v.as_dict()
    )
    conv.register_structure_hook_func(lambda t: typing.get_origin(t) is Literal, _structure_literal)
    conv.register_structure_hook_func(
        lambda t: typing.get_origin(t) in (list, tuple, Sequence, typing.Sequence)
        or t in (list, tuple),
        _structure_sequence,
    )
    return conv


#: The strict converter: no extra keys, no silent ``"3" -> 3`` or ``1.5 -> 1`` coercions.
converter = _make_converter()


def _attribute_of(exc: BaseException) -> str | None:
    for note in getattr(exc, "__notes__", ()):
        name = getattr(note, "name", None)
        if name is not None:
            return str(name)
        index = getattr(note, "index", None)
        if index is not None:
            return f"[{index}]"
    return None


def _join(path: str, part: str | None) -> str:
    if not part:
        return path
    if part.startswith("["):
        return path + part
    return f"{path}.{part}" if path else part


def _first_problem(exc: BaseException, path: str = "") -> str:
    """Turn a (nested) cattrs error into one ``key: problem (got X)`` line."""
    if isinstance(exc, (ClassValidationError, IterableValidationError)):
        for sub in exc.exceptions:
            return _first_problem(sub, _join(path, _attribute_of(sub)))
    if isinstance(exc, ForbiddenExtraKeysError):
        valid = [a.name for a in attrs.fields(exc.cl)]
        extra = sorted(exc.extra_fields)[0]
        where = _join(path, extra)
        matches = close_matches(extra, valid)
        listed = [v for v in valid if not (exc.cl is Config and v == "stages")]  # the tables; [[stages]] is matched only
        hint = f"did you mean {matches[0]!r}?" if matches else "valid keys: " + ", ".join(listed)
        what = "unknown table" if not path else "unknown key"
        return f"{where}: {what}; {hint}"
    if isinstance(exc, InvalidParameter):
        return _join(path, exc.parameter) + ": " + str(exc).split(": ", 1)[1]
    if isinstance(exc, _Problem):
        return f"{path}{exc.where}: {exc}"
    if isinstance(exc, KeyError):
        return f"{_join(path, str(exc.args[0]) if exc.args else None)}: required key is missing"
    return f"{path}: {exc}"


def structure_value(value: Any, tp: Any, key: str) -> Any:
    """Structure one value into type ``tp`` with the strict converter; errors name ``key``.

    Example:
        >>> structure_value([1, 2], tuple[int, ...], "encoder.widths")
        (1, 2)
        >>> structure_value("x", int, "encoder.width")
        Traceback (most recent call last):
        ...
        contrastkit.errors.ConfigError: encoder.width: expected an integer (got 'x')
    """
    try:
        return converter.structure(value, tp)
    except Exception as exc:  # noqa: BLE001 - every structuring failure becomes one line
        raise ConfigError(_first_problem(exc, key)) from None


def config_from_dict(raw: Mapping[str, Any], *, path: str | None = None) -> Config:
    """Build a :class:`Config` from plain data (a parsed TOML document).

    ``path`` is only used to prefix messages and to default ``train.out_dir`` to ``runs/<stem>``.

    Example:
        >>> config_from_dict({"train": {"epochs": 2}}, path="exp/a.toml").train.out_dir
        'runs/a'
        >>> config_from_dict({"train": 3})
        Traceback (most recent call last):
        ...
        contrastkit.errors.ConfigError: train: expected a table [train] (got 3)
    """
    raw = dict(raw)
    stages_raw = raw.pop("stages", None)
    for field in attrs.fields(Config):
        if field.default is None and field.name in raw and raw[field.name] is None:
            del raw[field.name]  # an optional slot left empty, as a checkpoint's stored recipe writes it
        table = raw.get(field.name)
        shorthand = field.name in SLOTS and isinstance(table, str)  # views = "color-split"
        per_view = field.name in ("augment", "encoder") and isinstance(table, list)  # [[augment]]
        if field.name in raw and not isinstance(table, Mapping) and not shorthand and not per_view:
            raise ConfigError(f"{field.name}: expected a table [{field.name}] (got {table!r})", path=path)
        # A plugin table without ``name`` keeps the slot's default plugin: [critic] temperature = 0.2
        if isinstance(field.default, PluginTable) and isinstance(table, Mapping) and "name" not in table:
            raw[field.name] = {"name": field.default.name, **table}
        if isinstance(field.default, PluginTable) and isinstance(table, list):  # [[augment]]: one per view
            raw[field.name] = [
                {"name": field.default.name, **t} if isinstance(t, Mapping) and "name" not in t else t for t in table
            ]
    try:
        config = converter.structure(raw, Config)
    except Exception as exc:  # noqa: BLE001
        raise ConfigError(_first_problem(exc), path=path) from None
    if config.train.out_dir is None:
        stem = Path(path).stem if path else "default"
        config = attrs.evolve(config, train=attrs.evolve(config.train, out_dir=str(Path("runs") / stem)))
    if stages_raw is not None:
        config = attrs.evolve(config, stages=_structure_stages(stages_raw, raw, path))
    return config


def _flat_keys(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"views": {"mode": 1}}`` and ``{"views.mode": 1}`` -> ``{"views.mode": 1}`` (TOML allows both)."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, Mapping) and value:
            flat.update(_flat_keys(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _structure_stages(value: Any, base_raw: Mapping[str, Any], path: str | None) -> list[StageConfig]:
    """``[[stages]]`` -> checked :class:`StageConfig` list; every ``set`` key validated on the base recipe."""
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(f"stages: expected an array of tables [[stages]], at least one (got {value!r})", path=path)
    stages: list[StageConfig] = []
    for i, item in enumerate(value):
        if isinstance(item, Mapping) and isinstance(item.get("set"), Mapping):
            item = {**item, "set": _flat_keys(item["set"])}
        try:
            stage = converter.structure(item, StageConfig)
        except Exception as exc:  # noqa: BLE001 - one line naming stages[i].key
            raise ConfigError(_first_problem(exc, f"stages[{i}]"), path=path) from None
        if any(s.name == stage.name for s in stages):
            raise ConfigError(f"stages[{i}].name: two stages are named {stage.name!r}; names must differ", path=path)
        if i == 0 and stage.carry:
            raise ConfigError(
                f"stages[0].carry: the first stage has no previous stage to carry weights from (got {stage.carry!r})",
                path=path,
            )
        for key, setting in stage.set.items():
            where = f'stages[{i}].set."{key}"'
            if key == "stages" or key.startswith("stages.") or key == "train.out_dir":
                raise ConfigError(f"{where}: a stage cannot set this; each stage runs in <train.out_dir>/<name>", path=path)
            try:
                config_from_dict(_assign(base_raw, key, setting), path=None)
            except (ConfigError, _NotATable) as exc:
                message = exc.message if isinstance(exc, ConfigError) else str(exc)
                _, _, problem = message.partition(": ")
                same = isinstance(exc, ConfigError) and (exc.key.startswith(key) or key.startswith(exc.key + "."))
                raise ConfigError(f"{where}: {problem if same else message}", path=path) from None
        stages.append(stage)
    return stages


class _NotATable(Exception):
    pass


def _assign(raw: Mapping[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of ``raw`` with dotted ``key`` set to ``value`` (tables along the way copied, not shared)."""
    result: dict[str, Any] = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in raw.items()}
    *parents, leaf = key.split(".")
    node = result
    for depth, part in enumerate(parents):
        child = node.setdefault(part, {})
        if depth == 0 and part in SLOTS and isinstance(child, str):
            child = {"name": child}  # shorthand views = "color-split" still takes views.space=...
        if not isinstance(child, Mapping):
            raise _NotATable(f"{'.'.join(parents[: depth + 1])} is a value, not a table")
        node[part] = child = dict(child)
        node = child
    node[leaf] = value
    return result


def _parse_override_value(text: str) -> Any:
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text  # a bare word: treat it as a string (--set views.name=color-split)


def apply_overrides(raw: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``--set table.key=value`` overrides (values parsed as TOML) to a raw recipe.

    Example:
        >>> apply_overrides({"train": {"lr": 0.1}}, ["train.lr=0.5", "critic.name=cosine"])
        {'train': {'lr': 0.5}, 'critic': {'name': 'cosine'}}
    """
    result: dict[str, Any] = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in raw.items()}
    for override in overrides:
        key, sep, text = override.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"--set {override!r}: expected KEY=VALUE, e.g. --set train.max_steps=20")
        try:
            result = _assign(result, key, _parse_override_value(text.strip()))
        except _NotATable as exc:
            raise ConfigError(f"--set {override!r}: {exc}") from None
    return result


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file; a missing or malformed file is a one-line :class:`ConfigError`."""
    p = Path(path)
    if not p.is_file():
        problem = "is a directory, expected a TOML file" if p.is_dir() else "file not found; check the path"
        raise ConfigError(problem, path=str(path))
    try:
        with p.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read file: {exc}", path=str(path)) from None


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> Config:
    """Read a TOML recipe, apply ``--set`` overrides and structure it.

    Plugin names and parameters are checked when the pipeline is built
    (:meth:`contrastkit.Pipeline.from_config`), still before any training.

    Example:
        >>> import tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "run.toml"
        >>> _ = f.write_text('[train]\\nmax_steps = 3\\n')
        >>> cfg = load_config(f, ["train.lr=0.01"])
        >>> cfg.train.max_steps, cfg.train.lr, cfg.train.out_dir
        (3, 0.01, 'runs/run')
    """
    raw = read_toml(path)
    try:
        raw = apply_overrides(raw, overrides)
    except ConfigError as exc:
        raise exc.with_path(str(path)) from None
    return config_from_dict(raw, path=str(path))


@attrs.frozen
class Stage:
    """One resolved stage of a staged recipe: its entry, index and the full :class:`Config` it trains.

    Example:
        >>> stages = stages_from_dict({"stages": [{"name": "a"}, {"name": "b", "carry": ["view_maker"]}]})
        >>> [(s.index, s.name, s.config.train.out_dir, s.is_last) for s in stages]
        [(0, 'a', 'runs/default/a', False), (1, 'b', 'runs/default/b', True)]
    """

    index: int
    count: int
    entry: StageConfig
    config: Config

    @property
    def name(self) -> str:
        """The stage's name (its run folder under the recipe's ``train.out_dir``)."""
        return self.entry.name

    @property
    def is_last(self) -> bool:
        """Whether this is the final stage (the one ``eval``/``export`` use)."""
        return self.index == self.count - 1


def stages_from_dict(raw: Mapping[str, Any], overrides: Sequence[str] = (), *, path: str | None = None) -> list[Stage]:
    """Resolve a staged recipe: each stage = base recipe <- stage ``set`` <- command-line ``overrides``.

    The command line wins, so ``--set train.max_steps=3`` shortens every stage. Each stage runs in
    ``<train.out_dir>/<stage name>``. Earlier stages start with ``eval.knn`` and ``eval.linear`` off
    (the probes run after the last stage) unless their ``set`` or ``--set`` turns them on. A recipe
    without ``stages`` gives ``[]``.

    Example:
        >>> raw = {"train": {"epochs": 2}, "stages": [{"name": "views", "set": {"train.epochs": 3}},
        ...                                          {"name": "contrast"}]}
        >>> [s.config.train.epochs for s in stages_from_dict(raw, ["train.max_steps=5"])]
        [3, 2]
        >>> [(s.config.train.max_steps, s.config.eval.knn) for s in stages_from_dict(raw, ["train.max_steps=5"])]
        [(5, False), (5, True)]
    """
    try:
        with_overrides = apply_overrides(raw, overrides)
    except ConfigError as exc:
        raise exc.with_path(path) from None
    base = config_from_dict(with_overrides, path=path)  # validates the stages and each of their keys
    if not base.stages:
        return []
    base_raw = {k: v for k, v in raw.items() if k != "stages"}
    root = Path(base.train.out_dir or "runs/default")
    resolved: list[Stage] = []
    for i, entry in enumerate(base.stages):
        staged = base_raw
        if i < len(base.stages) - 1:
            staged = _assign(_assign(staged, "eval.knn", False), "eval.linear", False)
        for key, value in entry.set.items():
            staged = _assign(staged, key, value)
        staged = apply_overrides(staged, overrides)
        staged["train"] = {**staged.get("train", {}), "out_dir": str(root / entry.name)}
        try:
            config = config_from_dict(staged, path=None)
        except ConfigError as exc:  # only a combination of keys can fail here: each was checked alone
            raise ConfigError(f"stages[{i}] ({entry.name}): {exc.message}", path=path) from None
        resolved.append(Stage(index=i, count=len(base.stages), entry=entry, config=config))
    return resolved


def load_stages(path: str | Path, overrides: Sequence[str] = ()) -> list[Stage]:
    """Read a TOML recipe and resolve its ``[[stages]]`` (``[]`` without stages); see :func:`stages_from_dict`.

    Example:
        >>> import tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "two.toml"
        >>> _ = f.write_text('[[stages]]\\nname = "a"\\n[[stages]]\\nname = "b"\\nset = { "train.lr" = 0.5 }\\n')
        >>> [(s.name, s.config.train.lr, s.config.train.out_dir) for s in load_stages(f)]
        [('a', 0.001, 'runs/two/a'), ('b', 0.5, 'runs/two/b')]
    """
    return stages_from_dict(read_toml(path), overrides, path=str(path))

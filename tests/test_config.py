"""Malformed recipes fail before training with one line: ``path/to/file.toml: table.key: problem (got X)``.

Each case is written to a real TOML file and goes through the same two stages as ``contrastkit train``:
:func:`contrastkit.config.load_config` (TOML, overrides, typed tables) and
:meth:`contrastkit.Trainer.from_config` (which builds the pipeline with :meth:`contrastkit.Pipeline.from_config`,
so plugin names, plugin parameters and dataset-dependent checks run). Training itself is never started.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest
import torch

from contrastkit import Pipeline, Trainer
from contrastkit.config import Config, PluginTable, apply_overrides, config_from_dict, load_config
from contrastkit.errors import ConfigError
from contrastkit.slots import BY_TABLE, SLOT_TABLE, Slot

#: Cases that must get past load_config to fail use a small dataset and encoder, so building is quick.
SMALL = '[data]\nname = "colorful-moving-digits"\nsize = 64\n[encoder]\nwidth = 4\ndepth = 2\n'

# (id, recipe text, the expected message after "path: ")
CASES = [
    # -- load_config: tables and typed keys --------------------------------------------------
    (
        "unknown-table-close-match",
        "[trian]\nepochs = 2\n",
        "trian: unknown table; did you mean 'train'?",
    ),
    (
        "unknown-plugin-table-close-match",
        "[critc]\ntemperature = 0.1\n",
        "critc: unknown table; did you mean 'critic'?",
    ),
    (
        "unknown-table-no-match-lists-tables",
        "[zzz]\na = 1\n",
        "zzz: unknown table; valid keys: data, augment, views, encoder, critic, negatives, objective, "
        "regularizer, train, eval, log",
    ),
    (
        "unknown-train-key-close-match",
        "[train]\nepohcs = 2\n",
        "train.epohcs: unknown key; did you mean 'epochs'?",
    ),
    (
        "train-table-is-not-a-table",
        "train = 3\n",
        "train: expected a table [train] (got 3)",
    ),
    (
        "wrong-type-string-for-int",
        '[train]\nepochs = "ten"\n',
        "train.epochs: expected an integer (got 'ten')",
    ),
    (
        "bool-given-as-string",
        '[log]\ntensorboard = "true"\n',
        "log.tensorboard: expected true or false (got 'true')",
    ),
    (
        "float-for-int",
        "[train]\nbatch_size = 16.5\n",
        "train.batch_size: expected an integer (got 16.5)",
    ),
    (
        "string-for-optional-string",
        "[train]\nout_dir = 5\n",
        "train.out_dir: expected a string (got 5)",
    ),
    (
        "negative-lr",
        "[train]\nlr = -0.1\n",
        "train.lr: must be > 0 (got -0.1)",
    ),
    (
        "momentum-out-of-range",
        "[train]\nmomentum = 1.5\n",
        "train.momentum: must be in [0, 1) (got 1.5)",
    ),
    (
        "batch-size-one",
        "[train]\nbatch_size = 1\n",
        "train.batch_size: must be >= 2 (contrastive losses need negatives) (got 1)",
    ),
    (
        "knn-k-zero",
        "[eval]\nknn_k = 0\n",
        "eval.knn_k: must be >= 1 (got 0)",
    ),
    (
        "bad-device-string",
        '[train]\ndevice = "gpu"\n',
        "train.device: must be auto, cpu, mps, cuda or cuda:N (got 'gpu')",
    ),
    (
        "bad-graph-literal",
        '[train]\ngraph = "star"\n',
        "train.graph: must be one of 'core', 'full' (got 'star')",
    ),
    (
        "bad-optimizer-literal",
        '[train]\noptimizer = "adam"\n',
        "train.optimizer: must be one of 'adamw', 'sgd', 'lars' (got 'adam')",
    ),
    (
        "list-item-wrong-type-names-index",
        '[eval]\nlabels = ["digit", 3]\n',
        "eval.labels[1]: expected a string (got 3)",
    ),
    (
        "regularizer-table-without-name",
        "[regularizer]\nalpha = 0.5\n",
        "regularizer: missing key 'name' (the registered plugin name) (got {'alpha': 0.5})",
    ),
    (
        "plugin-name-not-a-string",
        "[encoder]\nname = 3\n",
        "encoder: 'name' must be a non-empty string (got 3)",
    ),
    (
        "plugin-slot-not-a-table",
        "views = 3\n",
        "views: expected a table [views] (got 3)",
    ),
    # -- Pipeline.from_config: plugin names and parameters -----------------------------------
    (
        "unknown-plugin-name-close-match",
        SMALL + '[objective]\nname = "infonec"\n',
        "objective.name: unknown objectives name 'infonec'; did you mean 'infonce'? "
        "(run `contrastkit plugins` to list every name)",
    ),
    (
        "unknown-plugin-parameter-close-match",
        SMALL + "[critic]\ntemprature = 0.2\n",
        "critic.temprature: unknown parameter of critics 'cosine'; did you mean 'temperature'?",
    ),
    (
        "unknown-plugin-parameter-lists-parameters",
        SMALL + "[critic]\nxyz = 1\n",
        "critic.xyz: unknown parameter of critics 'cosine'; parameters: head, embedding_dim, temperature, hidden, shared_head, learn_temperature, temperature_range, predictor",
    ),
    (
        "plugin-parameter-wrong-type",
        '[data]\nsize = 64\n[encoder]\nwidth = "wide"\n',
        "encoder.width: expected an integer (got 'wide')",
    ),
    (
        "plugin-parameter-bad-literal",
        SMALL + '[critic]\nhead = "deep"\n',
        "critic.head: must be one of 'none', 'linear', 'mlp' (got 'deep')",
    ),
    (
        "plugin-parameter-tuple-length",
        SMALL + '[augment]\nname = "crop-flip"\nscale = [0.5]\n',
        "augment.scale: expected a list of 2 items (got [0.5])",
    ),
    (
        "regularizer-parameter-wrong-type",
        SMALL + '[regularizer]\nname = "relic"\nalpha = "x"\n',
        "regularizer.alpha: expected a number (got 'x')",
    ),
    (
        "invalid-parameter-from-factory",
        SMALL + "[critic]\ntemperature = -1.0\n",
        "critic.temperature: must be > 0 (got -1.0)",
    ),
    (
        "invalid-parameter-from-dataset",
        "[data]\nsize = 0\n",
        "data.size: must be >= 1 (got 0)",
    ),
    (
        "injected-parameter-set-by-user",
        "[data]\nsize = 64\n[encoder]\nin_channels = 3\n",
        "encoder.in_channels: set by contrastkit from the pipeline, not by the recipe; remove it",
    ),
    (
        "plugin-parameter-nested-list-item-names-index",
        SMALL + '[views]\ngroups = [[0], [1, "x"]]\n',
        "views.groups[1][1]: expected an integer (got 'x')",
    ),
    (
        "color-split-one-group",
        SMALL + "[views]\ngroups = [[0]]\n",
        "views.groups: needs at least two groups (one per view), e.g. [[0], [1, 2]] (got [[0]])",
    ),
    (
        "color-split-bad-channel",
        SMALL + "[views]\ngroups = [[0], [3]]\n",
        "views.groups: each group must list channel indices 0, 1 or 2 (got [[0], [3]])",
    ),
    # -- Trainer.from_config: checks against the built dataset and the machine ---------------
    (
        "batch-size-larger-than-dataset",
        SMALL + '[train]\nbatch_size = 128\ndevice = "cpu"\n',
        "train.batch_size: larger than the dataset (64 samples); lower it or enlarge the data (got 128)",
    ),
    (
        "eval-label-not-in-dataset",
        SMALL + '[train]\nbatch_size = 16\ndevice = "cpu"\n[eval]\nlabels = ["digt"]\n',
        "eval.labels: the dataset has no label 'digt'; did you mean 'digit'? (got 'digt')",
    ),
    pytest.param(
        "cuda-requested-without-cuda",
        SMALL + '[train]\nbatch_size = 16\ndevice = "cuda"\n',
        "train.device: CUDA is not available on this machine; use 'auto' or 'cpu' (got 'cuda')",
        marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA"),
        id="cuda-requested-without-cuda",
    ),
]


def _case_id(case: object) -> str:
    return case[0] if isinstance(case, tuple) else case.id  # type: ignore[index,attr-defined]


def build(path: Path, overrides: list[str] | None = None) -> Trainer:
    """Everything ``contrastkit train`` does before its first step."""
    config = load_config(path, overrides or [])
    return Trainer.from_config(config, path=str(path), print_fn=lambda _: None)


def assert_one_line(exc: ConfigError, path: Path, expected: str) -> None:
    text = str(exc)
    assert "\n" not in text and "\r" not in text, f"message is not one line: {text!r}"
    assert text.startswith(f"{path}: "), text
    assert text == f"{path}: {expected}"
    assert exc.path == str(path)
    assert exc.message == expected
    head = expected.partition(": ")[0]
    if " " not in head:  # the message names a dotted key (or a table)
        assert exc.key == head


@pytest.mark.parametrize(("case_id", "text", "expected"), CASES, ids=[_case_id(c) for c in CASES])
def test_malformed_recipe_fails_with_one_line(tmp_path: Path, case_id: str, text: str, expected: str) -> None:
    path = tmp_path / f"{case_id}.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        build(path)
    assert_one_line(info.value, path, expected)
    assert info.value.__cause__ is None  # raised "from None": the CLI has no chained traceback to show


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 14


def test_invalid_toml_syntax(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('[train\nepochs = 1\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(f"{path}: invalid TOML: ")
    assert "line 1" in text  # tomllib says where


@pytest.mark.parametrize(
    ("source", "line"),
    [("[train]\nlr = 0.1.2\n", "line 2"), ("[train]\nlr = 0.1\n[train]\nlr = 0.2\n", "line 3")],
    ids=["bad-value", "duplicate-table"],
)
def test_invalid_toml_names_the_line(tmp_path: Path, source: str, line: str) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(source)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(f"{path}: invalid TOML: ")
    assert line in text


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[train]\nout_dir = "\xff"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(f"{path}: cannot read file: ")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: file not found; check the path"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    path = tmp_path / "dir.toml"
    path.mkdir()
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: is a directory, expected a TOML file"


def test_string_given_where_list_expected(tmp_path: Path) -> None:
    path = tmp_path / "labels.toml"
    path.write_text('[eval]\nlabels = "digit"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: eval.labels: expected a list (got 'digit')"


# -- overrides -----------------------------------------------------------------------------------
def test_apply_overrides_creates_nested_tables_without_mutating_input() -> None:
    raw = {"train": {"lr": 0.1}}
    result = apply_overrides(raw, ["a.b.c=1", "train.epochs=3"])
    assert result == {"train": {"lr": 0.1, "epochs": 3}, "a": {"b": {"c": 1}}}
    assert raw == {"train": {"lr": 0.1}}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0.5", 0.5),
        ("1e-3", 0.001),
        ("7", 7),
        ("true", True),
        ("false", False),
        ('"quoted"', "quoted"),
        ("'single'", "single"),
        ('["digit", "background"]', ["digit", "background"]),
        ("[[0], [1, 2]]", [[0], [1, 2]]),
        ("[0.5, 1.0]", [0.5, 1.0]),
        ('{name = "relic", alpha = 0.5}', {"name": "relic", "alpha": 0.5}),
        # bare words that are not TOML values are strings
        ("color-split", "color-split"),
        ("cuda:0", "cuda:0"),
        ("/tmp/some run", "/tmp/some run"),
        ("ten", "ten"),
    ],
)
def test_apply_overrides_parses_values_as_toml(text: str, value: object) -> None:
    result = apply_overrides({}, [f"x.y={text}"])
    assert result["x"]["y"] == value
    assert type(result["x"]["y"]) is type(value)


def test_apply_overrides_value_may_contain_equals_and_spaces() -> None:
    assert apply_overrides({}, [" train.out_dir = runs/a=b "]) == {"train": {"out_dir": "runs/a=b"}}


@pytest.mark.parametrize("override", ["train.lr", "=3", "train..lr=3", ".lr=3", "train.=3"])
def test_malformed_set_is_one_line(override: str) -> None:
    with pytest.raises(ConfigError) as info:
        apply_overrides({}, [override])
    assert str(info.value) == f"--set {override!r}: expected KEY=VALUE, e.g. --set train.max_steps=20"


def test_malformed_set_through_load_config_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text("[train]\nepochs = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, ["train.lr"])
    assert str(info.value) == f"{path}: --set 'train.lr': expected KEY=VALUE, e.g. --set train.max_steps=20"


def test_override_through_a_value_that_is_not_a_table(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        apply_overrides({"train": {"lr": 0.1}}, ["train.lr.x=1"])
    assert str(info.value) == "--set 'train.lr.x=1': train.lr is a value, not a table"

    path = tmp_path / "run.toml"
    path.write_text("[train]\nlr = 0.1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, ["train.lr.x=1"])
    assert str(info.value) == f"{path}: --set 'train.lr.x=1': train.lr is a value, not a table"
    assert "\n" not in str(info.value)


def test_overrides_are_type_checked_like_the_file(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text("[train]\nepochs = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, ["train.epochs=ten"])  # bare word -> the string 'ten'
    assert str(info.value) == f"{path}: train.epochs: expected an integer (got 'ten')"


def test_overrides_apply(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('[train]\nlr = 0.1\n[critic]\nname = "cosine"\ntemperature = 0.5\n')
    cfg = load_config(path, ["train.lr=0.01", "critic.temperature=0.2", "views.space=ydbdr", "eval.knn=false"])
    assert cfg.train.lr == 0.01
    assert cfg.critic == PluginTable("cosine", {"temperature": 0.2})
    assert cfg.views == PluginTable("color-split", {"space": "ydbdr"})  # no name: the slot default
    assert cfg.eval.knn is False
    assert cfg.train.out_dir == str(Path("runs") / "run")


# -- plugin-table forms --------------------------------------------------------------------------
def test_table_without_name_keeps_the_slot_default(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text("[critic]\ntemperature = 0.2\n[encoder]\nwidth = 4\ndepth = 2\n[data]\nsize = 32\n")
    cfg = load_config(path)
    assert cfg.critic == PluginTable("cosine", {"temperature": 0.2})
    assert cfg.encoder == PluginTable("convnet", {"width": 4, "depth": 2})
    assert cfg.data.name == "colorful-moving-digits"
    pipe = Pipeline.from_config(cfg, path=str(path))
    assert pipe.critic.temperature == 0.2
    assert pipe.critic.registered_name == "cosine"


def test_string_shorthand_for_a_plugin_table(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('views = "color-split"\nobjective = "infonce"\n[encoder]\nwidth = 4\ndepth = 2\n')
    cfg = load_config(path)
    assert cfg.views == PluginTable("color-split")
    assert cfg.objective == PluginTable("infonce")
    pipe = Pipeline.from_config(cfg, path=str(path))
    assert pipe.view_channels == (1, 2)


def test_string_shorthand_with_unknown_name_fails_at_build(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('views = "colour-split"\n')
    with pytest.raises(ConfigError) as info:
        build(path)
    assert str(info.value) == (
        f"{path}: views.name: unknown view_makers name 'colour-split'; did you mean 'color-split'? "
        "(run `contrastkit plugins` to list every name)"
    )


def test_empty_file_is_the_default_recipe(tmp_path: Path) -> None:
    path = tmp_path / "empty.toml"
    path.write_text("")
    cfg = load_config(path)
    assert cfg.views.name == "color-split" and cfg.regularizer is None
    assert cfg.train.out_dir == str(Path("runs") / "empty")


def test_config_from_dict_without_path_has_no_prefix() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({"train": {"momentum": -0.5}})
    assert str(info.value) == "train.momentum: must be in [0, 1) (got -0.5)"
    assert info.value.path is None


def test_set_extends_a_shorthand_slot(tmp_path) -> None:
    from contrastkit.config import load_config as _load

    path = tmp_path / "short.toml"
    path.write_text('views = "color-split"\n')
    config = _load(path, ["views.space=ydbdr"])
    assert config.views.name == "color-split" and dict(config.views.params) == {"space": "ydbdr"}


def test_an_empty_optional_slot_from_a_stored_recipe_is_absent() -> None:
    import attrs as _attrs

    from contrastkit.config import config_from_dict as _from_dict

    stored = {"regularizer": None, "train": {"epochs": 1}}
    config = _from_dict(stored)
    assert config.regularizer is None and config.train.epochs == 1
    fields = {f.name for f in _attrs.fields(type(config))}
    assert "regularizer" in fields


@pytest.mark.parametrize("slot", SLOT_TABLE, ids=[slot.table for slot in SLOT_TABLE])
def test_every_slot_is_a_plugin_table_of_the_recipe(slot: Slot) -> None:
    """A recipe's plugin tables are the slot table's: same order, the slot's default, per view where it says."""
    plugin_fields = [field.name for field in attrs.fields(Config) if field.name in BY_TABLE]
    assert plugin_fields == [s.table for s in SLOT_TABLE]
    assert getattr(Config(), slot.table) == (PluginTable(slot.default) if slot.default else None)
    name = slot.default or "relic"
    assert getattr(config_from_dict({slot.table: name}), slot.table) == PluginTable(name)  # views = "color-split"
    per_view = {slot.table: [{"name": name}, {"name": name}]}  # [[table]], one per view
    if slot.per_view:
        assert getattr(config_from_dict(per_view), slot.table) == [PluginTable(name), PluginTable(name)]
    else:
        with pytest.raises(ConfigError, match=rf"^{slot.table}"):
            config_from_dict(per_view)

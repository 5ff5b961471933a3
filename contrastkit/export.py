"""Trained encoders out of a run: read a checkpoint, export its encoders to safetensors, load them back.

An export holds the per-view encoders' weights, keyed as in ``Pipeline.encoders`` (``0.body.0.weight``
...), plus metadata: the recipe (the whole ``Config`` dict, as JSON), each view's channels, which
encoder serves which view and the feature sizes. :func:`load_encoder` rebuilds the encoders through
the registry from that recipe, so an encoder contributed by a plugin loads wherever the plugin is
installed; no pickle is involved. View makers are not exported: rebuild them from the stored
``views`` table (a trainable view maker's weights stay in the checkpoint).

Example:
    >>> import tempfile, torch
    >>> from pathlib import Path
    >>> from contrastkit.config import config_from_dict
    >>> from contrastkit.training import Trainer
    >>> run = Path(tempfile.mkdtemp())
    >>> cfg = config_from_dict({
    ...     "data": {"size": 32}, "encoder": {"name": "convnet", "width": 4, "depth": 2},
    ...     "train": {"max_steps": 1, "batch_size": 16, "device": "cpu", "out_dir": str(run)},
    ...     "eval": {"knn": False}, "log": {"progress": False, "tensorboard": False}})
    >>> trainer = Trainer.from_config(cfg, print_fn=lambda line: None)
    >>> checkpoint = trainer.fit().checkpoint
    >>> info = export_checkpoint(checkpoint, run / "encoder.safetensors")
    >>> info.view_channels, info.feature_dims
    ((1, 2), (8, 8))
    >>> encoders = load_encoder(run / "encoder.safetensors")
    >>> images = torch.rand(2, 1, 32, 32)
    >>> torch.equal(encoders[0](images), trainer.pipeline.eval().encoders[0](images))
    True
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import torch
from torch import nn

from contrastkit.errors import CheckpointError, ContrastkitError, InvalidParameter
from contrastkit.factories import build_component
from contrastkit.registry import Registry, get_registry
from contrastkit.training.checkpoint import first_nonfinite, read_checkpoint
from contrastkit.training.preflight import check_export_target

if TYPE_CHECKING:
    from contrastkit.pipeline import Pipeline

__all__ = [
    "EXPORT_FORMAT",
    "ExportInfo",
    "build_encoders",
    "export_checkpoint",
    "export_encoders",
    "load_encoder",
    "read_checkpoint",
    "read_export",
]

#: The ``format`` metadata entry of an encoder export.
EXPORT_FORMAT = "contrastkit-encoders/1"


@attrs.frozen
class ExportInfo:
    """What an export holds besides the weights.

    ``view_encoder[i]`` is the index (in the export's encoders) of view ``i``'s encoder;
    ``config`` is the recipe as plain data (``Config.as_dict()``).

    Example:
        >>> info = ExportInfo(config={}, view_channels=(1, 2), view_encoder=(0, 1), feature_dims=(8, 8))
        >>> info.num_views
        2
    """

    config: Mapping[str, Any]
    view_channels: tuple[int, ...]
    view_encoder: tuple[int, ...]
    feature_dims: tuple[int, ...]
    step: int | None = None

    @property
    def num_views(self) -> int:
        """How many views the encoders serve."""
        return len(self.view_channels)

    def metadata(self) -> dict[str, str]:
        """The safetensors metadata (string values only).

        Example:
            >>> info = ExportInfo(config={}, view_channels=(1, 2), view_encoder=(0, 1), feature_dims=(8, 8))
            >>> info.metadata()["view_channels"]
            '[1, 2]'
        """
        meta = {
            "format": EXPORT_FORMAT,
            "config": json.dumps(self.config, default=str),
            "view_channels": json.dumps(list(self.view_channels)),
            "view_encoder": json.dumps(list(self.view_encoder)),
            "feature_dims": json.dumps(list(self.feature_dims)),
        }
        if self.step is not None:
            meta["step"] = str(self.step)
        return meta


# -- building and exporting ------------------------------------------------------------------------
def build_encoders(config: Mapping[str, Any], view_channels: Sequence[int], view_encoder: Sequence[int], *,
                   registry: Registry | None = None) -> nn.ModuleList:
    """Freshly initialised encoders of a recipe, one per distinct entry of ``view_encoder``.

    The recipe's ``encoder`` is one table (``shared = true`` or not) or a list of per-view tables
    (``[[encoder]]``). Encoder ``e`` is built for the first view it serves, with that view's
    channels. The caller's RNG state is kept.

    Example:
        >>> encs = build_encoders({"encoder": {"name": "convnet", "width": 4, "depth": 2}}, (1, 2), (0, 1))
        >>> [e.in_channels for e in encs], encs[1].feature_dim
        ([1, 2], 8)
        >>> per_view = [{"name": "convnet", "width": 4, "depth": 1}, {"name": "convnet", "width": 2, "depth": 1}]
        >>> [e.feature_dim for e in build_encoders({"encoder": per_view}, (3, 3), (0, 1))]
        [4, 2]
    """
    registry = registry or get_registry()
    view_encoder = list(view_encoder)
    count = max(view_encoder) + 1 if view_encoder else 0
    if sorted(set(view_encoder)) != list(range(count)) or len(view_encoder) != len(view_channels):
        raise InvalidParameter("view_encoder", f"must map each of the {len(view_channels)} views to encoders 0..N-1",
                               tuple(view_encoder))
    spec = config.get("encoder", "convnet")
    per_view = isinstance(spec, Sequence) and not isinstance(spec, str)
    if per_view and len(spec) != len(view_channels):
        raise ContrastkitError(f"encoder: {len(spec)} per-view tables for {len(view_channels)} views")
    if isinstance(spec, Mapping):  # ``shared`` is read by Pipeline.from_config, not by the encoder factory
        spec = {k: v for k, v in spec.items() if k != "shared"}
    encoders = []
    with torch.random.fork_rng(devices=[]):  # the weights are about to be overwritten anyway
        for e in range(count):
            view = view_encoder.index(e)
            table_spec, table = (spec[view], f"encoder[{view}]") if per_view else (spec, "encoder")
            encoders.append(build_component(registry, "encoders", table_spec, table=table,
                                            injected={"in_channels": int(view_channels[view])}))
    return nn.ModuleList(encoders)


def _write(path: str | Path, encoders: nn.Module, info: ExportInfo) -> None:
    from safetensors.torch import save_file

    # clone: safetensors refuses tensors that share storage (tied weights, views)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in encoders.state_dict().items()}
    out = Path(path)
    check_export_target(out)
    tmp = out.with_name(f".{out.name}.tmp")
    try:  # atomic: a failed or killed write leaves an earlier export at `out` as it was
        out.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(tmp), metadata=info.metadata())
        os.replace(tmp, out)
    except (OSError, RuntimeError) as exc:
        tmp.unlink(missing_ok=True)
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0]
        raise CheckpointError(f"{out}: cannot write the export: {detail}; free space or choose another --out") from None


def export_encoders(pipeline: Pipeline, path: str | Path, *, step: int | None = None) -> ExportInfo:
    """Write a live pipeline's encoders (built by ``Pipeline.from_config``) to ``path`` as safetensors.

    Example:
        >>> import tempfile, pathlib
        >>> from contrastkit import Pipeline
        >>> from contrastkit.config import config_from_dict
        >>> pipe = Pipeline.from_config(config_from_dict({"data": {"size": 4}, "encoder": {"width": 4, "depth": 2}}))
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "enc.safetensors"
        >>> export_encoders(pipe, out).view_encoder
        (0, 1)
    """
    config = getattr(pipeline, "config", None)
    if config is None:
        raise ContrastkitError("export: the pipeline has no recipe; build it with Pipeline.from_config to export it")
    info = ExportInfo(
        config=config.as_dict(),
        view_channels=tuple(int(c) for c in pipeline.view_channels),
        view_encoder=tuple(int(e) for e in pipeline.view_encoder),
        feature_dims=tuple(int(f) for f in pipeline.feature_dims),
        step=step,
    )
    _write(path, pipeline.encoders, info)
    return info


def export_checkpoint(checkpoint: str | Path, path: str | Path, *, registry: Registry | None = None) -> ExportInfo:
    """Export the encoders of a training checkpoint to ``path`` (see the module example).

    The encoders are rebuilt from the checkpoint's recipe and loaded strictly, so a checkpoint that
    does not fit its own recipe fails here rather than at load time.

    Example:
        >>> import tempfile
        >>> from contrastkit.config import config_from_dict
        >>> from contrastkit.training import Trainer
        >>> run = Path(tempfile.mkdtemp())
        >>> cfg = config_from_dict({
        ...     "data": {"size": 32}, "encoder": {"name": "convnet", "width": 4, "depth": 2, "shared": True},
        ...     "views": {"name": "augmented-copies"},
        ...     "train": {"max_steps": 1, "batch_size": 16, "device": "cpu", "out_dir": str(run)},
        ...     "eval": {"knn": False}, "log": {"progress": False, "tensorboard": False}})
        >>> checkpoint = Trainer.from_config(cfg, print_fn=lambda line: None).fit().checkpoint
        >>> info = export_checkpoint(checkpoint, run / "encoder.safetensors")
        >>> info.view_encoder, info.step
        ((0, 0), 1)
    """
    check_export_target(path, source=checkpoint)
    payload = read_checkpoint(checkpoint)
    config = payload.get("config")
    if not isinstance(config, Mapping):
        raise ContrastkitError(f"{checkpoint}: the checkpoint has no recipe ('config'); it cannot be exported")
    registry = registry or get_registry()
    model = payload["model"]
    weights = {k[len("encoders.") :]: v for k, v in model.items() if k.startswith("encoders.")}
    if not weights:
        raise ContrastkitError(f"{checkpoint}: the checkpoint has no encoder weights ('encoders.*')")
    bad = first_nonfinite(weights.items())
    if bad is not None:
        raise CheckpointError(f"{checkpoint}: encoders.{bad} holds NaN or inf (the run diverged); export an earlier "
                              "checkpoint from its checkpoints/ folder")
    with torch.random.fork_rng(devices=[]):
        view_maker = build_component(registry, "view_makers", config.get("views", "color-split"), table="views")
    view_channels = tuple(int(c) for c in view_maker.view_channels)
    count = len({k.split(".", 1)[0] for k in weights})
    # One encoder per view, or one shared by all views ([encoder] shared = true).
    if count == len(view_channels):
        view_encoder = tuple(range(count))
    elif count == 1:
        view_encoder = (0,) * len(view_channels)
    else:
        raise ContrastkitError(
            f"{checkpoint}: {count} encoders for {len(view_channels)} views; cannot tell which view each serves"
        )
    encoders = build_encoders(config, view_channels, view_encoder, registry=registry)
    _load_strict(encoders, weights, source=str(checkpoint))
    info = ExportInfo(
        config=dict(config),
        view_channels=view_channels,
        view_encoder=view_encoder,
        feature_dims=tuple(int(encoders[e].feature_dim) for e in view_encoder),  # type: ignore[arg-type]  # an int
        step=payload.get("step") if isinstance(payload.get("step"), int) else None,
    )
    _write(path, encoders, info)
    return info


def _load_strict(module: nn.Module, state: Mapping[str, torch.Tensor], *, source: str) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(line.strip() for line in str(exc).splitlines()[1:3]) or str(exc)
        raise ContrastkitError(f"{source}: the weights do not fit the recipe's encoders: {detail}") from None


# -- loading -----------------------------------------------------------------------------------------
def read_export(path: str | Path) -> ExportInfo:
    """The metadata of an encoder export (weights are not read).

    Example:
        >>> read_export("missing.safetensors")
        Traceback (most recent call last):
        ...
        contrastkit.errors.ContrastkitError: missing.safetensors: file not found; create it with `contrastkit export`
    """
    from safetensors import safe_open

    if not Path(path).is_file():
        raise ContrastkitError(f"{path}: file not found; create it with `contrastkit export`")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            meta = fh.metadata() or {}
    except Exception as exc:  # noqa: BLE001 - not a safetensors file
        raise ContrastkitError(f"{path}: not a safetensors file ({exc})") from None
    if meta.get("format") != EXPORT_FORMAT:
        raise ContrastkitError(
            f"{path}: not a contrastkit encoder export (format {meta.get('format')!r}, "
            f"expected {EXPORT_FORMAT!r}); create one with `contrastkit export`"
        )
    return ExportInfo(
        config=json.loads(meta["config"]),
        view_channels=tuple(json.loads(meta["view_channels"])),
        view_encoder=tuple(json.loads(meta["view_encoder"])),
        feature_dims=tuple(json.loads(meta["feature_dims"])),
        step=int(meta["step"]) if "step" in meta else None,
    )


def load_encoder(path: str | Path, *, view: int | None = None, device: str | torch.device = "cpu",
                 registry: Registry | None = None) -> nn.Module:
    """Rebuild exported encoders from their recipe and load the weights; returned in ``eval()`` mode.

    Returns a ``ModuleList`` with view ``i``'s encoder at index ``i`` (the same module at several
    indices when views share one), or only view ``view``'s encoder. See the module example.

    Example:
        >>> import tempfile
        >>> from contrastkit import Pipeline
        >>> from contrastkit.config import config_from_dict
        >>> recipe = config_from_dict({"data": {"size": 4}, "views": {"name": "augmented-copies"},
        ...                            "encoder": {"width": 4, "depth": 2, "shared": True}})
        >>> pipe = Pipeline.from_config(recipe).eval()
        >>> path = Path(tempfile.mkdtemp()) / "shared.safetensors"
        >>> export_encoders(pipe, path).view_encoder
        (0, 0)
        >>> encoder, images = load_encoder(path, view=1), torch.rand(2, 3, 32, 32)
        >>> torch.equal(encoder(images), pipe.encoders[0](images)), encoder.training
        (True, False)
    """
    info = read_export(path)
    if view is not None and not 0 <= view < info.num_views:
        raise InvalidParameter("view", f"must be between 0 and {info.num_views - 1} (the export has "
                               f"{info.num_views} views)", view)
    from safetensors.torch import load_file

    encoders = build_encoders(info.config, info.view_channels, info.view_encoder, registry=registry)
    weights = load_file(str(path), device="cpu")
    bad = first_nonfinite(weights.items())
    if bad is not None:
        raise CheckpointError(f"{path}: {bad} holds NaN or inf (exported from a diverged run); export an earlier "
                              "checkpoint")
    _load_strict(encoders, weights, source=str(path))
    encoders = encoders.to(device).eval()
    if view is not None:
        return encoders[info.view_encoder[view]]
    return nn.ModuleList([encoders[e] for e in info.view_encoder]).eval()

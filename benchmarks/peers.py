"""End-to-end SimCLR training throughput of contrastkit against lightly, from a folder of JPEG files.

The script writes a JPEG folder (10 class subfolders, quality 90) so decoding counts, then trains
SimCLR on it with both libraries in alternating rounds (lightly, contrastkit, lightly, ...), each a
fresh subprocess of this script on the same device. Settings: ``32px`` (ResNet-18 with the CIFAR
stem, float32, batch 256 and 512) and ``224px`` (256-pixel files cropped to 224, ResNet-50, bf16
autocast, channels_last, batch 256 on a GPU, 8 on the CPU).

*lightly*: ``ImageFolder`` + ``SimCLRTransform`` in DataLoader workers, a torchvision ResNet,
``SimCLRProjectionHead``, ``NTXentLoss``, lightly's ``LARS`` and ``CosineWarmupScheduler``, as in
lightly's SimCLR example. *contrastkit*: ``examples/simclr.toml`` with the ``image-folder`` dataset
through ``Trainer.fit()``. Same batch, workers, optimizer settings, precision, memory format and one
shared projection head on both sides; the augmentation parameters are mapped one to one.

Timing: ``benchmarks/training.py``'s ``StepTimer`` on both sides, ``--steps`` steps after
``--warmup-steps``; per side the median images/s over ``--repeats`` rounds; ratio = contrastkit /
lightly (> 1: contrastkit faster). Peak memory: CUDA ``max_memory_allocated``; on the CPU the round
process's peak RSS (both libraries imported in every round, so the baseline is the same). See
``benchmarks/README.md`` for the details and the targets.

Usage (from a checkout after ``pip install -e .[bench]``)::

    python benchmarks/peers.py                                   # auto device, both settings
    python benchmarks/peers.py --device cuda --workers 12 --json peers.json
    python benchmarks/peers.py --device cpu --settings 32px --batch-sizes-32 256 --steps 2 --repeats 1
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as `python benchmarks/peers.py`: make `benchmarks.training` importable
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.device_info import synchronize  # noqa: E402
from benchmarks.finish import finish  # noqa: E402
from benchmarks.training import RECIPE, StepTimer, benchmark_overrides  # noqa: E402
from benchmarks.training import Settings as TrainingSettings  # noqa: E402
from contrastkit.augmentations.simclr import SimCLRAugmentation  # noqa: E402
from contrastkit.config import Config, load_config  # noqa: E402
from contrastkit.errors import ConfigError  # noqa: E402
from contrastkit.training import Trainer, select_device  # noqa: E402

MISSING_LIGHTLY = "peers.py: lightly is not installed; pip install -e .[bench]"
SKIP_STATUS = 69  # os.EX_UNAVAILABLE: run_all reports the benchmark as skipped, not failed
SIDES = ("lightly", "contrastkit")
CLASSES = 10
# contrastkit / lightly images/s at least; 224px on the CPU has none (a GPU comparison).
TARGETS = {("cpu", "32px"): 1.0, ("cuda", "32px"): 1.3, ("cuda", "224px"): 2.0}


@attrs.frozen
class Setting:
    """One compared configuration: the files' side, the crop fed to the encoder, encoder, precision, layout.

    Example:
        >>> SETTINGS["224px"].file_size, SETTINGS["224px"].crop, SETTINGS["32px"].target("cuda")
        (256, 224, 1.3)
    """

    name: str
    file_size: int
    crop: int
    encoder: str
    cifar_stem: bool
    precision: str
    channels_last: bool

    def target(self, device: str) -> float | None:
        """The images/s ratio wanted on ``device`` (``None``: no target there)."""
        return TARGETS.get((device.split(":")[0], self.name))


SETTINGS = {
    "32px": Setting("32px", 32, 32, "resnet18", True, "32", False),
    # Files larger than the crop, as ImageNet's are: the random resized crop and the decode do real work.
    "224px": Setting("224px", 256, 224, "resnet50", False, "bf16", True),
}


@attrs.frozen
class Options:
    """The command line, resolved (``device`` is never ``auto``; ``images`` 0 sizes one epoch).

    Example:
        >>> [(s.name, b) for s, b in Options(device="cpu").rows()]
        [('32px', 256), ('32px', 512), ('224px', 8)]
    """

    device: str
    settings: tuple[str, ...] = ("32px", "224px")
    batch_sizes_32: tuple[int, ...] = (256, 512)
    batch_size_224: int = 8
    size_32: int = 32
    steps: int = 2
    warmup_steps: int = 1
    repeats: int = 1
    images: int = 0
    workers: int = 2
    decode: str = "workers"
    data_dir: str | None = None

    def rows(self) -> list[tuple[Setting, int]]:
        """Every (setting, batch) compared, in order (``--size-32`` shrinks the 32px files and crop)."""
        out = []
        for name in self.settings:
            setting = SETTINGS[name]
            if name == "32px":
                setting = attrs.evolve(setting, file_size=self.size_32, crop=self.size_32)
            out += [(setting, b) for b in (self.batch_sizes_32 if name == "32px" else (self.batch_size_224,))]
        return out

    def image_count(self, name: str) -> int:
        """Images written for setting ``name``: ``--images``, or one epoch of its largest batch (at least 512)."""
        needed = max(b for s, b in self.rows() if s.name == name) * (self.warmup_steps + self.steps + 1)
        return self.images or max(needed, 512)


def write_jpeg_folder(root: Path, *, count: int, size: int, classes: int = CLASSES, seed: int = 0,
                      quality: int = 90) -> Path:
    """Write ``count`` ``size``-pixel JPEGs in ``classes`` subfolders of ``root`` (kept if already complete).

    Each image is a coarse random colour grid upsampled bicubically, one to three filled shapes and
    Gaussian noise (sigma 8): smooth regions, edges and texture, so files have a photo's size (about
    1 KB at 32 px, 20 KB at 256 px, as CIFAR-10 and ImageNet at 256 px saved at quality 90).

    Example:
        >>> import tempfile
        >>> from PIL import Image
        >>> root = write_jpeg_folder(Path(tempfile.mkdtemp()), count=4, size=16, classes=2)
        >>> sorted(p.relative_to(root).as_posix() for p in root.rglob("*.jpg"))
        ['c00/00000.jpg', 'c00/00002.jpg', 'c01/00001.jpg', 'c01/00003.jpg']
        >>> Image.open(root / "c00" / "00000.jpg").size
        (16, 16)
    """
    from PIL import Image, ImageDraw

    marker = root / f".complete-{count}-{size}-{classes}-{seed}"
    if marker.exists():
        return root
    rng = np.random.default_rng(seed)
    for c in range(classes):
        (root / f"c{c:02d}").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        grid = int(rng.integers(2, 7))
        image = Image.fromarray(rng.integers(0, 256, (grid, grid, 3), dtype=np.uint8)).resize(
            (size, size), Image.Resampling.BICUBIC)
        draw = ImageDraw.Draw(image)
        for _ in range(int(rng.integers(1, 4))):
            corner = rng.integers(0, size, 2)
            box = [*corner.tolist(), *(corner + rng.integers(size // 8 + 1, size // 2 + 2, 2)).tolist()]
            colour = tuple(rng.integers(0, 256, 3).tolist())
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
        pixels = np.asarray(image, dtype=np.float32) + rng.normal(0.0, 8.0, (size, size, 3))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
            root / f"c{i % classes:02d}" / f"{i:05d}.jpg", quality=quality)
    marker.touch()
    return root


def recipe_augment() -> dict[str, Any]:
    """The parameters of ``examples/simclr.toml``'s ``[augment]`` table (one ``simclr`` table).

    Example:
        >>> recipe_augment()
        {'strength': 0.5, 'crop_scale': [0.2, 1.0]}
    """
    table = load_config(RECIPE).augment
    if isinstance(table, list) or table.name != "simclr":
        raise ValueError(f"{RECIPE.name}: expected one [augment] table named 'simclr' (got {table!r})")
    return dict(table.params)


def simclr_transform_kwargs(augment: Mapping[str, Any], input_size: int) -> dict[str, Any]:
    """lightly ``SimCLRTransform`` arguments equal to contrastkit's ``simclr`` augmentation with ``augment``.

    contrastkit's defaults fill what ``augment`` leaves out. Jitter needs only ``cj_strength``: both
    scale (0.8, 0.8, 0.8, 0.2) by the strength. lightly's crop ends at the whole image with aspect
    ratios 3/4-4/3, so another ``crop_scale`` maximum or ``crop_ratio`` raises ``ValueError``.

    Example:
        >>> simclr_transform_kwargs({"strength": 0.5, "crop_scale": [0.2, 1.0]}, 32)
        {'input_size': 32, 'min_scale': 0.2, 'hf_prob': 0.5, 'cj_prob': 0.8, 'cj_strength': 0.5, \
'random_gray_scale': 0.2, 'gaussian_blur': 0.5, 'sigmas': (0.1, 2.0)}
    """
    aug = SimCLRAugmentation(**augment)
    if aug.crop_scale[1] != 1.0 or not np.allclose(aug.crop_ratio, (3 / 4, 4 / 3)):
        raise ValueError(f"SimCLRTransform has no crop_scale maximum or crop_ratio argument (crop_scale "
                         f"{list(aug.crop_scale)}, crop_ratio {list(aug.crop_ratio)}; needs [x, 1.0], [0.75, 1.333])")
    return {"input_size": input_size, "min_scale": aug.crop_scale[0], "hf_prob": aug.flip_p, "cj_prob": aug.jitter_p,
            "cj_strength": aug.strength, "random_gray_scale": aug.grayscale_p, "gaussian_blur": aug.blur_p,
            "sigmas": tuple(aug.blur_sigma)}


def contrastkit_overrides(setting: Setting, *, root: str, workers: int, decode: str = "workers") -> list[str]:
    """The recipe overrides that point ``examples/simclr.toml`` at the folder and at ``setting``.

    Example:
        >>> contrastkit_overrides(SETTINGS["224px"], root="/d", workers=2, decode="device")[:2]
        ["data={ name = 'image-folder', root = '/d', image_size = 256, decode = 'device' }", 'augment.size=224']
    """
    decode_key = f", decode = {decode!r}" if decode != "workers" else ""  # the key is newer than "workers"
    data = f"data={{ name = 'image-folder', root = {root!r}, image_size = {setting.file_size}{decode_key} }}"
    encoder = f"encoder={{ name = {setting.encoder!r}, cifar_stem = {str(setting.cifar_stem).lower()}, shared = true }}"
    crop = [f"augment.size={setting.crop}"] if setting.crop != setting.file_size else []
    return [data, *crop, encoder, "critic.shared_head=true", "eval.labels=['class']",
            f"train.precision={setting.precision!r}", f"train.channels_last={str(setting.channels_last).lower()}",
            f"train.num_workers={workers}"]


def contrastkit_config(job: Mapping[str, Any], *, out_dir: str) -> Config:
    """The recipe with ``training.py``'s benchmark overrides and :func:`contrastkit_overrides` for ``job``."""
    run = TrainingSettings(device=job["device"], batch=job["batch"], steps=job["steps"], warmup=job["warmup"])
    overrides = benchmark_overrides(run, out_dir=out_dir)
    overrides += contrastkit_overrides(Setting(**job["setting"]), root=job["root"], workers=job["workers"],
                                       decode=job["decode"])
    return load_config(RECIPE, overrides)


def run_contrastkit(job: Mapping[str, Any], device: torch.device) -> StepTimer:
    """Train ``job`` with ``Trainer.fit()`` and return its timer."""
    with tempfile.TemporaryDirectory(prefix="ck-peers-") as out_dir:
        trainer = Trainer.from_config(contrastkit_config(job, out_dir=out_dir), path=str(RECIPE),
                                      print_fn=lambda _: None)
        timer = StepTimer(device, start=job["warmup"], stop=job["warmup"] + job["steps"]).attach(trainer.pipeline)
        trainer.fit()
        synchronize(device)
    return timer


class LightlyStep(nn.Module):
    """The forward of lightly's SimCLR example step (both views through backbone and head, NT-Xent).

    A module so that ``StepTimer`` marks steps and times the backbone (``encoders``) as on contrastkit's side.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, criterion: nn.Module) -> None:
        super().__init__()
        self.backbone, self.projection_head, self.criterion = backbone, head, criterion
        self.encoders = [backbone]  # a plain list, not a ModuleList: the backbone is registered once

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """Two views -> the NT-Xent loss."""
        return self.criterion(self.projection_head(self.backbone(x0)), self.projection_head(self.backbone(x1)))


def lightly_model(setting: Setting) -> LightlyStep:
    """torchvision's ResNet without ``fc`` (CIFAR stem: 32px), ``SimCLRProjectionHead`` (F -> F -> 128), NT-Xent."""
    import torchvision
    from lightly.loss import NTXentLoss
    from lightly.models.modules import SimCLRProjectionHead

    backbone = getattr(torchvision.models, setting.encoder)()
    if setting.cifar_stem:  # what contrastkit's cifar_stem does (and lightly's CIFAR-10 benchmark)
        backbone.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        backbone.maxpool = nn.Identity()
    features = backbone.fc.in_features
    backbone.fc = nn.Identity()
    return LightlyStep(backbone, SimCLRProjectionHead(features, features, 128), NTXentLoss(temperature=0.5))


def run_lightly(job: Mapping[str, Any], device: torch.device) -> StepTimer:
    """Train ``job`` with lightly's pipeline, the recipe's optimizer settings, and return the timer."""
    import torchvision
    from lightly.models.utils import get_weight_decay_parameters
    from lightly.transforms import SimCLRTransform
    from lightly.utils.lars import LARS
    from lightly.utils.scheduler import CosineWarmupScheduler

    setting, recipe = Setting(**job["setting"]), load_config(RECIPE)
    transform = SimCLRTransform(**simclr_transform_kwargs(recipe_augment(), setting.crop))
    loader = torch.utils.data.DataLoader(
        torchvision.datasets.ImageFolder(job["root"], transform=transform), batch_size=job["batch"], shuffle=True,
        drop_last=True, num_workers=job["workers"], pin_memory=device.type == "cuda",
        persistent_workers=job["workers"] > 0)  # as contrastkit's loader
    torch.manual_seed(0)
    step = lightly_model(setting).to(device)
    layout = torch.channels_last if setting.channels_last else torch.contiguous_format
    step.to(memory_format=layout)
    decay, no_decay = get_weight_decay_parameters([step.backbone, step.projection_head])
    cfg = recipe.train
    optimizer = LARS([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr,
                     momentum=cfg.momentum, weight_decay=cfg.weight_decay, trust_coefficient=cfg.lars_trust)
    total = job["warmup"] + job["steps"] + 1
    # lightly refuses a warm-up longer than the run; contrastkit's schedule is still warming up then too.
    scheduler = CosineWarmupScheduler(optimizer, warmup_epochs=min(cfg.warmup_steps, total), max_epochs=total)
    timer = StepTimer(device, start=job["warmup"], stop=job["warmup"] + job["steps"]).attach(step)
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if setting.precision == "bf16"
                else contextlib.nullcontext())
    for (x0, x1), _ in itertools.islice(loader, total):
        x0, x1 = (x.to(device, non_blocking=True).contiguous(memory_format=layout) for x in (x0, x1))
        with autocast:
            loss = step(x0, x1)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
    synchronize(device)
    return timer


def run_child(job: Mapping[str, Any]) -> dict[str, float]:
    """One round of one side in this (fresh) process: ms/step, encoder ms/step and peak memory."""
    if job["threads"]:
        torch.set_num_threads(job["threads"])
    # Both libraries imported on both sides: the same RSS baseline under each side's peak.
    import lightly.loss
    import lightly.transforms  # noqa: F401

    import contrastkit

    contrastkit.get_registry()  # every built-in module loaded, as the contrastkit side has them

    device = select_device(job["device"])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    timer = (run_lightly if job["side"] == "lightly" else run_contrastkit)(job, device)
    cuda = device.type == "cuda"
    return {
        "ms_per_step": timer.ms_per_step,
        "encoder_ms": timer.forward_ms + timer.backward_ms,
        # Linux reports ru_maxrss in KiB.
        "peak_bytes": float(torch.cuda.max_memory_allocated(device) if cuda
                            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024),
    }


def run_round(side: str, setting: Setting, batch: int, options: Options, *, root: Path,
              threads: int) -> dict[str, float]:
    """Run one side's round in a fresh subprocess of this script; raises with the child's last error line."""
    with tempfile.TemporaryDirectory(prefix="ck-peers-round-") as tmp:
        job: dict[str, Any] = {
            "side": side, "setting": attrs.asdict(setting), "batch": batch, "steps": options.steps,
            "warmup": options.warmup_steps, "workers": options.workers, "device": options.device, "threads": threads,
            "decode": options.decode, "root": str(root), "result": f"{tmp}/result.json", "parent": os.getpid(),
        }
        done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(job)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.stderr.write(done.stderr[-4000:])
            lines = [line for line in done.stderr.splitlines() if line.strip()] or ["(no output)"]
            raise RuntimeError(f"the {side} round ({setting.name}, batch {batch}) failed: {lines[-1].strip()}")
        result = json.loads(Path(job["result"]).read_text(encoding="utf-8"))
    result["images_per_second"] = batch * 1000.0 / result["ms_per_step"]
    return result


def _side_summary(runs: list[dict[str, float]]) -> dict[str, Any]:
    medians = {f"median_{key}": statistics.median(r[key] for r in runs)
               for key in ("images_per_second", "ms_per_step", "encoder_ms", "peak_bytes")}
    return {"runs": runs, **medians}


def compare(setting: Setting, batch: int, options: Options, *, root: Path, threads: int,
            echo: Any = print) -> dict[str, Any]:
    """Alternate ``repeats`` rounds of lightly and contrastkit; medians, ratios and the target of one row."""
    runs: dict[str, list[dict[str, float]]] = {side: [] for side in SIDES}
    for index in range(options.repeats):
        for side in SIDES:
            r = run_round(side, setting, batch, options, root=root, threads=threads)
            runs[side].append(r)
            echo(f"{setting.name} batch {batch} round {index + 1}/{options.repeats} {side:>11}: "
                 f"{r['images_per_second']:9.1f} images/s  {r['ms_per_step']:10.1f} ms/step  "
                 f"peak {r['peak_bytes'] / 2**20:8.1f} MiB")
    sides = {side: _side_summary(runs[side]) for side in SIDES}
    ours, theirs = sides["contrastkit"], sides["lightly"]
    target = setting.target(options.device)
    fields = {k: v for k, v in attrs.asdict(setting).items() if k != "name"}
    return {"setting": setting.name, **fields, "batch": batch, **sides,
            "ratio": ours["median_images_per_second"] / theirs["median_images_per_second"],
            "memory_ratio": ours["median_peak_bytes"] / theirs["median_peak_bytes"],
            "target": target, "target_applies": target is not None}


def format_row(row: Mapping[str, Any], device: str) -> str:
    """The summary line of one compared row.

    Example:
        >>> side = lambda ips, peak: {"median_images_per_second": ips, "median_peak_bytes": peak}
        >>> row = {"setting": "32px", "batch": 256, "lightly": side(100.0, 2**30), "contrastkit": side(150.0, 2**29),
        ...        "ratio": 1.5, "memory_ratio": 0.5, "target": 1.3, "target_applies": True}
        >>> for part in format_row(row, "cuda").split("; "): print(part)
        summary 32px batch 256: lightly 100.0, contrastkit 150.0 images/s, ratio 1.500 (target >= 1.3: met)
        peak memory lightly 1024.0, contrastkit 512.0 MiB, ratio 0.500
    """
    if row["target_applies"]:
        verdict = f"target >= {row['target']:g}: {'met' if row['ratio'] >= row['target'] else 'NOT met'}"
    else:
        verdict = f"no target on {device.split(':')[0]}"
    theirs, ours = row["lightly"], row["contrastkit"]
    return (f"summary {row['setting']} batch {row['batch']}: lightly {theirs['median_images_per_second']:.1f}, "
            f"contrastkit {ours['median_images_per_second']:.1f} images/s, ratio {row['ratio']:.3f} ({verdict}); "
            f"peak memory lightly {theirs['median_peak_bytes'] / 2**20:.1f}, contrastkit "
            f"{ours['median_peak_bytes'] / 2**20:.1f} MiB, ratio {row['memory_ratio']:.3f}")


def parse_args(argv: Sequence[str] | None = None) -> tuple[Options, str | None, int]:
    """Command line -> options, the ``--json`` path and the thread count (0: torch's default)."""
    p = argparse.ArgumentParser(prog="python benchmarks/peers.py", description="SimCLR training images/s and "
                                "peak memory of contrastkit against lightly, on a generated JPEG folder.")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    p.add_argument("--settings", default="32px,224px", help="comma-separated: 32px, 224px (default: both)")
    p.add_argument("--batch-sizes-32", default="256,512", help="batch sizes of the 32px setting (default: 256,512)")
    p.add_argument("--batch-size-224", type=int, default=None, help="224px batch (default: 256 on a GPU, 8 on the CPU)")
    p.add_argument("--size-32", type=int, default=32, help="side of the 32px setting's files (smaller: smoke runs)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per round (default: 2 on the CPU, 30 on a GPU)")
    p.add_argument("--warmup-steps", type=int, default=None, help="untimed steps first (default: 1 CPU, 10 GPU)")
    p.add_argument("--repeats", type=int, default=None, help="rounds per side (default: 1 on the CPU, 3 on a GPU)")
    p.add_argument("--images", type=int, default=0, help="images per folder (default: one epoch of the largest batch)")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers, both sides (default: 8 GPU, 2 CPU)")
    p.add_argument("--decode", choices=("workers", "device"), default="workers",
                   help="contrastkit's data.decode (default: workers, Pillow in the loader workers)")
    p.add_argument("--data-dir", default=None, help="where to write (and reuse) the JPEG folders (default: a temp dir)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--json", metavar="PATH", default=None, help="also write the results as JSON to PATH")
    a = p.parse_args(argv)
    try:
        device = str(select_device(a.device))
    except (ConfigError, RuntimeError) as exc:
        p.error(f"--device: {exc}")
    gpu = not device.startswith("cpu")

    def default(value: int | None, on_gpu: int, on_cpu: int) -> int:
        return value if value is not None else on_gpu if gpu else on_cpu

    settings = tuple(s.strip() for s in a.settings.split(",") if s.strip())
    if not settings or any(s not in SETTINGS for s in settings):
        p.error(f"--settings: choose from {', '.join(SETTINGS)} (got {a.settings!r})")
    try:
        batches = tuple(int(b) for b in a.batch_sizes_32.split(","))
    except ValueError:
        p.error(f"--batch-sizes-32: comma-separated integers (got {a.batch_sizes_32!r})")
    options = Options(device=device, settings=settings, batch_sizes_32=batches,
                      batch_size_224=default(a.batch_size_224, 256, 8), size_32=a.size_32,
                      steps=default(a.steps, 30, 2), warmup_steps=default(a.warmup_steps, 10, 1),
                      repeats=default(a.repeats, 3, 1), images=a.images, workers=default(a.workers, 8, 2),
                      decode=a.decode, data_dir=a.data_dir)
    for name, value, low in (("batch", min(*batches, options.batch_size_224), 2), ("steps", options.steps, 1),
                             ("warmup-steps", options.warmup_steps, 1), ("repeats", options.repeats, 1),
                             ("workers", options.workers, 0), ("threads", a.threads, 0), ("size-32", a.size_32, 8)):
        if value < low:
            p.error(f"--{name}: must be >= {low} (got {value})")
    for setting, batch in options.rows():
        need = batch * (options.warmup_steps + options.steps + 1)
        if options.images and options.images < need:
            p.error(f"--images: a {setting.name} round at batch {batch} needs {need} (one epoch; got {options.images})")
    return options, a.json, a.threads


def _exit_with_parent(parent: int) -> None:
    """Exit when the script that started this round is gone (``run_all``'s ``--timeout`` kills that one only)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)  # the loader's workers follow: they watch this process the same way

    threading.Thread(target=watch, daemon=True).start()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison and print the report; 69 with a one-line message when lightly is missing."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:  # one round of one side, started by run_round
        job = json.loads(argv[1])
        _exit_with_parent(job["parent"])
        Path(job["result"]).write_text(json.dumps(run_child(job)), encoding="utf-8")
        return 0
    options, json_path, threads = parse_args(argv)
    try:
        import lightly  # noqa: F401
    except ImportError:
        print(MISSING_LIGHTLY, file=sys.stderr)
        return SKIP_STATUS
    if threads:
        torch.set_num_threads(threads)
    print(f"device: {options.device}   torch {torch.__version__}   lightly {version('lightly')}   "
          f"python {sys.version.split()[0]}   threads {threads or torch.get_num_threads()}")
    mapping = simclr_transform_kwargs(recipe_augment(), 0)
    del mapping["input_size"]
    print(f"augmentation: contrastkit simclr {recipe_augment()} -> lightly SimCLRTransform {mapping}")
    print(f"timing: {options.steps} steps per round after {options.warmup_steps} untimed, {options.repeats} rounds "
          f"per side (lightly, contrastkit alternating, each a fresh process); {options.workers} workers; "
          f"contrastkit decode: {options.decode}")
    if not options.device.startswith("cuda") and "224px" in options.settings:
        print(f"224px on the CPU: batch {options.batch_size_224}, not the GPU setting's 256 (minutes per step); "
              "its target is for GPUs")
    rows = []
    with tempfile.TemporaryDirectory(prefix="ck-peers-data-") as tmp:
        base = Path(options.data_dir) if options.data_dir else Path(tmp)
        for setting, batch in options.rows():
            count = options.image_count(setting.name)
            root = write_jpeg_folder(base / f"jpeg-{setting.file_size}px-{count}", count=count, size=setting.file_size)
            rows.append(compare(setting, batch, options, root=root, threads=threads))
    report = {"device": options.device, "torch": torch.__version__, "lightly": version("lightly"),
              "threads": threads or torch.get_num_threads(), "settings": attrs.asdict(options),
              "augmentation_mapping": mapping, "rows": rows}
    return finish(report, [format_row(row, options.device) for row in rows], json_path=json_path)


if __name__ == "__main__":
    sys.exit(main())

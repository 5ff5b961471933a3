"""Augmentation throughput: contrastkit's Kornia path on the device vs albumentations and torchvision in workers.

Each side applies the SimCLR recipe (random resized crop with area 0.08-1 and aspect ratio 3/4-4/3
back to the input size, horizontal flip 0.5, colour jitter ``(0.8, 0.8, 0.8, 0.2)`` with
probability 0.8, grayscale 0.2, Gaussian blur with a kernel of about 10% of the side and sigma
0.1-2 with probability 0.5) to the same synthetic uint8 RGB images (seeded noise, no downloads)
at each image size of ``--sizes`` (default 32, 96 and 224 pixels), ``--images`` images per size
in batches of ``--batch`` through a ``DataLoader`` with ``--workers`` worker processes:

- **contrastkit (device)**: the loader collates the raw uint8 images; each batch is moved to the
  device and turned into float in [0, 1] there (as ``Pipeline.prepare_batch`` does), then
  augmented batch-wise by ``SimCLRAugmentation`` (Kornia);
- **albumentations (workers)**: ``AlbumentationsAugmentation(recipe="simclr")`` per sample in the
  workers through ``WorkerAugmentedDataset``, as the trainer runs it (uint8 out, collated);
- **torchvision (workers)**, the baseline a plain PyTorch user writes: ``torchvision.transforms.v2``
  ``RandomResizedCrop``, ``RandomHorizontalFlip``, ``RandomApply(ColorJitter)``, ``RandomGrayscale``,
  ``RandomApply(GaussianBlur)`` per sample on uint8 tensors in the workers (uint8 out, collated).

With ``--device cpu`` (or ``auto`` on a machine without a GPU) the "device" path runs on the CPU,
in the main process, next to the loader's workers: the issue's comparison is for a GPU, and the
script runs there unchanged (``--device cuda``).

Timing: one side's run is one pass over the images (all batches, the last one possibly short),
wall clock from the loader's ``iter`` to the last batch augmented, with the device synchronised
before reading the clock (CUDA/MPS). Loaders keep their workers between runs
(``persistent_workers``), so starting worker processes is paid in the uncounted warm-up rounds
only. Per image size, sides alternate (torchvision, albumentations, contrastkit, torchvision,
...) for ``--repeats`` rounds after ``--warmup`` uncounted ones; the report gives median, min and
max images/s per side and the ratios of the medians, contrastkit-device / torchvision and
albumentations / torchvision, per size (the last line).

Usage (from a checkout after ``pip install -e .``)::

    python benchmarks/augmentation.py                             # auto device, 32, 96 and 224 px
    python benchmarks/augmentation.py --device cuda --workers 8 --json augmentation.json
    python benchmarks/augmentation.py --device cpu --sizes 32,96 --images 1024 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import Tensor

from contrastkit.augmentations.albumentations_recipes import AlbumentationsAugmentation
from contrastkit.augmentations.recipe_parameters import blur_kernel_size
from contrastkit.augmentations.simclr import SimCLRAugmentation
from contrastkit.errors import ConfigError
from contrastkit.training import select_device
from contrastkit.training.worker_augmentation import WorkerAugmentedDataset

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as `python benchmarks/augmentation.py`: make the `benchmarks` package importable
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.device_info import device_name, synchronize  # noqa: E402
from benchmarks.finish import finish  # noqa: E402

SEED = 0
SIDES = ("torchvision", "albumentations", "contrastkit")
SIDE_LABELS = {
    "torchvision": "torchvision (workers)",
    "albumentations": "albumentations (workers)",
    "contrastkit": "contrastkit (device)",
}
# Default images per size: a few batches at each size, the whole CPU run within about 3 minutes
# on 2 cores (the CPU sides are slowest at 224 px); a GPU run takes more to fill the device.
CPU_IMAGES = {32: 2048, 96: 768, 224: 256}
GPU_IMAGES = {32: 16384, 96: 8192, 224: 4096}


def _sizes(value: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(v) for v in value)


def default_images(size: int, *, gpu: bool) -> int:
    """Images per run at ``size`` px when ``--images`` is not given (sizes off the table: the nearest one's).

    Example:
        >>> default_images(32, gpu=False), default_images(224, gpu=False), default_images(64, gpu=False)
        (2048, 256, 2048)
    """
    table = GPU_IMAGES if gpu else CPU_IMAGES
    nearest = min(table, key=lambda s: (abs(s - size), s))
    return table[nearest]


@attrs.frozen
class Settings:
    """What one benchmark run measures (the command-line arguments, resolved).

    ``images`` is the number of images per run; ``None`` takes :func:`default_images` per size.

    Example:
        >>> s = Settings(device="cpu", sizes=[16, 32], images=64)
        >>> s.sizes, s.images_for(16)
        ((16, 32), 64)
    """

    device: str = "auto"
    sizes: tuple[int, ...] = attrs.field(default=(32, 96, 224), converter=_sizes)
    images: int | None = None
    batch: int = 256
    workers: int = 2
    repeats: int = 3
    warmup: int = 1

    def images_for(self, size: int) -> int:
        """Images per run at ``size`` px."""
        if self.images is not None:
            return self.images
        return default_images(size, gpu=not self.device.startswith("cpu"))


@attrs.frozen
class SizeResult:
    """Per-round images/s of each side at one image size (warm-up rounds left out).

    Example:
        >>> r = SizeResult(32, 512, {"torchvision": [100.0], "albumentations": [150.0], "contrastkit": [400.0]})
        >>> r.ratio("contrastkit"), r.ratio("albumentations")
        (4.0, 1.5)
    """

    size: int
    images: int
    images_per_s: dict[str, list[float]]

    def median(self, side: str) -> float:
        """Median images/s of ``side``."""
        return statistics.median(self.images_per_s[side])

    def ratio(self, side: str) -> float:
        """Median images/s of ``side`` over torchvision's."""
        return self.median(side) / self.median("torchvision")

    def as_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "images": self.images,
            **{f"{side}_images_per_s": self.images_per_s[side] for side in SIDES},
            **{f"{side}_median_images_per_s": self.median(side) for side in SIDES},
            "contrastkit_over_torchvision": self.ratio("contrastkit"),
            "albumentations_over_torchvision": self.ratio("albumentations"),
        }


@attrs.frozen
class BenchmarkResult:
    """Everything one run measured, one :class:`SizeResult` per image size."""

    settings: Settings
    device: str
    per_size: list[SizeResult]

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        import albumentations
        import kornia
        import torchvision

        return {
            "settings": attrs.asdict(self.settings),
            "device": self.device,
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "kornia": kornia.__version__,
            "albumentations": albumentations.__version__,
            "threads": torch.get_num_threads(),
            "sizes": [r.as_dict() for r in self.per_size],
        }


# --------------------------------------------------------------------------------------------
# Data and the three sides
# --------------------------------------------------------------------------------------------


class InMemoryImages:
    """Seeded uint8 noise images ``[C, H, W]`` held in memory; items are ``{"image", "index"}`` like contrastkit's.

    Example:
        >>> data = InMemoryImages(count=4, size=8)
        >>> item = data[3]
        >>> len(data), item["image"].shape, item["image"].dtype, int(item["index"])
        (4, torch.Size([3, 8, 8]), torch.uint8, 3)
    """

    label_keys: tuple[str, ...] = ()

    def __init__(self, *, count: int, size: int, channels: int = 3, seed: int = SEED) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.images = torch.randint(0, 256, (count, channels, size, size), dtype=torch.uint8, generator=generator)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return {"image": self.images[index], "index": torch.tensor(index)}


class TransformedImages:
    """``InMemoryImages`` with a per-sample transform (e.g. torchvision's) applied to each image.

    Example:
        >>> data = TransformedImages(InMemoryImages(count=2, size=8), lambda image: image.flip(-1))
        >>> bool((data[1]["image"] == InMemoryImages(count=2, size=8)[1]["image"].flip(-1)).all())
        True
    """

    def __init__(self, dataset: InMemoryImages, transform: Callable[[Tensor], Tensor]) -> None:
        self.dataset, self.transform = dataset, transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        item = dict(self.dataset[index])
        item["image"] = self.transform(item["image"])
        return item


def torchvision_simclr(size: int) -> Callable[[Tensor], Tensor]:
    """SimCLR's recipe with ``torchvision.transforms.v2`` on one uint8 ``[C, H, W]`` tensor, as a plain user writes it.

    Example:
        >>> out = torchvision_simclr(16)(torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8))
        >>> out.shape, out.dtype
        (torch.Size([3, 16, 16]), torch.uint8)
    """
    from torchvision.transforms import v2

    k = blur_kernel_size(size, size)
    return v2.Compose(
        [
            v2.RandomResizedCrop(size, scale=(0.08, 1.0), ratio=(0.75, 4 / 3), antialias=True),
            v2.RandomHorizontalFlip(p=0.5),
            v2.RandomApply([v2.ColorJitter(brightness=0.8, contrast=0.8, saturation=0.8, hue=0.2)], p=0.8),
            v2.RandomGrayscale(p=0.2),
            v2.RandomApply([v2.GaussianBlur(k, sigma=(0.1, 2.0))], p=0.5),
        ]
    )


def make_loader(dataset: Any, settings: Settings, device: torch.device) -> torch.utils.data.DataLoader:
    """The loader every side reads from: in order, batches of ``batch``, ``workers`` persistent workers.

    Example:
        >>> loader = make_loader(InMemoryImages(count=5, size=8), Settings(batch=2, workers=0), torch.device("cpu"))
        >>> [b["image"].shape[0] for b in loader]
        [2, 2, 1]
    """
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=settings.batch,
        shuffle=False,
        num_workers=settings.workers,
        pin_memory=device.type == "cuda",
        persistent_workers=settings.workers > 0,
        generator=torch.Generator().manual_seed(SEED),
    )


def to_device_float(images: Tensor, device: torch.device) -> Tensor:
    """uint8 ``[B, C, H, W]`` -> float in [0, 1] on ``device``, converted there (``Pipeline.prepare_batch``).

    Example:
        >>> to_device_float(torch.tensor([[[[0, 255]]]], dtype=torch.uint8), torch.device("cpu")).tolist()
        [[[[0.0, 1.0]]]]
    """
    return images.to(device, non_blocking=True).float().div_(255.0)


def time_pass(loader: torch.utils.data.DataLoader, step: Callable[[dict[str, Any]], Any], device: torch.device) -> float:
    """Seconds for one pass over ``loader`` calling ``step`` on each batch, the device synchronised at both ends.

    Example:
        >>> loader = make_loader(InMemoryImages(count=4, size=8), Settings(batch=2, workers=0), torch.device("cpu"))
        >>> time_pass(loader, lambda batch: None, torch.device("cpu")) > 0
        True
    """
    synchronize(device)
    start = time.perf_counter()
    for batch in loader:
        step(batch)
    synchronize(device)  # the device may still be augmenting the last batches
    return time.perf_counter() - start


def run_size(settings: Settings, size: int, device: torch.device, *, echo: Any = None) -> SizeResult:
    """The three sides at one image size: ``warmup`` uncounted then ``repeats`` counted rounds.

    ``echo`` (e.g. ``print``) receives one progress line per round.
    """
    count = settings.images_for(size)
    data = InMemoryImages(count=count, size=size)
    augment = SimCLRAugmentation().to(device)
    albumentations_data = WorkerAugmentedDataset(data, [AlbumentationsAugmentation(recipe="simclr")], seed=SEED)
    loaders = {
        "torchvision": make_loader(TransformedImages(data, torchvision_simclr(size)), settings, device),
        "albumentations": make_loader(albumentations_data, settings, device),
        "contrastkit": make_loader(data, settings, device),
    }
    # The worker sides' outputs are what the trainer receives; moving them to the device is not augmentation.
    steps: dict[str, Callable[[dict[str, Any]], Any]] = {
        "torchvision": lambda batch: batch["image"],
        "albumentations": lambda batch: batch["image_views"],
        "contrastkit": lambda batch: augment(to_device_float(batch["image"], device)),
    }
    torch.manual_seed(SEED)
    rates: dict[str, list[float]] = {side: [] for side in SIDES}
    try:
        for round_ in range(settings.warmup + settings.repeats):
            current = {side: count / time_pass(loaders[side], steps[side], device) for side in SIDES}
            if round_ >= settings.warmup:
                for side in SIDES:
                    rates[side].append(current[side])
            if echo is not None:
                label = "warm-up" if round_ < settings.warmup else f"{round_ - settings.warmup + 1}/{settings.repeats}"
                echo(
                    f"{size:>4}px round {label:>7}: "
                    + "   ".join(f"{side} {current[side]:9.1f} img/s" for side in SIDES)
                )
    finally:
        loaders.clear()  # the last references: their persistent workers stop now, not at some later collection
    return SizeResult(size, count, rates)


def run_benchmark(settings: Settings, *, echo: Any = None) -> BenchmarkResult:
    """Every image size of ``settings`` in turn (see :func:`run_size`)."""
    device = select_device(settings.device)
    settings = attrs.evolve(settings, device=str(device))
    per_size = [run_size(settings, size, device, echo=echo) for size in settings.sizes]
    return BenchmarkResult(settings, str(device), per_size)


# --------------------------------------------------------------------------------------------
# Report and command line
# --------------------------------------------------------------------------------------------


def format_report(result: BenchmarkResult) -> str:
    """The table and the summary line (the last line): the ratios of median images/s to torchvision's per size.

    Example:
        >>> r = SizeResult(32, 512, {"torchvision": [100.0], "albumentations": [150.0], "contrastkit": [400.0]})
        >>> format_report(BenchmarkResult(Settings(device="cpu", sizes=[32]), "cpu", [r])).splitlines()[-1]
        'summary: images/s over torchvision per sample: contrastkit-device 32px 4.00x; albumentations 32px 1.50x'
    """
    lines = [f"{'size':>5}  {'side':<26} {'median img/s':>12} {'min':>10} {'max':>10} {'vs torchvision':>14}"]
    for r in result.per_size:
        for side in SIDES:
            rates = r.images_per_s[side]
            lines.append(
                f"{r.size:>3}px  {SIDE_LABELS[side]:<26} {r.median(side):12.1f} {min(rates):10.1f} {max(rates):10.1f} "
                f"{r.ratio(side):13.2f}x"
            )
    ck = ", ".join(f"{r.size}px {r.ratio('contrastkit'):.2f}x" for r in result.per_size)
    alb = ", ".join(f"{r.size}px {r.ratio('albumentations'):.2f}x" for r in result.per_size)
    lines.append(f"summary: images/s over torchvision per sample: contrastkit-device {ck}; albumentations {alb}")
    return "\n".join(lines)


def _positive_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers (got {text!r})") from None
    if not values or min(values) < 8:
        raise argparse.ArgumentTypeError(f"every size must be >= 8 pixels (got {text!r})")
    return values


def parse_args(argv: Sequence[str] | None = None) -> tuple[Settings, str | None, int]:
    """Command line -> settings, the ``--json`` path and the thread count (0: torch's default)."""
    parser = argparse.ArgumentParser(
        prog="python benchmarks/augmentation.py",
        description="SimCLR augmentation throughput: contrastkit's Kornia path on the device vs albumentations "
        "and torchvision per sample in DataLoader workers, images/s per image size.",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    parser.add_argument("--sizes", type=_positive_list, default=(32, 96, 224),
                        help="image sides in pixels, comma-separated (default: 32,96,224)")
    parser.add_argument("--images", type=int, default=None,
                        help="images per run at every size (default: 2048/768/256 at 32/96/224 px on the CPU, "
                        "16384/8192/4096 on a GPU)")
    parser.add_argument("--batch", type=int, default=256, help="images per batch (default: 256)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes (default: 2)")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (default: 3 on the CPU, 5 on a GPU)")
    parser.add_argument("--warmup", type=int, default=1, help="uncounted rounds before them (default: 1)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", metavar="PATH", default=None, help="also write the results as JSON to PATH")
    args = parser.parse_args(argv)
    try:
        device = select_device(args.device)
    except (ConfigError, RuntimeError) as exc:
        parser.error(f"--device: {exc}")
    repeats = args.repeats if args.repeats is not None else (3 if device.type == "cpu" else 5)
    if repeats < 1:
        parser.error(f"--repeats: must be >= 1 (got {repeats})")
    if args.images is not None and args.images < 1:
        parser.error(f"--images: must be >= 1 (got {args.images})")
    if args.batch < 1:
        parser.error(f"--batch: must be >= 1 (got {args.batch})")
    if args.workers < 0 or args.warmup < 0 or args.threads < 0:
        parser.error("--workers, --warmup and --threads must be >= 0")
    settings = Settings(
        device=args.device, sizes=args.sizes, images=args.images, batch=args.batch, workers=args.workers,
        repeats=repeats, warmup=args.warmup,
    )
    return settings, args.json, args.threads


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the report; returns the exit status."""
    settings, json_path, threads = parse_args(argv)
    if threads:
        torch.set_num_threads(threads)
    device = select_device(settings.device)
    s = attrs.evolve(settings, device=str(device))
    print(f"device: {device_name(str(device))}   torch {torch.__version__}   python {sys.version.split()[0]}")
    if device.type == "cpu":
        print(
            "note: no GPU: the contrastkit 'device' path runs on the CPU, in the main process next to the loader's "
            "workers (the comparison is meant for a GPU: run with --device cuda)"
        )
    print(
        "recipe: SimCLR (random resized crop 0.08-1, flip 0.5, colour jitter 0.8/0.8/0.8/0.2 p 0.8, grayscale 0.2, "
        "blur ~10% of the side, sigma 0.1-2, p 0.5) on seeded uint8 noise images; "
        f"sizes {list(s.sizes)} px, images per run {[s.images_for(size) for size in s.sizes]}, "
        f"batch {s.batch}, {s.workers} DataLoader workers"
    )
    print(
        "sides: contrastkit = SimCLRAugmentation (Kornia) batch-wise on the device after moving uint8 batches there; "
        "albumentations = AlbumentationsAugmentation per sample in the workers; "
        "torchvision = transforms.v2 per sample in the workers"
    )
    print(
        f"timing: one pass over the images per run, wall clock, {s.repeats} rounds (sides alternating) "
        f"after {s.warmup} uncounted per size"
    )
    result = run_benchmark(settings, echo=print)
    return finish(result.as_dict(), [format_report(result)], json_path=json_path)


if __name__ == "__main__":
    sys.exit(main())

"""contrastkit's framework overhead: one training step by hand in PyTorch vs through ``Trainer``.

Both sides train the same recipe (colorful-moving-digits, colour-split L | ab views, a convnet or
ResNet-18 per view, cosine critic, in-batch two-way InfoNCE, SGD at a constant learning rate, no
augmentation) on the same dataset object, the same device and precision, from identically seeded
weights:

- **bare PyTorch**: a hand-written loop — ``DataLoader(shuffle=True, drop_last=True)``, the
  pipeline's forward (``Pipeline.forward``: views, encoders, critic, loss), ``backward``,
  ``optimizer.step``, ``zero_grad`` — and nothing else;
- **contrastkit**: ``Trainer(...).fit()`` with the logging a user would keep (scalars every 50
  steps, no TensorBoard, no progress bar, no probes).

Timing: a forward pre-hook on the pipeline — the same object on both sides — reads the clock when
step ``warmup_steps + 1`` starts and again when step ``warmup_steps + steps + 1`` starts, so the
window holds exactly ``steps`` whole steps (data loading, forward, backward, optimizer, the
trainer's per-step bookkeeping and its periodic logging) and excludes building, the first steps,
the final checkpoint and process warm-up. On CUDA/MPS the device is synchronised at those two
boundaries only. Each run stays inside one epoch (the dataset is enlarged if needed), so the
trainer's epoch-end checkpoint is not in the window either. Sides alternate (bare, contrastkit,
bare, ...) for ``--repeats`` rounds after one uncounted warm-up round; the report gives median,
min and max ms/step per side and the ratio of the medians.

The dataset is generated once and handed to both sides (``Trainer.from_config`` would regenerate
it for every run; it does nothing else than seed, build the ``Pipeline`` and call ``Trainer(...)``,
which is what this script does).

Usage (from a checkout after ``pip install -e .``)::

    python benchmarks/overhead.py                      # auto device, convnet, batch 128
    python benchmarks/overhead.py --device cuda --encoder resnet18 --precision bf16 --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import nn

from contrastkit.config import Config, config_from_dict
from contrastkit.errors import ConfigError
from contrastkit.optim import param_groups
from contrastkit.pipeline import Pipeline
from contrastkit.training import Trainer, select_device

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as `python benchmarks/overhead.py`: make the `benchmarks` package importable
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.device_info import device_name, synchronize  # noqa: E402
from benchmarks.finish import finish  # noqa: E402

TARGET = 1.02
SEED = 0


@attrs.frozen
class Settings:
    """What one benchmark run measures (the command-line arguments, resolved).

    Example:
        >>> Settings(device="cpu", steps=4).steps_per_run
        7
    """

    device: str = "auto"
    batch_size: int = 128
    steps: int = 10
    repeats: int = 5
    warmup_steps: int = 2
    encoder: str = "convnet"
    precision: str = "32"
    image_size: int = 32
    data_size: int = 4096
    log_every: int = 50
    #: ``wall`` (``time.perf_counter``) or ``cpu`` (``time.process_time``: steadier on a busy CPU-only machine).
    clock: str = "wall"

    @property
    def steps_per_run(self) -> int:
        """Steps each run trains: the warm-up steps, the timed steps and one to close the window."""
        return self.warmup_steps + self.steps + 1


@attrs.frozen
class BenchmarkResult:
    """Per-round ms/step of each side, in round order (the warm-up round is not included).

    Example:
        >>> r = BenchmarkResult(Settings(device="cpu"), "cpu", bare_ms=[10.0, 12.0], framework_ms=[10.1, 12.0])
        >>> round(r.ratio, 3)
        1.005
    """

    settings: Settings
    device: str
    bare_ms: list[float]
    framework_ms: list[float]

    @property
    def ratio(self) -> float:
        """Median contrastkit ms/step over median bare ms/step."""
        return statistics.median(self.framework_ms) / statistics.median(self.bare_ms)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "settings": attrs.asdict(self.settings),
            "device": self.device,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "bare_ms_per_step": self.bare_ms,
            "contrastkit_ms_per_step": self.framework_ms,
            "bare_median_ms": statistics.median(self.bare_ms),
            "contrastkit_median_ms": statistics.median(self.framework_ms),
            "ratio": self.ratio,
            "target": TARGET,
        }


class StepClock:
    """A forward pre-hook: reads the clock when forward call ``start`` and call ``stop`` begin.

    Calls are counted from 0, so the window ``[start, stop)`` covers ``stop - start`` whole steps.

    ``cpu=True`` reads the process's CPU time instead of the wall clock: on a machine shared with
    other jobs it ignores the time the process waits for a core (useless on a GPU, where the host
    waits for the device).

    Example:
        >>> clock = StepClock(torch.device("cpu"), start=1, stop=3)
        >>> net = nn.Identity(); _ = net.register_forward_pre_hook(clock)
        >>> for _ in range(4): _ = net(torch.zeros(1))
        >>> clock.calls, clock.seconds > 0
        (4, True)
    """

    def __init__(self, device: torch.device, *, start: int, stop: int, cpu: bool = False) -> None:
        self.device, self.start, self.stop = device, start, stop
        self.read = time.process_time if cpu else time.perf_counter
        self.calls = 0
        self.marks: dict[int, float] = {}

    def __call__(self, module: nn.Module, args: Any) -> None:
        if self.calls in (self.start, self.stop):
            synchronize(self.device)  # the boundaries only: in between the device runs ahead freely
            self.marks[self.calls] = self.read()
        self.calls += 1

    @property
    def seconds(self) -> float:
        """The window's length; fails if the run did not reach its end."""
        if self.stop not in self.marks:
            raise RuntimeError(f"the run made {self.calls} forward calls; the timed window needs {self.stop + 1}")
        return self.marks[self.stop] - self.marks[self.start]


def make_config(settings: Settings, *, out_dir: str, data_size: int) -> Config:
    """The recipe both sides train (``data_size`` already large enough for one epoch per run).

    Example:
        >>> cfg = make_config(Settings(device="cpu"), out_dir="/tmp/x", data_size=256)
        >>> cfg.train.schedule, cfg.train.max_steps, cfg.log.every_n_steps
        ('constant', 13, 50)
    """
    return config_from_dict(
        {
            "data": {"name": "colorful-moving-digits", "size": data_size, "image_size": settings.image_size},
            "augment": {"name": "none"},
            "views": {"name": "color-split", "space": "lab"},
            "encoder": {"name": settings.encoder},
            "critic": {"name": "cosine"},
            "negatives": {"name": "in-batch"},
            "objective": {"name": "infonce"},
            "train": {
                "optimizer": "sgd",
                "lr": 0.03,
                "momentum": 0.9,
                "weight_decay": 1e-4,
                "schedule": "constant",
                "max_steps": settings.steps_per_run,
                "batch_size": settings.batch_size,
                "precision": settings.precision,
                "device": settings.device,
                "seed": SEED,
                "out_dir": out_dir,
            },
            "eval": {"knn": False},
            "log": {
                "tensorboard": False,
                "progress": False,
                "images_every_n_steps": 0,
                "projector_samples": 0,
                "every_n_steps": settings.log_every,
            },
        }
    )


def build_pipeline(config: Config, dataset: Any) -> Pipeline:
    """``Trainer.from_config``'s build (seed, then pipeline), but on an already generated dataset."""
    torch.manual_seed(config.train.seed)
    return Pipeline(
        data=dataset,
        augment=config.augment,
        views=config.views,
        encoder=config.encoder,
        critic=config.critic,
        negatives=config.negatives,
        objective=config.objective,
        regularizer=config.regularizer,
        graph=config.train.graph,
    )


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    if precision == "32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def bare_optimizer(pipeline: Pipeline, config: Config) -> torch.optim.Optimizer:
    """SGD as anyone would write it: weight decay on weights, none on biases and norm parameters."""
    cfg = config.train
    params = [p for p in pipeline.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # Same work as the trainer's optimizer: the same parameters in the same decay / no-decay split.
    theirs = param_groups([m for n, m in pipeline.named_children() if n != "view_maker"], weight_decay=cfg.weight_decay)
    if sorted(len(g["params"]) for g in groups) != sorted(len(g["params"]) for g in theirs):
        raise RuntimeError("the bare optimizer's parameter groups differ from the trainer's")
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)


def run_bare(config: Config, dataset: Any, device: torch.device, clock: StepClock) -> float:
    """The hand-written loop; returns the timed window in seconds."""
    cfg = config.train
    pipeline = build_pipeline(config, dataset).to(device)
    pipeline.train()
    optimizer = bare_optimizer(pipeline, config)
    scaler = torch.amp.GradScaler(device.type) if cfg.precision == "fp16" else None
    torch.manual_seed(cfg.seed)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=cfg.batch_size, shuffle=True, drop_last=True, pin_memory=device.type == "cuda"
    )
    pipeline.register_forward_pre_hook(clock)
    for steps, batch in enumerate(loader, start=1):
        with _autocast(device, cfg.precision):
            loss = pipeline(batch).loss
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if steps == cfg.max_steps:
            break
    synchronize(device)
    return clock.seconds


def run_framework(config: Config, dataset: Any, clock: StepClock) -> float:
    """``Trainer.fit``; returns the timed window in seconds."""
    pipeline = build_pipeline(config, dataset)
    trainer = Trainer(
        pipeline, train=config.train, eval=config.eval, log=config.log, config=config, print_fn=lambda _: None
    )
    pipeline.register_forward_pre_hook(clock)
    result = trainer.fit()
    if result.steps != config.train.max_steps:
        raise RuntimeError(f"the trainer ran {result.steps} steps, expected {config.train.max_steps}")
    return clock.seconds


def run_benchmark(settings: Settings, *, echo: Any = None) -> BenchmarkResult:
    """Warm-up round, then ``repeats`` rounds of bare then contrastkit; per-step times in ms.

    ``echo`` (e.g. ``print``) receives one progress line per round.
    """
    device = select_device(settings.device)
    if settings.precision == "fp16" and device.type == "cpu":
        raise ConfigError("--precision: fp16 autocast is for GPUs; use bf16 on the CPU (got 'fp16')")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # the trainer turns it on too; set it for both sides alike
    settings = attrs.evolve(settings, device=str(device))
    # One epoch must hold every step of a run: the epoch-end checkpoint is a per-epoch cost.
    data_size = max(settings.data_size, settings.steps_per_run * settings.batch_size)
    dataset = Pipeline.from_config(make_config(settings, out_dir=".", data_size=data_size)).dataset

    bare_ms: list[float] = []
    framework_ms: list[float] = []
    start, stop = settings.warmup_steps, settings.warmup_steps + settings.steps
    for round_ in range(settings.repeats + 1):  # round 0 warms the process up and is not counted
        times = []
        for side in ("bare", "contrastkit"):
            with tempfile.TemporaryDirectory(prefix="ck-overhead-") as out_dir:
                config = make_config(settings, out_dir=out_dir, data_size=data_size)
                clock = StepClock(device, start=start, stop=stop, cpu=settings.clock == "cpu")
                if side == "bare":
                    seconds = run_bare(config, dataset, device, clock)
                else:
                    seconds = run_framework(config, dataset, clock)
            times.append(1000.0 * seconds / settings.steps)
        if round_ > 0:
            bare_ms.append(times[0])
            framework_ms.append(times[1])
        if echo is not None:
            label = "warm-up" if round_ == 0 else f"{round_}/{settings.repeats}"
            echo(f"round {label:>7}: bare {times[0]:9.2f} ms/step   contrastkit {times[1]:9.2f} ms/step")
    return BenchmarkResult(settings, str(device), bare_ms=bare_ms, framework_ms=framework_ms)


def format_report(result: BenchmarkResult) -> str:
    """The table and the ratio line (the last line).

    Example:
        >>> r = BenchmarkResult(Settings(device="cpu"), "cpu", bare_ms=[10.0], framework_ms=[10.13])
        >>> format_report(r).splitlines()[-1]
        'overhead ratio (contrastkit / bare PyTorch): 1.013  (target <= 1.02)'
    """
    s = result.settings
    lines = [
        f"{'side':<14} {'median ms/step':>14} {'min':>10} {'max':>10} {'images/s':>10}",
    ]
    for name, times in (("bare PyTorch", result.bare_ms), ("contrastkit", result.framework_ms)):
        median = statistics.median(times)
        lines.append(
            f"{name:<14} {median:14.3f} {min(times):10.3f} {max(times):10.3f} {s.batch_size * 1000.0 / median:10.1f}"
        )
    difference = statistics.median(result.framework_ms) - statistics.median(result.bare_ms)
    lines.append(f"difference of medians: {difference:+.3f} ms/step")
    lines.append(f"overhead ratio (contrastkit / bare PyTorch): {result.ratio:.3f}  (target <= {TARGET})")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> tuple[Settings, str | None, int]:
    """Command line -> settings, the ``--json`` path and the thread count (0: torch's default)."""
    parser = argparse.ArgumentParser(
        prog="python benchmarks/overhead.py",
        description="contrastkit's per-step overhead over a hand-written PyTorch loop (same model, data and optimizer).",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    parser.add_argument("--batch-size", type=int, default=128, help="images per step (default: 128)")
    parser.add_argument("--steps", type=int, default=None,
                        help="timed steps per run (default: 10 on the CPU, 100 on a GPU)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds, each bare then contrastkit (default: 5)")
    parser.add_argument("--warmup-steps", type=int, default=2, help="untimed steps at the start of each run (default: 2)")
    parser.add_argument("--encoder", choices=("convnet", "resnet18"), default="convnet")
    parser.add_argument("--precision", choices=("32", "bf16", "fp16"), default="32")
    parser.add_argument("--image-size", type=int, default=32, help="image side in pixels (default: 32)")
    parser.add_argument("--data-size", type=int, default=4096,
                        help="dataset size; enlarged so a run stays inside one epoch (default: 4096)")
    parser.add_argument("--log-every", type=int, default=50, help="the trainer's log.every_n_steps (default: 50)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall: elapsed time; cpu: process CPU time, steadier on a busy CPU-only machine")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", metavar="PATH", default=None, help="also write the results as JSON to PATH")
    args = parser.parse_args(argv)
    for name in ("batch_size", "repeats", "image_size", "data_size", "log_every"):
        if getattr(args, name) < (2 if name == "batch_size" else 1):
            parser.error(f"--{name.replace('_', '-')}: too small (got {getattr(args, name)})")
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps: must be >= 1 (got {args.steps})")
    if args.warmup_steps < 0 or args.threads < 0:
        parser.error("--warmup-steps and --threads must be >= 0")
    try:
        device = select_device(args.device)
    except (ConfigError, RuntimeError) as exc:
        parser.error(f"--device: {exc}")
    if args.clock == "cpu" and device.type != "cpu":
        parser.error(f"--clock: cpu time does not count device work; use wall on {device.type} (got 'cpu')")
    if args.precision == "fp16" and device.type == "cpu":
        parser.error("--precision: fp16 autocast is for GPUs; use bf16 on the CPU (got 'fp16')")
    steps = args.steps if args.steps is not None else (10 if device.type == "cpu" else 100)
    settings = Settings(
        device=args.device,
        batch_size=args.batch_size,
        steps=steps,
        repeats=args.repeats,
        warmup_steps=args.warmup_steps,
        encoder=args.encoder,
        precision=args.precision,
        image_size=args.image_size,
        data_size=args.data_size,
        log_every=args.log_every,
        clock=args.clock,
    )
    return settings, args.json, args.threads


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the report; returns the exit status."""
    settings, json_path, threads = parse_args(argv)
    if threads:
        torch.set_num_threads(threads)
    device = select_device(settings.device)
    print(f"device: {device_name(str(device))}   torch {torch.__version__}   python {sys.version.split()[0]}")
    print(
        f"recipe: {settings.encoder} per view, color-split (lab), cosine critic, in-batch InfoNCE, sgd constant lr, "
        f"batch {settings.batch_size}, {settings.image_size}px, precision {settings.precision}"
    )
    print(
        f"timing: {settings.steps} steps per run after {settings.warmup_steps} untimed, "
        f"{settings.repeats} rounds (bare, contrastkit) after a warm-up round, {settings.clock} clock"
    )
    result = run_benchmark(settings, echo=print)
    return finish(result.as_dict(), [format_report(result)], json_path=json_path)


if __name__ == "__main__":
    sys.exit(main())

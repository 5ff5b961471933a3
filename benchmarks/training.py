"""End-to-end training throughput of a recipe, and the share of step time spent outside the encoders.

What runs: ``examples/simclr.toml`` (two augmented copies through one shared ResNet-18 with the
CIFAR stem, Kornia SimCLR augmentation on the device, MLP head, NT-Xent, LARS) loaded with
``contrastkit.config.load_config``, built with ``Trainer.from_config`` and trained with ``fit()``,
exactly as ``contrastkit train`` would, with these benchmark overrides (``--set`` ones come after and
win): ``train.max_steps`` (warm-up + timed + 1 steps), ``train.batch_size`` (``--batch``: the recipe's
256 on a GPU, 64 on the CPU so that a default run stays within a few minutes on 2 cores),
``train.device``, ``train.out_dir`` in a temporary directory, no TensorBoard, no progress bar, no view
images or projector, no kNN or linear probe; ``--encoder`` replaces the encoder table when it names
another encoder (keeping ``shared``). ``data.size`` is enlarged if needed so that a run stays inside one
epoch: the epoch-end checkpoint is a per-epoch cost, not a per-step one.

Step time: a forward pre-hook on the trainer's pipeline reads the clock when step ``warmup + 1``
starts and when step ``warmup + steps + 1`` starts (the approach of ``benchmarks/overhead.py``), so the
window holds exactly ``steps`` whole steps: data loading, augmentation, views, encoders, critic, loss,
backward, optimizer and the trainer's bookkeeping and periodic logging. On CUDA/MPS the device is
synchronised at those two boundaries only. images/s = batch x steps / window. (A "step" is one
pipeline forward: with ``train.accumulate_steps > 1`` it is a micro-batch.)

Encoder time, per step, inside the same window:

- *forward*: a forward pre-hook and a forward hook on every encoder open and close an interval
  (a shared encoder is called once per view: one interval per call);
- *backward*: from the first ``register_full_backward_pre_hook`` call of a step (the gradient of an
  encoder's output is ready: its backward starts) to the moment the last encoder parameter's
  gradient has been accumulated (``Tensor.register_post_accumulate_grad_hook``; the number of
  parameter gradients per step is counted during the first warm-up step). ``register_full_backward_hook``
  is not used on purpose: when the encoder's input needs no gradient (augmented images) torch fires it
  as soon as the output gradient is known, i.e. before the encoder's backward has run. ``Pipeline.forward``
  encodes every view before the critic, so the encoders' backward runs contiguously and this one
  interval holds encoder work only.

How the intervals are timed: on the CPU by ``time.perf_counter`` at the hooks. On CUDA by
``torch.cuda.Event`` pairs recorded on the stream at the hooks and read once after the window: no
synchronisation inside the window, so the step time measured is the undisturbed one and the encoder
time is the GPU time between the encoder's first and last kernels (its launch gaps included).
Synchronising at every hook instead would make the host wait for the device at each encoder boundary
and stop the CPU work that normally overlaps the GPU (data loading, launching the next kernels): the
step would get slower by an amount that depends on the hooks, not on contrastkit. On MPS, which has
no such events here, the device is synchronised at the hooks (noted in the header).

fraction outside = 1 - encoder ms/step / ms/step: data, augmentation, view making, critic, loss,
optimizer and framework time. Target: at most 10 % **on a GPU**; on the CPU the figure is reported
but the encoders dominate a CPU step and the target does not apply.

Each of the ``--repeats`` runs (after ``--warmup-runs`` uncounted ones, which warm the process up)
builds a fresh trainer from the recipe; the report gives median, min and max over the runs.

Usage (from a checkout after ``pip install -e .``)::

    python benchmarks/training.py                                 # auto device, resnet18
    python benchmarks/training.py --device cuda --repeats 5 --json training.json
    python benchmarks/training.py --device cpu --encoder convnet --set data.image_size=16 --steps 3
"""

from __future__ import annotations

import argparse
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

from contrastkit.config import Config, load_config
from contrastkit.errors import ConfigError
from contrastkit.training import Trainer, select_device

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as `python benchmarks/training.py`: make the `benchmarks` package importable
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.device_info import device_name, synchronize  # noqa: E402
from benchmarks.finish import finish  # noqa: E402

TARGET = 0.10  # fraction of GPU step time outside the encoders' forward and backward: at most
RECIPE = Path(__file__).resolve().parents[1] / "examples" / "simclr.toml"
GPU_BATCH = 256  # the recipe's
CPU_BATCH = 64  # a default CPU run in a few minutes on 2 cores


def _strings(value: Sequence[str]) -> tuple[str, ...]:
    return tuple(str(v) for v in value)


@attrs.frozen
class Settings:
    """What one benchmark run measures (the command-line arguments, resolved).

    Example:
        >>> Settings(device="cpu", steps=4, warmup=2).steps_per_run
        7
    """

    device: str = "auto"
    recipe: str = str(RECIPE)
    batch: int = CPU_BATCH
    steps: int = 10
    warmup: int = 2
    repeats: int = 3
    warmup_runs: int = 0
    encoder: str = "resnet18"
    overrides: tuple[str, ...] = attrs.field(default=(), converter=_strings)

    @property
    def steps_per_run(self) -> int:
        """Steps each run trains: the warm-up steps, the timed steps and one to close the window."""
        return self.warmup + self.steps + 1


@attrs.frozen
class RunResult:
    """One timed run: the window's ms/step and the encoders' forward and backward ms/step in it.

    Example:
        >>> r = RunResult(ms_per_step=100.0, forward_ms=30.0, backward_ms=62.0)
        >>> r.encoder_ms, round(r.fraction_outside, 3)
        (92.0, 0.08)
    """

    ms_per_step: float
    forward_ms: float
    backward_ms: float

    @property
    def encoder_ms(self) -> float:
        """Encoder forward + backward ms/step."""
        return self.forward_ms + self.backward_ms

    @property
    def fraction_outside(self) -> float:
        """1 - encoder / step, clipped to [0, 1] (timer jitter can put a tiny encoder share above the step)."""
        return min(1.0, max(0.0, 1.0 - self.encoder_ms / self.ms_per_step))


@attrs.frozen
class BenchmarkResult:
    """The timed runs (warm-up runs left out) and what ran.

    Example:
        >>> r = BenchmarkResult(Settings(device="cpu", batch=64), "cpu", "resnet18", 4096,
        ...                     [RunResult(200.0, 60.0, 120.0), RunResult(100.0, 30.0, 62.0)])
        >>> r.median("ms_per_step"), round(r.images_per_second, 1), round(r.median("fraction_outside"), 2)
        (150.0, 426.7, 0.09)
    """

    settings: Settings
    device: str
    encoder: str
    data_size: int
    runs: list[RunResult]

    def values(self, field: str) -> list[float]:
        """One figure of every run, in run order."""
        return [float(getattr(r, field)) for r in self.runs]

    def median(self, field: str) -> float:
        """Median over the runs of one figure."""
        return statistics.median(self.values(field))

    @property
    def images_per_second(self) -> float:
        """Images per second at the median ms/step."""
        return self.settings.batch * 1000.0 / self.median("ms_per_step")

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        figures = ("ms_per_step", "forward_ms", "backward_ms", "encoder_ms", "fraction_outside")
        return {
            "settings": attrs.asdict(self.settings),
            "device": self.device,
            "encoder": self.encoder,
            "data_size": self.data_size,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "runs": [{name: getattr(r, name) for name in figures} for r in self.runs],
            **{f"median_{name}": self.median(name) for name in figures},
            "images_per_second": self.images_per_second,
            "target_fraction_outside": TARGET,
            "target_applies": self.device.startswith("cuda"),
        }


class _Stamp:
    """A point in time: a recorded CUDA event, or a clock reading (after a sync on MPS)."""

    def __init__(self, device: torch.device) -> None:
        self.event: Any = None
        self.seconds = 0.0
        if device.type == "cuda":
            self.event = torch.cuda.Event(enable_timing=True)
            self.event.record()
        else:
            synchronize(device)  # MPS only; on the CPU the host clock is the work's clock
            self.seconds = time.perf_counter()

    def ms_until(self, later: _Stamp) -> float:
        """Milliseconds from this stamp to ``later`` (CUDA: once the events have completed)."""
        if self.event is not None:
            return float(self.event.elapsed_time(later.event))
        return 1000.0 * (later.seconds - self.seconds)


class StepTimer:
    """Times a window of training steps and the encoders' forward and backward inside it.

    Attach with :meth:`attach` (a forward pre-hook on the pipeline marks step boundaries; hooks on
    each encoder and its parameters mark encoder work). Steps are counted from 0; the window is
    ``[start, stop)``. Step 0 counts the encoder parameter gradients accumulated per step.

    Example:
        >>> pipeline = nn.Module(); pipeline.encoders = nn.ModuleList([nn.Linear(4, 4)])
        >>> pipeline.forward = lambda x: pipeline.encoders[0](x).sum()
        >>> timer = StepTimer(torch.device("cpu"), start=1, stop=3).attach(pipeline)
        >>> for _ in range(4): pipeline(torch.ones(2, 4)).backward()
        >>> timer.steps, timer.ms_per_step > 0, timer.forward_ms > 0, timer.backward_ms > 0
        (4, True, True, True)
    """

    def __init__(self, device: torch.device, *, start: int, stop: int) -> None:
        if not 1 <= start < stop:
            raise ValueError(f"StepTimer: need 1 <= start < stop (step 0 counts gradients; got {start}, {stop})")
        self.device, self.start, self.stop = device, start, stop
        self.steps = 0  # pipeline forward calls seen
        self.marks: dict[int, float] = {}
        self.gradients_per_step = 0
        self._pending = 0
        self._forward: list[tuple[_Stamp, _Stamp]] = []
        self._backward: list[tuple[_Stamp, _Stamp]] = []
        self._open_forward: list[_Stamp] = []
        self._open_backward: _Stamp | None = None

    def attach(self, pipeline: nn.Module) -> StepTimer:
        """Register the hooks on ``pipeline`` and every module of ``pipeline.encoders``; returns ``self``."""
        pipeline.register_forward_pre_hook(self._step_boundary)
        for encoder in pipeline.encoders:
            encoder.register_forward_pre_hook(self._forward_start)
            encoder.register_forward_hook(self._forward_end)
            encoder.register_full_backward_pre_hook(self._backward_start)
            for p in encoder.parameters():
                if p.requires_grad:
                    p.register_post_accumulate_grad_hook(self._gradient_accumulated)
        return self

    def _timing(self) -> bool:
        return self.start <= self.steps - 1 < self.stop

    def _step_boundary(self, module: nn.Module, args: Any) -> None:
        if self.steps == 1:
            self.gradients_per_step = -self._pending  # step 0 counted down from 0
        if self._open_backward is not None:
            raise RuntimeError(
                "StepTimer: an encoder backward did not finish within its step "
                f"({self.gradients_per_step + self._pending} of {self.gradients_per_step} parameter gradients)"
            )
        if self.steps in (self.start, self.stop):
            synchronize(self.device)  # the boundaries only: in between the device runs ahead freely
            self.marks[self.steps] = time.perf_counter()
        self._pending = self.gradients_per_step
        self.steps += 1

    def _forward_start(self, module: nn.Module, args: Any) -> None:
        if self._timing():
            self._open_forward.append(_Stamp(self.device))

    def _forward_end(self, module: nn.Module, args: Any, output: Any) -> None:
        if self._timing() and self._open_forward:
            self._forward.append((self._open_forward.pop(), _Stamp(self.device)))

    def _backward_start(self, module: nn.Module, grad_output: Any) -> None:
        if self._timing() and self._open_backward is None:
            self._open_backward = _Stamp(self.device)

    def _gradient_accumulated(self, parameter: torch.Tensor) -> None:
        self._pending -= 1
        if self._pending == 0 and self._open_backward is not None:
            self._backward.append((self._open_backward, _Stamp(self.device)))
            self._open_backward = None

    def _window_steps(self) -> int:
        if self.stop not in self.marks:
            raise RuntimeError(f"the run made {self.steps} steps; the timed window needs {self.stop + 1}")
        return self.stop - self.start

    @property
    def ms_per_step(self) -> float:
        """The window's mean step time."""
        steps = self._window_steps()
        return 1000.0 * (self.marks[self.stop] - self.marks[self.start]) / steps

    @property
    def forward_ms(self) -> float:
        """Encoders' forward time per step in the window."""
        return sum(a.ms_until(b) for a, b in self._forward) / self._window_steps()

    @property
    def backward_ms(self) -> float:
        """Encoders' backward time per step in the window (one interval per step)."""
        steps = self._window_steps()
        if len(self._backward) != steps:
            raise RuntimeError(f"StepTimer: {len(self._backward)} encoder backward passes timed in {steps} steps")
        return sum(a.ms_until(b) for a, b in self._backward) / steps


def benchmark_overrides(settings: Settings, *, out_dir: str) -> list[str]:
    """The ``--set`` list the benchmark applies to the recipe, before the user's own.

    Example:
        >>> benchmark_overrides(Settings(device="cpu", steps=3, warmup=1, batch=8), out_dir="/tmp/x")[:3]
        ['train.max_steps=5', 'train.batch_size=8', "train.device='cpu'"]
    """
    return [
        f"train.max_steps={settings.steps_per_run}",
        f"train.batch_size={settings.batch}",
        f"train.device={settings.device!r}",
        f"train.out_dir={out_dir!r}",
        "log.tensorboard=false",
        "log.progress=false",
        "log.images_every_n_steps=0",
        "log.projector_samples=0",
        "eval.knn=false",
        "eval.linear=false",
    ]


def make_config(settings: Settings, *, out_dir: str) -> Config:
    """The recipe with the benchmark's overrides, ``--encoder``, the user's ``--set`` and a one-epoch data size.

    Example:
        >>> cfg = make_config(Settings(device="cpu", batch=8, encoder="convnet"), out_dir="/tmp/x")
        >>> cfg.encoder.name, cfg.train.max_steps, cfg.train.batch_size, cfg.log.tensorboard, cfg.eval.knn
        ('convnet', 13, 8, False, False)
    """
    overrides = benchmark_overrides(settings, out_dir=out_dir)
    recipe = load_config(settings.recipe)
    if recipe.encoder.name != settings.encoder:
        # Another encoder takes none of the recipe's encoder parameters; keep whether it is shared.
        shared = "true" if recipe.encoder.params.get("shared", False) else "false"
        overrides.append(f"encoder={{ name = {settings.encoder!r}, shared = {shared} }}")
    overrides.extend(settings.overrides)
    config = load_config(settings.recipe, overrides)
    size = config.data.params.get("size") if config.data is not None else None
    needed = settings.steps_per_run * config.train.batch_size * config.train.accumulate_steps
    if isinstance(size, int) and size < needed:  # one epoch must hold every step of a run
        config = load_config(settings.recipe, [*overrides, f"data.size={needed}"])
    return config


def run_once(settings: Settings, device: torch.device) -> tuple[RunResult, Config]:
    """Build the trainer from the recipe, train ``steps_per_run`` steps and time the window."""
    with tempfile.TemporaryDirectory(prefix="ck-training-") as out_dir:
        config = make_config(settings, out_dir=out_dir)
        trainer = Trainer.from_config(config, path=settings.recipe, print_fn=lambda _: None)
        timer = StepTimer(device, start=settings.warmup, stop=settings.warmup + settings.steps)
        timer.attach(trainer.pipeline)
        result = trainer.fit()
        if result.steps != settings.steps_per_run:
            raise RuntimeError(f"the trainer ran {result.steps} steps, expected {settings.steps_per_run}")
        synchronize(device)  # the CUDA events of the window have completed
        run = RunResult(ms_per_step=timer.ms_per_step, forward_ms=timer.forward_ms, backward_ms=timer.backward_ms)
    return run, config


def run_benchmark(settings: Settings, *, echo: Any = None) -> BenchmarkResult:
    """``warmup_runs`` uncounted runs, then ``repeats`` timed ones; ``echo`` (e.g. ``print``) gets a line per run."""
    device = select_device(settings.device)
    settings = attrs.evolve(settings, device=str(device))
    runs: list[RunResult] = []
    config: Config | None = None
    total = settings.warmup_runs + settings.repeats
    for index in range(total):
        run, config = run_once(settings, device)
        if index >= settings.warmup_runs:
            runs.append(run)
        if echo is not None:
            timed = index - settings.warmup_runs + 1
            label = "warm-up" if timed < 1 else f"{timed}/{settings.repeats}"
            echo(
                f"run {label:>7}: {run.ms_per_step:9.2f} ms/step  encoders {run.encoder_ms:9.2f} ms/step "
                f"(fwd {run.forward_ms:.2f}, bwd {run.backward_ms:.2f})  outside {100 * run.fraction_outside:5.1f} %"
            )
    assert config is not None
    size = config.data.params.get("size", 0) if config.data is not None else 0
    return BenchmarkResult(settings, str(device), config.encoder.name, int(size), runs)


def format_report(result: BenchmarkResult) -> str:
    """The table, the target line and the summary line (the last line).

    Example:
        >>> r = BenchmarkResult(Settings(device="cuda", batch=256), "cuda", "resnet18", 4096,
        ...                     [RunResult(100.0, 30.0, 62.0)])
        >>> for part in format_report(r).splitlines()[-1].split(", "): print(part)
        summary: 2560.0 images/s
        100.000 ms/step
        encoders fwd+bwd 92.000 ms/step
        outside 0.080 (target <= 0.10 on a GPU: met)
    """
    lines = [f"{'figure':<24} {'median':>10} {'min':>10} {'max':>10}"]
    rows = (
        ("ms/step", "ms_per_step"),
        ("encoder forward ms", "forward_ms"),
        ("encoder backward ms", "backward_ms"),
        ("encoder fwd+bwd ms", "encoder_ms"),
        ("fraction outside", "fraction_outside"),
    )
    for label, field in rows:
        values = result.values(field)
        median = statistics.median(values)
        lines.append(f"{label:<24} {median:10.3f} {min(values):10.3f} {max(values):10.3f}")
    lines.append(f"{'images/s':<24} {result.images_per_second:10.1f}")
    fraction = result.median("fraction_outside")
    if result.device.startswith("cuda"):
        verdict = "met" if fraction <= TARGET else "NOT met"
        target = f"target <= {TARGET:.2f} on a GPU: {verdict}"
    else:
        target = f"target <= {TARGET:.2f} is for GPUs; not applicable on {result.device.split(':')[0]}"
    lines.append(f"fraction of step time outside the encoders' forward and backward: {fraction:.3f}  ({target})")
    lines.append(
        f"summary: {result.images_per_second:.1f} images/s, {result.median('ms_per_step'):.3f} ms/step, "
        f"encoders fwd+bwd {result.median('encoder_ms'):.3f} ms/step, outside {fraction:.3f} ({target})"
    )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> tuple[Settings, str | None, int]:
    """Command line -> settings, the ``--json`` path and the thread count (0: torch's default)."""
    parser = argparse.ArgumentParser(
        prog="python benchmarks/training.py",
        description="End-to-end training images/s of a recipe (default examples/simclr.toml) and the share "
        "of step time outside the encoders' forward and backward.",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    parser.add_argument("--recipe", default=str(RECIPE), help="TOML recipe (default: examples/simclr.toml)")
    parser.add_argument("--batch", type=int, default=None,
                        help=f"images per step (default: {GPU_BATCH}, the recipe's, on a GPU; {CPU_BATCH} on the CPU)")
    parser.add_argument("--steps", type=int, default=None,
                        help="timed steps per run (default: 5 on the CPU, 50 on a GPU)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed steps at the start of each run, >= 1 (default: 1 on the CPU, 10 on a GPU)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs (default: 1 on the CPU, 3 on a GPU)")
    parser.add_argument("--warmup-runs", type=int, default=None,
                        help="uncounted runs before them (default: 0 on the CPU, 1 on a GPU)")
    parser.add_argument("--encoder", default="resnet18", help="encoder plugin name (default: resnet18)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="recipe override applied after the benchmark's (repeatable), e.g. data.image_size=16")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", metavar="PATH", default=None, help="also write the results as JSON to PATH")
    args = parser.parse_args(argv)
    try:
        device = select_device(args.device)
    except (ConfigError, RuntimeError) as exc:
        parser.error(f"--device: {exc}")
    gpu = device.type != "cpu"
    values = {
        "batch": args.batch if args.batch is not None else (GPU_BATCH if gpu else CPU_BATCH),
        "steps": args.steps if args.steps is not None else (50 if gpu else 5),
        "warmup": args.warmup if args.warmup is not None else (10 if gpu else 1),
        "repeats": args.repeats if args.repeats is not None else (3 if gpu else 1),
        "warmup_runs": args.warmup_runs if args.warmup_runs is not None else (1 if gpu else 0),
    }
    for name, low in (("batch", 2), ("steps", 1), ("warmup", 1), ("repeats", 1), ("warmup_runs", 0)):
        if values[name] < low:
            parser.error(f"--{name.replace('_', '-')}: must be >= {low} (got {values[name]})")
    if args.threads < 0:
        parser.error(f"--threads: must be >= 0 (got {args.threads})")
    settings = Settings(
        device=args.device, recipe=args.recipe, encoder=args.encoder, overrides=args.overrides, **values
    )
    try:  # every recipe, --set and plugin check runs here, before any training
        make_config(settings, out_dir=tempfile.gettempdir())
    except ConfigError as exc:
        parser.error(str(exc))
    return settings, args.json, args.threads


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the report; returns the exit status."""
    settings, json_path, threads = parse_args(argv)
    if threads:
        torch.set_num_threads(threads)
    device = select_device(settings.device)
    s = settings
    print(f"device: {device_name(str(device))}   torch {torch.__version__}   python {sys.version.split()[0]}")
    config = make_config(s, out_dir=tempfile.gettempdir())
    size = config.data.params.get("size") if config.data is not None else None
    extra = f", --set {' '.join(s.overrides)}" if s.overrides else ""
    print(
        f"recipe: {Path(s.recipe).name}, encoder {config.encoder.name}, batch {config.train.batch_size}, "
        f"data {config.data.name if config.data is not None else '?'} size {size}, "
        f"optimizer {config.train.optimizer}, precision {config.train.precision}{extra}"
    )
    how = {"cuda": "CUDA events at the encoder hooks", "mps": "device synchronised at the encoder hooks"}
    print(
        f"timing: {s.steps} steps per run after {s.warmup} untimed, {s.repeats} runs after {s.warmup_runs} uncounted; "
        f"encoders by forward/backward hooks ({how.get(device.type, 'host clock at the encoder hooks')})"
    )
    result = run_benchmark(settings, echo=print)
    return finish(result.as_dict(), [format_report(result)], json_path=json_path)


if __name__ == "__main__":
    sys.exit(main())

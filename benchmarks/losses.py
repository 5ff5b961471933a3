"""contrastkit's losses against straightforward and published implementations, in the same run.

Two comparisons, each on the same inputs, device and float32:

1. **InfoNCE, forward + backward** at ``N`` anchors (``--sizes``, default 1024, 4096 and 8192) of
   dimension ``D`` (``--dim``, 128), two-way, temperature 0.07:

   - *reference*: the straightforward loss — ``F.normalize`` both views, the full ``[N, N]`` logits
     ``z1 @ z2.T / tau``, ``F.cross_entropy`` on the rows and on the columns (``logits.T``);
   - *contrastkit*: the code path of ``Pipeline.forward`` for one view pair with a ``cosine``
     critic (``head = "none"``), ``in-batch`` negatives and two-way ``infonce``: ``critic.embed``
     per view, then per direction ``negatives.pair_logits`` -> ``objective(logits, target)`` ->
     ``objective.mi_lower_bound``, the two directions summed, ``negatives.update``.

   Both losses are scalars whose values (and input gradients) must agree; the report prints the
   difference. Targets: contrastkit no slower and no more peak memory than the reference, and no
   intermediate of size ``N^2 * D`` (the report prints the largest single allocation).

   With lightly installed (``pip install -e .[bench]``) the same sizes also compare **NT-Xent**
   (``same_view_negatives``, SimCLR's loss) with lightly's ``NTXentLoss``: ``2 * NTXentLoss(z1, z2)``
   (lightly averages the ``2N`` anchors, contrastkit sums the two directions) against contrastkit's
   path with ``same_view=True``. Target on a GPU: contrastkit / lightly <= 0.9.

2. **One memory-bank step** with a bank of ``n`` samples (``--bank-size``), ``K`` negatives
   (``--negatives``), batch ``B`` (``--batch``), ``D`` dimensions: sample, score, loss, update and
   the backward pass to the two views' embeddings:

   - *CMC*: a faithful re-implementation of CMC's ``NCE/alias_multinomial.py`` (``AliasMethod``:
     ``draw`` = ``random_`` + ``index_select`` of the prob/alias tables + ``bernoulli``) and
     ``NCE/NCEAverage.py`` (``NCEAverage.forward``: ``index_select`` of ``B * (K + 1)`` rows per
     view, ``bmm``, the update with momentum, normalisation and ``index_copy_`` under ``no_grad``),
     with CMC's ``NCESoftmaxLoss`` (``--cmc-loss softmax``, the default: the same cross-entropy as
     contrastkit's ``infonce``) or ``NCECriterion`` on ``exp(out / T) / Z`` (``--cmc-loss nce``,
     CMC's default in ``train_CMC.py``);
   - *contrastkit*: ``MemoryBankNegatives`` (``memory-bank``) with its defaults, called as
     ``Pipeline.forward`` calls it: ``pair_logits`` for both directions, ``infonce``, ``update``.

   Before timing, one step of each side runs on identical banks with the *same* sampled indices:
   the report prints the largest difference of the negatives' scores and of the banks after the
   update (the positive column differs on purpose: CMC scores the positive's bank row,
   contrastkit the positive embedding of this step). Target: CMC / contrastkit >= 2.

Timing: median, min and max over ``--repeats`` rounds after ``--warmup`` uncounted rounds; in each
round the two sides run one after the other (reference or CMC first), each timed on its own with
the device synchronised before and after (CUDA). Peak memory is measured in a separate, untimed
call: on CUDA ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, minus what
was allocated before the call; on the CPU (where torch has no allocator statistics) the running
sum of the tensor allocations and frees that ``torch.profiler`` (``profile_memory=True``) records
during the call, so on both devices it is the peak of the memory the call adds on top of its inputs.
The largest single allocation comes from the same profiler pass.

Sizes: the issue's memory-bank sizes (``n = 100000``, ``K = 16384``, ``B = 256``, ``D = 128``) are the
default on every device. CMC's side gathers ``B * K * D`` floats (2 GiB) per view and direction, about
15 s a step on 2 CPU cores, so a CPU run takes a few minutes; ``--negatives``/``--batch`` shrink it.

Usage (from a checkout after ``pip install -e .``)::

    python benchmarks/losses.py                                  # auto device
    python benchmarks/losses.py --device cuda --repeats 20 --json losses.json
    python benchmarks/losses.py --device cpu --sizes 1024,4096 --negatives 16384 --batch 256
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.critics.cosine import CosineCritic
from contrastkit.errors import ConfigError
from contrastkit.negatives.in_batch import InBatchNegatives
from contrastkit.negatives.memory_bank import MemoryBankNegatives
from contrastkit.objectives.infonce import InfoNCE
from contrastkit.training import select_device

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as `python benchmarks/losses.py`: make the `benchmarks` package importable
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.device_info import device_name, synchronize  # noqa: E402
from benchmarks.finish import finish  # noqa: E402

INFONCE_TARGET = 1.0  # contrastkit / reference, time and peak memory: at most
BANK_TARGET = 2.0  # CMC / contrastkit, memory-bank step time: at least
NTXENT_TARGET = 0.9  # contrastkit / lightly's NTXentLoss, time on a GPU: at most
SEED = 0
MIB = 2.0**20

# The memory-bank sizes of the issue, the default on every device (CMC's side takes ~15 s a step on 2 CPU cores).
ISSUE_BANK = {"bank_size": 100_000, "negatives": 16_384, "batch": 256}


def _sizes(value: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(v) for v in value)


@attrs.frozen
class Settings:
    """What one run measures (the command-line arguments, resolved).

    Example:
        >>> Settings(device="cpu", sizes=[64, 128]).sizes
        (64, 128)
    """

    device: str = "auto"
    sizes: tuple[int, ...] = attrs.field(default=(1024, 4096, 8192), converter=_sizes)
    dim: int = 128
    temperature: float = 0.07
    repeats: int = 5
    warmup: int = 1
    bank_size: int = ISSUE_BANK["bank_size"]
    negatives: int = ISSUE_BANK["negatives"]
    batch: int = ISSUE_BANK["batch"]
    momentum: float = 0.5
    #: CMC's loss on its scores: ``softmax`` (``NCESoftmaxLoss``) or ``nce`` (``NCECriterion``).
    cmc_loss: str = "softmax"


@attrs.frozen
class Timing:
    """Per-round milliseconds of one side (warm-up rounds left out) and its memory figures (bytes).

    ``peak`` and ``largest`` are ``None`` where they could not be measured.

    Example:
        >>> Timing([3.0, 1.0, 2.0]).median
        2.0
    """

    ms: list[float]
    peak: float | None = None
    largest: float | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.ms)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ms": self.ms,
            "median_ms": self.median,
            "peak_bytes": self.peak,
            "largest_allocation_bytes": self.largest,
        }


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


@attrs.frozen
class InfoNCEResult:
    """One ``N`` of the InfoNCE comparison.

    Example:
        >>> r = InfoNCEResult(8, Timing([2.0], 100.0), Timing([1.0], 50.0), 1.0, 1.0, 0.0, 0.0)
        >>> r.time_ratio, r.memory_ratio
        (0.5, 0.5)
    """

    n: int
    reference: Timing
    contrastkit: Timing
    reference_loss: float
    contrastkit_loss: float
    loss_diff: float
    grad_diff: float

    @property
    def time_ratio(self) -> float:
        """Median contrastkit ms over median reference ms."""
        return self.contrastkit.median / self.reference.median

    @property
    def memory_ratio(self) -> float | None:
        """contrastkit's peak memory over the reference's (``None`` if not measured)."""
        return _ratio(self.contrastkit.peak, self.reference.peak)

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "reference": self.reference.as_dict(),
            "contrastkit": self.contrastkit.as_dict(),
            "reference_loss": self.reference_loss,
            "contrastkit_loss": self.contrastkit_loss,
            "loss_abs_diff": self.loss_diff,
            "grad_max_abs_diff": self.grad_diff,
            "time_ratio": self.time_ratio,
            "memory_ratio": self.memory_ratio,
        }


@attrs.frozen
class BankResult:
    """The memory-bank comparison.

    Example:
        >>> r = BankResult(Timing([4.0]), Timing([2.0]), 0.0, 0.0, 0.0)
        >>> r.speedup
        2.0
    """

    cmc: Timing
    contrastkit: Timing
    score_diff: float
    positive_diff: float
    bank_diff: float
    #: contrastkit with ``shared_negatives = true`` (one draw of K rows per step for the whole batch).
    shared: Timing | None = None

    @property
    def speedup(self) -> float:
        """Median CMC ms over median contrastkit ms."""
        return self.cmc.median / self.contrastkit.median

    @property
    def shared_speedup(self) -> float | None:
        """Median CMC ms over median contrastkit ms with shared negatives."""
        return None if self.shared is None else self.cmc.median / self.shared.median

    def as_dict(self) -> dict[str, Any]:
        return {
            "cmc": self.cmc.as_dict(),
            "contrastkit": self.contrastkit.as_dict(),
            "negative_scores_max_abs_diff": self.score_diff,
            "positive_scores_max_abs_diff": self.positive_diff,
            "banks_after_update_max_abs_diff": self.bank_diff,
            "speedup": self.speedup,
            "contrastkit_shared_negatives": None if self.shared is None else self.shared.as_dict(),
            "shared_negatives_speedup": self.shared_speedup,
        }


@attrs.frozen
class BenchmarkResult:
    """Everything one run measured."""

    settings: Settings
    device: str
    infonce: list[InfoNCEResult]
    bank: BankResult
    #: NT-Xent against lightly's ``NTXentLoss`` per size (``reference`` = lightly); empty without lightly.
    ntxent: list[InfoNCEResult] = attrs.field(factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "settings": attrs.asdict(self.settings),
            "device": self.device,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "infonce": [r.as_dict() for r in self.infonce],
            "memory_bank": self.bank.as_dict(),
            "ntxent_lightly": [r.as_dict() for r in self.ntxent],
            "targets": {"infonce_time_ratio_max": INFONCE_TARGET, "infonce_memory_ratio_max": INFONCE_TARGET,
                        "memory_bank_speedup_min": BANK_TARGET, "ntxent_lightly_time_ratio_max": NTXENT_TARGET},
        }


# --------------------------------------------------------------------------------------------
# Timing and memory
# --------------------------------------------------------------------------------------------


def time_ms(fn: Callable[[], Any], device: torch.device) -> float:
    """Wall-clock milliseconds of one call of ``fn``, the device synchronised before and after.

    Example:
        >>> time_ms(lambda: None, torch.device("cpu")) >= 0
        True
    """
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return 1000.0 * (time.perf_counter() - start)


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 (the profiler's C++ start/stop lines), restoring it afterwards."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real descriptor 2: nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def profiled_allocations(fn: Callable[[], Any], device: torch.device) -> list[int]:
    """Sizes (bytes; frees negative) of the tensor allocations on ``device`` during ``fn``, in time order.

    Recorded by ``torch.profiler`` with ``profile_memory=True``.

    Example:
        >>> sizes = profiled_allocations(lambda: torch.zeros(1024), torch.device("cpu"))
        >>> max(sizes)
        4096
    """
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with _quiet_stderr(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with profile(activities=activities, profile_memory=True) as prof:
            fn()
            synchronize(device)
    events: list[tuple[int, int]] = []
    stack = list(prof.profiler.kineto_results.experimental_event_tree())  # type: ignore[union-attr]
    while stack:
        event = stack.pop()
        stack.extend(event.children)
        kind, fields = event.typed
        if kind.name == "Allocation" and torch.device(fields.device).type == device.type:
            events.append((event.start_time_ns, int(fields.alloc_size)))
    events.sort(key=lambda e: e[0])
    return [size for _, size in events]


def measure_memory(fn: Callable[[], Any], device: torch.device) -> tuple[float | None, float | None]:
    """``(peak, largest)``: peak bytes ``fn`` adds on top of what is allocated, and its largest allocation.

    CUDA: the peak from ``torch.cuda.max_memory_allocated``; elsewhere from the profiler's
    allocation records (see :func:`profiled_allocations`). ``None`` for what cannot be measured.

    Example:
        >>> peak, largest = measure_memory(lambda: torch.zeros(1024) + 1, torch.device("cpu"))
        >>> peak >= 8192, largest  # two 4 KiB tensors alive at once
        (True, 4096.0)
    """
    peak: float | None = None
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        synchronize(device)
        peak = float(torch.cuda.max_memory_allocated(device) - base)
    try:
        sizes = profiled_allocations(fn, device)
    except Exception:  # noqa: BLE001 - the profiler's internals vary between torch versions: report n/a
        return peak, None
    largest = float(max((s for s in sizes if s > 0), default=0))
    if peak is None:
        running = top = 0
        for size in sizes:
            running += size
            top = max(top, running)
        peak = float(top)
    return peak, largest


def run_rounds(
    sides: Sequence[tuple[Callable[[], None], Callable[[], Any]]], device: torch.device, *, repeats: int, warmup: int
) -> list[list[float]]:
    """``warmup`` uncounted then ``repeats`` counted rounds; each round times every side once, in order.

    Each side is ``(prepare, step)``: ``prepare`` runs untimed before ``step`` is timed.

    Example:
        >>> ms = run_rounds([(lambda: None, lambda: None)] * 2, torch.device("cpu"), repeats=3, warmup=1)
        >>> [len(m) for m in ms]
        [3, 3]
    """
    times: list[list[float]] = [[] for _ in sides]
    for round_ in range(warmup + repeats):
        for i, (prepare, step) in enumerate(sides):
            prepare()
            ms = time_ms(step, device)
            if round_ >= warmup:
                times[i].append(ms)
    return times


# --------------------------------------------------------------------------------------------
# InfoNCE: contrastkit's path and the straightforward reference
# --------------------------------------------------------------------------------------------


def contrastkit_loss(
    critic: CosineCritic, negatives: Any, objective: InfoNCE, f1: Tensor, f2: Tensor, index: Tensor,
    *, same_view: bool = False,
) -> Tensor:
    """``Pipeline.forward``'s loss for the view pair (1, 2) from features ``f1``, ``f2`` ``[B, F]``.

    The same calls in the same order: ``critic.embed`` per view; per direction
    ``negatives.pair_logits``, the objective, its mutual-information bound; the two directions
    summed (``two_way``), the logged metrics detached; then ``negatives.update`` with the detached
    embeddings (as in training mode). As in the pipeline, the reverse direction reuses the forward
    logits transposed when the critic is symmetric and the sampler offers ``reverse_pair_logits``.
    ``same_view=True`` is NT-Xent (``same_view_negatives``): ``pair_logits(..., same_view=True)``
    both ways, and no transpose (the pipeline's rule).

    Example:
        >>> critic = CosineCritic(feature_dims=(4, 4), head="none", temperature=0.5)
        >>> sampler = InBatchNegatives(num_views=2, dataset_size=3, embedding_dim=4)
        >>> f = torch.eye(3, 4)
        >>> round(float(contrastkit_loss(critic, sampler, InfoNCE(), f, f, torch.arange(3))), 4)
        0.4791
    """
    options = {"same_view": True} if same_view else {}
    embeddings = [critic.embed(f1, view=0), critic.embed(f2, view=1)]
    forward = negatives.pair_logits(critic, embeddings[0], embeddings[1], index=index, anchor_view=0, target_view=1,
                                    **options)
    loss = objective(forward.logits, forward.target)
    mi = objective.mi_lower_bound(loss, forward.num_negatives)
    backward = None
    if not same_view and getattr(critic, "symmetric", False) and callable(getattr(negatives, "reverse_pair_logits",
                                                                                  None)):
        backward = negatives.reverse_pair_logits(forward)  # the pipeline's rule: transposed when valid
    if backward is None:
        backward = negatives.pair_logits(critic, embeddings[1], embeddings[0], index=index, anchor_view=1,
                                         target_view=0, **options)
    loss_back = objective(backward.logits, backward.target)
    mi_back = objective.mi_lower_bound(loss_back, backward.num_negatives)
    loss = loss + loss_back
    metrics = {"loss/v1-v2": loss.detach(), "mi_lower_bound/v1-v2": ((mi + mi_back) / 2).detach()}  # noqa: F841
    negatives.update([e.detach() for e in embeddings], index)
    return loss


def reference_infonce(f1: Tensor, f2: Tensor, temperature: float) -> Tensor:
    """Two-way InfoNCE written out: normalise, the full ``[N, N]`` logits, cross-entropy both ways.

    Example:
        >>> f = torch.eye(3, 4)
        >>> round(float(reference_infonce(f, f, 0.5)), 4)
        0.4791
    """
    z1 = F.normalize(f1, dim=1)
    z2 = F.normalize(f2, dim=1)
    logits = z1 @ z2.T / temperature
    target = torch.arange(f1.shape[0], device=f1.device)
    return F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)


def _features(settings: Settings, n: int, device: torch.device) -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(SEED + n)
    f1 = torch.randn(n, settings.dim, generator=gen).to(device).requires_grad_(True)
    f2 = torch.randn(n, settings.dim, generator=gen).to(device).requires_grad_(True)
    return f1, f2


def compare_losses(
    settings: Settings, n: int, device: torch.device, f1: Tensor, f2: Tensor,
    reference_loss: Callable[[], Tensor], framework_loss: Callable[[], Tensor],
) -> InfoNCEResult:
    """Two scalar losses of ``f1, f2``: cross-check (value, input gradients), memory pass, timed rounds.

    Example:
        >>> s = Settings(device="cpu", sizes=[4], dim=3, repeats=1, warmup=0)
        >>> f1, f2 = _features(s, 4, torch.device("cpu"))
        >>> r = compare_losses(s, 4, torch.device("cpu"), f1, f2, lambda: (f1 * f2).sum(), lambda: (f2 * f1).sum())
        >>> r.loss_diff, r.grad_diff
        (0.0, 0.0)
    """

    def clear() -> None:
        f1.grad = f2.grad = None

    def reference() -> Tensor:
        loss = reference_loss()
        loss.backward()
        return loss

    def framework() -> Tensor:
        loss = framework_loss()
        loss.backward()
        return loss

    clear()
    ref_loss = reference()
    ref_grads = [f1.grad.clone(), f2.grad.clone()]  # type: ignore[union-attr]
    clear()
    ck_loss = framework()
    grad_diff = max(float((g - r).abs().max()) for g, r in zip((f1.grad, f2.grad), ref_grads))
    ref_value, ck_value = float(ref_loss.detach()), float(ck_loss.detach())
    del ref_grads

    memory = []
    for fn in (reference, framework):
        clear()
        memory.append(measure_memory(fn, device))
    clear()
    ms = run_rounds([(clear, reference), (clear, framework)], device, repeats=settings.repeats,
                    warmup=settings.warmup)
    clear()
    return InfoNCEResult(
        n=n, reference=Timing(ms[0], *memory[0]), contrastkit=Timing(ms[1], *memory[1]), reference_loss=ref_value,
        contrastkit_loss=ck_value, loss_diff=abs(ck_value - ref_value), grad_diff=grad_diff,
    )


def run_infonce(settings: Settings, n: int, device: torch.device) -> InfoNCEResult:
    """Two-way InfoNCE at batch ``n``: the written-out reference against contrastkit's pipeline path."""
    d = settings.dim
    f1, f2 = _features(settings, n, device)
    index = torch.arange(n, device=device)
    critic = CosineCritic(feature_dims=(d, d), head="none", temperature=settings.temperature).to(device)
    sampler = InBatchNegatives(num_views=2, dataset_size=n, embedding_dim=d)
    objective = InfoNCE(two_way=True)
    return compare_losses(
        settings, n, device, f1, f2, lambda: reference_infonce(f1, f2, settings.temperature),
        lambda: contrastkit_loss(critic, sampler, objective, f1, f2, index),
    )


def lightly_ntxent() -> Callable[[Tensor, Tensor], Tensor] | None:
    """lightly's ``NTXentLoss`` (``None`` when lightly is not installed: ``pip install -e .[bench]``).

    Example:
        >>> loss = lightly_ntxent()
        >>> loss is None or callable(loss)
        True
    """
    try:
        from lightly.loss import NTXentLoss
    except ImportError:
        return None
    return NTXentLoss


def run_ntxent(settings: Settings, n: int, device: torch.device) -> InfoNCEResult | None:
    """NT-Xent at batch ``n``: lightly's ``NTXentLoss`` against contrastkit's ``same_view_negatives`` path.

    lightly returns the mean over the ``2N`` anchors; contrastkit the two directions' sum, twice
    that, so lightly's side is scaled by 2 (one scalar multiply) for the same value and gradients.
    ``None`` without lightly.
    """
    ntxent = lightly_ntxent()
    if ntxent is None:
        return None
    d = settings.dim
    f1, f2 = _features(settings, n, device)
    index = torch.arange(n, device=device)
    critic = CosineCritic(feature_dims=(d, d), head="none", temperature=settings.temperature).to(device)
    sampler = InBatchNegatives(num_views=2, dataset_size=n, embedding_dim=d)
    objective = InfoNCE(two_way=True, same_view_negatives=True)
    lightly_loss = ntxent(temperature=settings.temperature).to(device)
    return compare_losses(
        settings, n, device, f1, f2, lambda: 2 * lightly_loss(f1, f2),
        lambda: contrastkit_loss(critic, sampler, objective, f1, f2, index, same_view=True),
    )


# --------------------------------------------------------------------------------------------
# CMC's memory bank, re-implemented faithfully (NCE/alias_multinomial.py, NCE/NCEAverage.py,
# NCE/NCECriterion.py of github.com/HobbitLong/CMC)
# --------------------------------------------------------------------------------------------


class AliasMethod:
    """CMC's ``AliasMethod``: Walker's alias tables built in Python, sampled with torch.

    Example:
        >>> sampler = AliasMethod(torch.ones(10))
        >>> drawn = sampler.draw(1000)
        >>> drawn.shape, int(drawn.min()) >= 0, int(drawn.max()) <= 9
        (torch.Size([1000]), True, True)
    """

    def __init__(self, probs: Tensor) -> None:
        if probs.sum() > 1:
            probs.div_(probs.sum())
        K = len(probs)
        self.prob = torch.zeros(K)
        self.alias = torch.LongTensor([0] * K)

        # Sort the data into the outcomes with probabilities that are larger and smaller than 1/K.
        smaller = []
        larger = []
        for kk, prob in enumerate(probs):
            self.prob[kk] = K * prob
            if self.prob[kk] < 1.0:
                smaller.append(kk)
            else:
                larger.append(kk)

        # Loop though and create little binary mixtures that appropriately allocate the larger
        # outcomes over the overall uniform mixture.
        while len(smaller) > 0 and len(larger) > 0:
            small = smaller.pop()
            large = larger.pop()

            self.alias[small] = large
            self.prob[large] = (self.prob[large] - 1.0) + self.prob[small]

            if self.prob[large] < 1.0:
                smaller.append(large)
            else:
                larger.append(large)

        for last_one in smaller + larger:
            self.prob[last_one] = 1

    def to(self, device: torch.device) -> AliasMethod:
        """CMC's ``cuda()``, for any device."""
        self.prob = self.prob.to(device)
        self.alias = self.alias.to(device)
        return self

    def draw(self, N: int) -> Tensor:
        """Draw N samples from multinomial."""
        K = self.alias.size(0)

        kk = torch.zeros(N, dtype=torch.long, device=self.prob.device).random_(0, K)
        prob = self.prob.index_select(0, kk)
        alias = self.alias.index_select(0, kk)
        # b is whether a random number is greater than q
        b = torch.bernoulli(prob)
        oq = kk.mul(b.long())
        oj = alias.mul((1 - b).long())

        return oq + oj


class NCEAverage(nn.Module):
    """CMC's two-view memory bank ``NCEAverage`` (``memory_l``, ``memory_ab``), ``use_softmax`` included.

    ``forward(l, ab, y, idx=None)`` -> ``(out_l, out_ab)``, each ``[B, K+1, 1]``: view 1's anchors
    ``l`` scored against view 2's bank (``out_l``) and the reverse; column 0 is the positive's bank
    row. The banks are then updated at ``y`` in place. CMC's first-call ``print`` of ``Z`` is left out.

    Example:
        >>> memory = NCEAverage(4, 20, 5, use_softmax=True)
        >>> z = F.normalize(torch.randn(3, 4), dim=1)
        >>> [o.shape for o in memory(z, z, torch.arange(3))]
        [torch.Size([3, 6, 1]), torch.Size([3, 6, 1])]
    """

    memory_l: Tensor
    memory_ab: Tensor
    params: Tensor

    def __init__(
        self,
        inputSize: int,
        outputSize: int,
        K: int,
        T: float = 0.07,
        momentum: float = 0.5,
        use_softmax: bool = False,
    ) -> None:
        super().__init__()
        self.nLem = outputSize
        self.unigrams = torch.ones(self.nLem)
        self.multinomial = AliasMethod(self.unigrams)
        self.K = K
        self.use_softmax = use_softmax

        self.register_buffer("params", torch.tensor([K, T, -1, -1, momentum]))
        stdv = 1.0 / math.sqrt(inputSize / 3)
        self.register_buffer("memory_l", torch.rand(outputSize, inputSize).mul_(2 * stdv).add_(-stdv))
        self.register_buffer("memory_ab", torch.rand(outputSize, inputSize).mul_(2 * stdv).add_(-stdv))

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> NCEAverage:  # .to(device) moves the alias tables too
        super()._apply(fn, *args, **kwargs)
        self.multinomial.to(self.memory_l.device)
        return self

    def forward(self, l: Tensor, ab: Tensor, y: Tensor, idx: Tensor | None = None) -> tuple[Tensor, Tensor]:  # noqa: E741 - CMC's names (L and ab views)
        K = int(self.params[0].item())
        T = self.params[1].item()
        Z_l = self.params[2].item()
        Z_ab = self.params[3].item()

        momentum = self.params[4].item()
        batchSize = l.size(0)
        outputSize = self.memory_l.size(0)
        inputSize = self.memory_l.size(1)

        # score computation
        if idx is None:
            idx = self.multinomial.draw(batchSize * (self.K + 1)).view(batchSize, -1)
            idx.select(1, 0).copy_(y.data)
        # sample
        weight_l = torch.index_select(self.memory_l, 0, idx.view(-1)).detach()
        weight_l = weight_l.view(batchSize, K + 1, inputSize)
        out_ab = torch.bmm(weight_l, ab.view(batchSize, inputSize, 1))
        # sample
        weight_ab = torch.index_select(self.memory_ab, 0, idx.view(-1)).detach()
        weight_ab = weight_ab.view(batchSize, K + 1, inputSize)
        out_l = torch.bmm(weight_ab, l.view(batchSize, inputSize, 1))

        if self.use_softmax:
            out_ab = torch.div(out_ab, T)
            out_l = torch.div(out_l, T)
            out_l = out_l.contiguous()
            out_ab = out_ab.contiguous()
        else:
            out_ab = torch.exp(torch.div(out_ab, T))
            out_l = torch.exp(torch.div(out_l, T))
            # set Z_0 if haven't been set yet, Z_0 is used as a constant approximation of Z, to scale the probs
            if Z_l < 0:
                self.params[2] = out_l.mean() * outputSize
                Z_l = self.params[2].clone().detach().item()
            if Z_ab < 0:
                self.params[3] = out_ab.mean() * outputSize
                Z_ab = self.params[3].clone().detach().item()
            # compute out_l, out_ab
            out_l = torch.div(out_l, Z_l).contiguous()
            out_ab = torch.div(out_ab, Z_ab).contiguous()

        # # update memory
        with torch.no_grad():
            l_pos = torch.index_select(self.memory_l, 0, y.view(-1))
            l_pos.mul_(momentum)
            l_pos.add_(torch.mul(l, 1 - momentum))
            l_norm = l_pos.pow(2).sum(1, keepdim=True).pow(0.5)
            updated_l = l_pos.div(l_norm)
            self.memory_l.index_copy_(0, y, updated_l)

            ab_pos = torch.index_select(self.memory_ab, 0, y.view(-1))
            ab_pos.mul_(momentum)
            ab_pos.add_(torch.mul(ab, 1 - momentum))
            ab_norm = ab_pos.pow(2).sum(1, keepdim=True).pow(0.5)
            updated_ab = ab_pos.div(ab_norm)
            self.memory_ab.index_copy_(0, y, updated_ab)

        return out_l, out_ab


class NCESoftmaxLoss(nn.Module):
    """CMC's ``NCESoftmaxLoss``: cross-entropy with the positive at column 0."""

    def __init__(self) -> None:
        super().__init__()
        self.criterion = nn.CrossEntropyLoss()

    def forward(self, x: Tensor) -> Tensor:
        bsz = x.shape[0]
        x = x.squeeze()
        label = torch.zeros([bsz], device=x.device).long()
        return self.criterion(x, label)


class NCECriterion(nn.Module):
    """CMC's ``NCECriterion`` (eq. 12, ``L_NCE``) on ``exp(s / T) / Z`` scores ``[B, K+1, 1]``."""

    eps = 1e-7

    def __init__(self, n_data: int) -> None:
        super().__init__()
        self.n_data = n_data

    def forward(self, x: Tensor) -> Tensor:
        bsz = x.shape[0]
        m = x.size(1) - 1

        # noise distribution
        Pn = 1 / float(self.n_data)

        # loss for positive pair
        P_pos = x.select(1, 0)
        log_D1 = torch.div(P_pos, P_pos.add(m * Pn + self.eps)).log_()

        # loss for K negative pair
        P_neg = x.narrow(1, 1, m)
        log_D0 = torch.div(P_neg.clone().fill_(m * Pn), P_neg.add(m * Pn + self.eps)).log_()

        return -(log_D1.sum(0) + log_D0.view(-1, 1).sum(0)) / bsz


def cmc_normalize(x: Tensor) -> Tensor:
    """CMC's ``Normalize`` layer (the end of its encoders): ``x / ||x||_2`` per row."""
    norm = x.pow(2).sum(1, keepdim=True).pow(1.0 / 2)
    return x.div(norm)


def cmc_loss(memory: NCEAverage, criterion: nn.Module, f1: Tensor, f2: Tensor, index: Tensor) -> Tensor:
    """One CMC step's loss (``train_CMC.py``): normalise, ``contrast(l, ab, index)``, both criteria summed."""
    out_l, out_ab = memory(cmc_normalize(f1), cmc_normalize(f2), index)
    return criterion(out_l) + criterion(out_ab)


def bank_cross_check(
    memory: NCEAverage, sampler: MemoryBankNegatives, critic: CosineCritic, f1: Tensor, f2: Tensor, index: Tensor
) -> tuple[float, float, float]:
    """One step of each side from identical banks with the same sampled indices (CMC's alias draw).

    Returns the largest absolute differences of the negatives' scores (both directions), of the
    positive column against ``s(z1, z2)`` computed directly, and of the banks after the update.
    """
    with torch.no_grad():
        memory.memory_l.copy_(sampler.bank[0])
        memory.memory_ab.copy_(sampler.bank[1])
    batch = index.shape[0]
    idx = memory.multinomial.draw(batch * (sampler.num_negatives + 1)).view(batch, -1)
    idx.select(1, 0).copy_(index)
    softmax = memory.use_softmax
    memory.use_softmax = True  # raw scores s / T, comparable with logits
    sampler.sample_indices = lambda _index: idx[:, 1:]  # type: ignore[method-assign]
    try:
        with torch.no_grad():
            out_l, out_ab = memory(cmc_normalize(f1), cmc_normalize(f2), index, idx)
            z1, z2 = critic.embed(f1, view=0), critic.embed(f2, view=1)
            forward = sampler.pair_logits(critic, z1, z2, index=index, anchor_view=0, target_view=1)
            backward = sampler.pair_logits(critic, z2, z1, index=index, anchor_view=1, target_view=0)
            sampler.update([z1, z2], index)
    finally:
        memory.use_softmax = softmax
        del sampler.sample_indices
    score = max(
        float((forward.logits[:, 1:] - out_l.squeeze(2)[:, 1:]).abs().max()),
        float((backward.logits[:, 1:] - out_ab.squeeze(2)[:, 1:]).abs().max()),
    )
    direct = (z1 * z2).sum(1) / critic.temperature
    positive = max(float((pair.logits[:, 0] - direct).abs().max()) for pair in (forward, backward))
    banks = max(
        float((ours - theirs).abs().max())
        for ours, theirs in ((sampler.bank[0], memory.memory_l), (sampler.bank[1], memory.memory_ab))
    )
    return score, positive, banks


def run_memory_bank(settings: Settings, device: torch.device, *, echo: Any = None) -> BankResult:
    """Both memory-bank sides: build, cross-check, memory pass, then the timed rounds."""
    n, k, b, d = settings.bank_size, settings.negatives, settings.batch, settings.dim
    torch.manual_seed(SEED)
    if echo is not None:
        echo(f"building CMC's alias tables for n = {n} (Python loop, untimed) ...")
    memory = NCEAverage(d, n, k, T=settings.temperature, momentum=settings.momentum,
                        use_softmax=settings.cmc_loss == "softmax").to(device)
    criterion: nn.Module = NCESoftmaxLoss() if settings.cmc_loss == "softmax" else NCECriterion(n)
    sampler = MemoryBankNegatives(num_views=2, dataset_size=n, embedding_dim=d, num_negatives=k,
                                  momentum=settings.momentum).to(device)
    shared_sampler = MemoryBankNegatives(num_views=2, dataset_size=n, embedding_dim=d, num_negatives=k,
                                         momentum=settings.momentum, shared_negatives=True).to(device)
    critic = CosineCritic(feature_dims=(d, d), head="none", temperature=settings.temperature).to(device)
    objective = InfoNCE(two_way=True)
    gen = torch.Generator().manual_seed(SEED)
    f1 = torch.randn(b, d, generator=gen).to(device).requires_grad_(True)
    f2 = torch.randn(b, d, generator=gen).to(device).requires_grad_(True)
    batch_index = [torch.randperm(n, generator=gen)[:b].to(device)]  # a fresh batch of distinct samples per step

    scores, positives, banks = bank_cross_check(memory, sampler, critic, f1.detach(), f2.detach(), batch_index[0])

    def prepare() -> None:
        f1.grad = f2.grad = None
        batch_index[0] = torch.randperm(n, generator=gen)[:b].to(device)

    def cmc() -> None:
        cmc_loss(memory, criterion, f1, f2, batch_index[0]).backward()

    def framework() -> None:
        contrastkit_loss(critic, sampler, objective, f1, f2, batch_index[0]).backward()

    def framework_shared() -> None:
        contrastkit_loss(critic, shared_sampler, objective, f1, f2, batch_index[0]).backward()

    mem = []
    for fn in (cmc, framework, framework_shared):
        prepare()
        mem.append(measure_memory(fn, device))
    ms = run_rounds([(prepare, cmc), (prepare, framework), (prepare, framework_shared)], device,
                    repeats=settings.repeats, warmup=settings.warmup)
    return BankResult(
        cmc=Timing(ms[0], *mem[0]), contrastkit=Timing(ms[1], *mem[1]),
        score_diff=scores, positive_diff=positives, bank_diff=banks, shared=Timing(ms[2], *mem[2]),
    )


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def run_benchmark(settings: Settings, *, echo: Any = None) -> BenchmarkResult:
    """The InfoNCE comparison at every size, then the memory-bank comparison."""
    device = select_device(settings.device)
    settings = attrs.evolve(settings, device=str(device))
    infonce = []
    for n in settings.sizes:
        if echo is not None:
            echo(f"InfoNCE N = {n} ...")
        infonce.append(run_infonce(settings, n, device))
    ntxent = []
    for n in settings.sizes:
        if echo is not None:
            echo(f"NT-Xent vs lightly N = {n} ...")
        result = run_ntxent(settings, n, device)
        if result is None:
            if echo is not None:
                echo("lightly is not installed (pip install -e .[bench]): NT-Xent comparison skipped")
            break
        ntxent.append(result)
    bank = run_memory_bank(settings, device, echo=echo)
    return BenchmarkResult(settings, str(device), infonce, bank, ntxent)


def _mib(value: float | None) -> str:
    return "n/a" if value is None else f"{value / MIB:.2f}"


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _worst(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known and len(known) == len(values) else None


def format_report(result: BenchmarkResult) -> str:
    """The tables, one ratio line per comparison and the summary line (the last line).

    Example:
        >>> t = Timing([2.0], 100.0, 10.0)
        >>> r = BenchmarkResult(Settings(device="cpu", sizes=[8]), "cpu",
        ...                     [InfoNCEResult(8, t, t, 1.0, 1.0, 0.0, 0.0)], BankResult(Timing([4.0]), t, 0, 0, 0))
        >>> for part in format_report(r).splitlines()[-1].split("; "): print(part)
        summary: InfoNCE contrastkit / reference: time 1.000, peak memory 1.000 (worst N
        targets <= 1)
        memory-bank step CMC / contrastkit: 2.00x, with shared_negatives n/ax (target >= 2)
    """
    s = result.settings
    columns = f"{'median ms':>10} {'min':>10} {'max':>10} {'peak MiB':>9} {'largest MiB':>11}"
    lines = [f"{'N':>6}  {'side':<12} {columns}  loss"]
    for r in result.infonce:
        sides = (("reference", r.reference, r.reference_loss), ("contrastkit", r.contrastkit, r.contrastkit_loss))
        for name, t, loss in sides:
            lines.append(
                f"{r.n:>6}  {name:<12} {t.median:10.2f} {min(t.ms):10.2f} {max(t.ms):10.2f} {_mib(t.peak):>9} "
                f"{_mib(t.largest):>11}  {loss:.6f}"
            )
    for r in result.infonce:
        n2d = r.n * r.n * s.dim * 4.0
        largest = _worst([r.reference.largest, r.contrastkit.largest])
        lines.append(
            f"InfoNCE N={r.n}: time ratio (contrastkit / reference) {r.time_ratio:.3f}, peak memory ratio "
            f"{_fmt(r.memory_ratio, '.3f')}; |loss diff| {r.loss_diff:.1e}, max |grad diff| {r.grad_diff:.1e}; "
            f"largest allocation {_mib(largest)} MiB (an N^2*D tensor: {n2d / MIB:.0f} MiB)"
        )
    for r in result.ntxent:
        lines.append(
            f"NT-Xent N={r.n}: lightly {r.reference.median:.2f} ms, contrastkit {r.contrastkit.median:.2f} ms, time "
            f"ratio (contrastkit / lightly) {r.time_ratio:.3f} (target on a GPU <= {NTXENT_TARGET:g}), peak memory "
            f"ratio {_fmt(r.memory_ratio, '.3f')}; |loss diff| {r.loss_diff:.1e}, max |grad diff| {r.grad_diff:.1e}"
        )
    b = result.bank
    lines.append(f"{'side':<34} {columns}")
    sides = [("CMC (alias draw, bmm, index_copy_)", b.cmc), ("contrastkit (memory-bank)", b.contrastkit)]
    if b.shared is not None:
        sides.append(("contrastkit (shared_negatives)", b.shared))
    for name, t in sides:
        lines.append(
            f"{name:<34} {t.median:10.2f} {min(t.ms):10.2f} {max(t.ms):10.2f} {_mib(t.peak):>9} {_mib(t.largest):>11}"
        )
    lines.append(
        "memory-bank cross-check (same sampled indices, identical banks): "
        f"max |negative score diff| {b.score_diff:.1e}, "
        f"max |positive - s(z1, z2)| {b.positive_diff:.1e}, banks after update max |diff| {b.bank_diff:.1e}"
    )
    lines.append(f"memory-bank speedup (CMC / contrastkit): {b.speedup:.2f}x  (target >= {BANK_TARGET:g})")
    if b.shared_speedup is not None:
        lines.append(
            f"memory-bank speedup with shared_negatives = true (CMC / contrastkit): {b.shared_speedup:.2f}x  "
            f"(target >= {BANK_TARGET:g}; one draw of K rows per step instead of K per anchor)"
        )
    time_worst = max(r.time_ratio for r in result.infonce)
    memory_worst = _worst([r.memory_ratio for r in result.infonce])
    lines.append(
        f"summary: InfoNCE contrastkit / reference: time {time_worst:.3f}, peak memory {_fmt(memory_worst, '.3f')} "
        f"(worst N; targets <= {INFONCE_TARGET:g}); memory-bank step CMC / contrastkit: {b.speedup:.2f}x, "
        f"with shared_negatives {_fmt(b.shared_speedup, '.2f')}x (target >= {BANK_TARGET:g})"
    )
    return "\n".join(lines)


def _positive_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers (got {text!r})") from None
    if not values or min(values) < 2:
        raise argparse.ArgumentTypeError(f"every N must be >= 2 (got {text!r})")
    return values


def parse_args(argv: Sequence[str] | None = None) -> tuple[Settings, str | None, int]:
    """Command line -> settings, the ``--json`` path and the thread count (0: torch's default)."""
    parser = argparse.ArgumentParser(
        prog="python benchmarks/losses.py",
        description="InfoNCE (contrastkit vs a straightforward reference) and a memory-bank step "
        "(contrastkit vs CMC's algorithm): time and peak memory, same run.",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    parser.add_argument("--sizes", type=_positive_list, default=(1024, 4096, 8192),
                        help="InfoNCE batch sizes N, comma-separated (default: 1024,4096,8192)")
    parser.add_argument("--dim", type=int, default=128, help="embedding dimension D (default: 128)")
    parser.add_argument("--temperature", type=float, default=0.07, help="tau (default: 0.07)")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (default: 15 on the CPU (its timings are noisy), 20 on a GPU)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="uncounted rounds before them (default: 1 on the CPU, 3 on a GPU)")
    parser.add_argument("--bank-size", type=int, default=None, help="memory-bank samples n (default: 100000)")
    parser.add_argument("--negatives", type=int, default=None,
                        help="memory-bank negatives K (default: 16384)")
    parser.add_argument("--batch", type=int, default=None,
                        help="memory-bank batch B (default: 256)")
    parser.add_argument("--momentum", type=float, default=0.5, help="memory-bank momentum (default: 0.5)")
    parser.add_argument("--cmc-loss", choices=("softmax", "nce"), default="softmax",
                        help="CMC's loss: softmax (NCESoftmaxLoss, same as infonce) or nce (NCECriterion)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", metavar="PATH", default=None, help="also write the results as JSON to PATH")
    args = parser.parse_args(argv)
    try:
        device = select_device(args.device)
    except (ConfigError, RuntimeError) as exc:
        parser.error(f"--device: {exc}")
    gpu = device.type != "cpu"
    bank = ISSUE_BANK
    values = {
        "repeats": args.repeats if args.repeats is not None else (20 if gpu else 15),
        "warmup": args.warmup if args.warmup is not None else (3 if gpu else 1),
        "bank_size": args.bank_size if args.bank_size is not None else bank["bank_size"],
        "negatives": args.negatives if args.negatives is not None else bank["negatives"],
        "batch": args.batch if args.batch is not None else bank["batch"],
    }
    for name, low in (("repeats", 1), ("warmup", 0), ("bank_size", 2), ("negatives", 1), ("batch", 1)):
        if values[name] < low:
            parser.error(f"--{name.replace('_', '-')}: must be >= {low} (got {values[name]})")
    if args.dim < 1 or args.threads < 0:
        parser.error("--dim must be >= 1 and --threads >= 0")
    if not args.temperature > 0:
        parser.error(f"--temperature: must be > 0 (got {args.temperature})")
    if not 0.0 <= args.momentum < 1.0:
        parser.error(f"--momentum: must be in [0, 1) (got {args.momentum})")
    if values["negatives"] >= values["bank_size"]:
        parser.error(
            f"--negatives: must be below --bank-size (got K = {values['negatives']}, n = {values['bank_size']})"
        )
    if values["batch"] > values["bank_size"]:
        parser.error(f"--batch: at most --bank-size (got B = {values['batch']}, n = {values['bank_size']})")
    settings = Settings(
        device=args.device, sizes=args.sizes, dim=args.dim, temperature=args.temperature,
        momentum=args.momentum, cmc_loss=args.cmc_loss, **values,
    )
    return settings, args.json, args.threads


def main(argv: Sequence[str] | None = None) -> int:
    """Run both comparisons and print the report; returns the exit status."""
    settings, json_path, threads = parse_args(argv)
    if threads:
        torch.set_num_threads(threads)
    device = select_device(settings.device)
    s = settings
    print(f"device: {device_name(str(device))}   torch {torch.__version__}   python {sys.version.split()[0]}")
    print(
        f"InfoNCE: two-way, forward+backward, N in {list(s.sizes)}, D = {s.dim}, tau = {s.temperature:g}; "
        "reference: normalize, z1 @ z2.T / tau, cross_entropy both ways; "
        "contrastkit: cosine critic + in-batch pair_logits + infonce"
    )
    issue = (s.bank_size, s.negatives, s.batch) == tuple(ISSUE_BANK.values())
    sizes_note = "the issue's sizes" if issue else (
        "custom sizes; the issue's: --bank-size 100000 --negatives 16384 --batch 256")
    print(
        f"memory-bank step: n = {s.bank_size}, K = {s.negatives}, B = {s.batch}, D = {s.dim} ({sizes_note}); "
        f"sample, score, loss ({s.cmc_loss} for CMC, infonce for contrastkit), update, backward; two views"
    )
    peak_how = "torch.cuda.max_memory_allocated" if device.type == "cuda" else "torch.profiler allocation records"
    print(
        f"timing: median of {s.repeats} rounds after {s.warmup} uncounted, sides alternating; "
        f"peak memory over the inputs from {peak_how}"
    )
    result = run_benchmark(settings, echo=print)
    return finish(result.as_dict(), [format_report(result)], json_path=json_path)


if __name__ == "__main__":
    sys.exit(main())

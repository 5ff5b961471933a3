"""What an experiment found: each seed of an arm, every seed of it, the finding, and the report's tables.

:class:`ArmResult` is one seed's ``arm.json``; :class:`ArmSeeds` gathers an arm's seeds and
summarises each quantity over them (mean ± sample standard deviation); :class:`ExperimentResult` is
the experiment's ``result.json`` and its section of ``results.md``, whose tables come from
:func:`markdown_table` and :func:`seed_table`.

Example:
    >>> runs = tuple(ArmResult(name="K=16", probes={"linear/background": v}, steps=300, seconds=60.0,
    ...                        final_metrics={}, run_dir="r", seed=s) for s, v in enumerate([70.0, 74.0]))
    >>> arms = {"K=16": ArmSeeds("K=16", runs)}
    >>> print(markdown_table(["K", "background (%)"], [[16, arms["K=16"].probe("linear", "background")]]))
    | K | background (%) |
    | --- | --- |
    | 16 | 72.00 ± 2.83 |
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from contrastkit.experiments.stats import Summary, summarize

__all__ = ["ArmResult", "ArmSeeds", "ExperimentResult", "markdown_table", "seed_table"]


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
    #: ``--jobs``: runs trained at once; ``seconds`` still sums every run's own time, the budget's measure.
    jobs: int = 1
    #: Wall-clock seconds of the invocation that wrote the result (reused runs take none).
    wall_seconds: float = 0.0

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
            + (f", {self.jobs} runs at a time (this invocation: {self.wall_seconds / 60:.1f} min wall-clock)"
               if self.jobs > 1 else "")
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

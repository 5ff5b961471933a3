"""Reproductions of the seed papers' findings on the embedded data, one command each.

``contrastkit experiment NAME`` runs one of :data:`EXPERIMENTS` (``all`` runs every one) under
``runs/experiments/NAME/``, every arm once per seed (``--seeds N``, default 3), and writes
``results.md``, ``plot.png`` and ``result.json`` (every seed's numbers) there;
``--docs docs/reproductions.md`` then regenerates the reproductions page from every result found.
Each experiment states the paper's claim, the criterion it is judged by, and computes its verdict
from the numbers it measured — a finding that did not reproduce is reported as such.

Example:
    >>> sorted(EXPERIMENTS)
    ['factors', 'learned-views', 'negatives', 'reverse-u']
    >>> get_experiment("factor").__name__
    Traceback (most recent call last):
    ...
    contrastkit.errors.ConfigError: experiment: unknown experiment 'factor'; did you mean 'factors'?
"""

from __future__ import annotations

import json
import platform
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

from contrastkit.errors import ConfigError, close_matches
from contrastkit.experiments import factors, learned_views, negatives, reverse_u
from contrastkit.experiments.records import code_version, git_commit
from contrastkit.experiments.results import ExperimentResult
from contrastkit.experiments.settings import DEFAULT_SEEDS, RunSettings

__all__ = ["EXPERIMENTS", "get_experiment", "read_results", "reproductions_page", "run_experiment", "run_many", "write_docs"]

#: Every reproduction by its command-line name, in the order of the issue and the docs page.
EXPERIMENTS: dict[str, ModuleType] = {
    "factors": factors,
    "reverse-u": reverse_u,
    "learned-views": learned_views,
    "negatives": negatives,
}


def get_experiment(name: str) -> ModuleType:
    """The experiment module called ``name`` (a one-line error with close matches otherwise).

    Example:
        >>> get_experiment("negatives").COUNTS
        (16, 64, 256, 1024, 4095)
    """
    if name in EXPERIMENTS:
        return EXPERIMENTS[name]
    matches = close_matches(name, list(EXPERIMENTS))
    hint = f"did you mean {matches[0]!r}?" if matches else f"choose from {', '.join(EXPERIMENTS)} or all"
    raise ConfigError(f"experiment: unknown experiment {name!r}; {hint}")


def _environment(device: str) -> tuple[str, str]:
    import torch

    import contrastkit

    if device.startswith("cuda") and torch.cuda.is_available():
        where = f"{torch.cuda.get_device_name()} (cuda)"
    else:
        where = f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads)"
    versions = f"contrastkit {contrastkit.__version__}, torch {torch.__version__}, python {platform.python_version()}"
    return where, versions


def run_experiment(name: str, settings: RunSettings) -> ExperimentResult:
    """Run one experiment in ``settings.out_dir`` (its own run directory) and write its three files.

    Example:
        >>> from contrastkit.experiments.settings import smoke_run_settings
        >>> settings = smoke_run_settings()
        >>> r = run_experiment("factors", settings)  # a smoke run: about 15 s
        >>> sorted(p.name for p in settings.out_dir.iterdir() if p.is_file())
        ['plot.png', 'result.json', 'results.md']
    """
    import attrs

    from contrastkit.training import select_device

    module = get_experiment(name)
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    result = module.run(settings)
    wall_seconds = round(time.perf_counter() - start, 1)
    where, versions = _environment(str(select_device(settings.device)))
    command = result.command + f" --seeds {len(settings.seeds)}" + (
        f" --scale {settings.scale}" if settings.scale != "cpu" else "") + (
        f" --jobs {settings.jobs}" if settings.jobs > 1 else "") + (" --quick" if settings.quick else "")
    commit = git_commit()
    result = attrs.evolve(
        result, device=where, versions=versions + (f", git {commit}" if commit else ""), command=command,
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), seeds=list(settings.seeds), scale=settings.scale,
        code=code_version(), evidence=getattr(module, "EVIDENCE", ""), jobs=settings.jobs, wall_seconds=wall_seconds,
    )
    (settings.out_dir / "results.md").write_text(result.markdown(plot_link=result.plot))
    (settings.out_dir / "result.json").write_text(json.dumps(result.as_dict(), indent=2) + "\n")
    return result


def read_results(root: Path, names: Sequence[str] = tuple(EXPERIMENTS)) -> list[tuple[ExperimentResult, Path]]:
    """The saved result (and its folder) of each experiment in ``names`` that has one under ``root``.

    Example:
        >>> import tempfile
        >>> read_results(Path(tempfile.mkdtemp()))  # nothing run there yet
        []
    """
    found = []
    for name in names:
        path = root / name / "result.json"
        if path.is_file():
            found.append((_read_result(path), path.parent))
    return found


def _read_result(path: Path) -> ExperimentResult:
    try:
        return ExperimentResult(**json.loads(path.read_text()))
    except (TypeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not an experiment result ({exc}); run the experiment again") from None


def reproductions_page(results: Sequence[tuple[ExperimentResult, str]]) -> str:
    """The markdown of ``docs/reproductions.md``: a summary table, then each experiment's section.

    ``results`` pairs each result with the link its plot gets in the page.

    Example:
        >>> r = ExperimentResult(name="x", title="X", paper="p", criterion="c", reproduced=False, verdict="v",
        ...     table="| t |", plot="plot.png", seconds=60.0, budget_seconds=1800.0, quick=False,
        ...     command="contrastkit experiment x", data={})
        >>> "| `x` | X | not reproduced | 1.0 |" in reproductions_page([(r, "reproductions/x.png")])
        True
    """
    lines = [
        "<!-- Generated by `contrastkit experiment all --seeds 3 --docs docs/reproductions.md` "
        "(contrastkit/experiments/): do not edit by hand, run it again. -->",
        "",
        "# Reproductions: the seed papers' findings on the embedded data",
        "",
        "Each experiment is one command, `contrastkit experiment NAME`, that trains a few arms differing only in",
        "what the paper varies, probes them, and judges the paper's finding by a criterion fixed in the code",
        "(`contrastkit/experiments/NAME.py`) — the verdicts below are computed from the numbers, not written",
        "by hand. Every arm's full recipe is in `runs/experiments/NAME/ARM/recipe.toml` (rerun one with",
        "`contrastkit train`). The data is the embedded colorful-moving-digits set (handwritten digits on",
        "textured backgrounds), far smaller than the papers' datasets and trained for minutes on 2 CPU cores",
        "instead of days on GPUs: a finding that holds here is a sanity check of the implementation, one",
        "that does not is reported as such, with its measured cause.",
        "",
        "Every arm is trained once per seed (the same seeds for every arm). Tables give mean ± sample standard",
        "deviation over seeds and every seed's numbers; plots show each seed as a dot. A verdict is computed on",
        "the means, and a margin counts only if it exceeds both the experiment's fixed margin and twice the",
        "standard error of the difference of the means. A saved arm is reused only if its recipe, its seed and",
        "the code that trained it (a hash of the package's source, shown as `code` below) all match.",
        "",
        "| experiment | finding | result | minutes |",
        "| --- | --- | --- | --- |",
    ]
    for result, _ in results:
        over = " (over budget)" if result.over_budget else ""
        lines.append(f"| `{result.name}` | {result.title} | {result.status} | {result.seconds / 60:.1f}{over} |")
    done = {result.name for result, _ in results}
    missing = [name for name in EXPERIMENTS if name not in done]
    for name in missing:  # listed, so a missing result is visible rather than silently absent
        lines.append(f"| `{name}` | {EXPERIMENTS[name].TITLE} | not run yet | – |")
    lines.append("")
    reproduced = sum(1 for result, _ in results if result.reproduced)
    lines += [f"**{reproduced} of {len(EXPERIMENTS)} findings reproduced.**", ""]
    for result, link in results:
        lines += [result.markdown(plot_link=link, heading="##"), ""]
    for name in missing:
        evidence = getattr(EXPERIMENTS[name], "EVIDENCE", "")
        lines += [f"## `{name}`: {EXPERIMENTS[name].TITLE}", "", f"**Paper:** {EXPERIMENTS[name].PAPER}", "",
                  f"**Not run yet** with the current code: `contrastkit experiment {name}`, then "
                  "`contrastkit experiment --docs docs/reproductions.md`.", ""]
        if evidence:  # the investigation of an earlier failure stays visible until the seeded rerun lands
            lines += [f"**Why it failed before, measured:** {evidence}", ""]
    return "\n".join(lines).rstrip() + "\n"


def write_docs(root: Path, docs: Path, *, allow_quick: bool = False) -> Path:
    """Regenerate the reproductions page ``docs`` from the results under ``root``; plots go next to it.

    Each result is kept beside its plot (``reproductions/NAME.json``, committed with the page), and an
    experiment with no result under ``root`` keeps the one kept there: run folders are scratch, so
    rerunning one experiment regenerates the whole page without retraining the others.
    Smoke (``--quick``) results are refused unless ``allow_quick``: their numbers mean nothing.

    Example:
        >>> import tempfile
        >>> from contrastkit.experiments.plots import Panel, bar_panels
        >>> root = Path(tempfile.mkdtemp())
        >>> _ = bar_panels(root / "negatives" / "plot.png", "t", [Panel("acc", [("K=16", 50.0)])])
        >>> r = ExperimentResult(name="negatives", title="T", paper="p", criterion="c", reproduced=None,
        ...     verdict="v", table="| t |", plot="plot.png", seconds=6.0, budget_seconds=1800.0, quick=True,
        ...     command="contrastkit experiment negatives --quick", data={})
        >>> _ = (root / "negatives" / "result.json").write_text(json.dumps(r.as_dict()))
        >>> page = write_docs(root, root / "docs" / "reproductions.md", allow_quick=True)
        >>> sorted(p.name for p in (root / "docs" / "reproductions").iterdir()), "smoke run" in page.read_text()
        (['negatives.json', 'negatives.png'], True)
        >>> shutil.rmtree(root / "negatives")  # the run folder is gone: the page keeps the kept result
        >>> "smoke run" in write_docs(root, root / "docs" / "reproductions.md", allow_quick=True).read_text()
        True
        >>> write_docs(root, root / "docs" / "reproductions.md")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        contrastkit.errors.ConfigError: --docs: negatives under ... are --quick smoke runs; run them without --quick first
    """
    images = docs.parent / docs.stem
    fresh = {result.name: (result, folder) for result, folder in read_results(root)}
    kept = {name: (_read_result(path), images) for name in EXPERIMENTS
            if name not in fresh and (path := images / f"{name}.json").is_file()}
    found = [fresh.get(name) or kept[name] for name in EXPERIMENTS if name in fresh or name in kept]
    if not found:
        raise ConfigError(f"--docs: no experiment results under {root} or {images}; "
                          "run contrastkit experiment all first")
    quick = [r.name for r, _ in found if r.quick]
    if quick and not allow_quick:
        raise ConfigError(
            f"--docs: {', '.join(quick)} under {root} are --quick smoke runs; run them without --quick first"
        )
    for result, folder in found:
        plot = images / f"{result.name}.png" if folder == images else folder / result.plot
        if not plot.is_file():
            raise ConfigError(f"--docs: {plot} is missing; run contrastkit experiment {result.name} again")
    try:
        images.mkdir(parents=True, exist_ok=True)
        linked = []
        for result, folder in found:
            target = images / f"{result.name}.png"
            if folder != images:
                shutil.copyfile(folder / result.plot, target)
                (images / f"{result.name}.json").write_text(json.dumps(result.as_dict(), indent=2) + "\n")
            linked.append((result, f"{images.name}/{target.name}"))
        docs.write_text(reproductions_page(linked))
    except OSError as exc:
        raise ConfigError(f"--docs: cannot write {exc.filename or docs} ({exc.strerror or exc}); "
                          "give --docs a path in a writable folder") from None
    return docs


def run_many(names: Sequence[str], root: Path, *, quick: bool, device: str, fresh: bool,
             seeds: Sequence[int] | None = None, scale: str = "cpu", jobs: int = 1,
             print_fn: Callable[[str], None] = print) -> list[ExperimentResult]:
    """Run each named experiment (``all``: every one) in ``root/NAME``; the CLI's ``experiment`` command.

    Every name, and that ``root`` is a writable folder, is checked before anything trains. ``seeds``
    defaults to ``0 .. DEFAULT_SEEDS - 1`` (one seed, 0, for a ``quick`` smoke run); ``jobs`` runs train
    at once, each in its own process (:func:`train_arms`).

    Example:
        >>> run_many(["negatives", "factor"], Path("unused"), quick=True, device="cpu", fresh=False)
        Traceback (most recent call last):
        ...
        contrastkit.errors.ConfigError: experiment: unknown experiment 'factor'; did you mean 'factors'?
    """
    from contrastkit.training.preflight import check_run_dir

    chosen = list(EXPERIMENTS) if list(names) == ["all"] else list(names)
    for name in chosen:  # every name checked before anything trains
        get_experiment(name)
    check_run_dir(root, key="--out")
    if seeds is None:
        seeds = (0,) if quick else tuple(range(DEFAULT_SEEDS))
    results = []
    for name in chosen:
        print_fn(f"== experiment {name}: {EXPERIMENTS[name].TITLE} ({len(seeds)} seed(s), scale {scale})")
        settings = RunSettings(out_dir=root / name, quick=quick, device=device, fresh=fresh, print_fn=print_fn,
                               seeds=tuple(seeds), scale=scale, jobs=jobs)
        result = run_experiment(name, settings)
        print_fn(f"== {name}: {result.status} ({result.seconds / 60:.1f} min). {result.verdict}")
        print_fn(f"   wrote {settings.out_dir / 'results.md'} and {settings.out_dir / result.plot}")
        results.append(result)
    return results

"""CI runs exactly the README's test command: lint (ruff), type check (mypy), then the tests."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, flags=re.S)
    return next(b for b in blocks if "pytest" in b).strip()


def test_ci_runs_the_readme_test_command() -> None:
    test_command = _readme_test_command()
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command in ci.splitlines()
    assert "-eq 5" in ci  # pytest's "no tests collected" is a failure


def test_ci_lints_and_type_checks_the_package_before_the_tests() -> None:
    ci_line = _readme_test_command()
    steps = [step.strip() for step in ci_line.split("&&")]  # each step runs only if the one before passed
    ruff = next(s for s in steps if s.startswith(".venv/bin/ruff check"))
    assert "contrastkit" in ruff.split()[2:]
    mypy = next(s for s in steps if s.startswith(".venv/bin/mypy"))
    pytest_step = next(s for s in steps if "pytest" in s)
    install = next(s for s in steps if "pip install" in s)
    assert steps.index(install) < steps.index(ruff) < steps.index(mypy) < steps.index(pytest_step)
    # A bare `mypy` checks what pyproject.toml names: the contrastkit package.
    assert mypy == ".venv/bin/mypy"
    assert 'packages = ["contrastkit"]' in (ROOT / "pyproject.toml").read_text()
    # lightly (the bench extra) is installed, so the comparisons with it run in CI instead of skipping.
    assert '".[dev,bench]"' in install and "benchmarks" in ruff.split()[2:]


@pytest.mark.skipif(importlib.util.find_spec("ruff") is None, reason="ruff is not installed (the dev extra has it)")
def test_the_package_passes_ruff() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "contrastkit"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_demo_recipe_exists() -> None:
    readme = (ROOT / "README.md").read_text()
    recipe = re.search(r"contrastkit train (examples/\S+\.toml)", readme).group(1)
    assert (ROOT / recipe).is_file()

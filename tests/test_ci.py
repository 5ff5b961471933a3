"""CI runs exactly the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, flags=re.S)
    test_command = next(b for b in blocks if "pytest" in b).strip()
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command in ci.splitlines()
    assert "-eq 5" in ci  # pytest's "no tests collected" is a failure


def test_readme_demo_recipe_exists() -> None:
    readme = (ROOT / "README.md").read_text()
    recipe = re.search(r"contrastkit train (examples/\S+\.toml)", readme).group(1)
    assert (ROOT / recipe).is_file()

"""How every benchmark script ends: its figures written to ``--json`` (when given), its report printed, status 0.

Example:
    >>> import json, tempfile
    >>> path = Path(tempfile.mkdtemp()) / "figures.json"
    >>> finish({"ratio": 1.02}, ["contrastkit / bare: 1.02x"], json_path=str(path))
    contrastkit / bare: 1.02x
    0
    >>> json.loads(path.read_text(encoding="utf-8"))
    {'ratio': 1.02}
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["finish"]


def finish(figures: Mapping[str, Any], report: Sequence[str], *, json_path: str | None) -> int:
    """Write ``figures`` as indented JSON to ``json_path`` (nothing when it is ``None``), print each line of ``report``.

    Returns the exit status of a run that measured, 0: whether the figures meet their targets is
    in the report, not in the status.

    Example:
        >>> finish({}, ["line one", "line two"], json_path=None)
        line one
        line two
        0
    """
    if json_path:
        Path(json_path).write_text(json.dumps(figures, indent=2), encoding="utf-8")
    for line in report:
        print(line)
    return 0

"""Parameter checks shared by the view makers that pick their views by name (``video``, ``rgbd``).

Example:
    >>> check_view_names(["L", "depth"], ("L", "ab", "depth", "normals"))
    ['L', 'depth']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from contrastkit.errors import InvalidParameter, close_matches

__all__ = ["check_view_names"]


def check_view_names(names: object, allowed: Sequence[str], *, parameter: str = "views") -> list[str]:
    """``names`` as a list: 2 or more different entries of ``allowed``, in the order wanted.

    A misspelt name is reported with its closest allowed one.

    Example:
        >>> check_view_names(["frame", "flo"], ("frame", "next_frame", "flow"))
        Traceback (most recent call last):
        ...
        contrastkit.errors.InvalidParameter: views: unknown view 'flo' (did you mean 'flow'?); must list 2 to 3 different views of 'frame', 'next_frame', 'flow' (got ['frame', 'flo'])
    """
    listed = list(names) if isinstance(names, (list, tuple)) else [names]
    wanted = f"must list 2 to {len(allowed)} different views of {', '.join(map(repr, allowed))}"
    for name in listed:
        if name not in allowed:
            hint = close_matches(str(name), allowed)
            did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise InvalidParameter(parameter, f"unknown view {name!r}{did_you_mean}; {wanted}", listed)
    if len(listed) < 2 or len(set(listed)) != len(listed):
        raise InvalidParameter(parameter, f"{wanted} (in the order wanted)", listed)
    return cast("list[str]", listed)  # every entry is one of ``allowed``

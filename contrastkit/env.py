"""Environment switches: the one place contrastkit parses a boolean environment variable.

A switch is on for ``1``, ``true``, ``yes`` or ``on`` and off for ``0``, ``false``, ``no`` or
``off`` (any case, surrounding whitespace ignored). Unset or empty means the default. Any other
value raises :class:`~contrastkit.errors.ConfigError` naming the variable, the value and these
spellings, which the CLI prints as one ``error:`` line.

Example:
    >>> import os
    >>> os.environ["CONTRASTKIT_EXAMPLE_SWITCH"] = " Off "
    >>> env_flag("CONTRASTKIT_EXAMPLE_SWITCH", default=True)
    False
    >>> del os.environ["CONTRASTKIT_EXAMPLE_SWITCH"]
"""

from __future__ import annotations

import os

from contrastkit.errors import ConfigError

__all__ = ["FALSE_SPELLINGS", "TRUE_SPELLINGS", "env_flag"]

#: Values (after ``strip().lower()``) that turn a switch on.
TRUE_SPELLINGS: tuple[str, ...] = ("1", "true", "yes", "on")
#: Values (after ``strip().lower()``) that turn a switch off.
FALSE_SPELLINGS: tuple[str, ...] = ("0", "false", "no", "off")


def env_flag(name: str, *, default: bool = False) -> bool:
    """The boolean environment variable ``name``; ``default`` when it is unset or blank.

    Raises :class:`~contrastkit.errors.ConfigError` (one line, starting with ``name``) for a value
    that is not one of :data:`TRUE_SPELLINGS` or :data:`FALSE_SPELLINGS`, in any case.

    Example:
        >>> import os
        >>> os.environ["CONTRASTKIT_EXAMPLE_SWITCH"] = "Yes"
        >>> env_flag("CONTRASTKIT_EXAMPLE_SWITCH")
        True
        >>> os.environ["CONTRASTKIT_EXAMPLE_SWITCH"] = "false"
        >>> env_flag("CONTRASTKIT_EXAMPLE_SWITCH", default=True)
        False
        >>> os.environ["CONTRASTKIT_EXAMPLE_SWITCH"] = "maybe"
        >>> env_flag("CONTRASTKIT_EXAMPLE_SWITCH")
        Traceback (most recent call last):
        ...
        contrastkit.errors.ConfigError: CONTRASTKIT_EXAMPLE_SWITCH: environment variable is 'maybe', not a boolean; set it to 1, true, yes or on (enable) or 0, false, no or off (disable), in any case, or unset it
        >>> del os.environ["CONTRASTKIT_EXAMPLE_SWITCH"]
        >>> env_flag("CONTRASTKIT_EXAMPLE_SWITCH", default=True)
        True
    """
    raw = os.environ.get(name)
    value = (raw or "").strip().lower()
    if not value:
        return default
    if value in TRUE_SPELLINGS:
        return True
    if value in FALSE_SPELLINGS:
        return False
    raise ConfigError(
        f"{name}: environment variable is {raw!r}, not a boolean; set it to "
        f"{', '.join(TRUE_SPELLINGS[:-1])} or {TRUE_SPELLINGS[-1]} (enable) or "
        f"{', '.join(FALSE_SPELLINGS[:-1])} or {FALSE_SPELLINGS[-1]} (disable), in any case, or unset it"
    )

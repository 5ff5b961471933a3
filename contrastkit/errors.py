"""Typed exceptions: every error contrastkit raises on purpose is a :class:`ContrastkitError`.

Each message is one line that names the file, key, plugin or tensor at fault, says what was
wrong and how to fix it. The CLI prints the message and exits with status 2, without a traceback.

Example:
    >>> from contrastkit.errors import ConfigError, ContrastkitError
    >>> issubclass(ConfigError, ContrastkitError)
    True
    >>> str(ConfigError("critic.temperature: must be > 0 (got -1.0)", path="x.toml"))
    'x.toml: critic.temperature: must be > 0 (got -1.0)'
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

__all__ = [
    "CheckpointError",
    "ConfigError",
    "ContrastkitError",
    "DuplicateNameError",
    "InvalidParameter",
    "PluginLoadError",
    "PluginLoadWarning",
    "ShapeError",
    "TrainingError",
    "UnknownNameError",
    "close_matches",
]


def _rebuild(cls: type[ContrastkitError], args: tuple[Any, ...], state: dict[str, Any]) -> ContrastkitError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class ContrastkitError(Exception):
    """Base class of every deliberate contrastkit error; its message is one self-contained line.

    Errors pickle whole (type, message and attributes), so one raised in a worker process (an
    experiment's ``--jobs`` run, a DataLoader worker) reaches the parent as itself.

    Example:
        >>> str(ContrastkitError("something is wrong"))
        'something is wrong'
        >>> import pickle
        >>> error = pickle.loads(pickle.dumps(InvalidParameter("temperature", "must be > 0", -1.0)))
        >>> type(error).__name__, str(error), error.parameter
        ('InvalidParameter', 'temperature: must be > 0 (got -1.0)', 'temperature')
    """

    def __reduce__(self) -> tuple[Any, ...]:
        # The subclasses' __init__ take other arguments than the message in self.args: rebuild without it.
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


class ConfigError(ContrastkitError, ValueError):
    """A recipe (TOML file, override or Python dict) is malformed.

    ``message`` starts with the dotted key (``critic.temperature: ...``); ``path`` is the file, if any.

    Example:
        >>> err = ConfigError("train.lr: must be > 0 (got 0.0)", path="run.toml")
        >>> str(err)
        'run.toml: train.lr: must be > 0 (got 0.0)'
        >>> err.key
        'train.lr'
    """

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.message = message
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)

    @property
    def key(self) -> str:
        """The dotted key the message starts with (``""`` when the problem is the whole file)."""
        head, sep, _ = self.message.partition(": ")
        return head if sep and " " not in head else ""

    def with_path(self, path: str | None) -> ConfigError:
        """Return the same error attributed to ``path``.

        Example:
            >>> str(ConfigError("data: oops").with_path("a.toml"))
            'a.toml: data: oops'
        """
        return ConfigError(self.message, path=path)


class InvalidParameter(ContrastkitError, ValueError):
    """Raised by a plugin factory when one of its keyword arguments has a bad value.

    contrastkit prefixes the TOML table, so a plugin only names its own parameter:
    ``InvalidParameter("temperature", "must be > 0", -1.0)`` surfaces as
    ``run.toml: critic.temperature: must be > 0 (got -1.0)``.

    Example:
        >>> str(InvalidParameter("temperature", "must be > 0", -1.0))
        'temperature: must be > 0 (got -1.0)'
    """

    def __init__(self, parameter: str, problem: str, got: Any = ...) -> None:
        self.parameter = parameter
        self.problem = problem
        self.got = got
        suffix = "" if got is ... else f" (got {got!r})"
        super().__init__(f"{parameter}: {problem}{suffix}")


class UnknownNameError(ContrastkitError, KeyError):
    """A plugin name that no installed plugin registered.

    Example:
        >>> err = UnknownNameError("objectives", "infonec", ["infonce", "nt-logistic"])
        >>> print(err)
        unknown objectives name 'infonec'; did you mean 'infonce'? (run `contrastkit plugins` to list every name)
    """

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.known = sorted(known)
        matches = close_matches(name, self.known)
        if matches:
            hint = "did you mean " + " or ".join(repr(m) for m in matches) + "?"
        elif self.known:
            hint = "known: " + ", ".join(self.known) + "."
        else:
            hint = "none are registered."
        super().__init__(
            f"unknown {kind} name {name!r}; {hint} (run `contrastkit plugins` to list every name)"
        )

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DuplicateNameError(ContrastkitError):
    """Two plugins (or one plugin twice) registered the same name in one kind.

    ``disable`` lists the ``CONTRASTKIT_DISABLE_PLUGINS`` entries (``dist:name``) that would block
    each plugin; the message offers them.

    Example:
        >>> print(DuplicateNameError("objectives", "dcl", ["ck_a (ck-a 1.0)", "ck_b (ck-b 2.0)"]))
        objectives name 'dcl' is registered by more than one plugin: ck_a (ck-a 1.0) and ck_b (ck-b 2.0); uninstall one or block it with CONTRASTKIT_DISABLE_PLUGINS
        >>> print(DuplicateNameError("objectives", "dcl", ["ck_a (ck-a 1.0)", "ck_b (ck-b 2.0)"],
        ...                          disable=["ck-a:ck_a", "ck-b:ck_b"]))
        objectives name 'dcl' is registered by more than one plugin: ck_a (ck-a 1.0) and ck_b (ck-b 2.0); uninstall one or block one with CONTRASTKIT_DISABLE_PLUGINS=ck-a:ck_a or =ck-b:ck_b
    """

    def __init__(self, kind: str, name: str, plugins: Iterable[str], *, disable: Iterable[str] = ()) -> None:
        self.kind = kind
        self.name = name
        self.plugins = list(plugins)
        self.disable = list(disable)
        block = ("block one with CONTRASTKIT_DISABLE_PLUGINS=" + " or =".join(self.disable) if self.disable
                 else "block it with CONTRASTKIT_DISABLE_PLUGINS")
        super().__init__(
            f"{kind} name {name!r} is registered by more than one plugin: "
            + " and ".join(self.plugins)
            + f"; uninstall one or {block}"
        )


class PluginLoadError(ContrastkitError):
    """A plugin failed to import, validate or register (fatal only with ``CONTRASTKIT_STRICT_PLUGINS=1``).

    Example:
        >>> str(PluginLoadError("plugin 'x' failed"))
        "plugin 'x' failed"
    """


class PluginLoadWarning(UserWarning):
    """Issued, once per broken plugin, when a plugin fails to load and the rest carry on.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     warnings.warn("plugin 'x' failed to load", PluginLoadWarning)
        >>> caught[0].category.__name__
        'PluginLoadWarning'
    """


class ShapeError(ContrastkitError, ValueError):
    """A tensor has the wrong shape, e.g. a view whose channel count differs from its declaration.

    Example:
        >>> str(ShapeError("views.color-split: view 1 has 3 channels, declared 2"))
        'views.color-split: view 1 has 3 channels, declared 2'
    """


class CheckpointError(ContrastkitError):
    """A checkpoint or export file cannot be read or written: ``file: what is wrong; what to do``.

    Example:
        >>> str(CheckpointError("run/final.pt: empty file (0 bytes); delete it and resume from an earlier checkpoint"))
        'run/final.pt: empty file (0 bytes); delete it and resume from an earlier checkpoint'
    """


class TrainingError(ContrastkitError, RuntimeError):
    """Training cannot continue (for example, the loss became NaN).

    Example:
        >>> str(TrainingError("loss is nan at step 12"))
        'loss is nan at step 12'
    """


def close_matches(word: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Names in ``candidates`` that look like a misspelling of ``word``.

    Example:
        >>> close_matches("temprature", ["temperature", "head", "embedding_dim"])
        ['temperature']
    """
    return difflib.get_close_matches(word, list(candidates), n=n, cutoff=0.6)

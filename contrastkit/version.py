"""The package version, in a module of its own so the registry can report it without importing the package root.

Example:
    >>> from contrastkit.version import __version__
    >>> __version__.count(".")
    2
"""

__version__ = "0.1.0"

"""``python -m contrastkit``: the same command line as the ``contrastkit`` script."""

from contrastkit.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

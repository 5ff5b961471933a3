"""``python -m benchmarks``: every benchmark in a fresh subprocess, then ``benchmarks/RESULTS.md``.

See :mod:`benchmarks.run_all` (``python -m benchmarks --help`` for the options).

Example:
    >>> from benchmarks.__main__ import main
    >>> main.__module__
    'benchmarks.run_all'
"""

import sys

from benchmarks.run_all import main

if __name__ == "__main__":
    sys.exit(main())

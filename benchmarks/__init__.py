"""contrastkit's benchmarks: ``python -m benchmarks`` runs them all and writes ``benchmarks/RESULTS.md``.

The scripts (``overhead.py``, ``losses.py``, ``augmentation.py``, ``training.py``, ``peers.py``) also run
on their own, ``python benchmarks/<name>.py --help``; :mod:`benchmarks.run_all` holds the all-at-once logic.

Example:
    >>> from benchmarks.run_all import BENCHMARKS
    >>> BENCHMARKS
    ('overhead', 'losses', 'augmentation', 'training', 'peers')
"""

"""How much do a recipe's views share? Estimate I_NCE between them, and sweep a recipe key (InfoMin's reverse-U).

One job per module:

- :mod:`~contrastkit.analysis.information`: the I_NCE lower bound of the views (:class:`PairEstimate`,
  :func:`estimate_view_information`, :func:`in_batch_info_nce`) and the linear probe that goes with it
  (:func:`probe_accuracy`); its docstring explains the estimate;
- :mod:`~contrastkit.analysis.recipe`: both for a recipe file, as ``contrastkit analyze`` runs them
  (:func:`analyze_recipe`);
- :mod:`~contrastkit.analysis.sweep_keys`: ``--sweep KEY=V1,V2,...`` (:func:`parse_sweep`) and the
  check that the recipe has ``KEY`` (:func:`check_sweep_key`, :func:`known_recipe_keys`);
- :mod:`~contrastkit.analysis.sweep`: a sweep's results (:class:`SweepPoint`, :func:`run_sweep`), its
  table and its plot (:func:`sweep_table`, :func:`write_sweep_plot`, :func:`write_sweep`).

Example:
    >>> parse_sweep("augment.strength=0.5,1,2")
    ('augment.strength', ['0.5', '1', '2'])
"""

from contrastkit.analysis.information import (
    SATURATION_FRACTION,
    PairEstimate,
    estimate_view_information,
    in_batch_info_nce,
    probe_accuracy,
)
from contrastkit.analysis.recipe import RecipeAnalysis, analyze_recipe
from contrastkit.analysis.sweep import SweepPoint, run_sweep, sweep_table, write_sweep, write_sweep_plot
from contrastkit.analysis.sweep_keys import check_sweep_key, known_recipe_keys, parse_sweep

__all__ = [
    "SATURATION_FRACTION",
    "PairEstimate",
    "RecipeAnalysis",
    "SweepPoint",
    "analyze_recipe",
    "check_sweep_key",
    "estimate_view_information",
    "in_batch_info_nce",
    "known_recipe_keys",
    "parse_sweep",
    "probe_accuracy",
    "run_sweep",
    "sweep_table",
    "write_sweep",
    "write_sweep_plot",
]

"""The glyph pools of colorful-moving-digits and the draws of other glyphs for its pairs."""

from __future__ import annotations

import numpy as np

from contrastkit.datasets.digit_glyphs import same_class_glyphs


def test_same_class_glyphs_draws_another_glyph_of_the_same_class() -> None:
    labels = np.array([0, 1, 0, 2, 1, 0, 2, 2, 1, 0])
    which = np.tile(np.arange(len(labels)), 200)
    drawn = same_class_glyphs(labels, which, np.random.default_rng(0))
    assert (labels[drawn] == labels[which]).all(), "the class must be kept"
    assert (drawn != which).all(), "never the glyph itself"
    for glyph in range(len(labels)):  # every other glyph of the class is reachable
        others = {int(i) for i in np.flatnonzero(labels == labels[glyph]) if i != glyph}
        assert set(drawn[which == glyph].tolist()) == others

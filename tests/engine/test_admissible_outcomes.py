"""Admissible outcomes on ambiguous inputs: enumerated where they can be, never guessed (engine/compare.py)."""
import numpy as np

import reference
from engine.ambiguity import decisions
from engine.compare import admissible_losses
from engine.oracle import answer
from engine.batch import found


def test_many_near_semi_hard_decisions_are_not_bounded_by_the_two_extremes():
    """The thorough hunt's batch: TF-Addons (Gram expansion, float32) returned 4.471 where the extreme nudges
    spanned [4.512, 4.531]; with more near distances than can be enumerated the loss is not compared."""
    spec = reference.Spec(mining="semi_hard", empty="nan")
    expected = answer(*found("semi_hard_wide_spread"), spec)
    decided = decisions(expected, "float32", "gram")
    assert "semi_hard_selection" in decided.ambiguous
    assert admissible_losses(expected, decided.ambiguous) is None


def test_window_edges_beyond_enumeration_keep_their_two_extremes():
    rng = np.random.default_rng(3)
    x = np.round(rng.normal(size=(12, 1)) * 4) / 4 + rng.normal(size=(12, 1)) * 1e-9  # many near window edges
    labels = np.arange(12) % 2
    spec = reference.Spec(mining="semi_hard_all", margin=0.25)
    expected = answer(x, labels, spec)
    decided = decisions(expected, "float32", "gram")
    outcomes = admissible_losses(expected, decided.ambiguous)
    assert outcomes is not None and len(outcomes) == 3  # the loss itself and the two extremes

"""Admissible outcomes on ambiguous inputs: enumerated where they can be, never guessed (engine/compare.py)."""
import numpy as np

import reference
from engine.ambiguity import decisions
from engine.batch import found
from engine.compare import admissible_losses
from engine.judge import judge
from engine.oracle import answer
from engine.tolerances import tolerance


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


def test_a_nan_is_admissible_where_an_ambiguous_decision_empties_the_batch():
    """The hunt's batch: the only semi_hard_all triplet sits 9e-9 inside the window's lower edge, within float32's
    rounding; outside it no triplet is left and empty="nan" gives NaN. Both NaN and the oracle's m are admissible,
    and a loss that is neither is not."""
    spec = reference.Spec(mining="semi_hard_all", distance="cosine", margin=0.2, reduction="mean_nonzero", empty="nan")
    expected = answer(*found("window_edge_empties_the_batch"), spec)
    decided = decisions(expected, "float32")
    assert "window_lower" in decided.ambiguous
    allowed = tolerance("loss", "float32", expected)
    assert judge("loss", float("nan"), expected, decided, allowed, "float32").ok
    assert judge("loss", expected.loss, expected, decided, allowed, "float32").ok
    assert not judge("loss", 0.5, expected, decided, allowed, "float32").ok

"""Unit rows carry a rounding of their own (contract/precision.py, "direct, unit rows"), also at distance 0: two rows
whose directions differ by less than the dtype resolves may be normalised onto one point or one unit in the last place
apart, whichever order a correct implementation sums their squares in. A pair the oracle puts at exactly 0 is then a
zero-distance decision (sqrt's kink) within rounding, and the gradient there is not compared."""
import numpy as np

import reference
from engine.ambiguity import decisions
from engine.judge import NOT_COMPARED, comparison
from engine.regressions import OWN
from engine.tolerances import distance_rounding

FOUND = next(r for r in OWN if r.layout == "near-duplicate directions 2.7e10 from the origin")
SPEC = reference.Spec(mining="batch_hard", normalize=True, margin=0.2, scaled=True, reduction="mean_nonzero",
                      anchors="valid", empty="zero")
ANSWER = reference.evaluate(FOUND.embeddings, FOUND.labels, SPEC)


def unit_row(row: np.ndarray, order) -> np.ndarray:
    """row / |row|, its squares summed one correctly rounded addition at a time in `order`: the same on every IEEE
    machine."""
    total = 0.0
    for k in order:
        total += float(row[k]) * float(row[k])
    return row / np.sqrt(total)


def test_two_correct_normalisations_put_the_pair_at_zero_and_apart():
    _, near, twin = FOUND.embeddings
    forward, backward = range(len(near)), range(len(near) - 1, -1, -1)
    apart = np.linalg.norm(unit_row(near, forward) - unit_row(twin, forward))
    together = np.linalg.norm(unit_row(near, backward) - unit_row(twin, backward))
    assert together == 0.0 < apart
    assert ANSWER.distances[1, 2] == 0.0 and ANSWER.gaps["zero_distance"] == 0.0
    assert apart <= distance_rounding(ANSWER, "float64")[1, 2]


def test_the_zero_distance_decision_is_ambiguous_and_the_gradient_not_compared():
    for dtype in ("float64", "float32"):
        decided = decisions(ANSWER, dtype)
        assert "zero_distance" in decided.ambiguous
        assert comparison("grad", decided, ANSWER) == NOT_COMPARED

"""Admissible outcomes on ambiguous inputs: enumerated where they can be, never guessed (engine/compare.py)."""
import math

import numpy as np
import pytest

import reference
from engine.ambiguity import decisions, underflow_resolution
from contract.batch import Batch, found
from engine.compare import admissible_losses
from contract.dtypes import dtype as dtype_facts
from engine.judge import judge
from reference import evaluate
from engine.regressions import OWN
from engine.tolerances import tolerance
from reference.gaps import HINGE, SOFT_UNDERFLOW


def test_many_near_semi_hard_decisions_are_not_bounded_by_the_two_extremes():
    """The thorough hunt's batch: TF-Addons (Gram expansion, float32) returned 4.471 where the extreme nudges
    spanned [4.512, 4.531]; with more near distances than can be enumerated the loss is not compared."""
    spec = reference.Spec(mining="semi_hard", empty="nan")
    expected = evaluate(*found("semi_hard_wide_spread"), spec)
    decided = decisions(expected, "float32", "gram")
    assert "semi_hard_selection" in decided.ambiguous
    assert admissible_losses(expected, decided.ambiguous) is None


def test_window_edges_beyond_enumeration_keep_their_two_extremes():
    rng = np.random.default_rng(3)
    x = np.round(rng.normal(size=(12, 1)) * 4) / 4 + rng.normal(size=(12, 1)) * 1e-9  # many near window edges
    labels = np.arange(12) % 2
    spec = reference.Spec(mining="semi_hard_all", margin=0.25)
    expected = evaluate(x, labels, spec)
    decided = decisions(expected, "float32", "gram")
    outcomes = admissible_losses(expected, decided.ambiguous)
    assert outcomes is not None and len(outcomes) == 3  # the loss itself and the two extremes


def test_a_nan_is_admissible_where_an_ambiguous_decision_empties_the_batch():
    """The hunt's batch: the only semi_hard_all triplet sits 9e-9 inside the window's lower edge, within float32's
    rounding; outside it no triplet is left and empty="nan" gives NaN. Both NaN and the oracle's m are admissible,
    and a loss that is neither is not."""
    spec = reference.Spec(mining="semi_hard_all", distance="cosine", margin=0.2, reduction="mean_nonzero", empty="nan")
    expected = evaluate(*found("window_edge_empties_the_batch"), spec)
    decided = decisions(expected, "float32")
    assert "window_lower" in decided.ambiguous
    allowed = tolerance("loss", "float32", expected)
    assert judge("loss", float("nan"), expected, decided, allowed, "float32").ok
    assert judge("loss", expected.loss, expected, decided, allowed, "float32").ok
    assert not judge("loss", 0.5, expected, decided, allowed, "float32").ok


# --- the > 0 count of mean_nonzero over soft terms (reference/gaps.py soft_underflow) --------------------------
SOFT_COUNT = reference.Spec(mining="batch_all", soft=True, reduction="mean_nonzero")


def own_batch(layout: str, spec: reference.Spec):
    return next(r for r in OWN if r.layout == layout).batch(spec)


def softplus(z: float) -> float:
    return math.log1p(math.exp(z))


def two_classes_apart(batch) -> tuple[float, float]:
    """The loss of rows A, B (one class) and A, A (another), s = |B - A| apart, by hand, over the spec's 8 terms and
    over the 6 left when the two softplus(-s) drop out: 2 softplus(s) from A's positive B, 4 log 2 where d_ap =
    d_an, 2 softplus(-s) from the two copies of A to the negative B."""
    s = abs(batch.embeddings[1, 0] - batch.embeddings[0, 0])
    counted = 2 * softplus(s) + 4 * math.log(2)
    return (counted + 2 * softplus(-s)) / 8, counted / 6


ISSUE = "soft terms float32 rounds to 0"  # PML 2.9 smooth_loss: 46.36 for 34.77 in float32


@pytest.mark.parametrize("batch, dtype, undecided", [
    (own_batch(ISSUE, SOFT_COUNT), "float32", True),  # e^-137.7: 0 in float32
    (own_batch(ISSUE, SOFT_COUNT), "float64", False),  # float64 holds it: it counts
    (Batch(np.array([[0.0], [95.0], [0.0], [0.0]]), np.array([2, 2, 1, 1])), "float32", True),  # subnormal: FTZ drops it
    (own_batch("a soft term float32 holds as a normal number", SOFT_COUNT), "float32", False),  # e^-80 = 1.8e-35
    (own_batch("a soft term float32 holds as a normal number", SOFT_COUNT), "float16", True),  # below 6.1e-5
], ids=["issue-float32", "issue-float64", "subnormal-float32", "normal-float32", "normal-float16"])
def test_a_soft_term_counts_unless_the_dtype_cannot_hold_it_as_a_normal_number(batch, dtype, undecided):
    """Dropping the two smallest terms from the count is admissible exactly where the dtype cannot hold them above
    its smallest normal number; the spec's count of 8 always is, and the gradient is not compared where the count is
    the dtype's."""
    batch = batch.rounded(dtype)
    expected = evaluate(batch.embeddings, batch.labels, SOFT_COUNT)
    decided = decisions(expected, dtype)
    spec_count, fewer = two_classes_apart(batch)
    assert expected.loss == pytest.approx(spec_count, rel=1e-12)
    assert (SOFT_UNDERFLOW in decided.ambiguous) == undecided
    allowed = tolerance("loss", dtype, expected)
    assert judge("loss", spec_count, expected, decided, allowed, dtype).ok
    assert judge("loss", fewer, expected, decided, allowed, dtype).ok == undecided
    if undecided:
        assert judge("grad", expected.grad * 4 / 3, expected, decided, tolerance("grad", dtype, expected), dtype) is None
        outcomes = admissible_losses(expected, decided.ambiguous)
        assert min(outcomes)[0] == pytest.approx(spec_count, rel=1e-12)
        assert max(outcomes)[0] == pytest.approx(fewer, rel=1e-12)


def test_the_soft_count_is_resolved_at_the_smallest_normal_number_through_the_hinges_resolution():
    """softplus(ln lambda + r): lambda itself where the argument is exact, r + ln lambda where its rounding r is
    large (a term of value v < r may be read as one below -87 in float32)."""
    for name in ("float64", "float32", "float16", "bfloat16"):
        assert underflow_resolution(name, 0.0) == pytest.approx(dtype_facts(name).smallest_normal, rel=1e-12)
    assert underflow_resolution("float32", 1e3) == pytest.approx(1e3 + math.log(2.0**-126), rel=1e-12)


def test_the_hinge_exactly_at_zero_is_still_decided_by_the_spec_s_rule():
    """engine/regressions.py's batch: (0, 1, 2) has d_ap - d_an + m = 1 - 2 + 1 = 0, which mean_nonzero does not
    count; the other 7 terms are 1.5, 1, 1.5, 0.5, 1.5, 2, 2 (sum 10). A `>= 0` count (10 / 8) fails; the soft form
    of the batch has no count decision the dtype cannot resolve."""
    spec = reference.Spec(mining="batch_all", reduction="mean_nonzero")
    batch = own_batch("a hinge exactly at zero", spec)
    expected = evaluate(batch.embeddings, batch.labels, spec)
    decided = decisions(expected, "float32")
    assert expected.loss == pytest.approx(10 / 7, rel=1e-15) and HINGE in decided.ties and not decided.ambiguous
    assert not judge("loss", 10 / 8, expected, decided, tolerance("loss", "float32", expected), "float32").ok
    soft = evaluate(batch.embeddings, batch.labels, SOFT_COUNT)
    assert SOFT_UNDERFLOW in soft.gaps and not decisions(soft, "float32").ambiguous


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_beyond_the_hull_the_outcome_that_reaches_farthest_decides(sign):
    """A dev-profile search on an Intel Xeon (PML's semihard miner, float32, a clustered batch with duplicates): the
    oracle's own outcome ended the hull at 0.13250 with no nudge allowance, the all-up nudge 8e-6 inside it carried
    0.046, and PML's 0.13291 (one window-edge triplet more, d_an - d_ap = -9e-8) was judged from the end alone."""
    from engine.compare import measure_loss_against
    from engine.tolerances import Tolerance

    outcomes = [(sign * 0.13250, 0.0), (sign * 0.132496, 0.046), (sign * 0.10642, 0.041)]
    table = Tolerance(1.85e-4, 1.3e-6, "table", 1.0)
    assert measure_loss_against(sign * 0.13291, outcomes, table, "float32").ok
    assert not measure_loss_against(sign * 0.19, outcomes, table, "float32").ok  # beyond every outcome's reach

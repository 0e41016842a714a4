"""Exact ties are decided by the spec's own rule; ties within rounding stay ambiguous (engine/exactness.py,
engine/ambiguity.py `decisions`, engine/judge.py)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import reference
from engine.ambiguity import decisions
from engine.exactness import exact_kinds, common_power_of_two
from engine.judge import NOT_COMPARED, ORACLE, comparison, judge
from reference import evaluate
from engine.draws import _lattice
from engine.tolerances import tolerance
from reference.gaps import HINGE, SEMI_HARD_SELECTION, TIE_NEGATIVE, WINDOW_LOWER, WINDOW_UPPER

SEMI_HARD = reference.Spec(mining="semi_hard", empty="nan")
TIED = np.array([[0.0], [2.0], [-2.0], [3.0]]), np.array([0, 0, 1, 1])  # anchor 0: d_ap = d_an = 2 to -2


def test_the_common_power_of_two_is_the_largest_dividing_every_coordinate():
    assert common_power_of_two(np.array([[3.0, -1.5], [0.25, 0.0]])) == 0.25
    assert common_power_of_two(np.zeros((2, 2))) == 1.0
    assert common_power_of_two(np.array([[np.nan]])) is None
    assert common_power_of_two(np.array([[0.2]])) < 1e-15  # 0.2 is no short binary fraction


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
def test_small_integers_decide_every_comparison_exactly_in_every_dtype(dtype):
    assert exact_kinds(evaluate(*TIED, SEMI_HARD), dtype) >= {SEMI_HARD_SELECTION, TIE_NEGATIVE, HINGE}


def test_integers_beyond_the_dtype_range_are_not_exact():
    x, y = TIED
    assert exact_kinds(evaluate(x * 8, y, SEMI_HARD), "bfloat16")  # a power of two scales the lattice, exactly
    assert not exact_kinds(evaluate(x * 5, y, SEMI_HARD), "bfloat16")  # squared distances up to 625 > 2^6
    assert exact_kinds(evaluate(x * 5, y, SEMI_HARD), "float32")


def test_cosine_normalize_and_non_lattice_inputs_are_never_exact():
    x, y = TIED
    assert not exact_kinds(evaluate(x, y, reference.Spec(mining="semi_hard", distance="cosine")), "float64")
    assert not exact_kinds(evaluate(x, y, reference.Spec(mining="semi_hard", normalize=True)), "float64")
    assert not exact_kinds(evaluate(x + 0.1, y, SEMI_HARD), "float64")


def test_margin_decisions_need_exact_distances_and_a_margin_on_the_lattice():
    window = reference.Spec(mining="semi_hard_all", margin=1.0)
    on_axis = np.array([[0.0], [1.0], [-1.0], [2.0]]), np.array([0, 0, 1, 1])
    assert {WINDOW_LOWER, WINDOW_UPPER} <= exact_kinds(evaluate(*on_axis, window), "float32")
    off_axis = np.array([[0.0, 0.0], [1.0, 1.0], [-1.0, 0.0], [2.0, 1.0]]), on_axis[1]  # sqrt 2: not exact
    kinds = exact_kinds(evaluate(*off_axis, window), "float32")
    assert WINDOW_LOWER in kinds and WINDOW_UPPER not in kinds
    assert WINDOW_UPPER not in exact_kinds(evaluate(*on_axis, reference.Spec(mining="semi_hard_all", margin=0.2)), "float32")


def test_an_exact_tie_is_decided_not_ambiguous_and_a_wrong_tie_rule_fails_the_loss():
    expected = evaluate(*TIED, SEMI_HARD)
    decided = decisions(expected, "float32")
    assert not decided.ambiguous and SEMI_HARD_SELECTION in decided.ties
    assert comparison("loss", decided, expected) == ORACLE
    greater_or_equal = 1.75  # the same batch with -2 taken for anchor 0 (d_an >= d_ap)
    errors = judge("loss", greater_or_equal, expected, decided, tolerance("loss", "float32", expected), "float32")
    assert expected.loss == 1.25 and not errors.ok


def test_at_an_exact_kink_the_gradient_is_any_subgradient():
    expected = evaluate(np.array([[0.0], [1.0], [2.0], [0.5]]), np.array([0, 0, 1, 1]),
                      reference.Spec(mining="batch_all", reduction="mean_nonzero"))
    decided = decisions(expected, "float32")
    assert HINGE in decided.ties
    assert comparison("grad", decided, expected) == NOT_COMPARED
    assert comparison("loss", decided, expected) == ORACLE


def test_near_a_tie_off_the_lattice_stays_ambiguous():
    x, y = TIED
    near = evaluate(x + np.array([[0.0], [1e-9], [0.0], [0.0]]) + 0.1, y, SEMI_HARD)
    assert SEMI_HARD_SELECTION in decisions(near, "float32").ambiguous


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["float64", "float32", "float16", "bfloat16"]), st.integers(1, 16), st.integers(0, 2**32 - 1),
       st.sampled_from([reference.Spec(mining="semi_hard_all", margin=1.0), reference.Spec(mining="batch_hard",
                                                                                          distance="squared_euclidean")]))
def test_every_lattice_batch_the_strategy_draws_is_exact_in_its_dtype(dtype, d, seed, spec):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 3, size=8)
    x, _ = _lattice(rng, codes, d, spec, dtype)
    assert exact_kinds(evaluate(x, codes, spec), dtype)

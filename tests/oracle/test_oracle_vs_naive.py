"""The vectorised oracle equals the plain loops of naive.py, on random and structured batches.

Both compute in float64 from the same numbers, in different orders, so they agree to 1e-12
(relative to max(1, |value|)) wherever no decision lies within rounding distance. At such a near-tie
either choice is admissible: the selection is not compared, and the loss only where its value is
continuous across the decision (see `oracle_helpers.loss_is_decided`).
"""

import naive
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from oracle_helpers import ALL_SPECS, SPECS, Tally, amplification, assert_close, batches, comparable, failure

import reference

AGREEMENT = 1e-12


def assert_oracle_equals_loops(batch, spec, tally: Tally) -> None:
    result = batch.evaluate(spec)
    loops = naive.evaluate(batch.x, batch.labels, spec, batch.triplets)
    snippet = batch.snippet(spec, "# compare with tests/oracle/naive.py: naive.evaluate(x, labels, r.spec, triplets)")
    loops_distances = np.array(naive.distance_matrix(batch.x, spec.distance, spec.normalize))
    assert_close(result.distances, loops_distances, rtol=AGREEMENT, atol=AGREEMENT, what="distances", snippet=snippet)

    level, how = comparable(result, loops_distances)
    if level == "nothing":
        tally.discard(how)
        return
    tally.check(how)
    tolerance = AGREEMENT * amplification(result)
    if level == "all":
        oracle_terms = sorted(zip(map(tuple, result.selection.tolist()), result.values.tolist()))
        loop_terms = sorted(loops.terms)
        assert [t for t, _ in oracle_terms] == [t for t, _ in loop_terms], failure(
            f"selected terms differ:\noracle {[t for t, _ in oracle_terms]}\nloops  {[t for t, _ in loop_terms]}",
            snippet,
        )
        assert_close(
            [v for _, v in oracle_terms],
            [v for _, v in loop_terms],
            rtol=tolerance,
            atol=tolerance,
            what="term values, in selection order",
            snippet=snippet,
        )
    assert_close(result.loss, loops.loss, rtol=tolerance, atol=tolerance, what="loss", snippet=snippet)


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_oracle_equals_plain_loops(spec):
    tally = Tally(f"oracle vs loops [{spec}]")

    @given(batch=batches(spec))
    def check(batch):
        assert_oracle_equals_loops(batch, spec, tally)

    tally.judge(check)


def test_oracle_equals_plain_loops_for_any_valid_spec():
    """SPECS covers every pair of field values; this reaches the triples and beyond over many runs."""
    tally = Tally("oracle vs loops [any valid spec]")

    @given(spec=st.sampled_from(ALL_SPECS), data=st.data())
    def check(spec, data):
        assert_oracle_equals_loops(data.draw(batches(spec), label="batch"), spec, tally)

    tally.judge(check)


def test_specs_use_every_value_of_the_vocabulary():
    vocabulary = {
        "mining": reference.MININGS,
        "distance": reference.DISTANCES,
        "reduction": reference.REDUCTIONS,
        "anchors": reference.ANCHORS,
        "empty": reference.EMPTIES,
        "normalize": (False, True),
        "soft": (False, True),
        "scaled": (False, True),
    }
    missing = {name: set(values) - {getattr(s, name) for s in SPECS} for name, values in vocabulary.items()}
    assert not any(missing.values()), f"values no spec in SPECS uses: {missing}"

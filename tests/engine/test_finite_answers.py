"""What the judging rule (engine/judge.py) does where it does not compare with the oracle's own value: where the spec
defines no answer (the gradient of a NaN loss) anything goes; where it only leaves the side of a decision open, a
NaN or an infinity is not one of the sides."""
from types import SimpleNamespace

import numpy as np
import pytest

import reference
from engine.ambiguity import decisions
from contract.batch import found
from engine.judge import NOT_COMPARED, comparison, judge
from reference import evaluate
from engine.tolerances import tolerance
from reference.gaps import HINGE

SEMI_HARD = reference.Spec(mining="semi_hard", margin=1.0, empty="nan")
AT_THE_HINGE = (np.array([[0.0], [1.0], [2.0], [0.5]]), np.array([0, 0, 1, 1]))  # a term exactly at 0


@pytest.mark.parametrize("gradient", [0.0, np.nan, 1.0])
def test_the_gradient_of_a_nan_loss_is_not_compared(gradient):
    """One row twice, two labels: no positive pair, the loss NaN by the spec, no gradient defined; TF-Addons gives 0
    or NaN by the sign of a Gram residue, which differs between CPUs (tests/adapters/test_adapter_tfa.py)."""
    expected = evaluate(*found("one_row_twice_at_the_l2_clamp"), SEMI_HARD)
    decided = decisions(expected, "float32", "gram")
    assert np.isnan(expected.loss) and comparison("grad", decided, expected) == NOT_COMPARED
    grad = np.full_like(expected.grad, gradient)
    assert judge("grad", grad, expected, decided, tolerance("grad", "float32", expected), "float32") is None
    assert judge("loss", np.nan, expected, decided, tolerance("loss", "float32", expected), "float32").ok


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_at_an_exact_kink_any_one_sided_gradient_passes_but_not_a_nan(bad):
    spec = reference.Spec(mining="batch_all", reduction="mean_nonzero")
    expected = evaluate(*AT_THE_HINGE, spec)
    decided = decisions(expected, "float32")
    assert HINGE in decided.ties and comparison("grad", decided, expected) == NOT_COMPARED
    allowed = tolerance("grad", "float32", expected)
    assert judge("grad", expected.grad + 0.25, expected, decided, allowed, "float32") is None
    grad = expected.grad.copy()
    grad[1, 0] = bad
    errors = judge("grad", grad, expected, decided, allowed, "float32")
    assert errors is not None and not errors.ok and "every admissible grad is finite" in errors.mismatch


def test_a_property_does_not_pass_a_nan_where_every_admissible_answer_is_finite(monkeypatch):
    """The properties compare two answers of an adapter only where the judging rule compares with the oracle's value;
    elsewhere either side of the decision is admissible, a NaN is not (a release of a popular library returned NaN
    for a float16 batch that every admissible answer put at 0 and passed the translation property that way)."""
    from suite import test_properties
    from suite.test_properties import assert_same_answer

    monkeypatch.setattr(test_properties, "event", lambda text: None)  # Hypothesis's, outside a Hypothesis test here
    spec = reference.Spec(mining="batch_all", reduction="mean_nonzero")
    expected = evaluate(*AT_THE_HINGE, spec)
    cell = SimpleNamespace(spec=spec, dtype="float32", compute_dtype="float32", precision="direct")
    right = SimpleNamespace(loss=expected.loss, grad=expected.grad)
    assert_same_answer(cell, right, SimpleNamespace(loss=expected.loss, grad=expected.grad + 0.25), expected, "probing")
    with pytest.raises(AssertionError, match="probing: the grad changed: the answer: grad is nan"):
        assert_same_answer(cell, right, SimpleNamespace(loss=expected.loss, grad=expected.grad * np.nan), expected,
                           "probing")


def test_a_property_does_not_pass_the_same_nan_twice_where_the_oracle_answers(monkeypatch):
    """Two answers of an adapter held to each other: a NaN on both sides is no agreement where the oracle's answer is
    finite and compared (TF-Addons' lifted loss gives NaN for a one-class batch before and after a permutation)."""
    from suite import test_properties
    from suite.test_properties import assert_same_answer

    monkeypatch.setattr(test_properties, "event", lambda text: None)  # Hypothesis's, outside a Hypothesis test here
    spec = reference.Spec(mining="lifted")
    x, labels = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-0.8, 0.6]]), np.zeros(4, dtype=np.int64)
    expected = evaluate(x, labels, spec)
    assert expected.loss == 0.0 and not decisions(expected, "float32")
    cell = SimpleNamespace(spec=spec, dtype="float32", compute_dtype="float32", precision="direct")
    nan = SimpleNamespace(loss=np.nan, grad=np.full_like(x, np.nan))
    with pytest.raises(AssertionError, match="the answer it is held to: loss is nan"):
        assert_same_answer(cell, nan, nan, expected, "permuting the rows")

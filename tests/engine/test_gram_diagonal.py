"""A fallback's 0 read as the anchor's own distance (engine/tolerances.py `own_distance_rounding`).

batch_hard with anchors=all gives an anchor without a positive hp = 0. TF-Similarity takes it as the row minimum,
the anchor's own distance d(a, a), which its Gram expansion (|a|^2 - 2 a.a) + |a|^2 leaves at sqrt(r): r is the
residue of a reduce_sum and a matmul that sum in different orders, 0 on one CPU and 1.2e-7 on another for the same
row. A verdict must not depend on which: here the residue is the test's to choose. NumPy's float32 additions and
products are correctly rounded on every IEEE machine, so the sums below, written out one addition at a time, leave
the same residue on any CPU, thread count and math library: exactly 0, a real one, and the largest any summation
order can leave."""
import numpy as np
import pytest

import reference
from engine.ambiguity import decisions
from engine.judge import judge
from reference import evaluate
from engine.regressions import OWN
from engine.tolerances import SAFETY, distance_rounding, tolerance

EPS = float(np.finfo(np.float32).eps)
SPECS = [reference.Spec(mining="batch_hard", margin=1.0), reference.Spec(mining="batch_hard", soft=True)]
UNIT_ROWS = next(r for r in OWN if r.layout == "two anchors without a positive, unit rows in D = 11")
X, Y = UNIT_ROWS.embeddings.astype(np.float32).astype(np.float64), UNIT_ROWS.labels
NO_POSITIVE = [0, 3]  # labels 1 and 0 occur once
FORWARD, BACKWARD = range(X.shape[1]), range(X.shape[1] - 1, -1, -1)


def summed(terms: np.ndarray, order) -> np.ndarray:
    """sum_k terms[..., k] in float32, one rounded addition at a time, in `order`."""
    total = np.zeros(terms.shape[:-1], np.float32)
    for k in order:
        total = total + terms[..., k]
    return total


def worst_residue(x: np.ndarray) -> np.ndarray:
    """(4 D + 2) eps |x_i|^2: two norms and a dot product, each within gamma_D |x_i|^2 whatever the order (Higham),
    and one rounding of |x_i|^2 - 2 x_i.x_i: the most any machine's summation order leaves on the diagonal."""
    return (4 * x.shape[1] + 2) * EPS * np.einsum("ij,ij->i", x, x)


def gram(x: np.ndarray, norm_order, dot_order, diagonal: np.ndarray | None = None) -> np.ndarray:
    """TF-Similarity's squared distances in float32 (distances.py EuclideanDistance), the norms and the dot products
    summed in the orders given, as a reduce_sum and a matmul may; `diagonal` replaces the diagonal's residue."""
    x = x.astype(np.float32)
    norms = summed(x * x, norm_order)
    d2 = (norms[:, None] - np.float32(2) * summed(x[:, None, :] * x[None, :, :], dot_order)) + norms[None, :]
    if diagonal is not None:
        np.fill_diagonal(d2, diagonal.astype(np.float32))
    return d2


def reads_the_diagonal(d2: np.ndarray, labels: np.ndarray, spec: reference.Spec) -> float:
    """batch_hard, anchors=all, mean, as TF-Similarity mines it (losses/utils.py, algebra.py masked_max): the hardest
    positive, else the row minimum, which is d(a, a); without masked_max's 1e-6 offset (tfsim-masked-offsets-1e-6)."""
    dist = np.sqrt(np.maximum(d2, 0.0)).astype(np.float64)
    same = labels[:, None] == labels[None, :]
    positive = same & ~np.eye(len(labels), dtype=bool)
    hp = np.where(positive.any(axis=1), np.where(positive, dist, -np.inf).max(axis=1), dist.min(axis=1))
    hn = np.where(~same, dist, np.inf).min(axis=1)
    terms = np.logaddexp(0.0, hp - hn) if spec.soft else np.maximum(hp - hn + spec.margin, 0.0)
    return float(terms.mean())


def verdict(loss: float, x: np.ndarray, spec: reference.Spec, precision: str) -> bool:
    """Whether the loss passes the float32 loss cell of an adapter declaring `precision` (engine/judge.py)."""
    expected = evaluate(x, Y, spec)
    allowed = tolerance("loss", "float32", expected, precision=precision)
    errors = judge("loss", loss, expected, decisions(expected, "float32", precision), allowed, "float32")
    assert errors is not None, "compared with the oracle: no decision of these batches is within rounding"
    return errors.ok


LATTICE = np.round(X * 8.0) / 8.0  # eighths: every product and sum exact in float32, any order, so r = 0
CASES = {
    "residue 0": (LATTICE, gram(LATTICE, FORWARD, BACKWARD)),
    "a machine's residue": (X, gram(X, FORWARD, BACKWARD)),
    "the worst residue": (X, gram(X, FORWARD, FORWARD, diagonal=worst_residue(X))),
}


def test_the_cases_leave_the_residues_they_are_named_for():
    assert (np.diagonal(CASES["residue 0"][1]) == 0.0).all()
    assert np.diagonal(CASES["a machine's residue"][1])[NO_POSITIVE].max() > 0.0
    # the same rows summed in another order leave another residue: a machine's, not the rows'
    assert not np.array_equal(np.diagonal(gram(X, BACKWARD, FORWARD)), np.diagonal(CASES["a machine's residue"][1]))


@pytest.mark.parametrize("spec", SPECS, ids=str)
@pytest.mark.parametrize("case", CASES)
def test_the_gram_verdict_is_the_same_whatever_residue_the_diagonal_keeps(case, spec):
    x, d2 = CASES[case]
    assert verdict(reads_the_diagonal(d2, Y, spec), x, spec, "gram")


@pytest.mark.parametrize("spec", SPECS, ids=str)
@pytest.mark.parametrize("case", ["a machine's residue", "the worst residue"])
def test_without_the_gram_declaration_the_residue_fails(case, spec):
    """The direct model computes d(a, a) from a difference of exactly 0: the widening is the declaration's, and the
    residue is large enough that a model which forgot the diagonal would fail the implementation."""
    x, d2 = CASES[case]
    assert (distance_rounding(evaluate(x, Y, spec), "float32", "direct").diagonal() == 0.0).all()
    assert not verdict(reads_the_diagonal(d2, Y, spec), x, spec, "direct")


def test_the_worst_residue_is_inside_the_gram_rounding_of_the_diagonal():
    """sqrt((4 D + 2) eps |a|^2) <= SAFETY delta_aa, delta_aa = sqrt(2 (D + 2) eps |a|^2): what lets SAFETY x the
    first-order estimate hold on the machine that rounds worst; and every order tried here stays below it."""
    rows = np.random.default_rng(3).normal(size=(64, 11)) * np.logspace(-3, 3, 64)[:, None]
    delta = np.diagonal(distance_rounding(evaluate(rows, np.arange(64), SPECS[0]), "float32", "gram"))
    assert (np.sqrt(worst_residue(rows)) <= SAFETY * delta).all()
    order = np.random.default_rng(4).permutation(11)
    for norm_order, dot_order in ((FORWARD, BACKWARD), (BACKWARD, FORWARD), (order, FORWARD), (FORWARD, order)):
        assert (np.abs(np.diagonal(gram(rows, norm_order, dot_order))) <= worst_residue(rows.astype(np.float32))).all()


# --- the Gram expansion's backward (engine/tolerances.py `gram_backward_rounding`) -----------------------------------

FAR_COPIES = np.array([[5351613539549184.0], [5351613539549184.0]])  # the thorough hunt's find: two copies 5.4e15 out
TFSIM_GRADIENT = np.array([[33126592.0], [-33126592.0]])  # TF-Similarity's float32 gradient there, on the hunt's CPU


@pytest.mark.parametrize("precision, admitted", [("gram", True), ("direct", False)])
def test_the_gram_backward_at_an_exact_copy_is_rounding(precision, admitted):
    """TF-Similarity's squared distance max(Gram, 0) passes its gradient at an exact copy, where the norms' 2 g p_i and
    the matmul's 2 g p_j cancel only up to a product's rounding (2^25 of 2^50 where the CPU fuses a multiply and an
    add; 0 where it does not): a Gram declaration admits it, a direct one, whose difference is exactly 0, does not."""
    spec = reference.Spec(mining="batch_hard", distance="squared_euclidean", soft=True)
    expected = evaluate(FAR_COPIES, np.array([0, 1]), spec)
    assert not expected.grad.any()
    allowed = tolerance("grad", "float32", expected, precision=precision)
    errors = judge("grad", TFSIM_GRADIENT, expected, decisions(expected, "float32", precision), allowed, "float32")
    assert errors is not None and errors.ok == admitted

"""The lifted structured loss by hand, on the fixture batches of docs/upstream/next-losses.md (TF-Addons' and
pytorch-metric-learning's values, probed there) and where its log-sum-exp needs its shift."""
import math

import numpy as np
import pytest

import reference

# Fixture A: unit vectors, labels [0, 0, 1, 1]; d01 = d23 = 0.894427, d02 = d13 = 1.414214, d03 = 1.897367,
# d12 = 0.632456.
A = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-0.8, 0.6]])
LIFTED = reference.Spec(mining="lifted", margin=1.0, empty="nan")


def test_fixture_a_term_by_term():
    """Pair (0, 1): the negatives of x0 (x2, x3) and of x1 (x2, x3) give e^(1 - d) = 0.66086, 0.40764, 1.44418,
    0.66086; log of their sum 1.154849, J = 1.154849 + 0.894427 = 2.049277, J^2 / 2 = 2.099767. Pair (2, 3) is its
    mirror image: the loss, their mean, is 2.0997672 (TF-Addons and pytorch-metric-learning alike)."""
    d = {(0, 1): math.sqrt(0.8), (0, 2): math.sqrt(2.0), (0, 3): math.sqrt(3.6), (1, 2): math.sqrt(0.4),
         (1, 3): math.sqrt(2.0)}
    exponentials = [math.exp(1 - d[k]) for k in ((0, 2), (0, 3), (1, 2), (1, 3))]
    assert exponentials == pytest.approx([0.66086, 0.40764, 1.44418, 0.66086], abs=5e-6)
    j = math.log(sum(exponentials)) + d[(0, 1)]
    assert j == pytest.approx(2.049277, abs=1e-6)
    answer = reference.evaluate(A, [0, 0, 1, 1], LIFTED)
    assert answer.values.tolist() == pytest.approx([j * j / 2] * 2, rel=1e-12)
    assert answer.loss == pytest.approx(2.0997672, abs=1e-7)


@pytest.mark.parametrize("labels, expected", [
    ([0, 0, 1, 2], 2.0997672),  # B: anchors 2 and 3 have no positive; pair (0, 1) is A's
    ([0, 0, 0, 0], 0.0),  # one class: no negative, J = -inf, every term 0 (TF-Addons gives NaN: the registry)
    ([0, 1, 2, 3], math.nan),  # no positive pair: empty="nan" (TF-Addons); empty="zero" gives 0
])
def test_fixture_labels(labels, expected):
    loss = reference.evaluate(A, labels, LIFTED).loss
    assert (math.isnan(loss) and math.isnan(expected)) or loss == pytest.approx(expected, abs=1e-7)
    assert reference.evaluate(A, [0, 1, 2, 3], reference.Spec(mining="lifted", empty="zero")).loss == 0.0


def test_raw_rows_are_not_normalised():
    """3 A: TF-Addons measures the rows as given, 1.9600879; normalize=True (pytorch-metric-learning) gives A's."""
    assert reference.evaluate(3 * A, [0, 0, 1, 1], LIFTED).loss == pytest.approx(1.9600879, abs=1e-7)
    normalized = reference.Spec(mining="lifted", normalize=True, empty="zero")
    assert reference.evaluate(3 * A, [0, 0, 1, 1], normalized).loss == pytest.approx(2.0997672, abs=1e-7)


def test_the_shift_keeps_far_negatives_finite_and_moves_no_gradient():
    """1000 A: every e^(m - d) underflows float64 without the log-sum-exp's shift (d >= 632). With it, pair (0, 1)
    has J = 1 - d12 + d01 + log(1 + e^(-(d02 - d12)) + ...) = 1 - 632.456 + 894.427 to float64's precision (the
    other negatives are 780 or more farther), and pair (2, 3) the same by symmetry; dJ/dD is +1 on the pair and -1
    on the nearest negative, so the gradient is that of J(x) = 1 - |x1 - x2| + |x0 - x1| (pair (0, 1)) and
    1 - |x2 - x1| + |x2 - x3| (pair (2, 3)), each weighted by dL/dJ = J / 2."""
    x = 1000 * A
    j = 1 - np.linalg.norm(x[1] - x[2]) + np.linalg.norm(x[0] - x[1])
    answer = reference.evaluate(x, [0, 0, 1, 1], LIFTED)
    assert answer.loss == pytest.approx(j * j / 2, rel=1e-12)

    def unit(a, b):
        return (x[a] - x[b]) / np.linalg.norm(x[a] - x[b])

    expected = np.zeros_like(x)
    for pair, nearest in (((0, 1), (1, 2)), ((2, 3), (2, 1))):
        expected[pair[0]] += j / 2 * unit(*pair)
        expected[pair[1]] -= j / 2 * unit(*pair)
        expected[nearest[0]] -= j / 2 * unit(*nearest)
        expected[nearest[1]] += j / 2 * unit(*nearest)
    np.testing.assert_allclose(answer.grad, expected, rtol=1e-9, atol=1e-9)

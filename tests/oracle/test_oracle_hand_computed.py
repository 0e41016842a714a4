"""Small batches worked out on paper: seed 001's printed example, TF-Addons' docstring examples, distance matrices
(the batches per mining strategy are in test_oracle_hand_computed_mining.py).

Every expected number is arithmetic written out here (mostly on 1-D integer coordinates, where a
distance is |x_i - x_j| and its derivative sign(x_i - x_j)), never output copied from the oracle.
"""

import math

import numpy as np
import pytest
from oracle_helpers import EXACT, Batch, assert_close, check, failure

from reference import Spec


# --- seed 001: the 4x5 example with its printed L2 and cosine matrices --------------------------------

SEED_001_LABELS = [1, 2, 1, 1]
SEED_001_PRINTED = {  # scipy pdist + squareform of torch.rand(4, 5) features, as the seed prints them
    "euclidean": np.array(
        [
            [0.0, 1.10331486, 0.5864828, 0.59393064],
            [1.10331486, 0.0, 1.03922242, 0.9065565],
            [0.5864828, 1.03922242, 0.0, 0.80532109],
            [0.59393064, 0.9065565, 0.80532109, 0.0],
        ]
    ),
    "cosine": np.array(
        [
            [0.0, 0.42754478, 0.08141503, 0.10817727],
            [0.42754478, 0.0, 0.54301297, 0.27861574],
            [0.08141503, 0.54301297, 0.0, 0.21095896],
            [0.10817727, 0.27861574, 0.21095896, 0.0],
        ]
    ),
}
PRINTED_PRECISION = 5e-9  # half a unit in the 8th decimal


def seed_001_embedding() -> np.ndarray:
    """A 4x5 embedding whose L2 and cosine matrices are the printed ones.

    Both depend on the Gram matrix only: G_ij = r_i r_j (1 - cos_ij) with norms r_i, and
    d_ij^2 = r_i^2 + r_j^2 - 2 G_ij. The printed cosines fix the angles, so the 6 printed L2
    distances leave 4 unknown norms: solved by Gauss-Newton, then G is factored (Cholesky, it is
    positive definite) and padded with a zero column to 5 features.
    """
    i, j = np.triu_indices(4, k=1)
    similarity = 1.0 - SEED_001_PRINTED["cosine"][i, j]
    squared = SEED_001_PRINTED["euclidean"][i, j] ** 2
    r = np.ones(4)
    for _ in range(30):
        residual = r[i] ** 2 + r[j] ** 2 - 2 * r[i] * r[j] * similarity - squared
        jacobian = np.zeros((len(i), 4))
        jacobian[np.arange(len(i)), i] = 2 * r[i] - 2 * r[j] * similarity
        jacobian[np.arange(len(i)), j] = 2 * r[j] - 2 * r[i] * similarity
        r -= np.linalg.lstsq(jacobian, residual, rcond=None)[0]
    gram = np.outer(r, r) * (1.0 - SEED_001_PRINTED["cosine"])
    return np.hstack([np.linalg.cholesky(gram), np.zeros((4, 1))])


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_seed_001_distance_matrices_are_the_printed_ones(distance):
    batch = Batch(seed_001_embedding(), np.array(SEED_001_LABELS))
    spec = Spec(margin=0.3, distance=distance)
    assert_close(
        batch.evaluate(spec).distances,
        SEED_001_PRINTED[distance],
        rtol=0,
        atol=PRINTED_PRECISION,
        what=f"{distance} distances",
        snippet=batch.snippet(spec),
    )


# The seed takes, per anchor, the max over same-label entries *including the anchor itself*, so the
# singleton anchor 1 has d_ap = d(1, 1) = 0: the oracle's "no positive: hp = 0" (anchors="all").
# Per anchor [hp - hn + 0.3]+, with hp, hn read off the printed matrices:
SEED_001_HARD_LOSS = {
    "euclidean": (
        0.0  # anchor 0: [0.59393064 - 1.10331486 + 0.3]+
        + 0.0  # anchor 1: [0 - 0.9065565 + 0.3]+
        + (0.80532109 - 1.03922242 + 0.3)  # anchor 2
        + (0.80532109 - 0.9065565 + 0.3)  # anchor 3
    )
    / 4,
    "cosine": (
        0.0  # anchor 0: [0.10817727 - 0.42754478 + 0.3]+
        + (0.0 - 0.27861574 + 0.3)  # anchor 1
        + 0.0  # anchor 2: [0.21095896 - 0.54301297 + 0.3]+
        + (0.21095896 - 0.27861574 + 0.3)  # anchor 3
    )
    / 4,
}


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_seed_001_hard_triplet_loss_with_margin_0_3(distance):
    # MarginRankingLoss(0.3)(d_an, d_ap, 1) = mean over anchors of [d_ap - d_an + 0.3]+: batch_hard,
    # anchors "all", mean. The rebuilt distances are within PRINTED_PRECISION of the printed ones (the
    # test above), and the two active terms read 4 of them, so the loss is within 4 x that / 4.
    check(
        seed_001_embedding(),
        SEED_001_LABELS,
        Spec(margin=0.3, distance=distance),
        loss=SEED_001_HARD_LOSS[distance],
        tolerance=PRINTED_PRECISION,
    )


# --- TF-Addons docstring examples (tensorflow_addons/losses/triplet.py) -------------------------------


def test_tf_addons_semihard_docstring_example():
    # One class: no negative, so d_an = 0 for both ordered pairs: (1 + sqrt(2) - 0) each, mean over 2.
    result = check(
        [[0.0, 1.0], [1.0, 0.0]],
        [0, 0],
        Spec(mining="semi_hard", empty="nan"),
        loss=1 + math.sqrt(2),
        terms=[((0, 1, -1), 1 + math.sqrt(2)), ((1, 0, -1), 1 + math.sqrt(2))],
    )
    assert np.float32(result.loss) == np.float32(2.4142137)  # the docstring's float32 value


def test_tf_addons_hard_docstring_example():
    # One class: the hard negative falls back to the row maximum sqrt(2) = hp, so each anchor gives m = 1.
    check([[0.0, 1.0], [1.0, 0.0]], [0, 0], Spec(), loss=1.0)


# --- distances (2-D integer points; all norms are 5) ----------------------------------------------------

CORNERS = [[3, 4], [4, 3], [0, 5], [-3, -4]]
SQUARED = np.array(
    [  # (dx)^2 + (dy)^2
        [0, 1 + 1, 9 + 1, 36 + 64],
        [1 + 1, 0, 16 + 4, 49 + 49],
        [9 + 1, 16 + 4, 0, 9 + 81],
        [36 + 64, 49 + 49, 9 + 81, 0],
    ],
    dtype=float,
)
DOTS = np.array(
    [  # x_i . x_j
        [25, 12 + 12, 0 + 20, -9 - 16],
        [12 + 12, 25, 0 + 15, -12 - 12],
        [0 + 20, 0 + 15, 25, 0 - 20],
        [-9 - 16, -12 - 12, 0 - 20, 25],
    ],
    dtype=float,
)
COSINE = 1 - DOTS / 25


@pytest.mark.parametrize(
    "distance, normalize, expected",
    [
        ("euclidean", False, np.sqrt(SQUARED)),
        ("squared_euclidean", False, SQUARED),
        ("cosine", False, COSINE),
        ("euclidean", True, np.sqrt(SQUARED) / 5),  # unit vectors are the points / 5
        ("squared_euclidean", True, SQUARED / 25),
        ("cosine", True, COSINE),  # normalising first changes no angle
    ],
)
def test_distance_matrices(distance, normalize, expected):
    batch, spec = (
        Batch(np.array(CORNERS, dtype=float), np.array([0, 0, 1, 1])),
        Spec(distance=distance, normalize=normalize),
    )
    assert_close(
        batch.evaluate(spec).distances, expected, rtol=EXACT, atol=EXACT, what="distances", snippet=batch.snippet(spec)
    )


def test_cosine_distance_of_a_zero_vector_is_1_even_to_itself():
    # A zero row stays zero (torch F.normalize, TF l2_normalize), so cos = 0 against everything; like
    # TF-Addons' angular_distance the diagonal is not forced to 0.
    batch, spec = Batch(np.array([[0.0, 0.0], [3.0, 4.0]]), np.array([0, 1])), Spec(distance="cosine")
    assert_close(
        batch.evaluate(spec).distances,
        [[1, 1], [1, 0]],
        rtol=0,
        atol=EXACT,
        what="distances",
        snippet=batch.snippet(spec),
    )


def test_cosine_distance_is_clamped_at_0():
    # (1,1,1) and (2,2,2) point the same way; in float64 their unit vectors' dot product rounds to
    # 1 + 2.2e-16, so unclamped 1 - cos would be negative (TF-Addons clamps at 0 too).
    batch, spec = Batch(np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]]), np.array([0, 1])), Spec(distance="cosine")
    distances = batch.evaluate(spec).distances
    assert np.all(distances == 0.0), failure(
        f"distances {distances.tolist()} should all be exactly 0", batch.snippet(spec)
    )


# --- the reduction: one rounding, whatever the CPU ------------------------------------------------------


def test_the_weighted_sum_is_rounded_once():
    """1e16 + 1 - 1e16 is 1; a sum rounded term by term gives 0 (or 2: 1e16 + 1 is halfway between two floats)."""
    from reference.terms import weighted_sum

    assert weighted_sum(np.ones(3), np.array([1e16, 1.0, -1e16])) == 1.0
    assert weighted_sum(np.full(9, 1 / 9), np.full(9, 0.3)) == 0.3  # a BLAS dot gives 0.30000000000000004 on some CPUs


def test_the_weighted_sum_is_the_same_bits_in_any_order():
    """The order of the terms, like the order a CPU's dot kernel adds them in, does not move a bit of the sum."""
    from reference.terms import weighted_sum

    rng = np.random.default_rng(0)
    weights, values = rng.random(1000), rng.standard_normal(1000) * 10.0 ** rng.integers(-8, 9, 1000)
    first = weighted_sum(weights, values)
    for _ in range(20):
        order = rng.permutation(1000)
        assert weighted_sum(weights[order], values[order]) == first


def test_the_weighted_sum_of_infinities_is_the_plain_sum():
    from reference.terms import weighted_sum

    assert weighted_sum(np.ones(2), np.array([1e308, 1e308])) == math.inf
    assert math.isnan(weighted_sum(np.ones(2), np.array([math.inf, -math.inf])))

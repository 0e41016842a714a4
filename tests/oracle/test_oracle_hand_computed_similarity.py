"""The similarity family by hand (reference/similarity.py): multi-similarity (Wang et al. 2019 eq. 10), its miner and
circle loss (Sun et al. 2020 eq. 6) with the probes of docs/upstream/next-losses.md (sections 1.6-1.8, 3.1, 3.2, run
with pytorch-metric-learning 2.9.0) on its fixture batches, and what the records accept."""
import math

import numpy as np
import pytest

import reference
from reference import Spec, SpecError
from reference.similarity import circle, mined_pairs

# Batch A: unit rows x0 = (1, 0), x1 = (0.6, 0.8), x2 = (0, 1), x3 = (-0.8, 0.6); cosine rows [1, .6, 0, -.8],
# [.6, 1, .8, 0], [0, .8, 1, .6], [-.8, 0, .6, 1]
X = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-0.8, 0.6]])
A, B, ONE_CLASS, ALL_UNIQUE = [0, 0, 1, 1], [0, 0, 1, 2], [0, 0, 0, 0], [0, 1, 2, 3]
MS = Spec(mining="multi_similarity", distance="cosine")  # PML's defaults: alpha 2, beta 50, base 0.5
MINED = Spec(mining="multi_similarity_mined", distance="cosine", margin=0.1)  # MultiSimilarityMiner(epsilon=0.1)
CIRCLE = Spec(mining="circle", distance="cosine", margin=0.4, gamma=80.0, reduction="mean_nonzero")  # PML's


@pytest.mark.parametrize("labels, probe", [(A, 0.4490694), (B, 0.324569), (ONE_CLASS, 1.12922),
                                           (ALL_UNIQUE, 0.200068)])
def test_multi_similarity_probes(labels, probe):
    """To the digits the probe printed."""
    digits = len(repr(probe).split(".")[1])
    assert reference.evaluate(X, labels, MS).loss == pytest.approx(probe, abs=0.5 * 10.0**-digits)


def test_multi_similarity_anchor_by_hand():
    """Anchor 0: (1/2) log(1 + e^(-2 (0.6 - 0.5))) and negatives at s = 0, -0.8: (1/50) log(1 + e^-25 + e^-65);
    anchor 1 adds (1/50) log(1 + e^15 + e^-25) for its negatives at s = 0.8, 0."""
    values = reference.evaluate(X, A, MS).values
    positive = 0.5 * math.log1p(math.exp(-0.2))
    assert values[0] == pytest.approx(positive + math.log1p(math.exp(-25) + math.exp(-65)) / 50, abs=1e-15)
    assert values[1] == pytest.approx(positive + math.log1p(math.exp(15) + math.exp(-25)) / 50, abs=1e-14)
    assert values[1] == pytest.approx(0.599069, abs=1e-6)


def test_miner_keeps_pml_s_pairs():
    """MultiSimilarityMiner on batch A (probe): a1 = [1, 2], p = [0, 3], a2 = [1, 2], n = [2, 1]."""
    dist = reference.evaluate(X, A, MS).distances
    keep_positive, keep_negative, _, _ = mined_pairs(dist, np.array(A), 0.1)
    assert [tuple(map(int, pair)) for pair in np.argwhere(keep_positive)] == [(1, 0), (2, 3)]
    assert [tuple(map(int, pair)) for pair in np.argwhere(keep_negative)] == [(1, 2), (2, 1)]


def test_mined_multi_similarity_probes():
    """PML MultiSimilarityLoss() + MultiSimilarityMiner() on A: 0.2995347; TF-Similarity's MultiSimilarityLoss (beta 40,
    the miner built in) gives 0.2995348 on A, per anchor [0, 0.599069, 0.599069, 0], and 0.1497674 on B."""
    assert reference.evaluate(X, A, MINED).loss == pytest.approx(0.2995347, abs=1e-7)
    tfsim = Spec(mining="multi_similarity_mined", distance="cosine", margin=0.1, beta=40.0)
    answer = reference.evaluate(X, A, tfsim)
    assert answer.loss == pytest.approx(0.2995348, abs=1e-7)
    np.testing.assert_allclose(answer.values, [0, 0.599069, 0.599069, 0], atol=1e-6)
    assert reference.evaluate(X, B, tfsim).loss == pytest.approx(0.1497674, abs=1e-7)
    for labels in (ONE_CLASS, ALL_UNIQUE):  # no negative or no positive: the miner keeps nothing
        assert reference.evaluate(X, labels, tfsim).loss == 0.0


def test_the_miner_s_decisions_are_its_margins():
    """Anchor 1 keeps x0 since s = 0.6 - 0.1 < 0.8: 0.3 from the decision; so is its negative x2, 0.8 + 0.1 > 0.6."""
    gaps = reference.evaluate(X, A, MINED).gaps
    assert gaps["mined_positive"] == pytest.approx(0.3, abs=1e-15)
    assert gaps["mined_negative"] == pytest.approx(0.3, abs=1e-15)


def test_circle_probes():
    """PML CircleLoss() on A: 19.546574, per anchor 0.693149, 38.4, 38.4, 0.693149 (anchor 0: s_p = 0.6 = 1 - m, so
    l_p = 0; negative logits -12.8 and 0: softplus(log(1 + e^-12.8)) ~ log 2); B: 19.546574, anchors 2 and 3 lack a
    positive and leave AvgNonZeroReducer's mean."""
    answer = reference.evaluate(X, A, CIRCLE)
    assert answer.loss == pytest.approx(19.546574, abs=1e-6)
    np.testing.assert_allclose(answer.values, [0.693149, 38.4, 38.4, 0.693149], atol=1e-6)
    assert answer.values[0] == pytest.approx(math.log1p(1 + math.exp(-12.8)), abs=1e-14)  # cos(x0, x1) rounds
    b = reference.evaluate(X, B, CIRCLE)
    assert b.loss == pytest.approx(19.546574, abs=1e-6)
    assert list(b.values[2:]) == [0.0, 0.0]


def test_circle_weights_are_held_constant_for_the_gradient():
    """Anchor 1's term is softplus(l_p + lse_n) ~ 38.4, dominated by its negative x2 (s = 0.8, alpha_n = 1.2): the
    gradient in D_12 is -gamma alpha_n = -96 times its share (~1) over 4 anchors (mean over both anchors' terms
    here: 2 non-zero of 4), not the value's derivative -gamma (2 s_n) = -128."""
    terms = reference.evaluate(X, A, CIRCLE)
    # D_12 is read by anchor 1 (its negative x2) and by anchor 2 (its negative x1): each slope -96 share / 4
    shares = [s for s in terms.shares if {int(s[1]), int(s[2])} == {1, 2}]
    assert all(s[5] == pytest.approx(96.0) for s in shares)
    assert terms.grad_dist[1, 2] == pytest.approx(-96.0 * shares[0][3] / 4, rel=1e-12)
    dist = terms.distances
    held = circle(dist + 1e-6 * np.eye(4)[1][:, None] * np.eye(4)[2][None, :], np.array(A), CIRCLE, weighted_at=dist)
    assert (held.loss - terms.loss) / 1e-6 == pytest.approx(terms.grad_dist[1, 2], rel=1e-5)


def test_the_records_read_cosine_only():
    for mining in ("multi_similarity", "multi_similarity_mined", "circle"):
        for distance in ("euclidean", "squared_euclidean"):
            with pytest.raises(SpecError, match=f"mining='{mining}' is defined on distance in \\(cosine\\) only"):
                Spec(mining=mining, distance=distance)


@pytest.mark.parametrize("field, value", [("alpha", 0.0), ("beta", -1.0), ("gamma", float("inf")), ("base", "x"),
                                          ("alpha", True)])
def test_the_scales_are_validated(field, value):
    mining = "circle" if field == "gamma" else "multi_similarity"
    with pytest.raises(SpecError, match=f"Spec.{field} must be a finite number"):
        Spec(mining=mining, distance="cosine", **{field: value})


def test_the_scales_apply_only_where_taken_and_show_only_there():
    with pytest.raises(SpecError, match="Spec.gamma applies only to mining in \\(circle\\)"):
        Spec(mining="multi_similarity", distance="cosine", gamma=64.0)
    with pytest.raises(SpecError, match="Spec.beta applies only"):
        Spec(mining="circle", distance="cosine", beta=40.0)
    assert str(MS) == "multi_similarity cosine alpha=2 beta=50 base=0.5 mean empty=zero"
    assert str(CIRCLE) == "circle cosine m=0.4 gamma=80 mean_nonzero empty=zero"
    assert "gamma" not in str(Spec()) and "alpha" not in str(Spec())
    assert Spec(mining="multi_similarity", distance="cosine", base=-0.25).base == -0.25  # a threshold: any sign

"""Small batches worked out on paper, per mining strategy (batch_all, batch_hard, semi_hard, semi_hard_all,
triplets, contrastive); seeds, docstring examples and distance matrices are in test_oracle_hand_computed.py.

Every expected number is arithmetic written out here (1-D integer coordinates, where a distance is |x_i - x_j|
and its derivative sign(x_i - x_j)), never output copied from the oracle.
"""

import math

import numpy as np
import pytest
from oracle_helpers import EXACT, check, points

from reference import Spec


# --- batch_all -----------------------------------------------------------------------------------------
# x = 0, 1, 4, 6 with labels 0, 0, 1, 1 and m = 2.5: d01 = 1, d02 = 4, d03 = 6, d12 = 3, d13 = 5, d23 = 2.
BATCH_ALL_X, BATCH_ALL_LABELS = points(0, 1, 4, 6), [0, 0, 1, 1]
BATCH_ALL_TERMS = [
    ((0, 1, 2), 0.0),  # [1 - 4 + 2.5]+
    ((0, 1, 3), 0.0),  # [1 - 6 + 2.5]+
    ((1, 0, 2), 1 - 3 + 2.5),
    ((1, 0, 3), 0.0),  # [1 - 5 + 2.5]+
    ((2, 3, 0), 2 - 4 + 2.5),
    ((2, 3, 1), 2 - 3 + 2.5),
    ((3, 2, 0), 0.0),  # [2 - 6 + 2.5]+
    ((3, 2, 1), 0.0),  # [2 - 5 + 2.5]+
]
# Summed gradient of the three active terms, d(d_ij)/dx_i = sign(x_i - x_j):
#   (1,0,2): x1 +1 +1, x0 -1, x2 -1;  (2,3,0): x2 -1 -1, x3 +1, x0 +1;  (2,3,1): x2 -1 -1, x3 +1, x1 +1
BATCH_ALL_SUM_GRAD = points(-1 + 1, 2 + 1, -1 - 2 - 2, 1 + 1)


@pytest.mark.parametrize(
    "reduction, loss, scale",
    [
        ("sum", 0.5 + 0.5 + 1.5, 1.0),
        ("mean", (0.5 + 0.5 + 1.5) / 8, 1 / 8),
        ("mean_nonzero", (0.5 + 0.5 + 1.5) / 3, 1 / 3),
    ],
)
def test_batch_all_reductions(reduction, loss, scale):
    check(
        BATCH_ALL_X,
        BATCH_ALL_LABELS,
        Spec(mining="batch_all", margin=2.5, reduction=reduction),
        loss=loss,
        terms=BATCH_ALL_TERMS,
        grad=BATCH_ALL_SUM_GRAD * scale,
    )


def test_mean_nonzero_weights_only_the_active_terms():
    weights = [0, 0, 1 / 3, 0, 1 / 3, 1 / 3, 0, 0]  # in the oracle's order: a, then p, then n ascending
    check(
        BATCH_ALL_X,
        BATCH_ALL_LABELS,
        Spec(mining="batch_all", margin=2.5, reduction="mean_nonzero"),
        loss=2.5 / 3,
        weights=weights,
    )


def test_mean_nonzero_is_0_when_no_term_is_active_whatever_empty_says():
    # x = 0, 1, 10, 11: every negative is at least 8 beyond the positive, so all 8 terms are 0
    check(points(0, 1, 10, 11), [0, 0, 1, 1], Spec(mining="batch_all", reduction="mean_nonzero", empty="nan"), loss=0.0)


def test_mean_nonzero_counts_every_soft_term():
    # BATCH_ALL_X: d_ap - d_an per triplet, in BATCH_ALL_TERMS' order: 1-4, 1-6, 1-3, 1-5, 2-4, 2-3, 2-6, 2-5.
    # softplus is > 0 everywhere: all 8 count, mean_nonzero is their mean, and the count's gap is the smallest term,
    # a value: the decision gap in the embedding space stays the smallest distance a term reads, d01 = 1.
    excess = [-3, -5, -2, -4, -2, -1, -4, -3]
    result = check(
        BATCH_ALL_X,
        BATCH_ALL_LABELS,
        Spec(mining="batch_all", soft=True, reduction="mean_nonzero"),
        loss=sum(softplus(z) for z in excess) / 8,
        terms=[(t, softplus(z)) for (t, _), z in zip(BATCH_ALL_TERMS, excess)],
        weights=[1 / 8] * 8,
    )
    assert result.gaps["soft_underflow"] == pytest.approx(softplus(-5), rel=EXACT) and result.gap == 1.0


def test_mean_nonzero_counts_a_soft_term_float64_rounds_to_0():
    # x = 0, 800 (label 0) and 0, 0 (label 1): d_ap - d_an = 800 from anchors 0, 0 from anchors 1, 2, 3 (log 2 each,
    # four terms), -800 from anchors 2, 3 to the negative 800: softplus(-800) = e^-800 > 0, which float64 rounds to
    # 0. It still counts: 8 terms, not 6.
    result = check(points(0, 800, 0, 0), [0, 0, 1, 1], Spec(mining="batch_all", soft=True, reduction="mean_nonzero"),
                   loss=(2 * 800 + 4 * math.log(2)) / 8, weights=[1 / 8] * 8)
    assert result.gaps["soft_underflow"] == 0.0


# --- batch_hard ----------------------------------------------------------------------------------------
# x = 0, 1, 4, 6, 6.75 with labels 0, 0, 1, 1, 2 (anchor 4 is a singleton) and m = 1.25. Rows of D:
#   0: [0, 1, 4, 6, 6.75]   1: [1, 0, 3, 5, 5.75]   2: [4, 3, 0, 2, 2.75]
#   3: [6, 5, 2, 0, 0.75]   4: [6.75, 5.75, 2.75, 0.75, 0]
BATCH_HARD_X, BATCH_HARD_LABELS = points(0, 1, 4, 6, 6.75), [0, 0, 1, 1, 2]
BATCH_HARD_PICKS = [  # (a, hardest positive, hardest negative), hp, hn
    ((0, 1, 2), 1.0, 4.0),
    ((1, 0, 2), 1.0, 3.0),
    ((2, 3, 4), 2.0, 2.75),
    ((3, 2, 4), 2.0, 0.75),
    ((4, -1, 3), 0.0, 0.75),  # no positive: hp = 0
]


def hard_terms(term, anchors=range(5)):
    return [(picked, term(hp, hn)) for picked, hp, hn in (BATCH_HARD_PICKS[a] for a in anchors)]


def hinge(hp, hn):
    return max(hp - hn + 1.25, 0.0)


def softplus(z):
    return math.log1p(math.exp(z))


def test_batch_hard_over_all_anchors():
    # [1-4+1.25]+ = 0, [1-3+1.25]+ = 0, 2-2.75+1.25 = 0.5, 2-0.75+1.25 = 2.5, 0-0.75+1.25 = 0.5.
    # Gradient (weights 1/5): anchor 2 moves x3 +1, x4 -1 (x2: -1 + 1 = 0); anchor 3 moves x3 +2,
    # x2 -1, x4 -1; anchor 4 (only -d43) moves x4 -1, x3 +1.
    check(
        BATCH_HARD_X,
        BATCH_HARD_LABELS,
        Spec(margin=1.25),
        loss=(0.5 + 2.5 + 0.5) / 5,
        terms=hard_terms(hinge),
        grad=points(0, 0, -1, 1 + 2 + 1, -1 - 1 - 1) / 5,
    )


def test_batch_hard_over_valid_anchors_drops_the_singleton():
    check(
        BATCH_HARD_X,
        BATCH_HARD_LABELS,
        Spec(margin=1.25, anchors="valid"),
        loss=(0.5 + 2.5) / 4,
        terms=hard_terms(hinge, anchors=range(4)),
    )


def test_batch_hard_soft():
    # softplus(hp - hn): -3, -2, -0.75, 1.25, -0.75; the margin plays no part
    check(
        BATCH_HARD_X,
        BATCH_HARD_LABELS,
        Spec(soft=True),
        loss=(softplus(-3) + softplus(-2) + softplus(-0.75) + softplus(1.25) + softplus(-0.75)) / 5,
        terms=hard_terms(lambda hp, hn: softplus(hp - hn)),
    )


def test_batch_hard_scaled():
    # mean(hn) = (4 + 3 + 2.75 + 0.75 + 0.75) / 5 = 2.25; terms [(hp - hn) / 2.25 + 1.25]+:
    # -3/2.25 + 1.25 < 0, then -2/2.25 + 1.25, -0.75/2.25 + 1.25, 1.25/2.25 + 1.25, -0.75/2.25 + 1.25
    def scaled(hp, hn):
        return max((hp - hn) / 2.25 + 1.25, 0.0)

    check(
        BATCH_HARD_X,
        BATCH_HARD_LABELS,
        Spec(margin=1.25, scaled=True),
        loss=(0 + (-2 / 2.25 + 1.25) + (-0.75 / 2.25 + 1.25) + (1.25 / 2.25 + 1.25) + (-0.75 / 2.25 + 1.25)) / 5,
        terms=hard_terms(scaled),
    )


def test_batch_hard_without_negatives_falls_back_to_the_farthest_point():
    # One class, x = 0, 1, 3: each anchor's negative is the farthest point of its row, which is also
    # its hardest positive, so every term is [0 + m]+ = m (TF-Addons' masked minimum over nothing).
    check(
        points(0, 1, 3),
        [7, 7, 7],
        Spec(margin=1.0),
        loss=1.0,
        terms=[((0, 2, 2), 1.0), ((1, 2, 2), 1.0), ((2, 0, 0), 1.0)],
    )


def test_batch_hard_of_a_single_embedding_is_the_margin():
    # no positive (hp = 0) and no negative: the row's farthest point is the anchor itself, at 0
    check(points(5), [0], Spec(margin=0.75), loss=0.75, terms=[((0, -1, 0), 0.75)])


@pytest.mark.parametrize("empty, loss", [("nan", math.nan), ("zero", 0.0)])
def test_batch_hard_over_valid_anchors_with_none(empty, loss):
    check(points(0, 1, 3), [7, 7, 7], Spec(anchors="valid", empty=empty), loss=loss, terms=[])


# --- semi_hard (TF-Addons triplet_semihard_loss) ----------------------------------------------------------


def test_semi_hard_takes_the_nearest_negative_farther_than_the_positive_else_the_farthest():
    # x = 0, 2, 0.5, 5 with labels 0, 0, 1, 1 and m = 1.5; per ordered positive pair:
    #   (0,1): d = 2, negatives at 0.5 and 5: n = 3, [2 - 5 + 1.5]+ = 0
    #   (1,0): d = 2, negatives at 1.5 and 3: n = 3, 2 - 3 + 1.5 = 0.5
    #   (2,3): d = 4.5, negatives at 0.5 and 1.5, none farther: the farthest, n = 1, 4.5 - 1.5 + 1.5
    #          (the hardest, at 0.5, would give 5.5)
    #   (3,2): d = 4.5, negatives at 5 and 3: n = 0, 4.5 - 5 + 1.5 = 1
    check(
        points(0, 2, 0.5, 5),
        [0, 0, 1, 1],
        Spec(mining="semi_hard", margin=1.5),
        loss=(0 + 0.5 + 4.5 + 1) / 4,
        terms=[((0, 1, 3), 0.0), ((1, 0, 3), 0.5), ((2, 3, 1), 4.5), ((3, 2, 0), 1.0)],
    )


def test_semi_hard_needs_strictly_farther():
    # x = 0, 1, -1, 4 with labels 0, 0, 1, 1 and m = 4. For (0,1), d_ap = 1 and negative 2 is at
    # exactly 1: not farther, so n = 3 at 4 and the term is 1 - 4 + 4 = 1 (>= would give 4).
    #   (1,0): negatives at 2 and 3: n = 2, 1 - 2 + 4 = 3
    #   (2,3): d_ap = 5, negatives at 1 and 2: the farthest, n = 1, 5 - 2 + 4 = 7
    #   (3,2): d_ap = 5, negatives at 4 and 3: the farthest, n = 0, 5 - 4 + 4 = 5
    check(
        points(0, 1, -1, 4),
        [0, 0, 1, 1],
        Spec(mining="semi_hard", margin=4.0),
        loss=(1 + 3 + 7 + 5) / 4,
        terms=[((0, 1, 3), 1.0), ((1, 0, 2), 3.0), ((2, 3, 1), 7.0), ((3, 2, 0), 5.0)],
    )


def test_semi_hard_without_negatives_uses_d_an_0():
    # one class: each ordered pair gives [3 - 0 + 1]+
    check(points(0, 3), [5, 5], Spec(mining="semi_hard"), loss=4.0, terms=[((0, 1, -1), 4.0), ((1, 0, -1), 4.0)])


@pytest.mark.parametrize("empty, loss", [("nan", math.nan), ("zero", 0.0)])
def test_semi_hard_without_positive_pairs_is_empty(empty, loss):
    # TF-Addons divides 0 by 0 ordered positive pairs: NaN, and autograd's gradient is NaN everywhere
    grad = np.full((3, 1), np.nan) if empty == "nan" else np.zeros((3, 1))
    check(points(0, 1, 2), [0, 1, 2], Spec(mining="semi_hard", empty=empty), loss=loss, terms=[], grad=grad)


# --- semi_hard_all (FaceNet / pytorch-metric-learning's semihard miner) ------------------------------------
# x = 0, 1, 2, 4 with labels 0, 0, 1, 1 and m = 2: d01 = 1, d02 = 2, d03 = 4, d12 = 1, d13 = 3, d23 = 2.
# The window is 0 < d_an - d_ap <= 2:
#   (0,1,2): 2 - 1 = 1 inside, [1 - 2 + 2] = 1      (0,1,3): 4 - 1 = 3 outside
#   (1,0,2): 1 - 1 = 0 outside (lower edge open)    (1,0,3): 3 - 1 = 2 inside (upper edge closed), value 0
#   (2,3,0): 2 - 2 = 0 outside                      (2,3,1): 1 - 2 = -1 outside
#   (3,2,0): 4 - 2 = 2 inside, value 0              (3,2,1): 3 - 2 = 1 inside, [2 - 3 + 2] = 1
SEMI_HARD_ALL_TERMS = [((0, 1, 2), 1.0), ((1, 0, 3), 0.0), ((3, 2, 0), 0.0), ((3, 2, 1), 1.0)]


@pytest.mark.parametrize("reduction, loss", [("mean", 2 / 4), ("mean_nonzero", 2 / 2), ("sum", 2.0)])
def test_semi_hard_all_window_is_open_below_and_closed_above(reduction, loss):
    check(
        points(0, 1, 2, 4),
        [0, 0, 1, 1],
        Spec(mining="semi_hard_all", margin=2.0, reduction=reduction),
        loss=loss,
        terms=SEMI_HARD_ALL_TERMS,
    )


def test_semi_hard_all_with_margin_0_selects_nothing_ever():
    # the window 0 < d_an - d_ap <= 0 is empty, even for the (0, 1, 2) at 2 - 1 = 1 above
    check(points(0, 1, 2, 4), [0, 0, 1, 1], Spec(mining="semi_hard_all", margin=0.0), loss=0.0, terms=[])


@pytest.mark.parametrize("empty, loss", [("nan", math.nan), ("zero", 0.0)])
def test_semi_hard_all_with_an_empty_window(empty, loss):
    # x = 0, 1, 10, 11 and m = 1: every negative lies at least 8 beyond its positive
    check(points(0, 1, 10, 11), [0, 0, 1, 1], Spec(mining="semi_hard_all", empty=empty), loss=loss, terms=[])


# --- triplets (torch TripletMarginLoss style) ---------------------------------------------------------------
# x = 0, 1, 3, 7 and m = 1; labels play no part.
TRIPLETS = [[0, 1, 2], [2, 3, 0], [1, 1, 3], [2, 3, 0]]
TRIPLET_TERMS = [
    ((0, 1, 2), 0.0),  # [1 - 3 + 1]+
    ((2, 3, 0), 4 - 3 + 1),
    ((1, 1, 3), 0.0),  # [0 - 6 + 1]+: d(x, x) is exactly 0 here (torch adds eps inside the norm)
    ((2, 3, 0), 4 - 3 + 1),  # a repeated triplet counts twice
]


@pytest.mark.parametrize("labels", [[0, 0, 0, 0], [0, 1, 2, 3]])
@pytest.mark.parametrize("reduction, loss", [("mean", 4 / 4), ("sum", 4.0), ("mean_nonzero", 4 / 2)])
def test_explicit_triplets(labels, reduction, loss):
    check(
        points(0, 1, 3, 7),
        labels,
        Spec(mining="triplets", reduction=reduction),
        loss=loss,
        terms=TRIPLET_TERMS,
        triplets=TRIPLETS,
    )


def test_explicit_triplets_soft():
    # softplus(d_ap - d_an): 1 - 3, 4 - 3, 0 - 6, 4 - 3
    check(
        points(0, 1, 3, 7),
        [0, 0, 0, 0],
        Spec(mining="triplets", soft=True),
        loss=(softplus(-2) + 2 * softplus(1) + softplus(-6)) / 4,
        triplets=TRIPLETS,
    )


@pytest.mark.parametrize("empty, loss", [("nan", math.nan), ("zero", 0.0)])
def test_no_explicit_triplets(empty, loss):
    check(points(0, 1), [0, 0], Spec(mining="triplets", empty=empty), loss=loss, terms=[], triplets=[])


# --- contrastive (Hadsell et al.; TF-Addons contrastive_loss) ---------------------------------------------
# x = 0, 1, 3 with labels 0, 0, 1 and m = 2.5:
#   (0,1) same, d = 1: 1^2 = 1;  (0,2) different, d = 3: [2.5 - 3]+^2 = 0;  (1,2) different, d = 2: 0.5^2
# Summed gradient: dL/dd01 = 2 * 1, dL/dd12 = -2 * 0.5, so x0: -2, x1: 2 + 1, x2: -1.


@pytest.mark.parametrize(
    "reduction, loss, scale", [("sum", 1.25, 1.0), ("mean", 1.25 / 3, 1 / 3), ("mean_nonzero", 1.25 / 2, 1 / 2)]
)
def test_contrastive(reduction, loss, scale):
    check(
        points(0, 1, 3),
        [0, 0, 1],
        Spec(mining="contrastive", margin=2.5, reduction=reduction),
        loss=loss,
        terms=[((0, 1), 1.0), ((0, 2), 0.0), ((1, 2), 0.25)],
        grad=points(-2, 3, -1) * scale,
    )


@pytest.mark.parametrize("empty, loss", [("nan", math.nan), ("zero", 0.0)])
def test_contrastive_of_a_single_embedding_has_no_pair(empty, loss):
    check(points(4), [0], Spec(mining="contrastive", empty=empty), loss=loss, terms=[])


@pytest.mark.parametrize("mining", ["batch_all", "semi_hard_all"])
@pytest.mark.parametrize("empty, loss", [("nan", math.nan), ("zero", 0.0)])
def test_no_valid_triplet_is_empty(mining, empty, loss):
    # all labels distinct: no positive, so no triplet at all
    check(points(0, 1, 2), [0, 1, 2], Spec(mining=mining, empty=empty), loss=loss, terms=[])

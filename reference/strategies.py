"""One function per `Spec.mining`, each to be read against its source (the records: reference/losses.py).

Each takes the distance matrix D (float64, N x N), integer labels and the `Spec`, and returns an
`Terms`: the loss, dL/dD, the selected terms with their weights, and the decision gaps, the
margins by which this input stays away from a point where the selection or a hinge flips (see
reference/gaps.py for the kinds).
"""
from __future__ import annotations

import numpy as np

from .gaps import COLLAPSE, HINGE, SEMI_HARD_SELECTION, TIE_NEGATIVE, TIE_POSITIVE, WINDOW_LOWER, WINDOW_UPPER
from .terms import (
    masked_log_sum_exp,
    NO_INDEX,
    Terms,
    hinge_or_soft,
    reduce,
    runner_up_gap,
    smallest,
    triplet_outcome,
)


def label_masks(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """positive[a, p]: same label and a != p; negative[a, n]: different label."""
    same = labels[:, None] == labels[None, :]
    return same & ~np.eye(len(labels), dtype=bool), ~same


def valid_triplets(labels: np.ndarray) -> np.ndarray:
    """Every (a, p, n) with a != p, y_a == y_p, y_n != y_a, as rows (pytorch-metric-learning
    ``get_all_triplets_indices``)."""
    positive, negative = label_masks(labels)
    return np.argwhere(positive[:, :, None] & negative[:, None, :])


def batch_all(dist: np.ndarray, labels: np.ndarray, spec, triplets=None) -> Terms:
    """Batch all: every valid triplet (Hermans et al. 2017, arXiv 1703.07737, eq. 4).

    pytorch-metric-learning ``TripletMarginLoss`` without a miner; with reduction mean_nonzero it is
    omoindrot's ``batch_all_triplet_loss``.
    """
    return triplet_outcome(dist, valid_triplets(labels), spec, {})


def batch_hard(dist: np.ndarray, labels: np.ndarray, spec, triplets=None) -> Terms:
    """Batch hard: per anchor the farthest positive and the nearest negative (Hermans et al. 2017, eq. 5).

    anchors="all" (TF-Addons ``triplet_hard_loss``): every anchor counts; one with no positive uses
    hp = 0 and one with no negative uses the farthest point of its row (the masked minimum over an
    empty mask returns the row maximum). anchors="valid" (pytorch-metric-learning ``BatchHardMiner``):
    only anchors with a positive and a negative. scaled (Quaterion ``TripletLoss(mining="hard")``):
    [(hp - hn) / mean(hn) + m]+, the gradient flowing through the mean too.
    """
    positive, negative = label_masks(labels)
    has_positive, has_negative = positive.any(axis=1), negative.any(axis=1)
    if spec.anchors == "all":
        anchors = np.arange(len(labels))
    else:
        anchors = np.flatnonzero(has_positive & has_negative)
    rows = dist[anchors]
    hardest_positive = np.where(
        has_positive[anchors], np.argmax(np.where(positive[anchors], rows, -np.inf), axis=1), NO_INDEX
    )
    hardest_negative = np.where(
        has_negative[anchors],
        np.argmin(np.where(negative[anchors], rows, np.inf), axis=1),
        np.argmax(rows, axis=1) if len(anchors) else np.zeros(0, int),
    )
    fallback_row = ~has_negative[anchors][:, None] & np.ones_like(rows, dtype=bool)
    gaps = {
        TIE_POSITIVE: smallest(runner_up_gap(rows, positive[anchors], largest=True)),
        TIE_NEGATIVE: smallest(
            np.minimum(
                runner_up_gap(rows, negative[anchors], largest=False),
                runner_up_gap(rows, fallback_row, largest=True),
            )
        ),
    }
    selection = np.stack([anchors, hardest_positive, hardest_negative], axis=1)
    if not spec.scaled:
        return triplet_outcome(dist, selection, spec, gaps)
    return _scaled_batch_hard(dist, selection, spec, gaps)


def _scaled_batch_hard(dist: np.ndarray, selection: np.ndarray, spec, gaps: dict) -> Terms:
    """Quaterion's collapse prevention (quaterion/loss/triplet_loss.py; docs "triplet_loss_trick"):
    [(hp - hn) / mean(hn) + m]+; exact collapse is 0/0, a NaN."""
    a, p, n = selection.T
    hp = np.where(p == NO_INDEX, 0.0, dist[a, np.maximum(p, 0)])
    hn = dist[a, n]
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = hn.mean() if len(hn) else np.nan
        ratio = (hp - hn) / scale
    values, slope = hinge_or_soft(ratio, soft=False, margin=spec.margin)
    loss, weights = reduce(values, spec.reduction, spec.empty)
    grad_dist = np.zeros_like(dist)
    if len(a):
        with np.errstate(divide="ignore", invalid="ignore"):
            through_mean = -np.sum(weights * slope * ratio) / scale / len(a)
            real = p != NO_INDEX
            np.add.at(grad_dist, (a[real], p[real]), (weights * slope / scale)[real])
            np.add.at(grad_dist, (a, n), -weights * slope / scale + through_mean)
    gaps = {**gaps, HINGE: smallest(np.abs(hp - hn + spec.margin * scale)), COLLAPSE: abs(float(scale))}
    return Terms(loss, grad_dist, selection, values, weights, gaps)


def semi_hard(dist: np.ndarray, labels: np.ndarray, spec, triplets=None) -> Terms:
    """TF-Addons ``triplet_semihard_loss`` (tensorflow_addons/losses/triplet.py).

    For every ordered positive pair (a, p), a != p: the nearest negative strictly farther than p
    (d_an > d_ap); if there is none, the farthest negative of the anchor; if the anchor has no
    negative at all, the constant 0 (TF's masked maximum over an empty row is the zero diagonal).
    The margin plays no part in the selection. Units: ordered positive pairs, so TF-Addons' mean
    over a batch without positive pairs is 0/0 (empty="nan").
    """
    positive, negative = label_masks(labels)
    a, p = np.nonzero(positive)
    d_ap = dist[a, p][:, None]
    d_an, is_negative = dist[a], negative[a]
    farther = is_negative & (d_an > d_ap)
    nearest_farther = np.argmin(np.where(farther, d_an, np.inf), axis=1)
    farthest = np.argmax(np.where(is_negative, d_an, -np.inf), axis=1)
    has_farther = farther.any(axis=1)
    chosen = np.where(has_farther, nearest_farther, np.where(is_negative.any(axis=1), farthest, NO_INDEX))
    gaps = {
        SEMI_HARD_SELECTION: smallest(np.abs(d_an - d_ap)[is_negative]),
        TIE_NEGATIVE: smallest(
            np.where(
                has_farther,
                runner_up_gap(d_an, farther, largest=False),
                runner_up_gap(d_an, is_negative, largest=True),
            )
        ),
    }
    return triplet_outcome(dist, np.stack([a, p, chosen], axis=1), spec, gaps)


def semi_hard_all(dist: np.ndarray, labels: np.ndarray, spec, triplets=None) -> Terms:
    """Every semi-hard triplet, 0 < d_an - d_ap <= m (Schroff et al. 2015, FaceNet, eq. 4;
    pytorch-metric-learning ``TripletMarginMiner(type_of_triplets="semihard")``, inclusive at m)."""
    everything = valid_triplets(labels)
    a, p, n = everything.T
    excess = dist[a, n] - dist[a, p]
    inside = (excess > 0) & (excess <= spec.margin)
    gaps = {
        WINDOW_LOWER: smallest(np.abs(excess)),
        WINDOW_UPPER: smallest(np.abs(excess - spec.margin)),
    }
    return triplet_outcome(dist, everything[inside], spec, gaps)


def explicit_triplets(dist: np.ndarray, labels: np.ndarray, spec, triplets=None) -> Terms:
    """The (a, p, n) triples given with the input, as torch ``nn.TripletMarginLoss`` takes them
    (aten/src/ATen/native/Loss.cpp ``triplet_margin_loss``); labels play no part."""
    return triplet_outcome(dist, triplets, spec, {})


def contrastive(dist: np.ndarray, labels: np.ndarray, spec, triplets=None) -> Terms:
    """Every unordered pair i < j: y d^2 + (1 - y) [m - d]+^2 (Hadsell, Chopra, LeCun 2006, eq. 4;
    TF-Addons ``contrastive_loss``, no 1/2 factor)."""
    i, j = np.triu_indices(len(labels), k=1)
    same, d = labels[i] == labels[j], dist[i, j]
    shortfall = np.maximum(spec.margin - d, 0.0)
    values = np.where(same, d**2, shortfall**2)
    slope = np.where(same, 2.0 * d, -2.0 * shortfall)
    loss, weights = reduce(values, spec.reduction, spec.empty)
    grad_dist = np.zeros_like(dist)
    grad_dist[i, j] = weights * slope
    gaps = {}
    if spec.reduction == "mean_nonzero":  # the squared hinge is smooth; only the count of terms jumps
        gaps[HINGE] = smallest(np.where(same, d, np.abs(d - spec.margin)))
    return Terms(loss, grad_dist, np.stack([i, j], axis=1), values, weights, gaps)



def lifted(dist: np.ndarray, labels: np.ndarray, spec, triplets=None) -> Terms:
    """Lifted structured loss (Song et al. 2016, arXiv 1511.06452, eq. 4; TF-Addons ``lifted_struct_loss``).

    For every positive pair i < j, J = log(sum_{k in N(i)} e^(m - D_ik) + sum_{l in N(j)} e^(m - D_jl)) + D_ij, and
    the term [J]+^2 / 2. The mean over positive pairs is TF-Addons' 1 / (2 |P|) sum [J]+^2. A pair whose rows have
    no negative (one class) has J = -inf: its term is 0. [J]+^2 has a continuous slope at J = 0; only the count of
    mean_nonzero jumps there, where J moves at most twice as fast as any distance.
    """
    i, j, j_value, share = lifted_pairs(dist, labels, spec.margin)
    hinge = np.maximum(j_value, 0.0)
    values = 0.5 * hinge**2
    loss, weights = reduce(values, spec.reduction, spec.empty, positive=j_value > 0)
    slope = weights * hinge  # dL/dJ per pair
    n = len(labels)
    grad_dist = np.zeros_like(dist)
    np.add.at(grad_dist, (i, j), slope)
    for rows, part in ((i, share[:, :n]), (j, share[:, n:])):  # dJ/dD_kn = -(its share of the sum)
        np.add.at(grad_dist, (np.repeat(rows, n), np.tile(np.arange(n), len(rows))), -(slope[:, None] * part).ravel())
    gaps = {HINGE: smallest(np.abs(j_value[np.isfinite(j_value)]) / 2)} if spec.reduction == "mean_nonzero" else {}
    return Terms(loss, grad_dist, np.stack([i, j], axis=1), values, weights, gaps)


def lifted_pairs(dist: np.ndarray, labels: np.ndarray, margin: float):
    """lifted's J per positive pair i < j, and each negative's share of its log-sum-exp: (i, j, J, shares), shares
    [P, 2N] over row i's columns then row j's (0 off their negatives). The sum is shifted by its largest exponent,
    which moves neither J nor a share; a pair without negatives has J = -inf and no share."""
    positive, negative = label_masks(labels)
    i, j = np.nonzero(np.triu(positive, k=1))
    # per pair, m - D over the negatives of i, then over those of j
    both = np.concatenate([margin - dist[i], margin - dist[j]], axis=1)
    lse, shares = masked_log_sum_exp(both, np.concatenate([negative[i], negative[j]], axis=1))
    return i, j, lse + dist[i, j], shares

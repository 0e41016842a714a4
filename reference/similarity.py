"""The similarity family: each anchor's term is a log-sum-exp over logits of its cosine similarities s = 1 - D (the
records accept the cosine distance only, where s is the cosine similarity clamped at 1, reference/distances.py).

    multi_similarity        Wang et al. 2019, CVPR, eq. 10 (pytorch-metric-learning MultiSimilarityLoss)
    multi_similarity_mined  the same over the pairs MultiSimilarityMiner keeps (the paper's eq. 5 and 6)
    circle                  Sun et al. 2020, CVPR, eq. 6 (pytorch-metric-learning CircleLoss, weights detached)

Every log-sum-exp carries a constant logit 0 (the "1 +"), so a term is > 0 wherever its anchor has a pair, and an
empty set adds log 1 = 0. `Terms.shares` lists, per logit, its share of its log-sum-exp with the rates at which that
logit and the term's slope move with the distance (engine/tolerances.py `softmax_slopes`); `Terms.operands` each
term's largest |logit| + |term|, where its arithmetic rounds.
"""
from __future__ import annotations

import numpy as np

from .gaps import MINED_NEGATIVE, MINED_POSITIVE, SOFTMAX_ROUNDING
from .strategies import label_masks
from .terms import Terms, masked_log_sum_exp, reduce, smallest


def _log1p_sum_exp(logits: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, log(1 + sum over the mask of e^l) and each entry's share e^l / (1 + sum), shifted by the row's largest
    logit (0 included, the "1 +"), so that no exponential overflows; an empty mask gives 0 and no share."""
    masked = np.where(mask, logits, -np.inf)
    top = np.maximum(np.max(masked, axis=1, initial=-np.inf), 0.0)[:, None]
    exps = np.where(mask, np.exp(masked - top), 0.0)
    total = np.exp(-top) + exps.sum(axis=1, keepdims=True)
    # log1p where the "1 +" is the largest: a term of 1e-33 stays > 0, as it is in exact arithmetic
    value = np.where(top > 0, np.log(total) + top, np.log1p(exps.sum(axis=1, keepdims=True)))
    return value[:, 0], exps / total


def _rows(value_parts, slope, shares, operands, spec, positive_terms) -> Terms:
    """The anchors' terms `value_parts` [N] reduced by the spec; `slope` [N, N] each term's dL/dD before the reduction
    weight; `shares` rows (anchor, j, share, logit rate, slope rate)."""
    n = len(value_parts)
    loss, weights = reduce(value_parts, spec.reduction, spec.empty, positive_terms)
    grad_dist = slope * (weights[:, None] if len(weights) else 0.0)
    gaps = {}
    if spec.reduction == "mean_nonzero":  # the count's decision: how far the smallest counted term is above 0
        gaps[SOFTMAX_ROUNDING] = smallest(value_parts[positive_terms])
    anchors = np.arange(n)
    return Terms(loss, grad_dist, np.stack([anchors, anchors], axis=1).astype(np.int64), value_parts, weights, gaps,
                 operands + np.abs(value_parts), np.concatenate([shares[:, :1], shares], axis=1))


def _multi_similarity_terms(dist, positive, negative, spec, gaps=None) -> Terms:
    """Per anchor (1/alpha) log(1 + sum_p e^(-alpha (s_ap - base))) + (1/beta) log(1 + sum_n e^(beta (s_an - base)))
    over the pairs `positive`, `negative` [N, N]; dL/dD_ap = the share of p, dL/dD_an = -the share of n."""
    s = 1.0 - dist
    alpha, beta, base = spec.alpha, spec.beta, spec.base
    pos_logits, neg_logits = -alpha * (s - base), beta * (s - base)
    pos_lse, pos_share = _log1p_sum_exp(pos_logits, positive)
    neg_lse, neg_share = _log1p_sum_exp(neg_logits, negative)
    values = pos_lse / alpha + neg_lse / beta
    slope = pos_share - neg_share  # (1/alpha) share alpha on D_ap; (1/beta) share (-beta) on D_an
    a_p, p = np.nonzero(positive)
    a_n, k = np.nonzero(negative)
    shares = np.concatenate([
        np.stack([a_p, p, pos_share[a_p, p], np.full(len(p), alpha), np.ones(len(p))], axis=1),
        np.stack([a_n, k, neg_share[a_n, k], np.full(len(k), beta), np.ones(len(k))], axis=1),
    ]) if len(dist) else np.zeros((0, 5))
    operands = np.max(np.where(positive, np.abs(pos_logits), 0.0), axis=1, initial=0.0) / alpha + \
        np.max(np.where(negative, np.abs(neg_logits), 0.0), axis=1, initial=0.0) / beta
    terms = _rows(values, slope, shares, operands, spec, positive.any(axis=1) | negative.any(axis=1))
    terms.gaps.update(gaps or {})
    return terms


def multi_similarity(dist: np.ndarray, labels: np.ndarray, spec, triplets=None) -> Terms:
    """pytorch-metric-learning ``MultiSimilarityLoss(alpha, beta, base)`` (Wang et al. 2019, CVPR, eq. 10, lambda =
    base): every positive and negative pair of each anchor, no mining; an empty set adds 0; mean over all N anchors."""
    positive, negative = label_masks(labels)
    return _multi_similarity_terms(dist, positive, negative, spec)


def mined_pairs(dist: np.ndarray, labels: np.ndarray, epsilon: float):
    """pytorch-metric-learning ``MultiSimilarityMiner(epsilon)`` (Wang et al. 2019 eq. 5 and 6), both strict: keep (a, p)
    where s_ap - eps < max over a's negatives of s_an, keep (a, n) where s_an + eps > min over a's positives of s_ap;
    in distances, D_ap + eps > min D_an and D_an - eps < max D_ap. Also each decision's margin (inf where none)."""
    positive, negative = label_masks(labels)
    nearest_negative = np.min(np.where(negative, dist, np.inf), axis=1, keepdims=True)
    farthest_positive = np.max(np.where(positive, dist, -np.inf), axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):
        positive_margin = np.where(positive & negative.any(axis=1)[:, None], dist + epsilon - nearest_negative, np.inf)
        negative_margin = np.where(negative & positive.any(axis=1)[:, None], farthest_positive - (dist - epsilon), np.inf)
    return positive & (positive_margin > 0) & np.isfinite(positive_margin), \
        negative & (negative_margin > 0) & np.isfinite(negative_margin), positive_margin, negative_margin


def multi_similarity_mined(dist: np.ndarray, labels: np.ndarray, spec, triplets=None) -> Terms:
    """``MultiSimilarityLoss`` over the pairs ``MultiSimilarityMiner(epsilon = margin)`` keeps (`mined_pairs`), mean over
    all N anchors (one with nothing mined is 0; PML passes the miner's pairs as its indices_tuple). beta = 40 is the
    authors' code and TF-Similarity's MultiSimilarityLoss, which mines so inside the loss."""
    keep_positive, keep_negative, positive_margin, negative_margin = mined_pairs(dist, labels, spec.margin)
    gaps = {MINED_POSITIVE: smallest(np.abs(positive_margin[np.isfinite(positive_margin)])),
            MINED_NEGATIVE: smallest(np.abs(negative_margin[np.isfinite(negative_margin)]))}
    return _multi_similarity_terms(dist, keep_positive, keep_negative, spec, gaps)


def circle_logits(dist: np.ndarray, spec, weighted_at: np.ndarray):
    """Sun et al. 2020 eq. 6 with the weights read from `weighted_at` (detached: constants for the gradient):
    alpha_p = [1 + m - s_p]+, logit -gamma alpha_p (s_p - (1 - m)); alpha_n = [s_n + m]+, logit gamma alpha_n (s_n - m)."""
    s, held = 1.0 - dist, 1.0 - weighted_at
    m, gamma = spec.margin, spec.gamma
    alpha_p, alpha_n = np.maximum(1.0 + m - held, 0.0), np.maximum(held + m, 0.0)
    return -gamma * alpha_p * (s - (1.0 - m)), gamma * alpha_n * (s - m), alpha_p, alpha_n


def circle(dist: np.ndarray, labels: np.ndarray, spec, triplets=None, weighted_at: np.ndarray | None = None) -> Terms:
    """pytorch-metric-learning ``CircleLoss(m, gamma)`` (Sun et al. 2020, CVPR, eq. 6): per anchor with a positive and a
    negative, softplus(lse_p l_p + lse_n l_n) = log(1 + sum_p sum_n e^(l_p + l_n)), the weights alpha detached (the
    gradient holds them constant; `weighted_at`: the distances they are read from, default `dist`, for finite
    differences); an anchor lacking positives or negatives is 0 (PML masks it), and PML reduces by AvgNonZeroReducer
    (mean_nonzero). A weak negative (s_n <= -m) has weight 0: its logit 0 still adds e^0 to sum_n."""
    positive, negative = label_masks(labels)
    pos_logits, neg_logits, alpha_p, alpha_n = circle_logits(dist, spec, dist if weighted_at is None else weighted_at)
    live = positive.any(axis=1) & negative.any(axis=1)
    pos_lse, pos_soft = masked_log_sum_exp(pos_logits, positive & live[:, None])
    neg_lse, neg_soft = masked_log_sum_exp(neg_logits, negative & live[:, None])
    x = np.where(live, pos_lse + neg_lse, -np.inf)
    values = np.logaddexp(0.0, x)
    sigma = 0.5 * (1.0 + np.tanh(0.5 * np.where(live, x, 0.0))) * live  # d softplus / dx
    gamma, m = spec.gamma, spec.margin
    # how fast a logit moves with its distance when its weight is read from it too (eps per unit of s)
    pos_rate = gamma * (alpha_p + np.abs(dist - m))
    neg_rate = gamma * (alpha_n + np.abs(1.0 - m - dist))
    pos_share, neg_share = sigma[:, None] * pos_soft, sigma[:, None] * neg_soft
    slope = pos_share * gamma * alpha_p - neg_share * gamma * alpha_n  # dl_p/dD = gamma alpha_p, dl_n/dD = -gamma alpha_n
    # a logit l_p + l_n reads two distances: each entry's rate bounds both
    widest_pos = np.max(np.where(positive, pos_rate, 0.0), axis=1, initial=0.0)
    widest_neg = np.max(np.where(negative, neg_rate, 0.0), axis=1, initial=0.0)
    a_p, p = np.nonzero(positive & live[:, None])
    a_n, k = np.nonzero(negative & live[:, None])
    shares = np.concatenate([
        np.stack([a_p, p, pos_share[a_p, p], pos_rate[a_p, p] + widest_neg[a_p], gamma * alpha_p[a_p, p]], axis=1),
        np.stack([a_n, k, neg_share[a_n, k], neg_rate[a_n, k] + widest_pos[a_n], gamma * alpha_n[a_n, k]], axis=1),
    ])
    operands = np.where(live, np.max(np.where(positive, np.abs(pos_logits), 0.0), axis=1, initial=0.0)
                        + np.max(np.where(negative, np.abs(neg_logits), 0.0), axis=1, initial=0.0), 0.0)
    terms = _rows(values, slope, shares, operands, spec, live)
    # the loss's value moves with the weights too: d l_p / dD = gamma (alpha_p + (D - m)), d l_n / dD = -gamma (alpha_n
    # + (1 - m - D)) where the weight is not clamped; the loss's rounding is carried through these
    value_pos = gamma * (alpha_p + np.where(alpha_p > 0, dist - m, 0.0))
    value_neg = gamma * (alpha_n + np.where(alpha_n > 0, 1.0 - m - dist, 0.0))
    weights = terms.weights if len(terms.weights) else np.zeros(len(dist))
    terms.loss_slopes = weights[:, None] * (pos_share * value_pos - neg_share * value_neg)
    return terms

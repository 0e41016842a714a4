"""Every strategy once more, as deliberately plain loops over Python floats.

No vectorisation, no masks, no argmax: one loop per index, as the plain-Python semi-hard loop of
seed 002 does, so that a reader can check each line against docs/design.md's vocabulary and the
vectorised oracle has something independent to be compared with. Ties go to the lowest index.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

NONE = -1  # as in the oracle's selection: "this distance is the constant 0"


@dataclass
class NaiveResult:
    loss: float
    terms: list  # [(selected indices, term value)], in the order the loops found them


def norm(v) -> float:
    return math.hypot(*v)  # scaled internally: no underflow for rows of 1e-160


def normalized(v) -> list[float]:
    length = norm(v)
    return [c / length for c in v] if length > 0 else [0.0] * len(v)  # a zero row stays zero


def distance(u, v, kind: str) -> float:
    if kind == "cosine":
        cos = sum(a * b for a, b in zip(normalized(u), normalized(v)))  # 0 for a zero row
        return max(1.0 - cos, 0.0)
    squared = sum((a - b) ** 2 for a, b in zip(u, v))
    return squared if kind == "squared_euclidean" else math.sqrt(squared)


def distance_matrix(x, kind: str, normalize: bool) -> list[list[float]]:
    rows = [normalized(row) if normalize else list(row) for row in np.asarray(x, dtype=float).tolist()]
    return [[distance(u, v, kind) for v in rows] for u in rows]


def softplus(z: float) -> float:
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))  # log(1 + e^z) without overflow


def triplet_term(d_ap: float, d_an: float, spec) -> float:
    return softplus(d_ap - d_an) if spec.soft else max(d_ap - d_an + spec.margin, 0.0)


def batch_all(dist, labels, spec, triplets):
    terms = []
    for a in range(len(labels)):
        for p in range(len(labels)):
            if p == a or labels[p] != labels[a]:
                continue
            for n in range(len(labels)):
                if labels[n] != labels[a]:
                    terms.append(((a, p, n), triplet_term(dist[a][p], dist[a][n], spec)))
    return terms


def batch_hard(dist, labels, spec, triplets):
    chosen = []  # (a, p, n, d_ap, d_an)
    for a in range(len(labels)):
        p_best, hp = NONE, 0.0  # no positive: d_ap is the constant 0 (TF-Addons)
        n_best, hn = NONE, math.inf
        for k in range(len(labels)):
            if k != a and labels[k] == labels[a] and (p_best == NONE or dist[a][k] > hp):
                p_best, hp = k, dist[a][k]
            if labels[k] != labels[a] and dist[a][k] < hn:
                n_best, hn = k, dist[a][k]
        if spec.anchors == "valid" and (p_best == NONE or n_best == NONE):
            continue
        if n_best == NONE:
            for k in range(len(labels)):  # no negative: the farthest point of the row (itself included)
                if n_best == NONE or dist[a][k] > hn:
                    n_best, hn = k, dist[a][k]
        chosen.append((a, p_best, n_best, hp, hn))
    if not spec.scaled:
        return [((a, p, n), triplet_term(hp, hn, spec)) for a, p, n, hp, hn in chosen]
    scale = sum(hn for *_, hn in chosen) / len(chosen) if chosen else math.nan
    return [((a, p, n), max(ieee_divide(hp - hn, scale) + spec.margin, 0.0)) for a, p, n, hp, hn in chosen]


def ieee_divide(numerator: float, denominator: float) -> float:
    """Division as float64 hardware does it: 0/0 is NaN and x/0 is +-inf (Quaterion's collapse)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(numerator) / np.float64(denominator))


def semi_hard(dist, labels, spec, triplets):
    terms = []
    for a in range(len(labels)):
        for p in range(len(labels)):
            if p == a or labels[p] != labels[a]:
                continue
            nearest_farther, farthest = NONE, NONE
            for n in range(len(labels)):
                if labels[n] == labels[a]:
                    continue
                if dist[a][n] > dist[a][p] and (nearest_farther == NONE or dist[a][n] < dist[a][nearest_farther]):
                    nearest_farther = n
                if farthest == NONE or dist[a][n] > dist[a][farthest]:
                    farthest = n
            n = nearest_farther if nearest_farther != NONE else farthest
            d_an = dist[a][n] if n != NONE else 0.0
            terms.append(((a, p, n), triplet_term(dist[a][p], d_an, spec)))
    return terms


def semi_hard_all(dist, labels, spec, triplets):
    return [
        ((a, p, n), value)
        for (a, p, n), value in batch_all(dist, labels, spec, triplets)
        if 0.0 < dist[a][n] - dist[a][p] <= spec.margin
    ]


def explicit_triplets(dist, labels, spec, triplets):
    return [((a, p, n), triplet_term(dist[a][p], dist[a][n], spec)) for a, p, n in triplets]


def contrastive(dist, labels, spec, triplets):
    terms = []
    for i in range(len(labels)):
        for j in range(i + 1, len(labels)):
            d = dist[i][j]
            value = d * d if labels[i] == labels[j] else max(spec.margin - d, 0.0) ** 2
            terms.append(((i, j), value))
    return terms



def lifted(dist, labels, spec, triplets):
    """Per positive pair i < j: [log(sum over the negatives of i and of j of e^(m - d)) + d_ij]+^2 / 2, the sum taken
    after subtracting its largest exponent (as TF-Addons does) and no term where there is no negative."""
    terms = []
    for i in range(len(labels)):
        for j in range(i + 1, len(labels)):
            if labels[i] != labels[j]:
                continue
            exponents = [spec.margin - dist[row][k] for row in (i, j) for k in range(len(labels))
                         if labels[k] != labels[row]]
            if not exponents:
                terms.append(((i, j), 0.0))
                continue
            top = max(exponents)
            value = top + math.log(sum(math.exp(e - top) for e in exponents)) + dist[i][j]
            terms.append(((i, j), max(value, 0.0) ** 2 / 2))
    return terms


def npairs(dist, labels, spec, triplets):
    """Per anchor i of the pairs layout (rows 0..B-1 anchors, B + j positives): log sum_j e^(-d(a_i, p_j)) minus the
    mean of -d(a_i, p_j) over the positives j of its class."""
    return _softmax_rows(dist, labels, lambda mine, other: 1.0 if mine == other else 0.0)


def npairs_multilabel(dist, labels, spec, triplets):
    """As npairs, each positive weighted by the number of classes it shares with the anchor (labels: bit masks)."""
    return _softmax_rows(dist, labels, lambda mine, other: float(bin(mine & other).count("1")))


def _softmax_rows(dist, labels, weight):
    pairs = len(labels) // 2
    terms = []
    for i in range(pairs):
        logits = [-dist[i][pairs + j] for j in range(pairs)]
        top = max(logits)
        log_sum = top + math.log(sum(math.exp(s - top) for s in logits))
        weights = [weight(labels[i], labels[j]) for j in range(pairs)]
        total = sum(weights)
        target = sum(w * s for w, s in zip(weights, logits)) / total if total else math.nan
        terms.append(((i, pairs + i), log_sum - target))
    return terms


def log_sum_exp(logits) -> float:
    top = max(logits)
    return top + math.log(sum(math.exp(s - top) for s in logits))


def multiple_negatives(dist, labels, spec, triplets):
    """Per anchor i: log sum_j e^(-d(a_i, p_j) / t) + d(a_i, p_i) / t; symmetric: per positive too, against anchors."""
    pairs = len(labels) // 2
    t = spec.temperature
    terms = []
    for i in range(pairs):
        logits = [-dist[i][pairs + j] / t for j in range(pairs)]
        terms.append(((i, pairs + i), log_sum_exp(logits) - logits[i]))
    if spec.symmetric:
        for j in range(pairs):
            logits = [-dist[pairs + j][i] / t for i in range(pairs)]
            terms.append(((pairs + j, j), log_sum_exp(logits) - logits[j]))
    return terms


def ntxent(dist, labels, spec, triplets):
    """Per ordered positive pair (a, p): -log(e^(l_ap) / (e^(l_ap) + sum over negatives n of e^(l_an))), l = -d / t."""
    t = spec.temperature
    terms = []
    for a in range(len(labels)):
        negatives = [-dist[a][n] / t for n in range(len(labels)) if labels[n] != labels[a]]
        for p in range(len(labels)):
            if p != a and labels[p] == labels[a]:
                positive = -dist[a][p] / t
                terms.append(((a, p), log_sum_exp([positive, *negatives]) - positive))
    return terms


def simclr(dist, labels, spec, triplets):
    """Per row r of the 2B: log sum over every k != r of e^(-d(r, k) / t) + d(r, v) / t, v its other view (r + B or
    r - B); labels not read."""
    rows, t = len(labels), spec.temperature
    terms = []
    for r in range(rows):
        view = (r + rows // 2) % rows
        logits = [-dist[r][k] / t for k in range(rows) if k != r]
        terms.append(((r, view), log_sum_exp(logits) + dist[r][view] / t))
    return terms


def supcon(dist, labels, spec, triplets):
    """Per anchor with a positive: the mean over its positives p of log sum over k != a of e^(l_ak) - l_ap."""
    t = spec.temperature
    terms = []
    for a in range(len(labels)):
        others = [k for k in range(len(labels)) if k != a]
        positives = [p for p in others if labels[p] == labels[a]]
        if positives:
            lse = log_sum_exp([-dist[a][k] / t for k in others])
            terms.append(((a, a), sum(lse + dist[a][p] / t for p in positives) / len(positives)))
    return terms


def _log1p_sum_exp(logits) -> float:
    """log(1 + sum of e^l): the "1 +" a logit 0; 0 for no logit; log1p where no logit exceeds 0 (a tiny sum stays > 0)."""
    if not logits or max(logits) > 0:
        return log_sum_exp([0.0, *logits])
    return math.log1p(sum(math.exp(s) for s in logits))


def _multi_similarity_anchor(dist, a, positives, negatives, spec) -> float:
    """(1/alpha) log(1 + sum_p e^(-alpha (s_ap - base))) + (1/beta) log(1 + sum_n e^(beta (s_an - base))), s = 1 - d."""
    alpha, beta, base = spec.alpha, spec.beta, spec.base
    return (_log1p_sum_exp([-alpha * (1.0 - dist[a][p] - base) for p in positives]) / alpha
            + _log1p_sum_exp([beta * (1.0 - dist[a][n] - base) for n in negatives]) / beta)


def _pairs_of(labels, a):
    others = [k for k in range(len(labels)) if k != a]
    return [p for p in others if labels[p] == labels[a]], [n for n in others if labels[n] != labels[a]]


def multi_similarity(dist, labels, spec, triplets):
    """Per anchor, over every positive and negative (an empty set adds 0); every anchor a unit."""
    return [((a, a), _multi_similarity_anchor(dist, a, *_pairs_of(labels, a), spec)) for a in range(len(labels))]


def multi_similarity_mined(dist, labels, spec, triplets):
    """The miner (epsilon = margin, in similarities s = 1 - d): keep p where s_ap - eps < max_n s_an, keep n where
    s_an + eps > min_p s_ap; then multi_similarity over what it kept."""
    eps, terms = spec.margin, []
    for a in range(len(labels)):
        positives, negatives = _pairs_of(labels, a)
        kept_p = [p for p in positives if negatives and 1 - dist[a][p] - eps < max(1 - dist[a][n] for n in negatives)]
        kept_n = [n for n in negatives if positives and 1 - dist[a][n] + eps > min(1 - dist[a][p] for p in positives)]
        terms.append(((a, a), _multi_similarity_anchor(dist, a, kept_p, kept_n, spec)))
    return terms


def circle(dist, labels, spec, triplets):
    """Per anchor with a positive and a negative: log(1 + sum_p sum_n e^(l_p + l_n)), l_p = -gamma [1 + m - s_p]+
    (s_p - (1 - m)), l_n = gamma [s_n + m]+ (s_n - m), s = 1 - d; 0 otherwise."""
    m, gamma, terms = spec.margin, spec.gamma, []
    for a in range(len(labels)):
        positives, negatives = _pairs_of(labels, a)
        value = 0.0
        if positives and negatives:
            sims_p, sims_n = [1 - dist[a][p] for p in positives], [1 - dist[a][n] for n in negatives]
            pair_logits = [-gamma * max(1 + m - sp, 0.0) * (sp - (1 - m)) + gamma * max(sn + m, 0.0) * (sn - m)
                           for sp in sims_p for sn in sims_n]
            value = _log1p_sum_exp(pair_logits)
        terms.append(((a, a), value))
    return terms


STRATEGIES = {
    "batch_all": batch_all,
    "batch_hard": batch_hard,
    "semi_hard": semi_hard,
    "semi_hard_all": semi_hard_all,
    "triplets": explicit_triplets,
    "contrastive": contrastive,
    "lifted": lifted,
    "npairs": npairs,
    "npairs_multilabel": npairs_multilabel,
    "multiple_negatives": multiple_negatives,
    "ntxent": ntxent,
    "simclr": simclr,
    "supcon": supcon,
    "multi_similarity": multi_similarity,
    "multi_similarity_mined": multi_similarity_mined,
    "circle": circle,
}


def reduce(values: list[float], reduction: str, empty: str) -> float:
    if not values:
        return math.nan if empty == "nan" else 0.0
    if any(math.isnan(v) for v in values):  # a NaN term (Quaterion's 0/0) poisons every reduction
        return math.nan
    if reduction == "sum":
        return sum(values)
    if reduction == "mean":
        return sum(values) / len(values)
    active = [v for v in values if v > 0]
    return sum(active) / len(active) if active else 0.0


def evaluate(x, labels, spec, triplets=None) -> NaiveResult:
    dist = distance_matrix(x, spec.distance, spec.normalize)
    labels = [int(label) for label in labels]
    triplets = [] if triplets is None else [tuple(int(i) for i in row) for row in triplets]
    terms = STRATEGIES[spec.mining](dist, labels, spec, triplets)
    return NaiveResult(reduce([value for _, value in terms], spec.reduction, spec.empty), terms)

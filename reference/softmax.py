"""The softmax family: each term is a cross-entropy over logits l = -D / t (the spec's distance negated, divided by its
temperature; with cosine, (cos - 1) / t, the cosine similarity's softmax, since a softmax ignores a constant shift).

    npairs              Sohn 2016, NeurIPS, eq. 6, as TF-Addons computes it (tensorflow_addons/losses/npairs.py)
    npairs_multilabel   TF-Addons npairs_multilabel_loss
    multiple_negatives  InfoNCE, van den Oord et al. 2018 eq. 4; sentence-transformers MultipleNegativesRankingLoss
    ntxent              Chen et al. 2020 (SimCLR) eq. 1; pytorch-metric-learning NTXentLoss
    simclr              Chen et al. 2020 eq. 1 on the pairs layout, each pair its own class (TF-Similarity SimCLRLoss)
    supcon              Khosla et al. 2020 eq. 2 (L_out); pytorch-metric-learning SupConLoss

The pairs layout (npairs, multiple_negatives, simclr): rows 0..B-1 are the anchors, row B + i is the positive of
anchor i, and both rows of a pair carry its label.

Each term t reads some distances D[i, j] through one log-sum-exp; its slope in each is -w_t (softmax - target) / t.
`Terms.shares` lists every (t, i, j, softmax share, 1 / t, 1 / t): how a term's slopes move when its logits are read
off (engine/tolerances.py); `Terms.operands` each term's largest |logit| + |term|, where its arithmetic rounds.
"""
from __future__ import annotations

import numpy as np

from .strategies import label_masks
from .gaps import SOFTMAX_ROUNDING
from .terms import Terms, masked_log_sum_exp, reduce, smallest


def pair_count(labels: np.ndarray) -> int:
    return len(labels) // 2


def npairs(dist: np.ndarray, labels: np.ndarray, spec, triplets=None) -> Terms:
    """TF-Addons ``npairs_loss``: Y_ij = [y_i == y_j] / |{k : y_k == y_i}| over the pairs' labels."""
    pairs = labels[: pair_count(labels)]
    same = (pairs[:, None] == pairs[None, :]).astype(float)
    return _anchor_rows(dist, same / same.sum(axis=1, keepdims=True), spec)


def npairs_multilabel(dist: np.ndarray, labels: np.ndarray, spec, triplets=None) -> Terms:
    """TF-Addons ``npairs_multilabel_loss``: Y_ij = |C_i & C_j| / sum_k |C_i & C_k|, C_i the pair's set of classes
    (a bit mask: bit c set = class c). A pair with no class has no target: 0/0, its row and the loss NaN."""
    pairs = labels[: pair_count(labels)]
    shared = np.vectorize(_bits)(pairs[:, None] & pairs[None, :]).astype(float)
    with np.errstate(invalid="ignore"):
        return _anchor_rows(dist, shared / shared.sum(axis=1, keepdims=True), spec)


def _bits(mask: int) -> int:
    return int(mask).bit_count()


def multiple_negatives(dist: np.ndarray, labels: np.ndarray, spec, triplets=None) -> Terms:
    """InfoNCE with in-batch negatives (sentence-transformers ``MultipleNegativesRankingLoss``, scale = 1 / t): per
    anchor, the cross-entropy of its logits to every positive against its own; labels are not read, so another pair
    of its class is a negative. symmetric (``MultipleNegativesSymmetricRankingLoss``): also per positive against
    every anchor, the 2B rows averaged alike (half of each direction's mean)."""
    b = pair_count(labels)
    anchors, positives = np.arange(b), b + np.arange(b)
    row_sets = [(anchors, positives, np.tile(positives, (b, 1)), np.eye(b))]
    if spec.symmetric:
        row_sets.append((positives, anchors, np.tile(anchors, (b, 1)), np.eye(b)))
    return softmax_terms(dist, row_sets, spec)


def _anchor_rows(dist: np.ndarray, targets: np.ndarray, spec) -> Terms:
    b = len(targets)
    anchors, positives = np.arange(b), b + np.arange(b)
    return softmax_terms(dist, [(anchors, positives, np.tile(positives, (b, 1)), targets)], spec)


def ntxent(dist: np.ndarray, labels: np.ndarray, spec, triplets=None) -> Terms:
    """pytorch-metric-learning ``NTXentLoss``: per ordered positive pair (a, p), -log(e^l_ap / (e^l_ap + sum over the
    anchor's negatives n of e^l_an)); the anchor's other positives are in no denominator. A pair whose anchor has no
    negative is log 1 = 0; mean over ordered positive pairs."""
    positive, negative = label_masks(labels)
    anchors, positives = np.nonzero(positive)
    reads = negative[anchors]
    reads[np.arange(len(anchors)), positives] = True  # the pair's own positive, then the anchor's negatives
    targets = np.zeros(reads.shape)
    targets[np.arange(len(anchors)), positives] = 1.0
    every = np.tile(np.arange(len(labels)), (len(anchors), 1))
    return softmax_terms(dist, [(anchors, positives, every, targets, reads)], spec, zero=~negative.any(axis=1)[anchors])


def simclr(dist: np.ndarray, labels: np.ndarray, spec, triplets=None) -> Terms:
    """Chen et al. 2020 (SimCLR) eq. 1 and its mean over the 2B rows: on the pairs layout each row's positive is its
    other view and every other row of both views a negative, whatever the labels: ntxent with each pair its own class."""
    return ntxent(dist, np.tile(np.arange(pair_count(labels)), 2), spec)


def supcon(dist: np.ndarray, labels: np.ndarray, spec, triplets=None) -> Terms:
    """pytorch-metric-learning ``SupConLoss`` (Khosla et al.'s L_out): per anchor a with a positive,
    -(1 / |P(a)|) sum over p in P(a) of (l_ap - log sum over every k != a of e^l_ak). An anchor whose only other row
    is its positive has the term 0 exactly (N = 2, one class): mean_nonzero (PML's AvgNonZeroReducer) leaves it out."""
    positive, _ = label_masks(labels)
    anchors = np.flatnonzero(positive.any(axis=1))
    reads = ~np.eye(len(labels), dtype=bool)[anchors]
    targets = positive[anchors] / positive[anchors].sum(axis=1, keepdims=True)
    every = np.tile(np.arange(len(labels)), (len(anchors), 1))
    return softmax_terms(dist, [(anchors, anchors, every, targets, reads)], spec, zero=reads.sum(axis=1) == 1)


def softmax_terms(dist: np.ndarray, row_sets: list, spec, zero: np.ndarray | None = None) -> Terms:
    """The terms of one or more sets of rows, each (its row of D, its selection's second index, the columns of D it
    reads [T, K], the targets [T, K] (each row sums to 1), and optionally which of the K it reads): per term, the
    cross-entropy
    log sum_k e^l_k - sum_k Y_k l_k with l = -D / t over what it reads (`masked_log_sum_exp`).
    `zero`: terms that are 0 in exact arithmetic (a softmax over one logit), which mean_nonzero leaves out."""
    temperature = spec.temperature
    values, parts = [], []
    for rows, column, cols, targets, *mask in row_sets:
        read_dist = dist[rows[:, None], cols]
        reads = mask[0] if mask else np.ones(read_dist.shape, dtype=bool)
        logits = np.where(reads, -read_dist / temperature, -np.inf)
        lse, softmax = masked_log_sum_exp(logits, reads)
        with np.errstate(invalid="ignore"):
            values.append(lse - np.sum(np.where(reads, targets * logits, 0.0), axis=1))
        parts.append((rows, column, cols, targets, reads, softmax, logits))
    values = np.concatenate(values) if values else np.zeros(0)
    positive = None if zero is None else ~zero
    loss, weights = reduce(values, spec.reduction, spec.empty, positive)
    grad_dist = np.zeros_like(dist)
    shares, operands, at = [], [], 0
    for rows, column, cols, targets, reads, softmax, logits in parts:
        count = len(rows)
        w = weights[at: at + count]
        slope = -w[:, None] * (softmax - targets) / temperature  # dL/dD over what the row reads
        np.add.at(grad_dist, (np.repeat(rows, cols.shape[1]), cols.ravel()), np.where(reads, slope, 0.0).ravel())
        term, k = np.nonzero(reads)
        rate = np.full(len(term), 1.0 / temperature)  # dlogit/dD, and d(term)/dD per unit share: both 1 / t
        shares.append(np.stack([at + term, rows[term], cols[term, k], softmax[term, k], rate, rate], axis=1))
        operands.append(np.max(np.where(reads, np.abs(logits), 0.0), axis=1, initial=0.0))
        at += count
    selection = np.concatenate([np.stack([rows, column], axis=1) for rows, column, *_ in parts]) if parts else \
        np.zeros((0, 2), dtype=np.int64)
    gaps = {}
    if spec.reduction == "mean_nonzero":  # the count's decision: how far the smallest counted term is above 0
        gaps[SOFTMAX_ROUNDING] = smallest(values if positive is None else values[positive])
    return Terms(loss, grad_dist, selection.astype(np.int64), values, weights, gaps,
                 np.concatenate(operands) + np.abs(values) if operands else np.zeros(0),
                 np.concatenate(shares) if shares else np.zeros((0, 6)))

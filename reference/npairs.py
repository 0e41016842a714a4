"""N-pairs (Sohn 2016, NeurIPS, "Improved Deep Metric Learning with Multi-class N-pair Loss Objective", eq. 6) as
TF-Addons computes it (tensorflow_addons/losses/npairs.py): per anchor, softmax cross-entropy over its logits to
every positive, against targets spread evenly over the positives that share its class; no L2 term.

The pairs layout: rows 0..B-1 are the anchors, row B + i is the positive of anchor i, and both rows of a pair carry
its label. The logit of anchor i and positive j is s_ij = -D(a_i, p_j), the spec's distance negated: with cosine
it is cos(a_i, p_j) - 1, whose softmax is the cosine similarity's (a softmax ignores a constant shift).
"""
from __future__ import annotations

import numpy as np

from .terms import Terms, reduce


def pair_count(labels: np.ndarray) -> int:
    return len(labels) // 2


def npairs(dist: np.ndarray, labels: np.ndarray, spec, triplets=None) -> Terms:
    """TF-Addons ``npairs_loss``: Y_ij = [y_i == y_j] / |{k : y_k == y_i}| over the pairs' labels."""
    pairs = labels[: pair_count(labels)]
    same = (pairs[:, None] == pairs[None, :]).astype(float)
    return cross_entropy(dist, same / same.sum(axis=1, keepdims=True), spec)


def npairs_multilabel(dist: np.ndarray, labels: np.ndarray, spec, triplets=None) -> Terms:
    """TF-Addons ``npairs_multilabel_loss``: Y_ij = |C_i & C_j| / sum_k |C_i & C_k|, C_i the pair's set of classes
    (a bit mask: bit c set = class c). A pair with no class has no target: 0/0, its row and the loss NaN."""
    pairs = labels[: pair_count(labels)]
    shared = np.vectorize(_bits)(pairs[:, None] & pairs[None, :]).astype(float)
    with np.errstate(invalid="ignore"):
        return cross_entropy(dist, shared / shared.sum(axis=1, keepdims=True), spec)


def _bits(mask: int) -> int:
    return int(mask).bit_count()


def cross_entropy(dist: np.ndarray, targets: np.ndarray, spec) -> Terms:
    """Per anchor i: log sum_j e^(s_ij) - sum_j Y_ij s_ij, with s_ij = -D(a_i, p_j); the log-sum-exp shifted by the
    row's largest logit. dL/ds_ij = w_i (softmax_ij - Y_ij), so dL/dD(a_i, p_j) = -w_i (softmax_ij - Y_ij)."""
    b = len(targets)
    logits = -dist[:b, b:]
    top = logits.max(axis=1, keepdims=True)
    lse = np.log(np.exp(logits - top).sum(axis=1, keepdims=True)) + top
    values = (lse[:, 0] - np.sum(targets * logits, axis=1))
    loss, weights = reduce(values, spec.reduction, spec.empty)
    grad_dist = np.zeros_like(dist)
    grad_dist[:b, b:] = -weights[:, None] * (np.exp(logits - lse) - targets)
    selection = np.stack([np.arange(b), b + np.arange(b)], axis=1)
    operands = np.abs(logits).max(axis=1) + np.abs(values)  # a log-sum-exp rounds at its largest logit
    return Terms(loss, grad_dist, selection, values, weights, {}, operands)

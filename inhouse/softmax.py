"""The softmax family (reference/softmax.py) in torch: every term a cross-entropy over logits -D / t, each
log-sum-exp shifted by its row's largest logit (a no-grad constant), in float64 so that the large logits of a low
temperature keep their low bits.

    npairs, npairs_multilabel   per anchor, against the positives that share its classes (the pairs layout)
    multiple_negatives          per anchor against its own positive (and, symmetric, per positive against its anchor)
    ntxent                      per ordered positive pair, over the positive and the anchor's negatives
    supcon                      per anchor with a positive, over every other row, the mean over its positives

The pairs layout: rows 0..B-1 the anchors, row B + i the positive of anchor i. `check_pairs` is the boundary's check
(an odd N, a pair whose rows carry two labels), so a caller meets a ValueError that says what is wrong, never an
index error from inside.
"""
from __future__ import annotations

import torch

from reference.validation import MAX_CLASSES

from .distances import pairwise_distances
from .terms import aggregate, masked_log_sum_exp


def check_pairs(labels: torch.Tensor) -> int:
    """B, the number of pairs; a ValueError where the labels are not in the pairs layout."""
    n = len(labels)
    if n % 2:
        raise ValueError(f"N-pairs reads the batch as pairs (rows 0..B-1 the anchors, row B + i the positive of "
                         f"anchor i): N must be even, got N = {n}")
    half = n // 2
    differ = torch.nonzero(labels[:half] != labels[half:]).flatten()
    if len(differ):
        i = int(differ[0])
        raise ValueError(f"N-pairs reads row {half + i} as the positive of anchor {i}: both need the pair's label, "
                         f"got {int(labels[i])} and {int(labels[half + i])}")
    return half


def class_set_masks(matrix: torch.Tensor) -> torch.Tensor:
    """A [N, C] 0/1 matrix of classes as each row's bit mask (reference/softmax.py); ValueError beyond MAX_CLASSES."""
    if matrix.shape[1] > MAX_CLASSES or not ((matrix == 0) | (matrix == 1)).all():
        raise ValueError(f"class-set labels [N, C] must hold 0 or 1 in at most {MAX_CLASSES} columns, got shape "
                         f"{tuple(matrix.shape)}")
    return (matrix << torch.arange(matrix.shape[1], device=matrix.device)).sum(dim=1)


def same_class_targets(pairs: torch.Tensor) -> torch.Tensor:
    return (pairs[:, None] == pairs[None, :]).to(torch.float64)


def shared_class_targets(pairs: torch.Tensor) -> torch.Tensor:
    """|C_i & C_j|: each label a bit mask of classes (reference/softmax.py)."""
    if (pairs < 0).any():
        raise ValueError("multilabel N-pairs reads each label as a bit mask of classes: labels must be >= 0")
    bits = ((pairs[:, None] >> torch.arange(MAX_CLASSES, device=pairs.device)) & 1).to(torch.float64)
    return bits @ bits.T


def _logits(points, spec) -> torch.Tensor:
    return -pairwise_distances(points, spec.distance).double() / spec.temperature


def _cross_entropy(logits: torch.Tensor, targets: torch.Tensor, reads: torch.Tensor | None = None) -> torch.Tensor:
    """Per row: log sum over what it reads of e^l - sum of Y l; rows read everything unless `reads` says otherwise."""
    lse = masked_log_sum_exp(logits, torch.ones_like(logits, dtype=torch.bool) if reads is None else reads)
    target_logits = torch.where(targets > 0, logits, torch.zeros_like(logits))  # never 0 x -inf
    return lse - (targets * target_logits).sum(dim=1)


def _anchor_rows(points, labels, spec, targets_of):
    half = check_pairs(labels)
    block = _logits(points, spec)[:half, half:]
    targets = targets_of(labels[:half])
    values = _cross_entropy(block, targets / targets.sum(dim=1, keepdim=True))  # a row without class: 0/0
    return aggregate(values, torch.ones_like(values, dtype=torch.bool))


def npairs(points, labels, spec, triplets=None):
    return _anchor_rows(points, labels, spec, same_class_targets)


def npairs_multilabel(points, labels, spec, triplets=None):
    return _anchor_rows(points, labels, spec, shared_class_targets)


def multiple_negatives(points, labels, spec, triplets=None):
    half = check_pairs(labels)
    block = _logits(points, spec)[:half, half:]
    own = torch.eye(half, dtype=block.dtype, device=block.device)
    values = _cross_entropy(block, own)
    if spec.symmetric:
        values = torch.cat([values, _cross_entropy(block.T, own)])
    return aggregate(values, torch.ones_like(values, dtype=torch.bool))


def ntxent(points, labels, spec, triplets=None):
    """Per ordered positive pair (a, p): log(e^l_ap + sum over the anchor's negatives of e^l_an) - l_ap, from the
    row's log-sum-exp over its negatives (-inf without one: the term is then 0 exactly)."""
    logits = _logits(points, spec)
    same = labels[:, None] == labels[None, :]
    positive = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    has_negative = (~same).any(dim=1)
    negatives = masked_log_sum_exp(logits, ~same)  # -inf without a negative
    values = torch.logaddexp(logits, negatives[:, None]) - logits
    values = torch.where(positive & has_negative[:, None], values, torch.zeros_like(values))
    total, units, _ = aggregate(values, positive)
    return total, units, (positive & has_negative[:, None]).sum()  # a pair without negatives is 0 exactly


def supcon(points, labels, spec, triplets=None):
    """Per anchor with a positive: log sum over every other row of e^l - the mean of its positives' logits."""
    logits = _logits(points, spec)
    others = ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    positive = (labels[:, None] == labels[None, :]) & others
    counts = positive.sum(dim=1)
    has_positive = counts > 0
    targets = positive.double() / counts.clamp_min(1)[:, None]
    values = _cross_entropy(logits, targets, others)
    values = torch.where(has_positive, values, torch.zeros_like(values))
    total, units, _ = aggregate(values, has_positive)
    return total, units, (has_positive & (others.sum(dim=1) > 1)).sum()  # one other row: a softmax of 1, 0 exactly

"""N-pairs and multilabel N-pairs (reference/npairs.py) in torch: per anchor, a stable softmax cross-entropy over
its logits -D(anchor, every positive), against targets spread over the positives that share its classes.

The batch is in the pairs layout: rows 0..B-1 the anchors, row B + i the positive of anchor i. `check_pairs` is the
boundary's check (an odd N, a pair whose rows carry two labels), so a caller meets a ValueError that says what is
wrong, never an index error from inside.
"""
from __future__ import annotations

import torch

from reference.validation import MAX_CLASSES

from .distances import pairwise_distances
from .terms import aggregate


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
    """A [N, C] 0/1 matrix of classes as each row's bit mask (reference/npairs.py); ValueError beyond MAX_CLASSES."""
    if matrix.shape[1] > MAX_CLASSES or not ((matrix == 0) | (matrix == 1)).all():
        raise ValueError(f"class-set labels [N, C] must hold 0 or 1 in at most {MAX_CLASSES} columns, got shape "
                         f"{tuple(matrix.shape)}")
    return (matrix << torch.arange(matrix.shape[1], device=matrix.device)).sum(dim=1)


def same_class_targets(pairs: torch.Tensor) -> torch.Tensor:
    return (pairs[:, None] == pairs[None, :]).to(torch.float64)


def shared_class_targets(pairs: torch.Tensor) -> torch.Tensor:
    """|C_i & C_j|: each label a bit mask of classes (reference/npairs.py)."""
    if (pairs < 0).any():
        raise ValueError("multilabel N-pairs reads each label as a bit mask of classes: labels must be >= 0")
    bits = ((pairs[:, None] >> torch.arange(MAX_CLASSES, device=pairs.device)) & 1).to(torch.float64)
    return bits @ bits.T


def softmax_rows(points, labels, spec, targets_of):
    half = check_pairs(labels)
    dist = pairwise_distances(points, spec.distance)
    logits = -dist[:half, half:].double()  # float64 rows: a log-sum-exp of large logits keeps its low bits
    targets = targets_of(labels[:half])
    with torch.no_grad():
        top = logits.amax(dim=1, keepdim=True)
    lse = torch.log(torch.exp(logits - top).sum(dim=1)) + top[:, 0]
    values = lse - (targets / targets.sum(dim=1, keepdim=True) * logits).sum(dim=1)  # a row without class: 0/0
    return aggregate(values, torch.ones_like(values, dtype=torch.bool))


def npairs(points, labels, spec, triplets=None):
    return softmax_rows(points, labels, spec, same_class_targets)


def npairs_multilabel(points, labels, spec, triplets=None):
    return softmax_rows(points, labels, spec, shared_class_targets)

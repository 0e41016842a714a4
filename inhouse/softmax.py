"""The softmax family (reference/softmax.py) in torch: every term a cross-entropy over logits -D / t, each
log-sum-exp shifted by its row's largest logit, in float64 so that the large logits of a low temperature keep their
low bits. Each loss is read row by row (inhouse/distance_rows.py): per chunk of rows its terms and dL/dD, the
gradient of a cross-entropy written out (softmax - targets), never autograd over N x N temporaries. The plain
cross-entropies (all but ntxent's) take the shorter road of inhouse/cross_entropy_rows.py where it applies.

    npairs, npairs_multilabel   per anchor, against the positives that share its classes (the pairs layout)
    multiple_negatives          per anchor against its own positive (and, symmetric, per positive against its anchor)
    ntxent                      per ordered positive pair, over the positive and the anchor's negatives
    simclr                      ntxent on the pairs layout, each pair of views its own class
    supcon                      per anchor with a positive, over every other row, the mean over its positives

The pairs layout: rows 0..B-1 the anchors, row B + i the positive of anchor i. `check_pairs` is the boundary's check
(an odd N, a pair whose rows carry two labels), so a caller meets a ValueError that says what is wrong, never an
index error from inside.
"""
from __future__ import annotations

import torch

from reference.validation import MAX_CLASSES

from .cross_entropy_rows import Targets, cross_entropies
from .distance_rows import ClassPairs, class_sizes, diagonal_of, exp_rows, row_chunks, row_losses, unread_


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


def class_bits(pairs: torch.Tensor) -> torch.Tensor:
    """[B, MAX_CLASSES] 0/1 float64: each label a bit mask of classes (reference/softmax.py)."""
    if (pairs < 0).any():
        raise ValueError("multilabel N-pairs reads each label as a bit mask of classes: labels must be >= 0")
    return ((pairs[:, None] >> torch.arange(MAX_CLASSES, device=pairs.device)) & 1).to(torch.float64)


def _logits(measured: torch.Tensor, unit: float, spec, work: torch.Tensor) -> torch.Tensor:
    """-D / t = M x (-unit / t) in float64, in the work buffer (a product: a division costs three)."""
    return work.copy_(measured).mul_(-unit / spec.temperature)


def cross_entropy_rows(spec, targets_of, unread_of=None, counted_of=None):
    """rows_loss (inhouse/distance_rows.py) of per-row cross-entropies: log sum over what row i reads (everything but
    the entries `unread_of(chunk)` gives, with the rows that read anything) of e^l - sum_j Y_ij l_ij, the targets Y
    given as entries (i, j, Y_ij) by `targets_of(chunk)`; dL/dl = softmax - Y. A row without targets has value NaN
    (0/0, as its spread is), one outside `counted_of(chunk)` value 0 and no gradient."""

    def rows_loss(measured, unit, chunk, work):
        logits = _logits(measured, unit, spec, work)
        i, j, weights = targets_of(chunk)
        targeted = torch.zeros_like(logits[:, 0]).index_add_(0, i, weights * logits[i, j])
        if unread_of is None:
            lse, exps, total = exp_rows(logits)
        else:
            unread, live = unread_of(chunk)
            lse, exps, total = exp_rows(unread_(logits, *unread), live)
        values = lse - targeted
        values = torch.where(torch.bincount(i, minlength=len(values)) > 0, values, torch.full_like(values, float("nan")))
        scale = torch.full_like(values, -unit / spec.temperature)  # dL/dM = -(softmax - Y) unit / t
        if counted_of is not None:
            counted = counted_of(chunk)
            values = torch.where(counted, values, torch.zeros_like(values))
            scale = torch.where(counted, scale, torch.zeros_like(scale))
        slope = exps.mul_((scale / total)[:, None])
        return values, slope.index_put_((i, j), -weights * scale[i], accumulate=True)

    return rows_loss


def _cross_entropies(points, split, spec, targets: Targets, counted=None, unread_of=None):
    """(total, values) of per-row cross-entropies against `targets` over the rows `points[:split]` and the columns
    `points[split:]` (split None: the N x N matrix, its diagonal unread, as `unread_of` says for the general road),
    the short road where it applies (inhouse/cross_entropy_rows.py)."""
    fast = cross_entropies(points, split, spec.distance, spec.temperature, targets, counted)
    if fast is not None:
        return fast
    counted_of = None if counted is None else (lambda chunk: counted[chunk])
    return row_losses(points, split, spec.distance, cross_entropy_rows(spec, targets.of, unread_of, counted_of))


def _spread(i: torch.Tensor, j: torch.Tensor, weights: torch.Tensor, rows: int, counts=None) -> Targets:
    """Target entries with each row's weights scaled to sum to 1."""
    sums = torch.zeros(rows, dtype=weights.dtype, device=weights.device).index_add_(0, i, weights)
    return Targets(i, j, weights / sums[i], rows, counts)


def _summed(total: torch.Tensor, values: torch.Tensor):
    """(sum, units, active) where every row is a unit."""
    return total, torch.tensor(len(values), device=values.device), (values > 0).sum()


def _anchor_rows(points, labels, spec, targets_of_pairs):
    """Per anchor, the cross-entropy against targets spread over the positives: `targets_of_pairs(the pairs'
    labels)` gives them."""
    half = check_pairs(labels)
    return _summed(*_cross_entropies(points, half, spec, targets_of_pairs(labels[:half])))


def _same_classes(pairs: torch.Tensor) -> Targets:
    same = ClassPairs(pairs, with_self=True)
    return _spread(same.a, same.b, torch.ones(len(same.a), dtype=torch.float64, device=pairs.device), len(pairs),
                   same.counts)


def npairs(points, labels, spec, triplets=None):
    return _anchor_rows(points, labels, spec, _same_classes)


def _shared_classes(pairs: torch.Tensor) -> Targets:
    """Entries |C_i & C_j| > 0, found a chunk of rows at a time (no B x B matrix)."""
    bits = class_bits(pairs)
    found = [(pairs.new_zeros(0), pairs.new_zeros(0), bits.new_zeros(0))]
    for chunk in row_chunks(len(pairs), len(pairs)):
        shared = bits[chunk] @ bits.T
        i, j = shared.nonzero(as_tuple=True)
        found.append((i + chunk.start, j, shared[i, j]))
    return _spread(*(torch.cat(parts) for parts in zip(*found)), len(pairs))


def npairs_multilabel(points, labels, spec, triplets=None):
    return _anchor_rows(points, labels, spec, _shared_classes)


def multiple_negatives(points, labels, spec, triplets=None):
    """Per anchor against its own positive among all positives (and, symmetric, per positive among all anchors)."""
    half = check_pairs(labels)
    own = torch.arange(half, device=points.device)
    targets = Targets(own, own, torch.ones(half, dtype=torch.float64, device=points.device), half, torch.ones_like(own))
    total, values = _cross_entropies(points, half, spec, targets)
    if spec.symmetric:  # per positive, against every anchor
        back, back_values = _cross_entropies(torch.cat([points[half:], points[:half]]), half, spec, targets)
        total, values = total + back, torch.cat([values, back_values])
    return _summed(total, values)


def ntxent(points, labels, spec, triplets=None):
    """Per ordered positive pair (a, p): log(e^l_ap + sum over the anchor's negatives of e^l_an) - l_ap =
    softplus(lse_neg(a) - l_ap), from the row's log-sum-exp over its negatives (-inf without one: the term is then 0
    exactly); dL/dl_ap = -sigmoid(lse_neg(a) - l_ap), dL/dl_an = softmax_neg(a)_n x the sum of those sigmoids."""
    n, positives, sizes = len(labels), ClassPairs(labels), class_sizes(labels)

    def rows_loss(measured, unit, chunk, work):
        logits = _logits(measured, unit, spec, work)
        a, p = positives.of(chunk)
        pair_logits = logits[a, p]
        with_negative = sizes[chunk] < n
        lse, exps, total = exp_rows(unread_(logits, (a, p), diagonal_of(chunk, a.device)), with_negative)
        pair_lse = lse[a]
        terms = torch.logaddexp(pair_logits, pair_lse) - pair_logits
        terms = torch.where(with_negative[a], terms, torch.zeros_like(terms))
        pulls = torch.sigmoid(pair_lse - pair_logits)
        pulled = torch.zeros_like(lse).index_add_(0, a, pulls)
        scale = -unit / spec.temperature  # dL/dM = dL/dl x (-unit / t)
        slope = exps.mul_((pulled * scale / total)[:, None])
        return torch.zeros_like(lse).index_add_(0, a, terms), slope.index_put_((a, p), -pulls * scale)

    total, _ = row_losses(points, None, spec.distance, rows_loss)
    # units: the ordered positive pairs; a pair without negatives is 0 exactly
    return total, (sizes - 1).sum(), ((sizes - 1) * (sizes < n)).sum()


def supcon(points, labels, spec, triplets=None):
    """Per anchor with a positive: log sum over every other row of e^l - the mean of its positives' logits."""
    n, pairs = len(labels), ClassPairs(labels)
    positives = pairs.counts
    targets = Targets(pairs.a, pairs.b, 1.0 / positives[pairs.a].to(torch.float64), n, positives)
    everyone = torch.full((n,), n > 1, device=labels.device)  # what reads another row
    total, _ = _cross_entropies(points, None, spec, targets, positives > 0,
                                lambda chunk: ((diagonal_of(chunk, labels.device),), everyone[chunk]))
    has_positive = positives > 0
    return total, has_positive.sum(), (has_positive & (n - 1 > 1)).sum()  # one other row: a softmax of 1, 0 exactly


def simclr(points, labels, spec, triplets=None):
    """ntxent with each pair of views its own class (reference/softmax.py simclr): SimCLR reads no label."""
    pairs = check_pairs(labels)
    return ntxent(points, torch.arange(pairs, device=labels.device).repeat(2), spec)

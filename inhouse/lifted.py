"""lifted (reference/strategies.py lifted; Song et al. 2016 eq. 4) read row by row (inhouse/distance_rows.py): per
positive pair i < j, J = log(sum_{k in N(i)} e^(m - D_ik) + sum_{l in N(j)} e^(m - D_jl)) + D_ij and the term
[J]+^2 / 2, in O(N x chunk) memory where the N x N matrices and their autograd took O(N^2) (about twenty of them).

The two rows of a pair share their negatives (every other class), so J = logaddexp(lse_i, lse_j) + D_ij with lse_i
each row's own log-sum-exp over its negatives, shifted by its largest exponent, in float64 (as the softmax family).
A pair reads its partner's row, so the rows are read twice:

1. every row's lse, without gradient;
2. J and [J]+ per pair; dL/dlse_i = w_i = sum over i's pairs of [J]+ sigmoid(lse_i - lse_partner), and the rows are
   read again for the gradient of sum_i w_i lse_i (w constant): -w_i softmax over i's negatives, written out.

D_ij itself is measured from differences (`PairDistances`), as batch_hard's pairs are. A class alone in the batch has
no negative: lse = -inf, its pairs' J = -inf, their terms 0 with gradient 0 (masked, never 0 x inf).
"""
from __future__ import annotations

import torch

from .distance_rows import ClassPairs, class_sizes, diagonal_of, exp_rows, row_losses, unread_
from .distances import PairDistances


def _negative_sums(spec, pairs: ClassPairs, has_negative: torch.Tensor, weights: torch.Tensor | None = None):
    """rows_loss (inhouse/distance_rows.py) of each row's lse over its negatives of m - D (-inf without one); with
    `weights` w, the values w lse (0 without a negative) and their slope dL/dM = -unit w softmax."""

    def rows_loss(measured, unit, chunk, work):
        a, p = pairs.of(chunk)
        exponents = work.copy_(measured).mul_(-unit).add_(spec.margin)
        live = has_negative[chunk]
        lse, exps, total = exp_rows(unread_(exponents, (a, p), diagonal_of(chunk, a.device)), live)
        if weights is None:
            return lse, exps
        w = weights[chunk]
        values = torch.where(live, w * lse, torch.zeros_like(lse))
        return values, exps.mul_((-unit * w / total)[:, None])

    return rows_loss


def lifted(points, labels, spec, triplets=None):
    """(sum of the terms, positive pairs i < j, terms > 0)."""
    same, has_negative = ClassPairs(labels), class_sizes(labels) < len(labels)
    upper = same.a < same.b
    i, j = same.a[upper], same.b[upper]
    _, lse = row_losses(points.detach(), None, spec.distance, _negative_sums(spec, same, has_negative))
    live = has_negative[i]  # i and j are one class: both rows have negatives or neither has
    both = torch.where(live, torch.logaddexp(lse[i], lse[j]), torch.zeros_like(lse[i]))
    j_value = both + PairDistances.apply(points, i, j, spec.distance).double()
    hinge = torch.where(live, j_value.clamp_min(0.0), torch.zeros_like(j_value))
    values = 0.5 * hinge * hinge
    with torch.no_grad():
        gap = torch.where(live, lse[i] - lse[j], torch.zeros_like(hinge))
        weights = torch.zeros_like(lse).index_add_(0, i, hinge * torch.sigmoid(gap))
        weights.index_add_(0, j, hinge * torch.sigmoid(-gap))
    spread, _ = row_losses(points, None, spec.distance, _negative_sums(spec, same, has_negative, weights))
    total = values.sum() + (spread - spread.detach())  # the value of the terms, the gradient through every lse too
    return total, torch.tensor(len(i), device=points.device), (values > 0).sum()

"""The similarity family (reference/similarity.py) in torch: per anchor, log-sum-exps over logits of the cosine
similarity s = 1 - D, each shifted by its row's largest logit (a no-grad constant), in float64 as the softmax family
(inhouse/softmax.py): beta = 50 and gamma = 80 make logits of 75 and 300, whose low bits float32 would lose.
multi_similarity and circle are read row by row (inhouse/distance_rows.py), their gradient written out
(multi_similarity's negatives on the short road of inhouse/linear_logits.py where it applies, its positives' gradient
added to the matrix there); multi_similarity_mined, whose miner decides on ties between distances, on the N x N
matrix by autograd.

    multi_similarity        Wang et al. 2019 eq. 10: (1/alpha) log(1 + sum_p e^(-alpha (s - base))) + (1/beta) log(1 +
                            sum_n e^(beta (s - base))), every pair
    multi_similarity_mined  the same over the pairs MultiSimilarityMiner(epsilon = margin) keeps, mined without gradient
    circle                  Sun et al. 2020 eq. 6: softplus(lse_p l_p + lse_n l_n), the weights alpha detached
"""
from __future__ import annotations

import torch

from .distance_rows import (ClassPairs, Gram, GramGradients, class_sizes, diagonal_of, exp_rows, pulled_whole,
                            row_losses, sparse_softmax_parts, unread_)
from .distances import pairwise_distances
from .linear_logits import UNITS, Entries, LinearLogits, linear_in_d2
from .scratch import scratch
from .triangle import read_by_triangle


def _masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    same = labels[:, None] == labels[None, :]
    return same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device), ~same


def _log1p_sum_exp(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per row, log(1 + sum over the mask of e^l): 0 for an empty mask; log1p where the "1 +" is the largest term,
    so that a sum of 1e-33 stays > 0 (mean_nonzero counts it, as the oracle does)."""
    masked = torch.where(mask, logits, torch.full_like(logits, float("-inf")))
    with torch.no_grad():
        top = masked.amax(dim=1).clamp_min(0.0) if logits.shape[1] else torch.zeros_like(logits[:, 0])
    total = torch.exp(masked - top[:, None]).sum(dim=1)
    return torch.where(top > 0, torch.log(torch.exp(-top) + total) + top, torch.log1p(total))


def multi_similarity_mined(points, labels, spec, triplets=None):
    """MultiSimilarityMiner's strict rules on the similarities the loss reads: keep (a, p) where s_ap - eps < the
    anchor's largest negative s, keep (a, n) where s_an + eps > its smallest positive s."""
    s = 1.0 - pairwise_distances(points, spec.distance).double()
    positive, negative = _masks(labels)
    with torch.no_grad():
        inf = torch.full_like(s, float("inf"))
        largest_negative = torch.where(negative, s, -inf).amax(dim=1, keepdim=True)
        smallest_positive = torch.where(positive, s, inf).amin(dim=1, keepdim=True)
        keep_positive = positive & (s - spec.margin < largest_negative)
        keep_negative = negative & (s + spec.margin > smallest_positive)
    values = _log1p_sum_exp(-spec.alpha * (s - spec.base), keep_positive) / spec.alpha + \
        _log1p_sum_exp(spec.beta * (s - spec.base), keep_negative) / spec.beta
    counted = keep_positive.any(dim=1) | keep_negative.any(dim=1)  # log(1 + a sum > 0) > 0
    return values.sum(), torch.tensor(len(values), device=values.device), counted.sum()


class Similarities:
    """A chunk's similarities s = 1 - D = 1 - unit x M, from its measured M, computed into the float64 work buffer."""

    def __init__(self, measured: torch.Tensor, unit: float, work: torch.Tensor):
        self.measured, self.unit, self.work = measured, unit, work

    def at(self, rows: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        """s at the given entries (float64), rounded as `affine_` rounds s."""
        return self.measured[rows, columns].to(self.work.dtype).mul_(-self.unit).add_(1.0)

    def affine_(self, scale: float = 1.0, offset: float = 0.0) -> torch.Tensor:
        """The work buffer := scale x s + offset = (scale + offset) - scale unit M: three passes where s and then its
        affine took five."""
        return self.work.copy_(self.measured).mul_(-scale * self.unit).add_(scale + offset)


def _similarity_rows(spec, labels, rows_of):
    """rows_loss (inhouse/distance_rows.py) of `rows_of(s, (a, p), unread, live, spec) -> (values, dL/dM)`: s the
    chunk's `Similarities`, (a, p) its positive pairs (same label, not itself), unread the entries that are no negative
    (those and the diagonal), live the rows with a negative; dL/dM = -unit dL/ds."""
    positives, sizes = ClassPairs(labels), class_sizes(labels)

    def rows_loss(measured, unit, chunk, work):
        a, p = positives.of(chunk)
        s = Similarities(measured, unit, work)
        return rows_of(s, (a, p), ((a, p), diagonal_of(chunk, a.device)), sizes[chunk] < len(labels), spec)

    return rows_loss


def _log1p_parts(lse: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """log(1 + sum e^l) = softplus(lse), > 0 for a sum of 1e-33 (mean_nonzero counts it, as the oracle does), 0 for an
    empty one; and the factor sigmoid(lse) that turns the softmax into its slope e^l / (1 + sum e^l)."""
    return torch.logaddexp(lse, torch.zeros_like(lse)), torch.sigmoid(lse)


def _positive_term(s_ap: torch.Tensor, a: torch.Tensor, rows: int, unit: float, spec):
    """Per row, multi_similarity's (1/alpha) log(1 + sum_p e^(-alpha (s_ap - base))) over its positive pairs (a, p),
    and dL/dM at each pair: unit e^l / (1 + sum e^l) (dL/dM = -unit dL/ds)."""
    lse, pull = sparse_softmax_parts(-spec.alpha * (s_ap - spec.base), a, rows)
    value, weight = _log1p_parts(lse)
    return value / spec.alpha, unit * pull * weight[a]


def _multi_similarity_rows(s, pairs, unread, live, spec):
    """dL/dM = -unit dL/ds: e^l / (1 + sum e^l) of the positives' logits, less that of the negatives'."""
    a, p, unit = *pairs, s.unit
    from_positives, pulled = _positive_term(s.at(a, p), a, len(s.work), unit, spec)
    logits = s.affine_(spec.beta, -spec.beta * spec.base)  # beta (s - base)
    lse_n, exps, total = exp_rows(unread_(logits, *unread), live)  # 0 at the positives
    from_negatives, push_weight = _log1p_parts(lse_n)
    slope = exps.mul_((-unit * push_weight / total)[:, None]).index_put_((a, p), pulled)
    return from_positives + from_negatives / spec.beta, slope


class _MultiSimilarityRows(LinearLogits):
    """multi_similarity's negatives on the short road: l = beta (s - base) = beta (1 - base) - beta unit d2 over each
    row's negatives, its positives excluded; dL/dd2 = -unit sigmoid(lse) e / total."""

    excluded = True

    def __init__(self, gram: Gram, spec, positives: ClassPairs):
        self.unit, self.top_at_zero = UNITS[spec.distance], spec.beta * (1.0 - spec.base)  # top at shift 0
        super().__init__(gram, spec.beta * self.unit, Entries(positives.a, positives.b, len(gram.rows), positives.counts))

    def lse(self, rows: slice) -> torch.Tensor:
        return torch.log(self.totals[rows]) + (self.top_at_zero - self.shifts[rows])

    def factor(self, rows: slice) -> torch.Tensor:
        return -self.unit * torch.sigmoid(self.lse(rows)) / self.totals[rows]


class _MultiSimilarity(GramGradients):
    """(total, values) of multi_similarity with every row's negatives on the short road, its positives as
    `_multi_similarity_rows` reads them, their gradient added to the matrix once scaled (`Gram.add_pairs`)."""

    @staticmethod
    def forward(ctx, points, split, spec, labels):
        positives, gram = ClassPairs(labels), Gram(points, split)
        road = _MultiSimilarityRows(gram, spec, positives)
        gradient = road.read(ctx.needs_input_grad[0])
        a, p = positives.a, positives.b
        s_ap = road.d2_at.mul(-road.unit).add_(1.0)  # rounded as `Similarities.at`
        from_positives, pulled = _positive_term(s_ap, a, len(labels), road.unit, spec)
        from_negatives, _ = _log1p_parts(road.lse(slice(None)))
        values = from_positives + from_negatives / spec.beta
        if ctx.needs_input_grad[0]:
            gram.add_pairs(a, p, pulled)  # dL/dd2 = dL/dM: M = d2 on this road
            ctx.save_for_backward(gradient())
        ctx.mark_non_differentiable(values)
        return values.sum(), values


def _on_the_short_road(points, spec, sizes) -> bool:
    """Whether multi_similarity takes the short road: a distance linear in d2, every row with a negative, and a
    matrix kept whole or read by its triangle (`Gram.add_pairs` adds the positives' gradient to no other)."""
    return (linear_in_d2(points, spec.distance) and bool((sizes < len(points)).all())
            and (pulled_whole(points, True) or read_by_triangle(points)))


def multi_similarity(points, labels, spec, triplets=None):
    sizes = class_sizes(labels)
    if _on_the_short_road(points, spec, sizes):
        total, values = _MultiSimilarity.apply(points, None, spec, labels)
    else:
        total, values = row_losses(points, None, spec.distance, _similarity_rows(spec, labels, _multi_similarity_rows))
    counted = (sizes > 1) | (sizes < len(labels))  # log(1 + a sum > 0) > 0
    return total, torch.tensor(len(values), device=values.device), counted.sum()


def _circle_rows(similarities, pairs, unread, live, spec):
    """softplus(x), x = lse_p l_p + lse_n l_n, per anchor with a positive and a negative; dL/ds = sigmoid(x) (softmax_p
    dl_p/ds + softmax_n dl_n/ds), the weights alpha constants (Sun et al. 2020; PML detaches them)."""
    a, p, unit = *pairs, similarities.unit
    m, gamma = spec.margin, spec.gamma
    s, s_ap = similarities.affine_(), similarities.at(a, p)
    alpha_p = (1.0 + m - s_ap).clamp_min(0.0)
    alpha_n = torch.add(s, m, out=scratch("circle weights", s.shape, s)).clamp_min_(0.0)  # consumed in this call
    lse_p, pull = sparse_softmax_parts(-gamma * alpha_p * (s_ap - (1.0 - m)), a, len(s))
    lse_n, exps, total = exp_rows(unread_(s.sub_(m).mul_(alpha_n).mul_(gamma), *unread), live)  # gamma alpha_n (s - m)
    live = (torch.bincount(a, minlength=len(s)) > 0) & live  # from the labels: a NaN stays NaN
    x = torch.where(live, lse_p + lse_n, torch.zeros_like(lse_p))
    values = torch.where(live, torch.logaddexp(x, torch.zeros_like(x)), torch.zeros_like(x))
    weight = torch.where(live, torch.sigmoid(x), torch.zeros_like(x)) * (gamma * unit)  # dL/dM = -unit dL/ds
    slope = exps.mul_(alpha_n).mul_((-weight / total)[:, None])
    return values, slope.index_put_((a, p), pull * alpha_p * weight[a])


def circle(points, labels, spec, triplets=None):
    total, values = row_losses(points, None, spec.distance, _similarity_rows(spec, labels, _circle_rows))
    sizes = class_sizes(labels)
    live = (sizes > 1) & (sizes < len(labels))
    return total, torch.tensor(len(values), device=values.device), live.sum()

"""Every mining strategy of the vocabulary (`Spec.mining`, reference/strategies.py) in vectorised torch.

Each strategy takes the points distances are measured between (`distances.measured_points`), the labels,
the spec and the explicit triplets (mining="triplets" only), and returns (sum of the terms, units, active)
for `terms.reduce`. How:

- batch_hard, semi_hard, triplets: mine on the N x N matrix without gradient (`mining`; batch_hard stripe by
  stripe, `hardest_stripes`), then measure the selected pairs from differences (`PairDistances`; batch_hard's two
  partners per row `PartnerDistances`, its terms and their slopes in one autograd node, `_HardestTerms`); backward
  through those pairs only.
- contrastive: the positive pairs and the negative pairs closer than the margin (found by a screen without the
  matrix, `near_pairs`), measured from differences; backward by autograd through those pairs only.
- lifted: the two rows of a positive pair share their negatives (every other class), so each pair's log-sum-exp
  over both rows combines the rows' own: read row by row, twice (`lifted`).
- batch_all, semi_hard_all: per anchor, its negative distances are put in bins (or sorted) once and each positive
  distance is located among them (`windows`; TF-Addons tiles an N^2 x N tensor instead). These compute dL/dD
  alongside the loss, since it is a sparse sum of term slopes, and hand it to autograd (`_WithGradient`), so
  nothing but the N x N coefficient matrix is kept.
- Anchors are processed in chunks (`chunks.anchor_chunks`), so temporaries stay within `CHUNK_ELEMENTS`
  elements beyond the O(N^2) matrices themselves.
"""
from __future__ import annotations

import torch

from reference import Spec

from .chunks import anchor_chunks
from .distances import PairDistances, PartnerDistances, pairwise_distances, partner_distances, partner_gradient
from .hardest_stripes import striped_hardest_partners
from .lifted import lifted
from .similarity import circle, multi_similarity, multi_similarity_mined
from .softmax import multiple_negatives, npairs, npairs_multilabel, ntxent, simclr, supcon
from .mining import ClassSlots, hardest_partners, semi_hard_negatives
from .near_pairs import pairs_within
from .terms import aggregate, term_and_slope
from .windows import window_budget, window_terms


# Pairs measured one by one from differences cost several times a matrix entry (one BLAS matmul): past this fraction
# of the N^2 entries contrastive takes the matrix path (2 classes of 1024, N^2 / 4 pairs, took twice its time).
MOST_MEASURED_PAIRS = 1 / 8


class _WithGradient(torch.autograd.Function):
    """A total whose gradient with respect to the distance matrix was computed alongside its value. The total stays
    in float64 until the loss is cast to the input's dtype (terms.finish): a sum of N^2 K terms may pass float32's
    range where the loss, a mean, does not, and a loss that overflows only in the cast keeps a finite gradient."""

    @staticmethod
    def forward(ctx, dist: torch.Tensor, total: torch.Tensor, grad_dist: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(grad_dist)
        return total.clone()

    @staticmethod
    def backward(ctx, grad_total: torch.Tensor):
        (grad_dist,) = ctx.saved_tensors
        return grad_total.to(grad_dist.dtype) * grad_dist, None, None


def batch_hard_from_partners(points, positive_at, negative_at, has_positive, has_negative, spec: Spec):
    """reference.strategies.batch_hard (and _scaled_batch_hard) once each anchor's hardest positive and
    negative are chosen (by `mining.hardest_partners` or the Triton kernel): hp = 0 without a positive."""
    partners = torch.stack([positive_at, negative_at])
    included = has_positive & has_negative if spec.anchors == "valid" else torch.ones_like(has_positive)
    if not spec.scaled:
        return _HardestTerms.apply(points, partners, has_positive, included, spec)
    hp, hn = PartnerDistances.apply(points, partners, spec.distance)
    hp = torch.where(has_positive, hp, torch.zeros_like(hp))
    # Quaterion: divide by the mean hardest-negative distance of the anchors that count
    count = included.sum()
    mean_hn = torch.where(included, hn, torch.zeros_like(hn)).sum() / count.clamp_min(1).to(hn.dtype)
    # Without any anchor the loss is `empty`; a finite stand-in keeps NaN out of its zero gradient.
    values, _ = term_and_slope((hp - hn) / torch.where(count > 0, mean_hn, torch.ones_like(mean_hn)), spec)
    return aggregate(values, included)


class _HardestTerms(torch.autograd.Function):
    """(sum, units, active) of batch_hard's terms term(hp - hn) over the included anchors, their slopes (the spec's:
    reference/terms.py hinge_or_soft) computed alongside and handed to the distances' backward (`partner_gradient`):
    one node where autograd would record a dozen over [N] vectors."""

    @staticmethod
    def forward(ctx, points, partners, has_positive, included, spec: Spec):
        dists = partner_distances(points, partners, spec.distance)
        zero = torch.zeros((), dtype=dists.dtype, device=dists.device)
        values, slopes = term_and_slope(torch.where(has_positive, dists[0], zero) - dists[1], spec)
        values, slopes = torch.where(included, values, zero), torch.where(included, slopes, zero)
        ctx.distance = spec.distance
        ctx.save_for_backward(points, partners, dists, torch.stack([torch.where(has_positive, slopes, zero), -slopes]))
        units, active = included.sum(), (values > 0).sum()
        ctx.mark_non_differentiable(units, active)
        return values.sum(), units, active

    @staticmethod
    def backward(ctx, grad_total, _units, _active):
        points, partners, dists, slopes = ctx.saved_tensors
        grad = partner_gradient(points, partners, dists, grad_total * slopes, ctx.distance)
        return grad, None, None, None, None


def batch_hard(points, labels, spec, triplets=None):
    # d^2 orders pairs as d does: mine on it and skip the square roots
    mined_on = "squared_euclidean" if spec.distance == "euclidean" else spec.distance
    with torch.no_grad():
        partners = striped_hardest_partners(points, labels, mined_on)
        if partners is None:
            partners = hardest_partners(pairwise_distances(points, mined_on), labels)
    return batch_hard_from_partners(points, *partners, spec)


def semi_hard(points, labels, spec, triplets=None):
    with torch.no_grad():
        slots = ClassSlots(labels)
        chosen = semi_hard_negatives(pairwise_distances(points, spec.distance), labels, slots)
    a, slot = slots.positive.nonzero(as_tuple=True)
    d_ap = PairDistances.apply(points, a, slots.members[a, slot], spec.distance)
    d_an = PairDistances.apply(points, a, chosen[a, slot], spec.distance)
    d_an = torch.where(slots.size[a] < len(labels), d_an, torch.zeros_like(d_an))
    values, _ = term_and_slope(d_ap - d_an, spec)
    return aggregate(values, torch.ones_like(values, dtype=torch.bool))


def _linearised(points, labels: torch.Tensor, spec: Spec, chunk_terms, per_slot: bool = False, budget=None):
    """Run `chunk_terms(d, negative, negatives, members, positive, grad_d, spec)` over chunks of anchors, where
    d is the chunk's rows of the distance matrix and grad_d the same rows of its gradient dL/dD; each call
    returns (sum of terms, units, active) and adds the terms' slopes to grad_d.
    per_slot: its temporaries are [anchors, K, N] rather than [anchors, N]; budget: a bound on them below
    CHUNK_ELEMENTS (`chunks.anchor_chunks`)."""
    dist = pairwise_distances(points, spec.distance)
    slots = ClassSlots(labels)
    grad_dist = torch.zeros_like(dist)
    total = torch.zeros((), dtype=torch.float64, device=dist.device)
    units = torch.zeros((), dtype=torch.int64, device=dist.device)
    active = torch.zeros((), dtype=torch.int64, device=dist.device)
    width = len(labels) * (slots.width if per_slot else 1)
    with torch.no_grad():
        for anchors in anchor_chunks(len(labels), width, budget):
            negative = labels[anchors, None] != labels[None, :]
            negatives = (len(labels) - slots.size[anchors])[:, None]
            part = chunk_terms(dist[anchors], negative, negatives, slots.members[anchors], slots.positive[anchors],
                               grad_dist[anchors], spec)
            total, units, active = total + part[0], units + part[1], active + part[2]
    return _WithGradient.apply(dist, total, grad_dist), units, active


def _soft_batch_all_chunk(d, negative, negatives, members, positive, grad_d, spec):
    """softplus(d_ap - d_an) over every valid triplet: no window to sort by, so [anchors, K, N] directly."""
    d_ap = d.gather(1, members)
    valid = positive[:, :, None] & negative[:, None, :]
    values, slopes = term_and_slope(d_ap[:, :, None] - d[:, None, :], spec)
    zero = torch.zeros((), dtype=d.dtype, device=d.device)
    values, slopes = torch.where(valid, values, zero), torch.where(valid, slopes, zero)
    grad_d.scatter_add_(1, members, slopes.sum(dim=2))
    grad_d.sub_(slopes.sum(dim=1))
    return values.sum(dtype=torch.float64), valid.sum(), (values > 0).sum()


def batch_all(points, labels, spec, triplets=None):
    if spec.soft:
        return _linearised(points, labels, spec, _soft_batch_all_chunk, per_slot=True)
    return _linearised(points, labels, spec, window_terms, budget=window_budget(points))


def semi_hard_all(points, labels, spec, triplets=None):
    return _linearised(points, labels, spec, window_terms, budget=window_budget(points))


def explicit_triplets(points, labels, spec, triplets):
    a, p, n = triplets.to(points.device).long().reshape(-1, 3).unbind(dim=1)
    excess = PairDistances.apply(points, a, p, spec.distance) - PairDistances.apply(points, a, n, spec.distance)
    values, _ = term_and_slope(excess, spec)
    return aggregate(values, torch.ones_like(values, dtype=torch.bool))


def contrastive(points, labels, spec, triplets=None):
    """Every unordered pair i < j: y d^2 + (1 - y) [m - d]+^2 (no 1/2 factor, TF-Addons). Only the positive pairs and
    the negative pairs closer than the margin have a term: on the CPU those few are found by a screen
    (`near_pairs.pairs_within`) and measured from differences (`PairDistances`), backward through them only; where
    they are many (MOST_MEASURED_PAIRS), and off the CPU, over the matrix."""
    near = pairs_within(points, _squared_reach(spec))
    if near is None:
        return _contrastive_on_the_matrix(points, labels, spec)
    slots = ClassSlots(labels)
    later = slots.inside & (slots.members > torch.arange(len(labels), device=labels.device)[:, None])
    anchor, slot = later.nonzero(as_tuple=True)
    first, second = near
    negative = labels[first] != labels[second]
    first = torch.cat([anchor, first[negative]])
    second = torch.cat([slots.members[anchor, slot], second[negative]])
    if len(first) > MOST_MEASURED_PAIRS * len(labels) ** 2:  # few classes, or a margin beyond most distances
        return _contrastive_on_the_matrix(points, labels, spec)
    dist = PairDistances.apply(points, first, second, spec.distance)
    same = torch.arange(len(first), device=dist.device) < len(anchor)
    values = torch.where(same, dist * dist, (spec.margin - dist).clamp_min(0.0) ** 2)
    n = len(labels)
    # float64 sum: N^2 / 2 terms may pass float32's range where their mean does not (as _WithGradient)
    return values.double().sum(), torch.tensor(n * (n - 1) // 2), (values > 0).sum()


def _squared_reach(spec: Spec) -> float:
    """How far apart (|x_i - x_j|^2 of the measured points) a pair may lie and still be closer than the margin:
    cosine's distance is |u_i - u_j|^2 / 2 plus the zero rows' shares (>= 0)."""
    margin = spec.margin
    return {"euclidean": max(margin, 0.0) ** 2, "squared_euclidean": margin, "cosine": 2.0 * margin}[spec.distance]


def _contrastive_on_the_matrix(points, labels, spec):
    """`contrastive` over the N x N matrix: the terms and their slopes 2 d and -2 [m - d]+ computed once, without
    autograd's N x N chain, and the slopes handed to the distances' backward (`_WithGradient`)."""
    dist = pairwise_distances(points, spec.distance)
    with torch.no_grad():
        same = labels[:, None] == labels[None, :]
        upper = torch.ones_like(same).triu_(diagonal=1)
        shortfall = (spec.margin - dist).clamp_min_(0.0)
        values = torch.where(same, dist * dist, shortfall * shortfall).mul_(upper)
        slopes = torch.where(same, dist, shortfall.neg_()).mul_(upper).mul_(2.0)
        active = (values > 0).sum()
    return _WithGradient.apply(dist, values.sum(dtype=torch.float64), slopes), upper.sum(), active


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

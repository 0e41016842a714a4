"""Every loss of the suite's vocabulary in vectorised torch, on any device, in at most O(N^2) memory.

    loss = metric_loss(embeddings, labels, reference.Spec(mining="semi_hard"))
    loss.backward()

The meaning of each `Spec` field is the oracle's (reference/strategies.py, reference/terms.py); this
module only computes it faster. How:

- Distances: the Gram expansion |x_i|^2 + |x_j|^2 - 2 x_i.x_j (one matmul) on the re-centred batch
  (translation changes no euclidean distance but shrinks the norms the expansion cancels), and the
  pairs where the expansion still cancels most of its bits are recomputed from differences of the rows
  as given. Cosine is |u_a - u_b|^2 / 2 of unit rows, by the same code, so nearly parallel rows keep
  their tiny distances. Selected pairs (`PairDistances`) are always measured from differences.
  Exactly zero distance has value 0 and gradient 0 (TF-Addons and torch.cdist's convention).
- batch_hard, contrastive, triplets: masked reductions and gathers, backward by autograd.
- semi_hard, semi_hard_all, batch_all: per anchor, its negative distances are sorted once and each
  positive distance is located among them with searchsorted (TF-Addons tiles an N^2 x N tensor
  instead). These strategies compute dL/dD alongside the loss, since it is a sparse sum of term slopes,
  and hand it to autograd (`_WithGradient`), so nothing but the N x N coefficient matrix is kept.
- Rows of anchors are processed in chunks, so temporaries stay within `CHUNK_ELEMENTS` elements
  beyond the O(N^2) matrices themselves.
- float16 / bfloat16 inputs are computed in float32 and the loss cast back (as TF-Addons does):
  the Gram expansion in half precision would cancel every bit of a typical distance.
"""
from __future__ import annotations

import torch

from reference import Spec

# How many elements a chunk's temporaries may hold (16 MiB of float32): bounds the memory beyond O(N^2).
CHUNK_ELEMENTS = 1 << 22

# A Gram-expansion entry d2 below this fraction of |x_i|^2 + |x_j|^2 has cancelled more than 3 of its bits:
# such pairs (near-duplicates, tight clusters) are recomputed from their difference. Above it, the
# relative error of d2 stays within about 8x the matmul's own rounding.
REFINE_BELOW = 0.125

LOW_PRECISION = (torch.float16, torch.bfloat16)


# --- distances ------------------------------------------------------------------------------------------


def safe_sqrt(t: torch.Tensor) -> torch.Tensor:
    """sqrt with value 0 and gradient 0 where t <= 0 (sqrt's derivative is infinite at 0)."""
    positive = t > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, t, torch.ones_like(t))), torch.zeros_like(t))


def unit_rows(x: torch.Tensor) -> torch.Tensor:
    """x / |x| row by row; a zero row stays zero and gets gradient 0 (the oracle's `normalize_rows`)."""
    norms = safe_sqrt((x * x).sum(dim=1, keepdim=True))
    nonzero = norms > 0
    return torch.where(nonzero, x / torch.where(nonzero, norms, torch.ones_like(norms)), torch.zeros_like(x))


def _pair_chunks(pairs: int, width: int):
    """Slices of a pair list whose [pairs, width] gathers stay within CHUNK_ELEMENTS."""
    step = max(1, CHUNK_ELEMENTS // max(width, 1))
    return (slice(start, start + step) for start in range(0, pairs, step))


def centred(x: torch.Tensor) -> torch.Tensor:
    """x minus its mean row: translation changes no euclidean distance, and the Gram expansion of the centred
    batch cancels far fewer bits when the batch sits far from the origin."""
    return x - x.mean(dim=0)


class _EuclideanDistances(torch.autograd.Function):
    """The N x N (squared) euclidean distance matrix, with its own backward.

    Forward: the Gram expansion of the centred rows z, then the pairs it cannot resolve
    (d2 < REFINE_BELOW * (|z_i|^2 + |z_j|^2)) recomputed from differences of the rows as given (one rounding
    per coordinate; the centred rows carry two); the diagonal is exactly 0. Backward: dL/dx_i =
    sum_j s_ij (x_i - x_j) with s the symmetrised coefficient, as one matmul for the resolved pairs and from
    differences for the refined ones, so a near-duplicate's gradient does not suffer the cancellation its
    distance was spared.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, squared: bool) -> torch.Tensor:
        z = centred(x)
        sq = (z * z).sum(dim=1)
        d2 = (sq[:, None] + sq[None, :]).addmm_(z, z.T, alpha=-2.0).clamp_min_(0.0)
        rows, cols = _unresolved_pairs(d2, sq)
        for part in _pair_chunks(len(rows), x.shape[1]):
            r, c = rows[part], cols[part]
            diff = x[r] - x[c]
            exact = (diff * diff).sum(dim=1)
            d2[r, c] = exact
            d2[c, r] = exact
        d2.fill_diagonal_(0.0)
        dist = d2 if squared else d2.sqrt_()
        ctx.squared = squared
        ctx.save_for_backward(x, rows, cols, dist)
        return dist

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, rows, cols, dist = ctx.saved_tensors
        if ctx.squared:  # d(d2_ij)/dx_i = 2 (x_i - x_j)
            coeff = 2.0 * grad
        else:  # d(d_ij)/dx_i = (x_i - x_j) / d_ij; 0 at d = 0 by convention
            coeff = (grad / dist).masked_fill_(dist == 0, 0.0)
        sym = coeff + coeff.T
        sym.fill_diagonal_(0.0)
        refined = sym[rows, cols]
        sym[rows, cols] = 0.0
        sym[cols, rows] = 0.0
        z = centred(x)
        out = sym.sum(dim=1, keepdim=True) * z - sym @ z
        for part in _pair_chunks(len(rows), x.shape[1]):
            r, c = rows[part], cols[part]
            push = refined[part, None] * (x[r] - x[c])
            out.index_add_(0, r, push).index_add_(0, c, -push)
        return out, None


def _unresolved_pairs(d2: torch.Tensor, sq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs i < j whose Gram-expansion d2 is below REFINE_BELOW * (|x_i|^2 + |x_j|^2)."""
    d2.fill_diagonal_(float("inf"))
    if d2.min() >= 2.0 * REFINE_BELOW * sq.max():  # one cheap pass settles the usual case: no such pair
        return (torch.zeros(0, dtype=torch.long, device=d2.device),) * 2
    threshold = REFINE_BELOW * sq
    rows, cols = (d2 < threshold[:, None] + threshold[None, :]).nonzero(as_tuple=True)
    upper = rows < cols
    return rows[upper], cols[upper]


# Cosine distances are measured between unit rows u: 1 - u_a.u_b = |u_a - u_b|^2 / 2 exactly for unit rows, and
# that form resolves nearly parallel rows (identical directions give exactly 0) where 1 - u_a.u_b cancels every
# bit. A zero row (cos = 0 with anything, `unit_rows`) adds its share 1/2 to each of its distances.


def _zero_share(u: torch.Tensor) -> torch.Tensor:
    return 0.5 * (u == 0).all(dim=1).to(u.dtype)


def measured_rows(x: torch.Tensor, distance: str) -> torch.Tensor:
    """The rows distances are measured between: unit rows for cosine, else x itself."""
    return unit_rows(x) if distance == "cosine" else x


def pairwise_distances(rows: torch.Tensor, distance: str) -> torch.Tensor:
    """The N x N matrix of `Spec.distance` (reference/distances.py `pairwise`) between `measured_rows`."""
    if distance == "cosine":
        share = _zero_share(rows)
        return 0.5 * _EuclideanDistances.apply(rows, True) + (share[:, None] + share[None, :])
    return _EuclideanDistances.apply(rows, distance == "squared_euclidean")


def pair_distances(rows: torch.Tensor, a: torch.Tensor, b: torch.Tensor, distance: str) -> torch.Tensor:
    """d(rows_a, rows_b) for index vectors a, b, from differences (no cancellation); not differentiable."""
    ra, rb = rows[a], rows[b]
    diff = ra - rb
    squared = (diff * diff).sum(dim=1)
    if distance == "cosine":
        return 0.5 * squared + (_zero_share(ra) + _zero_share(rb))
    return squared if distance == "squared_euclidean" else squared.sqrt()


def add_pair_gradient(grad, rows, a, b, dist, dl_dd, distance: str) -> None:
    """grad += dl_dd * d(d(rows_a, rows_b))/d rows; a pair at zero distance passes no gradient."""
    live = torch.where(dist > 0, dl_dd, torch.zeros_like(dl_dd))
    if distance == "euclidean":
        coefficient = live / torch.where(dist > 0, dist, torch.ones_like(dist))
    else:  # |.|^2, and cosine's |.|^2 / 2
        coefficient = live * (2.0 if distance == "squared_euclidean" else 1.0)
    push = coefficient[:, None] * (rows[a] - rows[b])
    grad.index_add_(0, a, push).index_add_(0, b, -push)


class PairDistances(torch.autograd.Function):
    """d(rows_a, rows_b) for selected pairs; the backward pushes dL/dd through those pairs only, O(P * D),
    in chunks. The strategies that select a few pairs per anchor (batch_hard, semi_hard, triplets) and the
    Triton kernels' selections all end here."""

    @staticmethod
    def forward(ctx, rows: torch.Tensor, a: torch.Tensor, b: torch.Tensor, distance: str) -> torch.Tensor:
        dist = torch.empty(len(a), dtype=rows.dtype, device=rows.device)
        for part in _pair_chunks(len(a), rows.shape[1]):
            dist[part] = pair_distances(rows, a[part], b[part], distance)
        ctx.distance = distance
        ctx.save_for_backward(rows, a, b, dist)
        return dist

    @staticmethod
    def backward(ctx, grad_dist: torch.Tensor):
        rows, a, b, dist = ctx.saved_tensors
        grad = torch.zeros_like(rows)
        for part in _pair_chunks(len(a), rows.shape[1]):
            add_pair_gradient(grad, rows, a[part], b[part], dist[part], grad_dist[part], ctx.distance)
        return grad, None, None, None


# --- what strategies share --------------------------------------------------------------------------------


def term_and_slope(excess: torch.Tensor, spec: Spec) -> tuple[torch.Tensor, torch.Tensor]:
    """[excess + m]+ or softplus(excess) (Spec.soft), and its derivative; excess = d_ap - d_an."""
    if spec.soft:
        return torch.logaddexp(excess, torch.zeros_like(excess)), torch.sigmoid(excess)
    shifted = excess + spec.margin
    return shifted.clamp_min(0.0), (shifted > 0).to(excess.dtype)


class _WithGradient(torch.autograd.Function):
    """A total whose gradient with respect to the distance matrix was computed alongside its value."""

    @staticmethod
    def forward(ctx, dist: torch.Tensor, total: torch.Tensor, grad_dist: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(grad_dist)
        return total.to(dist.dtype)

    @staticmethod
    def backward(ctx, grad_total: torch.Tensor):
        (grad_dist,) = ctx.saved_tensors
        return grad_total * grad_dist, None, None


class _NanGradientWhereNotFinite(torch.autograd.Function):
    """Identity on the loss; where the loss is not finite, the gradient is NaN whatever path autograd took
    (the oracle's convention: what 0/0 gives)."""

    @staticmethod
    def forward(ctx, loss: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(loss)
        ctx.shape = x.shape
        return loss.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (loss,) = ctx.saved_tensors
        poison = torch.where(torch.isfinite(loss), 0.0, float("nan")).to(grad.dtype)
        return grad, poison.expand(ctx.shape)


def reduce(total: torch.Tensor, units: torch.Tensor, active: torch.Tensor, spec: Spec) -> torch.Tensor:
    """Spec.reduction and Spec.empty (reference/terms.py `reduce`) from the sum of the terms, the number of
    units and the number of terms > 0; no host synchronisation."""
    if spec.reduction == "sum":
        loss = total
    else:
        # softplus is positive everywhere: every soft term counts as non-zero, even one that underflowed to 0
        count = units if spec.reduction == "mean" or spec.soft else active
        loss = total / count.clamp_min(1).to(total.dtype)
    if spec.empty == "nan":
        loss = torch.where(units > 0, loss, torch.full_like(loss, float("nan")))
    return loss


def _aggregate(values: torch.Tensor, included: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(sum, units, active) of the terms `values` where `included`."""
    values = torch.where(included, values, torch.zeros_like(values))
    return values.sum(), included.sum(), (values > 0).sum()


def _row_chunks(n: int, width: int):
    """Slices of anchors whose [rows, width] temporaries stay within CHUNK_ELEMENTS."""
    step = max(1, CHUNK_ELEMENTS // max(width, 1))
    return (slice(start, min(start + step, n)) for start in range(0, n, step))


class ClassSlots:
    """Each anchor's class members as a padded [N, K] table, K the largest class size.

    members[a, k]   column of the k-th member of a's class (a itself included), ascending; 0 where padded
    inside[a, k]    that slot is a real member (not padding)
    positive[a, k]  that slot is a real member other than a: a positive of a
    size[a]         how many members a's class has (a included)
    """

    def __init__(self, labels: torch.Tensor):
        n = len(labels)
        classes, inverse, counts = torch.unique(labels, return_inverse=True, return_counts=True)
        by_class = torch.argsort(labels, stable=True)  # members of each class are contiguous, classes ascending
        starts = torch.cumsum(counts, 0) - counts
        width = int(counts.max()) if n else 0
        slot = torch.arange(width, device=labels.device)
        inside = slot[None, :] < counts[inverse][:, None]
        place = (starts[inverse][:, None] + slot[None, :]).clamp_max(max(n - 1, 0))
        self.inside = inside
        self.members = torch.where(inside, by_class[place], torch.zeros_like(place))
        self.positive = inside & (self.members != torch.arange(n, device=labels.device)[:, None])
        self.size = counts[inverse]


def _sorted_negatives(d: torch.Tensor, negative: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's negative distances ascending (non-negatives as +inf at the end), and their columns.

    Distances are >= 0, whose IEEE bit patterns order like integers: sorting them as integers gives the
    same order about 25% faster on CPU than a float sort.
    """
    padded = torch.where(negative, d, torch.full_like(d, float("inf")))
    as_int = {torch.float32: torch.int32, torch.float64: torch.int64}[d.dtype]
    keys, order = torch.sort(padded.view(as_int), dim=1)
    return keys.view(d.dtype), order


# --- the strategies ---------------------------------------------------------------------------------------


def hardest_partners(dist: torch.Tensor, labels: torch.Tensor):
    """Per anchor (no gradient; overwrites `dist`): the column of its farthest positive and of its nearest
    negative (the farthest point of its row when it has no negative, as TF-Addons' masked minimum gives it:
    then every point is of its class), and whether it has a positive and a negative. Class members are read
    from the [N, K] slots, so only the nearest-negative search passes over the N x N matrix. Ties go to the
    first column, as argmax and argmin over the whole row give them (slots hold members in column order)."""
    slots = ClassSlots(labels)
    member_d = dist.gather(1, slots.members)
    lowest = torch.full_like(member_d, -float("inf"))
    positive_slot = torch.where(slots.positive, member_d, lowest).argmax(dim=1, keepdim=True)
    farthest_slot = torch.where(slots.inside, member_d, lowest).argmax(dim=1, keepdim=True)
    real_members = torch.where(slots.inside, slots.members, slots.members[:, :1])
    nearest_negative = dist.scatter_(1, real_members, float("inf")).argmin(dim=1)
    has_negative = slots.size < len(labels)
    negative_at = torch.where(has_negative, nearest_negative, slots.members.gather(1, farthest_slot)[:, 0])
    return slots.members.gather(1, positive_slot)[:, 0], negative_at, slots.size > 1, has_negative


def batch_hard_from_partners(rows, positive_at, negative_at, has_positive, has_negative, spec: Spec):
    """reference.strategies.batch_hard (and _scaled_batch_hard) once each anchor's hardest positive and
    negative are chosen (by `hardest_partners` or the Triton kernel): hp = 0 without a positive."""
    anchors = torch.arange(len(rows), device=rows.device)
    hp = PairDistances.apply(rows, anchors, positive_at, spec.distance)
    hp = torch.where(has_positive, hp, torch.zeros_like(hp))
    hn = PairDistances.apply(rows, anchors, negative_at, spec.distance)
    included = has_positive & has_negative if spec.anchors == "valid" else torch.ones_like(has_positive)
    excess = hp - hn
    if spec.scaled:  # Quaterion: divide by the mean hardest-negative distance of the anchors that count
        count = included.sum()
        mean_hn = torch.where(included, hn, torch.zeros_like(hn)).sum() / count.clamp_min(1).to(hn.dtype)
        # Without any anchor the loss is `empty`; a finite stand-in keeps NaN out of its zero gradient.
        excess = excess / torch.where(count > 0, mean_hn, torch.ones_like(mean_hn))
    values, _ = term_and_slope(excess, spec)
    return _aggregate(values, included)


def batch_hard(rows, labels, spec, triplets=None):
    # d^2 orders pairs as d does: mine on it and skip the square roots
    mined_on = "squared_euclidean" if spec.distance == "euclidean" else spec.distance
    with torch.no_grad():
        partners = hardest_partners(pairwise_distances(rows, mined_on), labels)
    return batch_hard_from_partners(rows, *partners, spec)


def _linearised(rows, labels: torch.Tensor, spec: Spec, chunk_terms, per_slot: bool = False):
    """Run `chunk_terms(d, negative, negatives, members, positive, grad_rows, spec)` over chunks of anchor rows; each
    returns (sum of terms, units, active) and adds the terms' dL/dD to its rows of the gradient.
    per_slot: its temporaries are [rows, K, N] rather than [rows, N]."""
    dist = pairwise_distances(rows, spec.distance)
    slots = ClassSlots(labels)
    grad_dist = torch.zeros_like(dist)
    total = torch.zeros((), dtype=torch.float64, device=dist.device)
    units = torch.zeros((), dtype=torch.int64, device=dist.device)
    active = torch.zeros((), dtype=torch.int64, device=dist.device)
    width = len(labels) * (slots.members.shape[1] if per_slot else 1)
    with torch.no_grad():
        for chunk in _row_chunks(len(labels), width):
            d = dist[chunk]
            negative = labels[chunk, None] != labels[None, :]
            negatives = (len(labels) - slots.size[chunk])[:, None]
            part = chunk_terms(d, negative, negatives, slots.members[chunk], slots.positive[chunk], grad_dist[chunk], spec)
            total, units, active = total + part[0], units + part[1], active + part[2]
    return _WithGradient.apply(dist, total, grad_dist), units, active


def _semi_hard_choice(d, negative, negatives, members):
    """TF-Addons' negative for each (a, slot): the nearest with d_an > d_ap, else the farthest (any column
    when the anchor has no negative: its term uses the constant 0)."""
    ordered, order = _sorted_negatives(d, negative)
    farther = torch.searchsorted(ordered, d.gather(1, members), right=True)  # rank of the first d_an > d_ap
    rank = torch.where(farther < negatives, farther, negatives - 1).clamp_min(0)
    return order.gather(1, rank)


def _windowed_chunk(d, negative, negatives, members, positive, grad_rows, spec):
    """Hinge terms over windows of each (a, p)'s sorted negatives: batch_all's [0, first d_an >= d_ap + m),
    semi_hard_all's (d_ap, d_ap + m]. A window's terms sum to count * (d_ap + m) - sum of its d_an, so the
    gradient is +count at (a, p) and -(how many active windows hold n) at (a, n)."""
    ordered, order = _sorted_negatives(d, negative)
    d_ap = d.gather(1, members)
    upper = d_ap + spec.margin
    below_upper = torch.searchsorted(ordered, upper)  # terms > 0 end here: d_an < d_ap + m
    if spec.mining == "batch_all":
        start, end_of_units = torch.zeros_like(below_upper), negatives.expand_as(below_upper)
    else:
        start = torch.searchsorted(ordered, d_ap, right=True)  # d_an > d_ap
        end_of_units = torch.searchsorted(ordered, upper, right=True)  # d_an <= d_ap + m
    weight = positive.to(d.dtype)
    counts = (below_upper - start).clamp_min(0) * weight
    units = ((end_of_units - start).clamp_min(0) * positive).sum()
    coverage = torch.zeros(d.shape[0], d.shape[1] + 1, dtype=d.dtype, device=d.device)
    coverage.scatter_add_(1, start, weight)
    coverage.scatter_add_(1, torch.maximum(start, below_upper), -weight)
    grad_rows.scatter_add_(1, order, -coverage.cumsum(dim=1)[:, :-1])
    grad_rows.scatter_add_(1, members, counts)
    # Every active term is d_ap + m - d_an, so their sum is <grad_rows, d> + m * (number of them); products of
    # float32 numbers are exact in float64, which keeps the sum from cancelling.
    total = (grad_rows.double() * d.double()).sum() + spec.margin * counts.sum(dtype=torch.float64)
    return total, units, counts.sum().to(torch.int64)


def _soft_batch_all_chunk(d, negative, negatives, members, positive, grad_rows, spec):
    """softplus(d_ap - d_an) over every valid triplet: no window to sort by, so [rows, K, N] directly."""
    d_ap = d.gather(1, members)
    valid = positive[:, :, None] & negative[:, None, :]
    values, slopes = term_and_slope(d_ap[:, :, None] - d[:, None, :], spec)
    zero = torch.zeros((), dtype=d.dtype, device=d.device)
    values, slopes = torch.where(valid, values, zero), torch.where(valid, slopes, zero)
    grad_rows.scatter_add_(1, members, slopes.sum(dim=2))
    grad_rows.sub_(slopes.sum(dim=1))
    return values.sum(dtype=torch.float64), valid.sum(), (values > 0).sum()


def semi_hard(rows, labels, spec, triplets=None):
    with torch.no_grad():
        dist = pairwise_distances(rows, spec.distance)
        slots = ClassSlots(labels)
        chosen = torch.empty_like(slots.members)
        for chunk in _row_chunks(len(labels), len(labels)):
            negative = labels[chunk, None] != labels[None, :]
            negatives = (len(labels) - slots.size[chunk])[:, None]
            chosen[chunk] = _semi_hard_choice(dist[chunk], negative, negatives, slots.members[chunk])
        del dist
    a, slot = slots.positive.nonzero(as_tuple=True)
    d_ap = PairDistances.apply(rows, a, slots.members[a, slot], spec.distance)
    d_an = PairDistances.apply(rows, a, chosen[a, slot], spec.distance)
    d_an = torch.where(slots.size[a] < len(labels), d_an, torch.zeros_like(d_an))
    values, _ = term_and_slope(d_ap - d_an, spec)
    return _aggregate(values, torch.ones_like(values, dtype=torch.bool))


def batch_all(rows, labels, spec, triplets=None):
    if spec.soft:
        return _linearised(rows, labels, spec, _soft_batch_all_chunk, per_slot=True)
    return _linearised(rows, labels, spec, _windowed_chunk)


def semi_hard_all(rows, labels, spec, triplets=None):
    return _linearised(rows, labels, spec, _windowed_chunk)


def explicit_triplets(rows, labels, spec, triplets):
    a, p, n = triplets.to(rows.device).long().reshape(-1, 3).unbind(dim=1)
    excess = PairDistances.apply(rows, a, p, spec.distance) - PairDistances.apply(rows, a, n, spec.distance)
    values, _ = term_and_slope(excess, spec)
    return _aggregate(values, torch.ones_like(values, dtype=torch.bool))


def contrastive(rows, labels, spec, triplets=None):
    """Every unordered pair i < j: y d^2 + (1 - y) [m - d]+^2 (no 1/2 factor, TF-Addons)."""
    dist = pairwise_distances(rows, spec.distance)
    same = labels[:, None] == labels[None, :]
    upper = torch.ones_like(same).triu_(diagonal=1)
    values = torch.where(same, dist * dist, (spec.margin - dist).clamp_min(0.0) ** 2)
    return _aggregate(values, upper)


STRATEGIES = {
    "batch_all": batch_all,
    "batch_hard": batch_hard,
    "semi_hard": semi_hard,
    "semi_hard_all": semi_hard_all,
    "triplets": explicit_triplets,
    "contrastive": contrastive,
}


def finish(loss: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
    """The loss in the input's dtype, with a NaN gradient wherever the loss is not finite."""
    return _NanGradientWhereNotFinite.apply(loss, embeddings).to(embeddings.dtype)


def metric_loss(embeddings: torch.Tensor, labels, spec: Spec, triplets=None) -> torch.Tensor:
    """The loss `spec` describes, as a differentiable scalar on the embeddings' device and dtype.

    embeddings  [N, D] floating tensor (float16/bfloat16 are computed in float32)
    labels      [N] integer labels (tensor or array-like)
    triplets    [T, 3] (anchor, positive, negative) indices, for mining="triplets" only
    """
    work = embeddings.float() if embeddings.dtype in LOW_PRECISION else embeddings
    labels = torch.as_tensor(labels, device=work.device).long().reshape(-1)
    rows = measured_rows(unit_rows(work) if spec.normalize else work, spec.distance)
    if spec.mining == "triplets":
        triplets = torch.as_tensor(triplets, device=work.device)
    total, units, active = STRATEGIES[spec.mining](rows, labels, spec, triplets)
    return finish(reduce(total, units, active, spec), embeddings)

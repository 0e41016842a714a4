"""Distances between the points of a batch (`Spec.distance`, reference/distances.py), in torch.

The *points* are what distances are measured between: the embeddings, L2-normalised first for cosine
(`measured_points`). Two ways to measure them:

- `pairwise_distances`: the N x N matrix, by the Gram expansion |x_i|^2 + |x_j|^2 - 2 x_i.x_j (one matmul) of
  the re-centred batch (translation changes no euclidean distance but shrinks the norms the expansion
  cancels); the pairs where the expansion still cancels most of its bits are recomputed from differences
  of the points as given. Cosine is |u_a - u_b|^2 / 2 of unit points, by the same code, so nearly parallel
  points keep their tiny distances. Strategies mine on it.
- `PairDistances`: selected pairs (a, b), always measured from differences, with a backward that pushes
  dL/dd through those pairs only. The distances that enter a mined loss are measured this way.

Exactly zero distance has value 0 and gradient 0 (TF-Addons and torch.cdist's convention).
"""
from __future__ import annotations

import functools

import torch

from .chunks import pair_chunks
from .scratch import scratch

# Elements of the [pairs, D] temporaries per chunk of `PairDistances` (1 MiB of float32): small chunks stay in the
# cache and reuse the allocator's memory, where one large gather pays a page fault per 4 KiB on every call.
PAIR_ELEMENTS = 1 << 18

# A Gram-expansion entry d2 below this fraction of |x_i|^2 + |x_j|^2 has cancelled more than 3 of its bits:
# such pairs (near-duplicates, tight clusters) are recomputed from their difference. Above it, the
# relative error of d2 stays within about 8x the matmul's own rounding.
REFINE_BELOW = 0.125


def unit_rows(x: torch.Tensor) -> torch.Tensor:
    """x / |x| row by row; a zero row stays zero and gets gradient 0 (the oracle's `normalize_rows`); a row whose norm
    is NaN is zero as well, with a NaN gradient."""
    return _UnitRows.apply(x)


class _UnitRows(torch.autograd.Function):
    """`unit_rows` with its backward written out, (g - u (u.g)) / |x| per row: autograd's chain through the norm,
    the guard for zero rows and the division records a dozen passes over [N, D]."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        norms = (x * x).sum(dim=1, keepdim=True).sqrt_()
        nonzero = norms > 0  # False for NaN as well
        ctx.every_row = bool(nonzero.all())  # the usual batch: a plain division, where the guards cost three passes
        if ctx.every_row:
            units = x / norms
        else:  # x / 1 on a zero row: its entries may be tiny numbers whose squares underflow, so `where`, not a product
            units = torch.where(nonzero, x / torch.where(nonzero, norms, torch.ones_like(norms)), torch.zeros_like(x))
        ctx.save_for_backward(units, norms, nonzero)
        return units

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        units, norms, nonzero = ctx.saved_tensors
        along = (units * grad).sum(dim=1, keepdim=True)
        across = torch.addcmul(grad, units, along, value=-1.0)
        if ctx.every_row:
            return across.div_(norms)
        # a zero row gets 0, a row whose norm is NaN gets NaN (what autograd's chain through it gave)
        return torch.where(nonzero, across / torch.where(nonzero, norms, torch.ones_like(norms)), norms * 0.0)


# The centring shift is the mean rounded to a power of two this many bits below each column's spread.
CENTRE_GRID_BITS = 4


def centred(x: torch.Tensor) -> torch.Tensor:
    """x minus (about) its mean row: translation changes no euclidean distance, and the Gram expansion of the
    centred batch cancels far fewer bits when the batch sits far from the origin.

    The shift is the mean rounded, per column, to a multiple of a power of two 2^-CENTRE_GRID_BITS of the
    column's spread (a column without spread is shifted by its value). A coarse shift keeps a lattice a
    lattice: for integer or dyadic inputs (multiples of 1/8, say) the centred points, their norms and dot
    products stay exact, so equal distances stay equal and the spec's strict comparisons (semi_hard's
    d_an > d_ap, semi_hard_all's window edges) decide exact ties as the oracle does; the mean itself would
    round them apart. Elsewhere it costs nothing: the points stay within 1/32 of the spread of the mean.
    """
    if x.shape[0] == 0:
        return x.clone()
    mean = x.mean(dim=0)
    spread = (x - mean).abs().amax(dim=0)
    flat = spread == 0
    grid = torch.exp2(torch.floor(torch.log2(torch.where(flat, torch.ones_like(spread), spread))) - CENTRE_GRID_BITS)
    grid = grid.clamp_min(torch.finfo(x.dtype).tiny)  # a spread near the underflow threshold: no grid of 0
    return x - torch.where(flat, x[0], torch.round(mean / grid) * grid)


def measured_points(x: torch.Tensor, distance: str) -> torch.Tensor:
    """The points distances are measured between: the unit rows of x for cosine, else x itself."""
    return unit_rows(x) if distance == "cosine" else x


def _the_same_for_copies(x: torch.Tensor, d2: torch.Tensor) -> torch.Tensor:
    """d2 with every copy of a row given its first occurrence's distances, bitwise: a direct computation measures
    identical rows identically, and the spec's ties between them (a positive and a negative that are one point)
    are decided by its strict comparisons; a matmul's blocking may round two identical columns differently."""
    if not has_copies(x):
        return d2
    _, group = torch.unique(x, dim=0, return_inverse=True)
    rows = torch.arange(len(x), device=x.device)
    first = torch.full_like(rows, len(x)).scatter_reduce_(0, group, rows, "amin")[group]
    if torch.equal(first, rows):  # no copies
        return d2
    return d2[first][:, first]


def has_copies(x: torch.Tensor) -> bool:
    """Whether two rows of x may be equal (==, so -0.0 is 0.0): False is certain, True is checked by the caller.
    One integer hash per row (a wrapping sum of the bits times fixed odd weights: equal rows hash equally whatever
    the order of the sum), sorted, neighbours compared; torch.unique(x, dim=0) compares rows one by one."""
    if len(x) < 2:
        return False
    as_int = {torch.float32: torch.int32, torch.float64: torch.int64}.get(x.dtype)
    if as_int is None:
        return True
    bits = (x + 0.0).contiguous().view(as_int).long()  # + 0.0: -0.0 becomes 0.0
    weights = _hash_weights(x.shape[1], x.device)
    keys = torch.sort((bits * weights).sum(dim=1)).values
    return bool((keys[1:] == keys[:-1]).any())


def _hash_weights(width: int, device) -> torch.Tensor:
    generator = torch.Generator().manual_seed(width)
    return (torch.randint(-(2**62), 2**62, (width,), generator=generator) * 2 + 1).to(device)


# Tiles of the symmetrisation: a tile and its mirror stay in the cache, where an element-wise pass over d2 and
# its transposed view strides through memory (8x slower at N = 4096 on one CPU thread).
SYMMETRY_TILE = 128


def symmetrised_(d2: torch.Tensor, combine=torch.minimum) -> torch.Tensor:
    """d2 := combine(d2, d2.T) (torch.minimum or torch.add: commutative, so both halves get the same bits), tile
    by tile in place."""
    n = d2.shape[0]
    for start in range(0, n, SYMMETRY_TILE):
        rows = slice(start, start + SYMMETRY_TILE)
        for other in range(start, n, SYMMETRY_TILE):
            cols = slice(other, other + SYMMETRY_TILE)
            tile, mirror = d2[rows, cols], d2[cols, rows]
            if other == start:  # the tile is its own mirror: no output may overlap what is still to be read
                tile.copy_(combine(tile, mirror.T))
            else:
                combine(tile, mirror.T, out=tile)
                mirror.copy_(tile.T)
    return d2


class _EuclideanDistances(torch.autograd.Function):
    """The N x N (squared) euclidean distance matrix, with its own backward.

    Forward: the Gram expansion of the centred points z, then the pairs it cannot resolve
    (d2 < REFINE_BELOW * (|z_i|^2 + |z_j|^2)) recomputed from differences of the points as given (one rounding
    per coordinate; the centred points carry two); the diagonal is exactly 0. Backward: dL/dx_i =
    sum_j s_ij (x_i - x_j) with s the symmetrised coefficient, as one matmul for the resolved pairs and from
    differences for the refined ones, so a near-duplicate's gradient does not suffer the cancellation its
    distance was spared.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, squared: bool) -> torch.Tensor:
        z = centred(x)
        sq = (z * z).sum(dim=1)
        d2 = (sq[:, None] + sq[None, :]).addmm_(z, z.T, alpha=-2.0).clamp_min_(0.0)
        first, second = _unresolved_pairs(d2, sq)
        for part in pair_chunks(len(first), x.shape[1]):
            i, j = first[part], second[part]
            diff = x.index_select(0, i) - x.index_select(0, j)
            exact = (diff * diff).sum(dim=1)
            d2[i, j] = exact
            d2[j, i] = exact
        d2 = _the_same_for_copies(x, symmetrised_(d2).fill_diagonal_(0.0))
        dist = d2 if squared else d2.sqrt_()
        ctx.squared = squared
        ctx.save_for_backward(x, first, second, dist)
        return dist

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, first, second, dist = ctx.saved_tensors
        if ctx.squared:  # d(d2_ij)/dx_i = 2 (x_i - x_j)
            coeff = 2.0 * grad
        else:  # d(d_ij)/dx_i = (x_i - x_j) / d_ij; 0 at d = 0 by convention
            coeff = (grad / dist).masked_fill_(dist == 0, 0.0)
        sym = symmetrised_(coeff, torch.add)
        sym.fill_diagonal_(0.0)
        refined = sym[first, second]
        sym[first, second] = 0.0
        sym[second, first] = 0.0
        z = centred(x)
        out = sym.sum(dim=1, keepdim=True) * z - sym @ z
        for part in pair_chunks(len(first), x.shape[1]):
            i, j = first[part], second[part]
            push = refined[part, None] * (x.index_select(0, i) - x.index_select(0, j))
            out.index_add_(0, i, push).index_add_(0, j, -push)
        return out, None


def _unresolved_pairs(d2: torch.Tensor, sq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The pairs (first[k], second[k]), first < second, whose Gram-expansion d2 is below
    REFINE_BELOW * (|x_i|^2 + |x_j|^2)."""
    d2.fill_diagonal_(float("inf"))
    if d2.min() >= 2.0 * REFINE_BELOW * sq.max():  # one cheap pass settles the usual case: no such pair
        return (torch.zeros(0, dtype=torch.long, device=d2.device),) * 2
    threshold = REFINE_BELOW * sq
    first, second = (d2 < threshold[:, None] + threshold[None, :]).nonzero(as_tuple=True)
    upper = first < second
    return first[upper], second[upper]


# Cosine distances are measured between unit points u: 1 - u_a.u_b = |u_a - u_b|^2 / 2 exactly for unit points, and
# that form resolves nearly parallel points (identical directions give exactly 0) where 1 - u_a.u_b cancels every
# bit. A zero point (cos = 0 with anything, `unit_rows`) adds its share 1/2 to each of its distances.


def zero_rows(points: torch.Tensor) -> torch.Tensor:
    """Which rows of points are 0 (cheaper than (points == 0).all(dim=1), whose reduction is over booleans)."""
    if points.shape[1] == 0:
        return torch.ones(len(points), dtype=torch.bool, device=points.device)
    return points.abs().amax(dim=1) == 0


def _zero_share(u: torch.Tensor) -> torch.Tensor:
    return 0.5 * zero_rows(u).to(u.dtype)


def pairwise_distances(points: torch.Tensor, distance: str) -> torch.Tensor:
    """The N x N matrix of `Spec.distance` (reference/distances.py `pairwise`) between `measured_points`."""
    if distance == "cosine":
        share = _zero_share(points)
        return 0.5 * _EuclideanDistances.apply(points, True) + (share[:, None] + share[None, :])
    return _EuclideanDistances.apply(points, distance == "squared_euclidean")


def pair_distances(points: torch.Tensor, a: torch.Tensor, b: torch.Tensor, distance: str) -> torch.Tensor:
    """d(points_a, points_b) for index vectors a, b, from differences (no cancellation); not differentiable."""
    pa, pb = points.index_select(0, a), points.index_select(0, b)  # = points[a], points[b]; faster on the CPU
    diff = pa - pb
    shares = _zero_share(pa) + _zero_share(pb) if distance == "cosine" else None
    return _from_squares(diff * diff, distance, shares)


def _from_squares(squares: torch.Tensor, distance: str, shares: torch.Tensor | None) -> torch.Tensor:
    """Each pair's distance from the squares of its difference (the last dimension) and, for cosine, the pair's
    zero-row shares."""
    squared = squares.sum(dim=-1)
    if distance == "cosine":
        return 0.5 * squared + shares
    return squared if distance == "squared_euclidean" else squared.sqrt()


def _pair_coefficient(dist: torch.Tensor, dl_dd: torch.Tensor, distance: str) -> torch.Tensor:
    """c with dL/dpoints_a = c (points_a - points_b) = -dL/dpoints_b; a pair at zero distance passes no gradient."""
    live = torch.where(dist > 0, dl_dd, torch.zeros_like(dl_dd))
    if distance == "euclidean":
        return live / torch.where(dist > 0, dist, torch.ones_like(dist))
    return live * (2.0 if distance == "squared_euclidean" else 1.0)  # |.|^2, and cosine's |.|^2 / 2


def add_pair_gradient(grad, points, a, b, dist, dl_dd, distance: str) -> None:
    """grad += dl_dd * d(d(points_a, points_b))/d points."""
    push = _pair_coefficient(dist, dl_dd, distance)[:, None] * (points.index_select(0, a) - points.index_select(0, b))
    grad.index_add_(0, a, push).index_add_(0, b, -push)


class PartnerDistances(torch.autograd.Function):
    """[K, N]: d(points_i, points_partners[k, i]) for every row i and each of K partner vectors (`partner_distances`),
    with `partner_gradient` as its backward."""

    @staticmethod
    def forward(ctx, points: torch.Tensor, partners: torch.Tensor, distance: str) -> torch.Tensor:
        dists = partner_distances(points, partners, distance)
        ctx.distance = distance
        ctx.save_for_backward(points, partners, dists)
        return dists

    @staticmethod
    def backward(ctx, grad_dists: torch.Tensor):
        points, partners, dists = ctx.saved_tensors
        return partner_gradient(points, partners, dists, grad_dists, ctx.distance), None, None


def partner_distances(points: torch.Tensor, partners: torch.Tensor, distance: str) -> torch.Tensor:
    """[K, N]: d(points_i, points_partners[k, i]), from differences: batch_hard's hardest positive and negative, O(K N
    D). Every row is an anchor, so it is read (and given its gradient, `partner_gradient`) in place, where
    `PairDistances` gathers and scatters both ends of each pair; the K partners go through each operation at once."""
    diffs = _partner_differences(points, partners)
    squares = torch.mul(diffs, diffs, out=scratch("partner squares", diffs.shape, diffs))
    if distance == "cosine":
        share = _zero_share(points)
        return _from_squares(squares, distance, share[:, None] + share[partners.T]).T
    return _from_squares(squares, distance, None).T


def partner_gradient(points, partners, dists, grad_dists, distance: str) -> torch.Tensor:
    """dL/dpoints from dL/d `partner_distances`. The differences are measured again, in scratch memory
    (inhouse/scratch.py), rather than kept from the forward: K N D fresh floats cost more in page faults than the
    arithmetic."""
    # each partner's share -c (x_i - x_p), the anchor's the sum of their negatives: index_add_ with alpha=-1 is 3x
    # slower on the CPU than negating once. A row takes its shares anchor by anchor, each anchor's K partners in a
    # row: where an anchor's two partners are one point with opposite slopes (batch_hard with one class: the farthest
    # member stands in for the negative), its shares cancel before the next anchor's arrive, exactly, as in the oracle.
    pulls = _partner_differences(points, partners)
    pulls.mul_(_pair_coefficient(dists, grad_dists, distance).T.neg_()[..., None])
    grad = functools.reduce(torch.add, pulls.unbind(1)).neg_()  # K adds: a sum over a dimension is 4x slower
    return grad.index_add_(0, partners.T.reshape(-1), pulls.view(-1, pulls.shape[-1]))


def _partner_differences(points: torch.Tensor, partners: torch.Tensor) -> torch.Tensor:
    """[N, K, D] scratch: points_i - points_partners[k, i], each row's K partners side by side."""
    shape = (*partners.T.shape, points.shape[1])
    others = scratch("partners", shape, points)
    torch.index_select(points, 0, partners.T.reshape(-1), out=others.view(-1, shape[-1]))
    return torch.sub(points[:, None], others, out=others)


class PairDistances(torch.autograd.Function):
    """d(points_a, points_b) for selected pairs; the backward pushes dL/dd through those pairs only, O(P * D),
    in chunks. The strategies that select a few pairs per anchor (batch_hard, semi_hard, triplets) and the
    Triton kernels' selections all end here."""

    @staticmethod
    def forward(ctx, points: torch.Tensor, a: torch.Tensor, b: torch.Tensor, distance: str) -> torch.Tensor:
        dist = torch.empty(len(a), dtype=points.dtype, device=points.device)
        for part in pair_chunks(len(a), points.shape[1], _pair_budget(points)):
            dist[part] = pair_distances(points, a[part], b[part], distance)
        ctx.distance = distance
        ctx.save_for_backward(points, a, b, dist)
        return dist

    @staticmethod
    def backward(ctx, grad_dist: torch.Tensor):
        points, a, b, dist = ctx.saved_tensors
        grad = torch.zeros_like(points)
        for part in pair_chunks(len(a), points.shape[1], _pair_budget(points)):
            add_pair_gradient(grad, points, a[part], b[part], dist[part], grad_dist[part], ctx.distance)
        return grad, None, None, None


def _pair_budget(points: torch.Tensor) -> int | None:
    """PAIR_ELEMENTS on the CPU; on a GPU the largest chunks (CHUNK_ELEMENTS): fewer kernel launches."""
    return PAIR_ELEMENTS if points.device.type == "cpu" else None

"""Fused Triton kernels for batch_hard and batch_all that never hold the N x N distance matrix.

Each program takes a tile of anchors and walks over tiles of candidates. A tile's distances come from `tl.dot`:
the Gram expansion |z_i|^2 + |z_j|^2 - 2 z_i.z_j of the re-centred batch (`distances.centred`), or 1 - u_i.u_j of
unit rows for cosine. Its error is relative to the rows' norms, not to the distance, so two things are added to
meet the direct computation's accuracy that the suite holds every adapter to:

- Refinement. Where a tile entry cancelled more than 3 bits (d2 < `distances.REFINE_BELOW` (|z_i|^2 + |z_j|^2):
  near-duplicates, tight clusters in a wide batch), the tile is measured again from differences of the points as
  given (`_direct_squares`), and those entries replaced, as inhouse/distances.py does for the torch losses. The
  direct arithmetic goes one coordinate after another, so every pair gets the same operations in the same order
  wherever it sits, and `_pair_kernel` repeats them: pairs with equal differences get bitwise equal distances.
  A tile without such an entry pays one comparison per entry and one reduction.
- Error bounds. Every Gram entry carries a bound e_ij = w_i + w_j on its error, w_i = (2 D + 8) eps (|z_i|^2 + tiny)
  (`_bands`: the dot product, the two norms, the three-term sum and the centring's rounding; tiny covers products
  that underflow); a refined entry is the direct computation itself (bound 0).

- batch_hard (`hardest_partners`, `_mine`): per anchor the running farthest positive and nearest negative, each
  with its bound, and the largest upper (smallest lower) bound of every other candidate. An anchor whose runner-up
  interval reaches its best one (a decision the Gram expansion cannot take: near ties, exact ties on lattices) is
  flagged, and a second launch of the same kernel (DIRECT) mines the flagged anchors' rows from differences only,
  choosing as the oracle does (strict comparisons, the first column on ties). The selection is therefore the one a
  direct computation makes. Mining on d^2 picks the pairs mining on d would. The 2N chosen pairs are then measured
  from their differences by `distances.PairDistances`, whose backward pushes dL/dhp and dL/dhn through those pairs
  only. Memory beyond the inputs: the centred copy (N x D) and O(N). Time: the Gram pass (per tile entry a few more
  comparisons and reductions than mining alone), plus one O(N D) row per flagged anchor (none or a few on a
  typical batch; every anchor of a batch made of exact ties), plus refined tiles (those holding near pairs).
- batch_all (`BatchAllTotal`): every anchor's positive distances d_ap + m sit in an [N, K] table (K the largest
  class), measured from differences by `_pair_kernel`; the forward kernel sums each anchor's terms over its
  negatives in float64 (N^2 K terms of a wide batch overflow float32 where their mean does not) and accumulates,
  for each (a, p), the sum of the terms' slopes. Soft terms also refine every d_an that lies within its bound of
  one of the anchor's d_ap + m, where that bound exceeds SOFT_SLOPE_TOLERANCE: softplus' slope at an exact tie is
  1/2, and far from the origin a Gram d_an off by more than about 1 would make it 0 or 1 (refined, a tie between
  identical rows is exact, as in a direct computation). The backward is a second tiled pass for the negative
  pairs, whose coefficient sum_p slope(a, p, n) it recomputes from the table with the same refinement; a refined
  pair's gradient is pushed from its difference (atomically, into a separate buffer), the others' through one
  `tl.dot` per tile. The positive pairs' part uses the saved slope sums.

Without CUDA the kernels run under Triton's interpreter: `TRITON_INTERPRET=1` must be set before this
module is imported (adapters/inhouse.py arranges it). Not covered by these kernels: semi_hard,
semi_hard_all, triplets, contrastive (inhouse/torch_losses.py has those).
"""
from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from reference import Spec

from .chunks import pair_chunks
from .distances import REFINE_BELOW, add_pair_gradient, centred, measured_points, pair_distances, unit_rows
from .strategies import batch_hard_from_partners
from .terms import finish, in_working_precision, reduce

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
DISTANCE_CODES = {"euclidean": 0, "squared_euclidean": 1, "cosine": 2}

# Tile sizes. batch_all's inner tensors are [BLOCK_M, BLOCK_P, BLOCK_N], hence its smaller tiles.
HARDEST_TILE = 64
BATCH_ALL_ROWS, BATCH_ALL_COLS, BATCH_ALL_SLOTS = 16, 32, 8
PAIR_BLOCK = 128  # pairs per program of `_pair_kernel`

# A soft term's slope moves by at most a quarter of its excess's error. Where the bound on a Gram d_an's error is
# below this, the slope is accurate enough as it is (float32: within 1e-3, half of JAX's float32 gradient tolerance;
# float64: within 1e-6; the bound itself is ~50x pessimistic); above it d_an is measured from differences wherever it
# lies within the bound of one of the anchor's d_ap + m (far from the origin the bound exceeds 1, and a Gram d_an
# would turn the slope 1/2 of an exact tie into 0 or 1).
SOFT_SLOPE_TOLERANCE = {torch.float32: 2.0**-8, torch.float64: 2.0**-18}


@triton.jit
def _load_rows(x_ptr, sq_ptr, index, N, D, BLOCK_D: tl.constexpr):
    """Rows `index` of x ([len, BLOCK_D], zero-padded) and their squared norms."""
    dims = tl.arange(0, BLOCK_D)
    rows = tl.load(x_ptr + index[:, None] * D + dims[None, :], mask=(index[:, None] < N) & (dims[None, :] < D), other=0.0)
    return rows, tl.load(sq_ptr + index, mask=index < N, other=0.0)


@triton.jit
def _gram_tile(xa, xb, sq_a, sq_b, COSINE: tl.constexpr, REFINE: tl.constexpr):
    """The [rows, cols] tile by the Gram expansion: squared euclidean distances of centred points, or 1 - u.v of unit
    points (COSINE); and where it cancelled more than 3 bits (below REFINE (|a|^2 + |b|^2), for cosine the same
    in |u - v|^2 / 2 units)."""
    dot = tl.dot(xa, tl.trans(xb), input_precision="ieee", out_dtype=xa.dtype)
    norms = sq_a[:, None] + sq_b[None, :]
    if COSINE:
        d = tl.maximum(1.0 - dot, 0.0)
        unresolved = d < (0.5 * REFINE) * norms
    else:
        d = tl.maximum(norms - 2.0 * dot, 0.0)
        unresolved = d < REFINE * norms
    return d, unresolved


@triton.jit
def _direct_squares(p_ptr, rows, cols, N, D, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """|p_row - p_col|^2 from differences of the points as given, one coordinate after another: every pair gets the
    same operations in the same order wherever it sits (`_pair_kernel` repeats them), so pairs with equal
    differences get equal distances."""
    acc = tl.zeros((BLOCK_M, BLOCK_N), p_ptr.dtype.element_ty)
    for k in range(0, D):
        a = tl.load(p_ptr + rows * D + k, mask=rows < N, other=0.0)
        b = tl.load(p_ptr + cols * D + k, mask=cols < N, other=0.0)
        diff = a[:, None] - b[None, :]
        acc += diff * diff
    return acc


@triton.jit
def _sqrt(x):
    """Correctly rounded square root (tl.sqrt is approximate in float32): exact on perfect squares, as IEEE's is."""
    if x.dtype == tl.float64:
        return tl.sqrt(x)
    else:
        return tl.sqrt_rn(x)


@triton.jit
def _from_squares(squares, share_a, share_b, DISTANCE: tl.constexpr):
    """`distances.pair_distances` from |p_a - p_b|^2: DISTANCE 0 euclidean, 1 squared euclidean, 2 cosine
    (|u_a - u_b|^2 / 2 of unit points, plus 1/2 for each zero point: `share_*`)."""
    if DISTANCE == 2:
        return 0.5 * squares + share_a + share_b
    elif DISTANCE == 0:
        return _sqrt(squares)
    else:
        return squares


@triton.jit
def _zero_share(sq):
    """1/2 for a zero point (cos(0, v) = 0: its cosine distance to anything is 1), else 0."""
    return tl.where(sq == 0, 0.5, 0.0)


# --- batch_hard -------------------------------------------------------------------------------------------


@triton.jit
def _hardest_kernel(
    z_ptr, sq_ptr, band_ptr, p_ptr, labels_ptr, anchors_ptr, positive_ptr, negative_ptr, flagged_ptr, M, N, D,
    COSINE: tl.constexpr, DIRECT: tl.constexpr, REFINE: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
):
    """For the M anchors `anchors`: the column of the farthest positive and of the nearest negative (farthest point
    without negatives), mined on d^2 (cosine: its own distance).

    DIRECT=False: the Gram pass; near pairs refined from differences; an anchor whose decision lies within the
    error bounds is flagged (`flagged_ptr`). DIRECT=True: every distance from differences (the flagged anchors)."""
    slots = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    rows = tl.load(anchors_ptr + slots, mask=slots < M, other=N)  # N: no anchor, masked everywhere
    live = rows < N
    row_labels = tl.load(labels_ptr + rows, mask=live)
    za, sq_a = _load_rows(z_ptr, sq_ptr, rows, N, D, BLOCK_D)
    band_a = tl.load(band_ptr + rows, mask=live, other=0.0)
    share_a = _zero_share(sq_a)
    # farthest positive: value, its error bound, column, and the largest upper bound of every other positive
    far = tl.full((BLOCK_M,), float("-inf"), za.dtype)
    far_err = tl.zeros((BLOCK_M,), za.dtype)
    far_at = tl.full((BLOCK_M,), -1, tl.int32)
    far_rest = tl.full((BLOCK_M,), float("-inf"), za.dtype)
    # nearest negative: likewise, with the smallest lower bound of every other negative
    near = tl.full((BLOCK_M,), float("inf"), za.dtype)
    near_err = tl.zeros((BLOCK_M,), za.dtype)
    near_at = tl.full((BLOCK_M,), -1, tl.int32)
    near_rest = tl.full((BLOCK_M,), float("inf"), za.dtype)
    for start in range(0, N, BLOCK_N):
        cols = start + tl.arange(0, BLOCK_N)
        in_batch = cols[None, :] < N
        same = row_labels[:, None] == tl.load(labels_ptr + cols, mask=cols < N)[None, :]
        positive = same & in_batch & (rows[:, None] != cols[None, :])
        negative = (~same) & in_batch
        sq_b = tl.load(sq_ptr + cols, mask=cols < N, other=0.0)
        if DIRECT:
            d = _from_squares(_direct_squares(p_ptr, rows, cols, N, D, BLOCK_M, BLOCK_N),
                              share_a[:, None], _zero_share(sq_b)[None, :], 1 + COSINE)
            err = tl.zeros((BLOCK_M, BLOCK_N), za.dtype)
        else:
            xb, _ = _load_rows(z_ptr, sq_ptr, cols, N, D, BLOCK_D)
            d, unresolved = _gram_tile(za, xb, sq_a, sq_b, COSINE, REFINE)
            err = band_a[:, None] + tl.load(band_ptr + cols, mask=cols < N, other=0.0)[None, :]
            unresolved = unresolved & (positive | negative)
            refined = tl.max(unresolved.to(tl.int32)) > 0
            if refined:
                exact = _from_squares(_direct_squares(p_ptr, rows, cols, N, D, BLOCK_M, BLOCK_N),
                                      share_a[:, None], _zero_share(sq_b)[None, :], 1 + COSINE)
                d = tl.where(unresolved, exact, d)
                err = tl.where(unresolved, 0.0, err)
        # Strict comparisons across tiles keep the first of tied candidates, as argmax/argmin do.
        value, at = tl.max(tl.where(positive, d, float("-inf")), axis=1, return_indices=True)
        better = value > far
        if not DIRECT:
            chosen = cols[None, :] == (start + at)[:, None]
            value_err = band_a + tl.load(band_ptr + start + at, mask=start + at < N, other=0.0)  # unless refined
            if refined:
                value_err = tl.sum(tl.where(chosen, err, 0.0), axis=1)
            others = tl.max(tl.where(positive & ~chosen, d + err, float("-inf")), axis=1)
            far_rest = tl.maximum(far_rest, tl.maximum(others, tl.where(better, far + far_err, value + value_err)))
            far_err = tl.where(better, value_err, far_err)
        far = tl.where(better, value, far)
        far_at = tl.where(better, start + at, far_at)
        value, at = tl.min(tl.where(negative, d, float("inf")), axis=1, return_indices=True)
        better = value < near
        if not DIRECT:
            chosen = cols[None, :] == (start + at)[:, None]
            value_err = band_a + tl.load(band_ptr + start + at, mask=start + at < N, other=0.0)  # unless refined
            if refined:
                value_err = tl.sum(tl.where(chosen, err, 0.0), axis=1)
            others = tl.min(tl.where(negative & ~chosen, d - err, float("inf")), axis=1)
            near_rest = tl.minimum(near_rest, tl.minimum(others, tl.where(better, near - near_err, value - value_err)))
            near_err = tl.where(better, value_err, near_err)
        near = tl.where(better, value, near)
        near_at = tl.where(better, start + at, near_at)
    # Without negatives every point is of the anchor's class: the farthest point of the row is its farthest positive
    # unless that is at distance 0 (then all are, and the first column wins, as argmax gives it).
    has_positive = far_at >= 0
    fallback = tl.where(has_positive & (far > 0), far_at, 0)
    tl.store(positive_ptr + rows, far_at, mask=live)
    tl.store(negative_ptr + rows, tl.where(near_at >= 0, near_at, fallback), mask=live)
    if not DIRECT:
        # A bound is strict where it is not 0 (it overestimates), so touching intervals of two bounded entries decide;
        # two entries with bound 0 are both direct, and their exact tie goes to the first column, as it should.
        unsure = has_positive & (far_rest > far - far_err)
        unsure = unsure | ((near_at >= 0) & (near_rest < near + near_err))
        unsure = unsure | ((near_at < 0) & has_positive & (far - far_err <= 0) & (far + far_err > 0))
        tl.store(flagged_ptr + rows, unsure.to(tl.int32), mask=live)


# --- batch_all --------------------------------------------------------------------------------------------


@triton.jit
def _pair_kernel(p_ptr, sq_ptr, first_ptr, second_ptr, out_ptr, P, D, DISTANCE: tl.constexpr, BLOCK: tl.constexpr):
    """d(p_first, p_second) for a list of pairs, with the arithmetic of `_direct_squares` and `_from_squares`."""
    index = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = index < P
    a = tl.load(first_ptr + index, mask=live, other=0)
    b = tl.load(second_ptr + index, mask=live, other=0)
    acc = tl.zeros((BLOCK,), p_ptr.dtype.element_ty)
    for k in range(0, D):
        diff = tl.load(p_ptr + a * D + k, mask=live, other=0.0) - tl.load(p_ptr + b * D + k, mask=live, other=0.0)
        acc += diff * diff
    share_a = _zero_share(tl.load(sq_ptr + a, mask=live, other=1.0))
    share_b = _zero_share(tl.load(sq_ptr + b, mask=live, other=1.0))
    tl.store(out_ptr + index, _from_squares(acc, share_a, share_b, DISTANCE), mask=live)


@triton.jit
def _batch_all_tile(za, z_ptr, sq_ptr, band_ptr, sq_a, band_a, cols, N, D,
                    DISTANCE: tl.constexpr, BOUNDS: tl.constexpr, REFINE: tl.constexpr, BLOCK_D: tl.constexpr):
    """The tile's Gram distances in the spec's units, where they must be refined, and (BOUNDS; else a placeholder)
    their error bounds."""
    xb, sq_b = _load_rows(z_ptr, sq_ptr, cols, N, D, BLOCK_D)
    d, unresolved = _gram_tile(za, xb, sq_a, sq_b, DISTANCE == 2, REFINE)
    err = d
    if BOUNDS:
        err = band_a[:, None] + tl.load(band_ptr + cols, mask=cols < N, other=0.0)[None, :]
    if DISTANCE == 0:
        d = _sqrt(d)
        if BOUNDS:  # |sqrt(x) - sqrt(y)| <= min(sqrt(e), e / sqrt(y)) for |x - y| <= e
            err = err / tl.where(err > 0, tl.maximum(d, _sqrt(err)), 1.0)  # 0 only in the padding
    return d, err, unresolved


@triton.jit
def _term_and_slope(excess, SOFT: tl.constexpr):
    """[excess]+ or softplus(excess), and the derivative; excess = -inf gives (0, 0). The margin is already
    in the d_ap table (d_ap + m), so no float argument has to cross into the kernel at float32."""
    if SOFT:
        small = tl.exp(-tl.abs(excess))  # <= 1: neither form overflows
        value = tl.maximum(excess, 0.0) + tl.log(1.0 + small)
        slope = tl.where(excess >= 0, 1.0, small) / (1.0 + small)
    else:
        value = tl.maximum(excess, 0.0)
        slope = tl.where(excess > 0, 1.0, 0.0)
    return value, slope


@triton.jit
def _batch_all_forward_kernel(
    z_ptr, sq_ptr, band_ptr, p_ptr, labels_ptr, d_ap_ptr, total_ptr, active_ptr, slope_sum_ptr, N, D, K,
    DISTANCE: tl.constexpr, SOFT: tl.constexpr, SLOPE_TOLERANCE: tl.constexpr, REFINE: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_D: tl.constexpr,
):
    """Per anchor: the sum of its terms over (p, n) (float64) and how many are > 0; per (a, p): sum_n slope."""
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    xa, sq_a = _load_rows(z_ptr, sq_ptr, rows, N, D, BLOCK_D)
    band_a = tl.load(band_ptr + rows, mask=rows < N, other=0.0)
    share_a = _zero_share(sq_a)
    row_labels = tl.load(labels_ptr + rows, mask=rows < N)
    total = tl.zeros((BLOCK_M,), tl.float64)
    active = tl.zeros((BLOCK_M,), tl.int32)
    for first_slot in range(0, K, BLOCK_P):
        slots = first_slot + tl.arange(0, BLOCK_P)
        in_table = (rows[:, None] < N) & (slots[None, :] < K)
        d_ap = tl.load(d_ap_ptr + rows[:, None] * K + slots[None, :], mask=in_table, other=float("-inf"))
        slope_sum = tl.zeros((BLOCK_M, BLOCK_P), xa.dtype)
        for start in range(0, N, BLOCK_N):
            cols = start + tl.arange(0, BLOCK_N)
            d, err, refine = _batch_all_tile(xa, z_ptr, sq_ptr, band_ptr, sq_a, band_a, cols, N, D, DISTANCE, SOFT,
                                             REFINE, BLOCK_D)
            col_labels = tl.load(labels_ptr + cols, mask=cols < N)
            negative = (row_labels[:, None] != col_labels[None, :]) & (cols[None, :] < N)
            excess = tl.where(negative[:, None, :], d_ap[:, :, None] - d[:, None, :], float("-inf"))
            if SOFT:
                loose = (err > SLOPE_TOLERANCE) & negative
                if tl.max(loose.to(tl.int32)) > 0:  # far from the origin only
                    tie = tl.max((tl.abs(excess) <= err[:, None, :]).to(tl.int32), axis=1) > 0
                    refine = refine | (tie & loose)
            refine = refine & negative
            if tl.max(refine.to(tl.int32)) > 0:
                sq_b = tl.load(sq_ptr + cols, mask=cols < N, other=0.0)
                exact = _from_squares(_direct_squares(p_ptr, rows, cols, N, D, BLOCK_M, BLOCK_N),
                                      share_a[:, None], _zero_share(sq_b)[None, :], DISTANCE)
                d = tl.where(refine, exact, d)
                excess = tl.where(negative[:, None, :], d_ap[:, :, None] - d[:, None, :], float("-inf"))
            value, slope = _term_and_slope(excess, SOFT)
            total += tl.sum(tl.sum(value.to(tl.float64), axis=2), axis=1)
            active += tl.sum(tl.sum((value > 0).to(tl.int32), axis=2), axis=1)
            slope_sum += tl.sum(slope, axis=2)
        tl.store(slope_sum_ptr + rows[:, None] * K + slots[None, :], slope_sum, mask=in_table)
    tl.store(total_ptr + rows, total, mask=rows < N)
    tl.store(active_ptr + rows, active, mask=rows < N)


@triton.jit
def _slope_over_slots(d_ap_ptr, owners, d, N, K, SOFT: tl.constexpr, BLOCK_P: tl.constexpr):
    """sum over the positives p of each owner of slope(d_{owner,p} - d), for d an [owners, others] tile."""
    coefficient = tl.zeros(d.shape, d.dtype)
    for first_slot in range(0, K, BLOCK_P):
        slots = first_slot + tl.arange(0, BLOCK_P)
        d_ap = tl.load(
            d_ap_ptr + owners[:, None] * K + slots[None, :],
            mask=(owners[:, None] < N) & (slots[None, :] < K), other=float("-inf"),
        )
        _, slope = _term_and_slope(d_ap[:, :, None] - d[:, None, :], SOFT)
        coefficient += tl.sum(slope, axis=1)
    return coefficient


@triton.jit
def _ties_with_slots(d_ap_ptr, owners, d, err, N, K, BLOCK_P: tl.constexpr):
    """Where d (an [owners, others] tile) lies within its bound `err` of one of its owner's d_ap + m."""
    tie = tl.zeros(d.shape, tl.int32)
    for first_slot in range(0, K, BLOCK_P):
        slots = first_slot + tl.arange(0, BLOCK_P)
        d_ap = tl.load(
            d_ap_ptr + owners[:, None] * K + slots[None, :],
            mask=(owners[:, None] < N) & (slots[None, :] < K), other=float("-inf"),
        )
        close = tl.abs(d_ap[:, :, None] - d[:, None, :]) <= err[:, None, :]
        tie = tl.maximum(tie, tl.max(close.to(tl.int32), axis=1))
    return tie > 0


@triton.jit
def _batch_all_negative_grad_kernel(
    z_ptr, sq_ptr, band_ptr, p_ptr, labels_ptr, d_ap_ptr, grad_ptr, exact_grad_ptr, N, D, K,
    DISTANCE: tl.constexpr, SOFT: tl.constexpr, SLOPE_TOLERANCE: tl.constexpr, REFINE: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_D: tl.constexpr,
):
    """Rows i of d(total)/dx through the negative pairs (i, j): d_ij enters i's terms and j's terms as
    d_an, with coefficient -(sum_p slope(i, p, j) + sum_p slope(j, p, i)). The Gram pairs' part goes to grad_ptr
    (one matmul per tile, of the centred points); the refined pairs' part, from differences of the points as
    given, is added atomically to exact_grad_ptr."""
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    xa, sq_a = _load_rows(z_ptr, sq_ptr, rows, N, D, BLOCK_D)
    band_a = tl.load(band_ptr + rows, mask=rows < N, other=0.0)
    share_a = _zero_share(sq_a)
    row_labels = tl.load(labels_ptr + rows, mask=rows < N)
    pull = tl.zeros((BLOCK_M, BLOCK_D), xa.dtype)  # sum_j c_ij x_j
    weight = tl.zeros((BLOCK_M,), xa.dtype)  # sum_j c_ij
    for start in range(0, N, BLOCK_N):
        cols = start + tl.arange(0, BLOCK_N)
        xb, sq_b = _load_rows(z_ptr, sq_ptr, cols, N, D, BLOCK_D)
        d, err, refine = _batch_all_tile(xa, z_ptr, sq_ptr, band_ptr, sq_a, band_a, cols, N, D, DISTANCE, SOFT,
                                         REFINE, BLOCK_D)
        col_labels = tl.load(labels_ptr + cols, mask=cols < N)
        negative = (row_labels[:, None] != col_labels[None, :]) & (cols[None, :] < N) & (rows[:, None] < N)
        if SOFT:
            loose = (err > SLOPE_TOLERANCE) & negative
            if tl.max(loose.to(tl.int32)) > 0:  # far from the origin only
                tie = _ties_with_slots(d_ap_ptr, rows, d, err, N, K, BLOCK_P)
                tie = tie | tl.trans(_ties_with_slots(d_ap_ptr, cols, tl.trans(d), tl.trans(err), N, K, BLOCK_P))
                refine = refine | (tie & loose)
        refine = refine & negative
        any_refined = tl.max(refine.to(tl.int32)) > 0
        if any_refined:
            exact = _from_squares(_direct_squares(p_ptr, rows, cols, N, D, BLOCK_M, BLOCK_N),
                                  share_a[:, None], _zero_share(sq_b)[None, :], DISTANCE)
            d = tl.where(refine, exact, d)
        as_anchor = _slope_over_slots(d_ap_ptr, rows, d, N, K, SOFT, BLOCK_P)
        as_other = tl.trans(_slope_over_slots(d_ap_ptr, cols, tl.trans(d), N, K, SOFT, BLOCK_P))
        dl_dd = tl.where(negative, -(as_anchor + as_other), 0.0)
        # s_ij: dL/dx_i = sum_j s_ij (x_i - x_j) for the euclidean distances and for cosine's |u_i - u_j|^2 / 2
        if DISTANCE == 1:  # dd/dx_i = 2 (x_i - x_j)
            s = 2.0 * dl_dd
        elif DISTANCE == 0:  # (x_i - x_j) / d, 0 at d = 0
            s = tl.where(d > 0, dl_dd / tl.where(d > 0, d, 1.0), 0.0)
        else:  # cosine from differences: d(|u_i - u_j|^2 / 2)/du_i = u_i - u_j, 0 at d = 0
            s = tl.where(d > 0, dl_dd, 0.0)
        gram = tl.where(refine, 0.0, s)
        if DISTANCE == 2:  # the Gram pairs' d = 1 - u_i.u_j: dd/du_i = -u_j (the radial part (u_i) that the
            coefficient = -gram  # difference form adds is removed by the normalisation's backward)
        else:
            coefficient = -gram
            weight += tl.sum(gram, axis=1)
        pull += tl.dot(coefficient.to(xb.dtype), xb, input_precision="ieee", out_dtype=xa.dtype)
        if any_refined:
            exact_s = tl.where(refine, s, 0.0)
            for k in range(0, D):
                a = tl.load(p_ptr + rows * D + k, mask=rows < N, other=0.0)
                b = tl.load(p_ptr + cols * D + k, mask=cols < N, other=0.0)
                part = tl.sum(exact_s * (a[:, None] - b[None, :]), axis=1)
                tl.atomic_add(exact_grad_ptr + rows * D + k, part, mask=rows < N)
    dims = tl.arange(0, BLOCK_D)
    grad = weight[:, None] * xa + pull
    tl.store(grad_ptr + rows[:, None] * D + dims[None, :], grad, mask=(rows[:, None] < N) & (dims[None, :] < D))


# --- host side --------------------------------------------------------------------------------------------


def _width(d: int) -> int:
    return max(16, triton.next_power_of_2(d))  # tl.dot needs every tile side >= 16


def _kernel_points(points: torch.Tensor, distance: str) -> tuple[torch.Tensor, torch.Tensor]:
    """What the kernels' Gram expansion reads: the centred points for the euclidean distances (`centred`), the
    unit points for cosine; and their squared norms."""
    z = (points if distance == "cosine" else centred(points)).contiguous()
    return z, (z * z).sum(dim=1).contiguous()


def _bands(sq: torch.Tensor, d: int) -> torch.Tensor:
    """w_i with |Gram d2_ij - exact d2_ij| <= w_i + w_j: (2 D + 8) eps (|z_i|^2 + tiny). The dot product and each
    norm carry D eps (|z_i|^2 + |z_j|^2) / 2 and D eps |z|^2; the three-term sum 2 eps of its operands; the centring
    rounds each coordinate once (2 eps); tiny covers products that underflow."""
    info = torch.finfo(sq.dtype)
    return ((2 * d + 8) * info.eps * (sq + info.tiny)).contiguous()


def _mine(points: torch.Tensor, labels: torch.Tensor, distance: str):
    """The kernel's selection (positive_at, negative_at as int32 columns) and the anchors the Gram pass could not
    decide, which the direct pass then measured again."""
    n, d = points.shape
    z, sq = _kernel_points(points, distance)
    band = _bands(sq, d)
    positive_at = torch.empty(n, dtype=torch.int32, device=points.device)
    negative_at = torch.empty(n, dtype=torch.int32, device=points.device)
    flagged = torch.empty(n, dtype=torch.int32, device=points.device)
    setup = dict(COSINE=distance == "cosine", REFINE=REFINE_BELOW, BLOCK_M=HARDEST_TILE, BLOCK_N=HARDEST_TILE,
                 BLOCK_D=_width(d))
    everyone = torch.arange(n, dtype=torch.int32, device=points.device)
    _hardest_kernel[(triton.cdiv(n, HARDEST_TILE),)](
        z, sq, band, points, labels, everyone, positive_at, negative_at, flagged, n, n, d, DIRECT=False, **setup,
    )
    redo = flagged.nonzero()[:, 0].to(torch.int32)
    if len(redo):
        _hardest_kernel[(triton.cdiv(len(redo), HARDEST_TILE),)](
            z, sq, band, points, labels, redo, positive_at, negative_at, flagged, len(redo), n, d, DIRECT=True,
            **setup,
        )
    return positive_at, negative_at, redo


def hardest_partners(points: torch.Tensor, labels: torch.Tensor, distance: str):
    """`mining.hardest_partners` by `_hardest_kernel`, without an N x N matrix: per anchor the column of
    its farthest positive and nearest negative (farthest point without negatives), and whether it has each."""
    n = len(points)
    positive_at, negative_at, _ = _mine(points, labels, distance)
    _, inverse, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    return positive_at.long().clamp_min(0), negative_at.long(), positive_at >= 0, counts[inverse] < n


def _direct_pairs(points: torch.Tensor, sq: torch.Tensor, a: torch.Tensor, b: torch.Tensor, distance: str):
    """d(points_a, points_b) by `_pair_kernel`: bitwise what the batch_all kernels' refined tiles give."""
    out = torch.empty(len(a), dtype=points.dtype, device=points.device)
    if len(a):
        _pair_kernel[(triton.cdiv(len(a), PAIR_BLOCK),)](
            points, sq, a, b, out, len(a), points.shape[1], DISTANCE=DISTANCE_CODES[distance], BLOCK=PAIR_BLOCK,
        )
    return out


class BatchAllTotal(torch.autograd.Function):
    """(sum of the terms (float64), units, active) of batch_all over points sorted by label (classes contiguous)."""

    @staticmethod
    def forward(ctx, points: torch.Tensor, labels: torch.Tensor, distance: str, soft: bool, margin: float):
        n, d = points.shape
        _, counts = torch.unique_consecutive(labels, return_counts=True)
        size = torch.repeat_interleave(counts, counts)
        start = torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
        width = int(counts.max())
        anchors = torch.arange(n, device=points.device)[:, None].expand(n, width)
        partners = start[:, None] + torch.arange(width, device=points.device)[None, :]
        positive = (partners < (start + size)[:, None]) & (partners != anchors)
        a, p = anchors[positive], partners[positive]
        z, sq = _kernel_points(points, distance)  # for cosine, sq also marks the zero points
        band = _bands(sq, d)
        shifted_d_ap = torch.full((n, width), float("-inf"), dtype=points.dtype, device=points.device)
        shifted_d_ap[a, p - start[a]] = _direct_pairs(points, sq, a, p, distance) + margin
        total = torch.empty(n, dtype=torch.float64, device=points.device)
        active = torch.empty(n, dtype=torch.int32, device=points.device)
        slope_sum = torch.zeros((n, width), dtype=points.dtype, device=points.device)
        setup = dict(DISTANCE=DISTANCE_CODES[distance], SOFT=soft, SLOPE_TOLERANCE=SOFT_SLOPE_TOLERANCE[points.dtype],
                     REFINE=REFINE_BELOW, BLOCK_M=BATCH_ALL_ROWS, BLOCK_N=BATCH_ALL_COLS, BLOCK_P=BATCH_ALL_SLOTS,
                     BLOCK_D=_width(d))
        _batch_all_forward_kernel[(triton.cdiv(n, BATCH_ALL_ROWS),)](
            z, sq, band, points, labels, shifted_d_ap, total, active, slope_sum, n, d, width, **setup,
        )
        units, active = ((size - 1) * (n - size)).sum(), active.sum()
        ctx.setup = setup
        ctx.distance = distance
        ctx.save_for_backward(points, z, sq, band, labels, shifted_d_ap, slope_sum, a, p, start)
        ctx.mark_non_differentiable(units, active)
        return total.sum(), units, active

    @staticmethod
    def backward(ctx, grad_total, _units, _active):
        points, z, sq, band, labels, shifted_d_ap, slope_sum, a, p, start = ctx.saved_tensors
        n, d = points.shape
        scale = grad_total.to(points.dtype)
        grad = torch.empty_like(points)
        exact = torch.zeros_like(points)
        _batch_all_negative_grad_kernel[(triton.cdiv(n, BATCH_ALL_ROWS),)](
            z, sq, band, points, labels, shifted_d_ap, grad, exact, n, d, shifted_d_ap.shape[1], **ctx.setup,
        )
        grad.add_(exact).mul_(scale)
        for part in pair_chunks(len(a), d):  # the positive pairs, from the saved slope sums
            ap, pp = a[part], p[part]
            dl_dd = scale * slope_sum[ap, pp - start[ap]]
            add_pair_gradient(grad, points, ap, pp, pair_distances(points, ap, pp, ctx.distance), dl_dd, ctx.distance)
        return grad, None, None, None, None


def _prepared(embeddings: torch.Tensor, labels, spec: Spec):
    """The points distances are measured between (`distances.measured_points`, contiguous, float32 for half
    inputs) and the labels as a contiguous int64 tensor on their device."""
    work = in_working_precision(embeddings)
    points = measured_points(unit_rows(work) if spec.normalize else work, spec.distance).contiguous()
    return points, torch.as_tensor(labels, device=points.device).long().reshape(-1).contiguous()


def batch_hard_loss(embeddings: torch.Tensor, labels, spec: Spec) -> torch.Tensor:
    """Every batch_hard spec (hinge, soft, scaled; anchors; reductions; empty), mined by the fused kernel."""
    points, labels = _prepared(embeddings, labels, spec)
    partners = hardest_partners(points, labels, spec.distance)
    return finish(reduce(*batch_hard_from_partners(points, *partners, spec), spec), embeddings)


def batch_all_loss(embeddings: torch.Tensor, labels, spec: Spec) -> torch.Tensor:
    """Every batch_all spec (hinge or soft; reductions; empty) with the fused kernels; the sum of the terms stays
    in float64 until the reduction (a mean of float32 terms may be finite where their sum is not)."""
    points, labels = _prepared(embeddings, labels, spec)
    by_class = torch.argsort(labels, stable=True)
    total, units, active = BatchAllTotal.apply(
        points[by_class].contiguous(), labels[by_class].contiguous(), spec.distance, spec.soft, spec.margin
    )
    return finish(reduce(total, units, active, spec), embeddings)


LOSSES = {"batch_hard": batch_hard_loss, "batch_all": batch_all_loss}


def metric_loss(embeddings: torch.Tensor, labels, spec: Spec, triplets=None) -> torch.Tensor:
    """The loss `spec` describes, for the minings the kernels cover (`LOSSES`)."""
    if spec.mining not in LOSSES:
        raise NotImplementedError(f"the Triton kernels do not cover mining={spec.mining!r}; use inhouse.torch_losses")
    return LOSSES[spec.mining](embeddings, labels, spec)

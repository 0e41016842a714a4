"""Fused Triton kernels for batch_hard and batch_all that never hold the N x N distance matrix: the losses.

batch_hard mines with inhouse/triton_hardest.py; the tiles, error bounds and refinement both use are in
inhouse/triton_tiles.py.

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
from .distances import REFINE_BELOW, add_pair_gradient, measured_points, pair_distances, unit_rows
from .strategies import batch_hard_from_partners
from .terms import finish, in_working_precision, reduce
from .triton_hardest import hardest_partners
from .triton_tiles import (DISTANCE_CODES, _bands, _direct_pairs, _direct_squares, _from_squares, _gram_tile,
                           _kernel_points, _load_rows, _width, _zero_share, _sqrt)

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"

# batch_all's tiles (rows, columns, slots): its inner tensors are [BLOCK_M, BLOCK_P, BLOCK_N], hence small ones on a
# GPU. The interpreter's cost is per operation, not per element: there one tile holds a conformance batch (6x less
# time at 40 rows). tests/inhouse/test_triton_kernels.py runs the GPU's tiles on batches that span several.
GPU_TILES = (16, 32, 8)
INTERPRETER_TILES = (64, 64, 16)
BATCH_ALL_TILES = INTERPRETER_TILES if INTERPRETED else GPU_TILES

# A soft term's slope moves by at most a quarter of its excess's error. Where the bound on a Gram d_an's error is
# below this, the slope is accurate enough as it is (float32: within 1e-3, half of JAX's float32 gradient tolerance;
# float64: within 1e-6; the bound itself is ~50x pessimistic); above it d_an is measured from differences wherever it
# lies within the bound of one of the anchor's d_ap + m (far from the origin the bound exceeds 1, and a Gram d_an
# would turn the slope 1/2 of an exact tie into 0 or 1).
SOFT_SLOPE_TOLERANCE = {torch.float32: 2.0**-8, torch.float64: 2.0**-18}


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
def _owner_slots(d_ap_ptr, owners, first_slot, N, K, BLOCK_P: tl.constexpr):
    """The owners' d_ap + m in slots first_slot .. first_slot + BLOCK_P, -inf where there is none."""
    slots = first_slot + tl.arange(0, BLOCK_P)
    return tl.load(d_ap_ptr + owners[:, None] * K + slots[None, :], mask=(owners[:, None] < N) & (slots[None, :] < K),
                   other=float("-inf"))


@triton.jit
def _slope_over_slots(d_ap_ptr, owners, d, N, K, SOFT: tl.constexpr, BLOCK_P: tl.constexpr):
    """sum over the positives p of each owner of slope(d_{owner,p} - d), for d an [owners, others] tile."""
    coefficient = tl.zeros(d.shape, d.dtype)
    for first_slot in range(0, K, BLOCK_P):
        d_ap = _owner_slots(d_ap_ptr, owners, first_slot, N, K, BLOCK_P)
        _, slope = _term_and_slope(d_ap[:, :, None] - d[:, None, :], SOFT)
        coefficient += tl.sum(slope, axis=1)
    return coefficient


@triton.jit
def _ties_with_slots(d_ap_ptr, owners, d, err, N, K, BLOCK_P: tl.constexpr):
    """Where d (an [owners, others] tile) lies within its bound `err` of one of its owner's d_ap + m."""
    tie = tl.zeros(d.shape, tl.int32)
    for first_slot in range(0, K, BLOCK_P):
        d_ap = _owner_slots(d_ap_ptr, owners, first_slot, N, K, BLOCK_P)
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
        rows, cols, slots = BATCH_ALL_TILES
        setup = dict(DISTANCE=DISTANCE_CODES[distance], SOFT=soft, SLOPE_TOLERANCE=SOFT_SLOPE_TOLERANCE[points.dtype],
                     REFINE=REFINE_BELOW, BLOCK_M=rows, BLOCK_N=cols, BLOCK_P=slots, BLOCK_D=_width(d))
        _batch_all_forward_kernel[(triton.cdiv(n, rows),)](
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
        _batch_all_negative_grad_kernel[(triton.cdiv(n, ctx.setup["BLOCK_M"]),)](
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

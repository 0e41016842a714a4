"""Fused Triton kernels for batch_hard and batch_all that never hold the N x N distance matrix.

Each program takes a tile of anchors, walks over tiles of candidates, measures the tile's distances with
`tl.dot` (the Gram expansion of the re-centred batch, or 1 - cos of unit rows), masks them with the
labels, and keeps per anchor what the loss needs:

- batch_hard (`hardest_partners`): the running farthest positive, nearest negative and farthest point (the
  fallback for an anchor without negatives). Mining on d^2 picks the pairs mining on d would. The 2N chosen
  pairs are then measured exactly from their differences by `distances.PairDistances`, whose backward
  pushes dL/dhp and dL/dhn through those saved pairs only: O(N * D) time and memory.
- batch_all (`BatchAllTotal`): every anchor's positive distances d_ap + m sit in an [N, K] table (K the largest
  class); the kernel sums each anchor's terms over its negatives and accumulates, for each (a, p), the sum
  of the terms' slopes. The backward is a second tiled pass for the negative pairs, whose coefficient
  sum_p slope(a, p, n) it recomputes from the table; the positive pairs' part uses the saved slope sums.

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
from .distances import add_pair_gradient, centred, measured_points, pair_distances, unit_rows
from .strategies import batch_hard_from_partners
from .terms import finish, in_working_precision, reduce

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
DISTANCE_CODES = {"euclidean": 0, "squared_euclidean": 1, "cosine": 2}

# Tile sizes. batch_all's inner tensors are [BLOCK_M, BLOCK_P, BLOCK_N], hence its smaller tiles.
HARDEST_TILE = 64
BATCH_ALL_ROWS, BATCH_ALL_COLS, BATCH_ALL_SLOTS = 16, 32, 8


@triton.jit
def _load_rows(x_ptr, sq_ptr, index, N, D, BLOCK_D: tl.constexpr):
    """Rows `index` of x ([len, BLOCK_D], zero-padded) and their squared norms."""
    dims = tl.arange(0, BLOCK_D)
    rows = tl.load(x_ptr + index[:, None] * D + dims[None, :], mask=(index[:, None] < N) & (dims[None, :] < D), other=0.0)
    return rows, tl.load(sq_ptr + index, mask=index < N, other=0.0)


@triton.jit
def _distance_tile(xa, xb, sq_a, sq_b, rows, cols, DISTANCE: tl.constexpr):
    """The [rows, cols] tile of distances: DISTANCE 0 euclidean, 1 squared euclidean, 2 cosine (1 - u.v)."""
    dot = tl.dot(xa, tl.trans(xb), input_precision="ieee", out_dtype=xa.dtype)
    if DISTANCE == 2:
        d = tl.maximum(1.0 - dot, 0.0)
    else:
        d = tl.maximum(sq_a[:, None] + sq_b[None, :] - 2.0 * dot, 0.0)
        d = tl.where(rows[:, None] == cols[None, :], 0.0, d)
        if DISTANCE == 0:
            d = tl.sqrt(d)
    return d


@triton.jit
def _hardest_kernel(
    x_ptr, sq_ptr, labels_ptr, positive_ptr, negative_ptr, N, D,
    DISTANCE: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    xa, sq_a = _load_rows(x_ptr, sq_ptr, rows, N, D, BLOCK_D)
    row_labels = tl.load(labels_ptr + rows, mask=rows < N)
    farthest_positive = tl.full((BLOCK_M,), float("-inf"), xa.dtype)
    nearest_negative = tl.full((BLOCK_M,), float("inf"), xa.dtype)
    farthest = tl.full((BLOCK_M,), float("-inf"), xa.dtype)
    positive_at = tl.full((BLOCK_M,), -1, tl.int32)
    negative_at = tl.full((BLOCK_M,), -1, tl.int32)
    farthest_at = tl.full((BLOCK_M,), -1, tl.int32)
    for start in range(0, N, BLOCK_N):
        cols = start + tl.arange(0, BLOCK_N)
        xb, sq_b = _load_rows(x_ptr, sq_ptr, cols, N, D, BLOCK_D)
        d = _distance_tile(xa, xb, sq_a, sq_b, rows, cols, DISTANCE)
        in_batch = cols[None, :] < N
        same = row_labels[:, None] == tl.load(labels_ptr + cols, mask=cols < N)[None, :]
        positive = same & in_batch & (rows[:, None] != cols[None, :])
        negative = (~same) & in_batch
        # Strict comparisons across tiles keep the first of tied candidates, as argmax/argmin do.
        value, at = tl.max(tl.where(positive, d, float("-inf")), axis=1, return_indices=True)
        better = value > farthest_positive
        farthest_positive = tl.where(better, value, farthest_positive)
        positive_at = tl.where(better, start + at, positive_at)
        value, at = tl.min(tl.where(negative, d, float("inf")), axis=1, return_indices=True)
        better = value < nearest_negative
        nearest_negative = tl.where(better, value, nearest_negative)
        negative_at = tl.where(better, start + at, negative_at)
        value, at = tl.max(tl.where(in_batch, d, float("-inf")), axis=1, return_indices=True)
        better = value > farthest
        farthest = tl.where(better, value, farthest)
        farthest_at = tl.where(better, start + at, farthest_at)
    tl.store(positive_ptr + rows, positive_at, mask=rows < N)
    tl.store(negative_ptr + rows, tl.where(negative_at >= 0, negative_at, farthest_at), mask=rows < N)


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
    x_ptr, sq_ptr, labels_ptr, d_ap_ptr, total_ptr, active_ptr, slope_sum_ptr, N, D, K,
    DISTANCE: tl.constexpr, SOFT: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_D: tl.constexpr,
):
    """Per anchor: the sum of its terms over (p, n) and how many are > 0; per (a, p): sum_n slope."""
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    xa, sq_a = _load_rows(x_ptr, sq_ptr, rows, N, D, BLOCK_D)
    row_labels = tl.load(labels_ptr + rows, mask=rows < N)
    total = tl.zeros((BLOCK_M,), xa.dtype)
    active = tl.zeros((BLOCK_M,), tl.int32)
    for first_slot in range(0, K, BLOCK_P):
        slots = first_slot + tl.arange(0, BLOCK_P)
        in_table = (rows[:, None] < N) & (slots[None, :] < K)
        d_ap = tl.load(d_ap_ptr + rows[:, None] * K + slots[None, :], mask=in_table, other=float("-inf"))
        slope_sum = tl.zeros((BLOCK_M, BLOCK_P), xa.dtype)
        for start in range(0, N, BLOCK_N):
            cols = start + tl.arange(0, BLOCK_N)
            xb, sq_b = _load_rows(x_ptr, sq_ptr, cols, N, D, BLOCK_D)
            d = _distance_tile(xa, xb, sq_a, sq_b, rows, cols, DISTANCE)
            col_labels = tl.load(labels_ptr + cols, mask=cols < N)
            negative = (row_labels[:, None] != col_labels[None, :]) & (cols[None, :] < N)
            excess = tl.where(negative[:, None, :], d_ap[:, :, None] - d[:, None, :], float("-inf"))
            value, slope = _term_and_slope(excess, SOFT)
            total += tl.sum(tl.sum(value, axis=2), axis=1)
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
def _batch_all_negative_grad_kernel(
    x_ptr, sq_ptr, labels_ptr, d_ap_ptr, grad_ptr, N, D, K,
    DISTANCE: tl.constexpr, SOFT: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_D: tl.constexpr,
):
    """Rows i of d(total)/dx through the negative pairs (i, j): d_ij enters i's terms and j's terms as
    d_an, with coefficient -(sum_p slope(i, p, j) + sum_p slope(j, p, i))."""
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    xa, sq_a = _load_rows(x_ptr, sq_ptr, rows, N, D, BLOCK_D)
    row_labels = tl.load(labels_ptr + rows, mask=rows < N)
    pull = tl.zeros((BLOCK_M, BLOCK_D), xa.dtype)  # sum_j c_ij x_j
    weight = tl.zeros((BLOCK_M,), xa.dtype)  # sum_j c_ij
    for start in range(0, N, BLOCK_N):
        cols = start + tl.arange(0, BLOCK_N)
        xb, sq_b = _load_rows(x_ptr, sq_ptr, cols, N, D, BLOCK_D)
        d = _distance_tile(xa, xb, sq_a, sq_b, rows, cols, DISTANCE)
        col_labels = tl.load(labels_ptr + cols, mask=cols < N)
        negative = (row_labels[:, None] != col_labels[None, :]) & (cols[None, :] < N) & (rows[:, None] < N)
        as_anchor = _slope_over_slots(d_ap_ptr, rows, d, N, K, SOFT, BLOCK_P)
        as_other = tl.trans(_slope_over_slots(d_ap_ptr, cols, tl.trans(d), N, K, SOFT, BLOCK_P))
        dl_dd = tl.where(negative, -(as_anchor + as_other), 0.0)
        if DISTANCE == 2:  # d = 1 - u_i.u_j: dd/du_i = -u_j where d > 0
            coefficient = tl.where(d > 0, -dl_dd, 0.0)
        elif DISTANCE == 1:  # dd/dx_i = 2 (x_i - x_j)
            coefficient = -2.0 * dl_dd
            weight -= tl.sum(coefficient, axis=1)
        else:  # dd/dx_i = (x_i - x_j) / d, 0 at d = 0
            coefficient = tl.where(d > 0, -dl_dd / tl.where(d > 0, d, 1.0), 0.0)
            weight -= tl.sum(coefficient, axis=1)
        pull += tl.dot(coefficient.to(xb.dtype), xb, input_precision="ieee", out_dtype=xa.dtype)
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


def hardest_partners(points: torch.Tensor, labels: torch.Tensor, distance: str):
    """`mining.hardest_partners` by `_hardest_kernel`, without an N x N matrix: per anchor the column of
    its farthest positive and nearest negative (farthest point without negatives), and whether it has each."""
    n, d = points.shape
    positive_at = torch.empty(n, dtype=torch.int32, device=points.device)
    negative_at = torch.empty(n, dtype=torch.int32, device=points.device)
    # d^2 orders pairs as d does: mine on it and skip the square roots
    code = DISTANCE_CODES["cosine" if distance == "cosine" else "squared_euclidean"]
    _hardest_kernel[(triton.cdiv(n, HARDEST_TILE),)](
        *_kernel_points(points, distance), labels, positive_at, negative_at, n, d,
        DISTANCE=code, BLOCK_M=HARDEST_TILE, BLOCK_N=HARDEST_TILE, BLOCK_D=_width(d),
    )
    _, inverse, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    return positive_at.long().clamp_min(0), negative_at.long(), positive_at >= 0, counts[inverse] < n


class BatchAllTotal(torch.autograd.Function):
    """(sum of the terms, units, active) of batch_all over points sorted by label (classes contiguous)."""

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
        shifted_d_ap = torch.full((n, width), float("-inf"), dtype=points.dtype, device=points.device)
        for part in pair_chunks(len(a), d):
            ap, pp = a[part], p[part]
            shifted_d_ap[ap, pp - start[ap]] = pair_distances(points, ap, pp, distance) + margin
        total = torch.empty(n, dtype=points.dtype, device=points.device)
        active = torch.empty(n, dtype=torch.int32, device=points.device)
        slope_sum = torch.zeros((n, width), dtype=points.dtype, device=points.device)
        z, sq = _kernel_points(points, distance)
        _batch_all_forward_kernel[(triton.cdiv(n, BATCH_ALL_ROWS),)](
            z, sq, labels, shifted_d_ap, total, active, slope_sum, n, d, width,
            DISTANCE=DISTANCE_CODES[distance], SOFT=soft,
            BLOCK_M=BATCH_ALL_ROWS, BLOCK_N=BATCH_ALL_COLS, BLOCK_P=BATCH_ALL_SLOTS, BLOCK_D=_width(d),
        )
        units, active = ((size - 1) * (n - size)).sum(), active.sum()
        ctx.setup = (distance, soft)
        ctx.save_for_backward(points, z, sq, labels, shifted_d_ap, slope_sum, a, p, start)
        ctx.mark_non_differentiable(units, active)
        return total.sum(dtype=torch.float64).to(points.dtype), units, active

    @staticmethod
    def backward(ctx, grad_total, _units, _active):
        distance, soft = ctx.setup
        points, z, sq, labels, shifted_d_ap, slope_sum, a, p, start = ctx.saved_tensors
        n, d = points.shape
        grad = torch.empty_like(points)
        _batch_all_negative_grad_kernel[(triton.cdiv(n, BATCH_ALL_ROWS),)](
            z, sq, labels, shifted_d_ap, grad, n, d, shifted_d_ap.shape[1],
            DISTANCE=DISTANCE_CODES[distance], SOFT=soft,
            BLOCK_M=BATCH_ALL_ROWS, BLOCK_N=BATCH_ALL_COLS, BLOCK_P=BATCH_ALL_SLOTS, BLOCK_D=_width(d),
        )
        grad.mul_(grad_total)
        for part in pair_chunks(len(a), d):  # the positive pairs, from the saved slope sums
            ap, pp = a[part], p[part]
            dl_dd = grad_total * slope_sum[ap, pp - start[ap]]
            add_pair_gradient(grad, points, ap, pp, pair_distances(points, ap, pp, distance), dl_dd, distance)
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
    """Every batch_all spec (hinge or soft; reductions; empty) with the fused kernels."""
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

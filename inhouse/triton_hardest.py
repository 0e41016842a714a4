"""batch_hard's mining by a fused Triton kernel that never holds the N x N distance matrix (the tiles, bounds and
refinement it uses: inhouse/triton_tiles.py).

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
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .distances import REFINE_BELOW
from .triton_tiles import (_bands, _direct_squares, _from_squares, _gram_tile, _kernel_points, _load_rows, _width,
                           _zero_share)

HARDEST_TILE = 64  # anchors and candidates per tile


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


# --- host side --------------------------------------------------------------------------------------------


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

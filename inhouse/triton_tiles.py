"""What the fused Triton kernels share: Gram tiles with error bounds, refinement from differences, pair distances.

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
Without CUDA the kernels run under Triton's interpreter (inhouse/triton_kernels.py).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .distances import centred

DISTANCE_CODES = {"euclidean": 0, "squared_euclidean": 1, "cosine": 2}
PAIR_BLOCK = 128  # pairs per program of `_pair_kernel`


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


def _direct_pairs(points: torch.Tensor, sq: torch.Tensor, a: torch.Tensor, b: torch.Tensor, distance: str):
    """d(points_a, points_b) by `_pair_kernel`: bitwise what the batch_all kernels' refined tiles give."""
    out = torch.empty(len(a), dtype=points.dtype, device=points.device)
    if len(a):
        _pair_kernel[(triton.cdiv(len(a), PAIR_BLOCK),)](
            points, sq, a, b, out, len(a), points.shape[1], DISTANCE=DISTANCE_CODES[distance], BLOCK=PAIR_BLOCK,
        )
    return out

"""batch_hard's mining without the N x N matrix: the same choices as `mining.hardest_partners` on
`distances.pairwise_distances`, bit for bit, from stripes of rows that stay in the cache.

The matrix path writes d2 (N^2 floats), symmetrises it (the minimum of d2 and its transpose), then reads it again
for the nearest negatives: passes through memory where batch_hard needs one row minimum per anchor. Here each
stripe of rows is built by the same addmm as the matrix path (the BLAS gives each row the same bits whether it
computes the whole matrix or a stripe of 32 rows or more, for D <= 128: `MAX_WIDTH`), the anchor's class masked,
and read for the row's first minimum, block by block (`_first_minimum`). The symmetrisation changes nothing when
d2 is symmetric, which the BLAS makes it in every case measured; that is checked, not assumed: each row and each
column of the masked d2 get an integer hash of their bits (a wrapping sum of bits times fixed odd weights), and a
row whose hash differs from its column's sends the batch to the matrix path.

It declines (returns None, and the matrix path runs) wherever it could not give the same bits: float64, D above
128, cosine (its zero rows add a share), norms where the expansion could overflow, a batch with a pair the matrix
path would refine from differences (`distances.REFINE_BELOW`: the check reads the same minimum; copies of a row are
such a pair, so the matrix path's remapping of copies is never skipped), and an asymmetric d2.
"""
from __future__ import annotations

import torch

from .distances import REFINE_BELOW, centred
from .mining import ClassSlots

# Widest D for which stripes were found to carry the whole matrix's bits (float32 and float64, 1 and 2 threads,
# D up to 128, stripes of 32 to 255 rows): wider rows are split over the BLAS's inner blocks differently.
MAX_WIDTH = 128
# Rows per stripe: about 2^18 entries (1 MiB of float32: the stripe and its hash products stay in L2), between 32
# and 128 rows; one stripe up to N = 64, the batches of the conformance cells. One whole 1024 x 1024 stripe measured
# 40% slower than eight of 128 rows: it leaves the cache.
STRIPE_ENTRIES = 1 << 18
WHOLE_ENTRIES = 1 << 12
BLOCK = 64  # columns per block of `_first_minimum`


def stripes(n: int) -> list[tuple[int, int]]:
    """Stripes of n rows, each of 32 rows or more: a BLAS call for a stripe of a few rows takes another path (a
    matrix-vector product) whose bits differ."""
    if n * n <= WHOLE_ENTRIES:
        return [(0, n)]
    rows = max(32, min(128, STRIPE_ENTRIES // n))
    count = max(1, n // rows)
    edges = [round(k * n / count) for k in range(count + 1)]
    return list(zip(edges[:-1], edges[1:]))


def _first_minimum(d2: torch.Tensor) -> torch.Tensor:
    """Each row's first column holding its minimum (argmin's answer), from the minima of blocks of BLOCK columns:
    one vectorised pass over the row, then one block searched."""
    rows, n = d2.shape
    whole = n // BLOCK * BLOCK
    parts = [d2[:, :whole].view(rows, whole // BLOCK, BLOCK).amin(dim=2)] if whole else []
    if whole < n:
        parts.append(d2[:, whole:].amin(dim=1, keepdim=True))
    minima = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
    block = minima.argmin(dim=1, keepdim=True)  # the first block holding the minimum
    columns = (block * BLOCK + torch.arange(BLOCK, device=d2.device)).clamp_max_(n - 1)
    first = (d2.gather(1, columns) == minima.gather(1, block)).to(torch.uint8).argmax(dim=1, keepdim=True)
    return columns.gather(1, first)[:, 0]


def striped_hardest_partners(points: torch.Tensor, labels: torch.Tensor, distance: str):
    """`mining.hardest_partners(pairwise_distances(points, distance), labels)`, or None where it declines."""
    n, width = points.shape
    if (points.dtype != torch.float32 or width > MAX_WIDTH or distance == "cosine" or n < 2
            or points.device.type != "cpu"):
        return None
    z = centred(points)
    sq = (z * z).sum(dim=1)
    largest = sq.amax()
    if not bool((largest < torch.finfo(sq.dtype).max / 8) & (largest > 0) & torch.isfinite(sq).all()):
        return None
    slots = ClassSlots(labels)
    members, real = slots.members, slots.real_members()
    weights = _weights(n)
    nearest_negative = torch.empty(n, dtype=torch.int64)
    row_hash = torch.empty(n, dtype=torch.int32)
    column_hash = torch.zeros(n, dtype=torch.int32)
    member_d = torch.empty(members.shape, dtype=points.dtype)
    lowest = []
    for start, stop in stripes(n):
        d2 = torch.add(sq[start:stop, None], sq[None, :])
        d2.addmm_(z[start:stop], z.T, alpha=-2.0).clamp_min_(0.0)  # the matrix path's bits
        member_d[start:stop] = d2.gather(1, members[start:stop])
        d2[:, start:stop].diagonal().fill_(float("inf"))
        lowest.append(d2.amin())
        d2.scatter_(1, real[start:stop], float("inf"))
        bits = d2.view(torch.int32)  # >= 0: no -0.0 (a sum of squares is +0.0 at least), no NaN (finite norms)
        row_hash[start:stop] = (bits * weights).sum(dim=1, dtype=torch.int32)
        column_hash.add_((bits * weights[start:stop, None]).sum(dim=0, dtype=torch.int32))
        nearest_negative[start:stop] = _first_minimum(d2)
    # Two equal rows are one centred point z: their d2 is the expansion's rounding of 0, far below REFINE_BELOW *
    # 2 |z|^2 (or exactly 0 where z = 0, below the bound of any other row), so this check also declines copies.
    if bool(torch.stack(lowest).amin() < 2.0 * REFINE_BELOW * largest) or not torch.equal(row_hash, column_hash):
        return None  # a pair the matrix path refines (or copies it remaps), or d2 not symmetric
    # min(d2, d2.T) on the class slots: the mirror of slot k of anchor a is the slot of a in the list of
    # members[a, k], which is a's own list (one class, one list); the diagonal is 0 as in the matrix path
    own = (members == torch.arange(n)[:, None]) & slots.inside
    own_slot = own.to(torch.uint8).argmax(dim=1, keepdim=True)
    member_d = torch.minimum(member_d, member_d[members, own_slot]).masked_fill_(own, 0.0)
    lowest_d = torch.full_like(member_d, -float("inf"))
    positive_slot = torch.where(slots.positive, member_d, lowest_d).argmax(dim=1, keepdim=True)
    farthest_slot = torch.where(slots.inside, member_d, lowest_d).argmax(dim=1, keepdim=True)
    has_negative = slots.size < n
    negative_at = torch.where(has_negative, nearest_negative, members.gather(1, farthest_slot)[:, 0])
    return members.gather(1, positive_slot)[:, 0], negative_at, slots.size > 1, has_negative


def _weights(n: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(n)
    return torch.randint(-(2**30), 2**30, (n,), generator=generator, dtype=torch.int32) * 2 + 1

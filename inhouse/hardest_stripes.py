"""batch_hard's mining without the N x N matrix: the choices of `mining.hardest_partners` on
`distances.pairwise_distances`, from stripes of rows that stay in the cache.

The matrix path writes d2 (N^2 floats), symmetrises it (the minimum of d2 and its transpose), then reads it again
for the nearest negatives: passes through memory where batch_hard needs one row minimum per anchor. Here each
stripe of rows is built by the same addmm as the matrix path (the BLAS gives each row the same bits whether it
computes the whole matrix or a stripe of 32 rows or more, for D <= 128: `MAX_WIDTH`), the anchor's class masked,
and each row's first minimum found from the minima of its blocks of BLOCK columns: per stripe one reduction pass
and one gather of the block that holds it, the first column within that block once at the end, on N x BLOCK (a
comparison or an argmin over a whole stripe is several times slower on the CPU than a minimum).

Rows, not the symmetrised matrix: the two give the same bits wherever the BLAS rounds d2_ij and d2_ji alike, which
every BLAS measured does (a dot product's terms summed in one order whichever of the two rows comes first); where
one did not, the choices could differ only between distances within one rounding of each other, a near-tie that
engine/ambiguity.py does not judge.

It declines (returns None, and the matrix path runs) wherever it could not give the matrix path's bits: float64,
D above 128, cosine (its zero rows add a share), norms where the expansion could overflow, and a batch with a pair
the matrix path would refine from differences (`distances.REFINE_BELOW`; an entry the expansion rounds below 0 is
such a pair, so no clamp is needed; copies of a row are such a pair, so the matrix path's remapping of copies is
never skipped).
"""
from __future__ import annotations

import torch

from .distances import REFINE_BELOW, centred
from .mining import ClassSlots
from .scratch import scratch

# Widest D for which stripes were found to carry the whole matrix's bits (float32, 1 and 2 threads, D up to 128,
# stripes of 32 to 350 rows; tests/inhouse/test_striped_mining.py): wider rows are split over the BLAS's inner blocks
# differently.
MAX_WIDTH = 128
# Rows per stripe: about 2^18 entries (1 MiB of float32: the stripe stays in L2), between 32 and 256 rows (a
# stripe holds up to twice that); one stripe up to N = 64, the batches of the conformance cells. At N = 1024 four
# stripes of 256 rows measured 8% faster than eight of 128 (fewer operations), one of 1024 rows 40% slower (it
# leaves the cache).
STRIPE_ENTRIES = 1 << 18
WHOLE_ENTRIES = 1 << 12
BLOCK = 64  # columns per block of a row's first minimum


def stripes(n: int) -> list[tuple[int, int]]:
    """Stripes of n rows, each of 32 rows or more: a BLAS call for a stripe of a few rows takes another path (a
    matrix-vector product) whose bits differ."""
    if n * n <= WHOLE_ENTRIES:
        return [(0, n)]
    rows = max(32, min(256, STRIPE_ENTRIES // n))
    count = max(1, n // rows)
    edges = [round(k * n / count) for k in range(count + 1)]
    return list(zip(edges[:-1], edges[1:]))


def striped_hardest_partners(points: torch.Tensor, labels: torch.Tensor, distance: str):
    """`mining.hardest_partners(pairwise_distances(points, distance), labels)`, or None where it declines."""
    n, width = points.shape
    if (points.dtype != torch.float32 or width > MAX_WIDTH or distance == "cosine" or n < 2
            or points.device.type != "cpu"):
        return None
    z = centred(points)
    sq = (z * z).sum(dim=1)
    largest = float(sq.amax())  # NaN where a norm is: amax passes it on
    if not 0 < largest < torch.finfo(sq.dtype).max / 8:
        return None
    slots = ClassSlots(labels)
    member_d = torch.empty(slots.members.shape, dtype=points.dtype)
    nearest_negative = _nearest_negatives(z, sq, slots, member_d)
    lowest = torch.minimum(nearest_negative[1].amin(), member_d.masked_fill(~slots.positive, float("inf")).amin())
    if float(lowest) < 2.0 * REFINE_BELOW * largest:
        return None  # a pair the matrix path refines (or copies it remaps)
    return _partners(slots, member_d, nearest_negative[0])


def _nearest_negatives(z: torch.Tensor, sq: torch.Tensor, slots: ClassSlots, member_d: torch.Tensor):
    """(column, d2) of each row's first nearest negative (inf where it has none), and d2 of its class members
    written into member_d, stripe by stripe."""
    n = len(z)
    block = min(BLOCK, n)
    blocks = -(-n // block)
    parts = stripes(n)
    buffer = scratch("stripes", (max(stop - start for start, stop in parts), blocks * block), z)
    buffer[:, n:] = float("inf")  # the last block's padding
    members, real = slots.members, slots.real_members()
    nearest_block = torch.empty(n, block, dtype=z.dtype)  # the values of the block holding each row's minimum
    first_block = torch.empty(n, dtype=torch.int64)
    block_of_row = torch.arange(len(buffer)) * blocks  # where each row's blocks start among the stripe's
    for start, stop in parts:
        count = stop - start
        rows = buffer[:count]
        d2 = torch.add(sq[start:stop, None], sq[None, :], out=rows[:, :n])
        d2.addmm_(z[start:stop], z.T, alpha=-2.0)  # the matrix path's bits
        member_d[start:stop] = d2.gather(1, members[start:stop])
        d2.scatter_(1, real[start:stop], float("inf"))
        by_block = rows.view(count * blocks, block)
        torch.argmin(by_block.amin(dim=1).view(count, blocks), dim=1, out=first_block[start:stop])  # the first one
        torch.index_select(by_block, 0, block_of_row[:count] + first_block[start:stop], out=nearest_block[start:stop])
    nearest, within = nearest_block.min(dim=1)  # the first column holding it
    return first_block * block + within, nearest


def _partners(slots: ClassSlots, member_d: torch.Tensor, nearest_negative: torch.Tensor):
    """`mining.hardest_partners`'s answer from the members' d2 and each row's nearest negative: min(d2, d2.T) on the
    class slots (the mirror of slot k of anchor a is the slot of a in the list of members[a, k], which is a's own
    list: one class, one list), the diagonal 0 as in the matrix path."""
    n, members, own_slot = len(member_d), slots.members, slots.own[:, None]
    mirrored = torch.take(member_d, members * slots.width + own_slot)
    member_d = torch.minimum(member_d, mirrored).scatter_(1, own_slot, 0.0)
    positive_slot = member_d.masked_fill(~slots.positive, -float("inf")).argmax(dim=1, keepdim=True)
    farthest_slot = member_d.masked_fill(~slots.inside, -float("inf")).argmax(dim=1, keepdim=True)
    has_negative = slots.size < n
    negative_at = torch.where(has_negative, nearest_negative, members.gather(1, farthest_slot)[:, 0])
    return members.gather(1, positive_slot)[:, 0], negative_at, slots.size > 1, has_negative

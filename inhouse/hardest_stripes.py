"""batch_hard's mining without the N x N matrix: the choices of `mining.hardest_partners` on
`distances.pairwise_distances`, from stripes of rows, never the whole matrix.

The matrix path writes d2 (N^2 floats), symmetrises it (the minimum of d2 and its transpose), then reads it again
for the nearest negatives: passes through memory where batch_hard needs one row minimum per anchor. Here each
stripe of rows is built against the columns from its own first row on (the upper triangle: half the matmul's
work for many stripes) by the same addmm as the matrix path (the BLAS gives each entry the same bits whether it
computes the whole matrix or a stripe of BLOCK rows or more, for D <= 128: `MAX_WIDTH`), the anchor's class
masked. A row's columns from its stripe's first on are read along the stripe (`_OwnColumns`): each row's first
minimum from the minima of its blocks of BLOCK columns, per stripe one reduction pass and one gather of the block
that holds it, the first column within that block once at the end, on N x BLOCK (a comparison or an argmin over a
whole stripe is several times slower on the CPU than a minimum). Its earlier columns were read down the stripes
above it (`_EarlierColumns`): d2_ij is d2_ji, so the part of a stripe right of its own rows holds, column by
column, the later rows' distances to this stripe's rows.

One of d2_ij and d2_ji, not the symmetrised matrix: the two give the same bits wherever the BLAS rounds d2_ij and
d2_ji alike, which every BLAS measured does (a dot product's terms summed in one order whichever of the two rows comes
first); where one did not, the choices could differ only between distances within one rounding of each other, a
near-tie that engine/ambiguity.py does not judge.

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
# stripes of 32 to 1023 rows; tests/inhouse/test_striped_mining.py): wider rows are split over the BLAS's inner blocks
# differently.
MAX_WIDTH = 128
# Rows per stripe: about 2^21 entries (8 MiB of float32), a multiple of BLOCK between BLOCK and MOST_ROWS (the last
# stripe holds up to twice that); one stripe up to N = 64, the batches of the conformance cells. Fewer, larger calls
# win over a stripe that stays in the cache: on an AMD EPYC (Zen 4, 1 MiB of L2) the mining took, at N = 1024, 2.7 ms
# with two stripes, 2.8 with one or four; at N = 4096 21 ms with 8 stripes, 23 with 16, 27 with 32, 34 with 64.
STRIPE_ENTRIES = 1 << 21
WHOLE_ENTRIES = 1 << 12
MOST_ROWS = 512
BLOCK = 64  # columns per block of a row's first minimum
GROUP = 8  # rows per group of a column's first minimum down a stripe (_EarlierColumns)


def stripes(n: int, entries: int, most_rows: int) -> list[tuple[int, int]]:
    """Stripes of n rows of about `entries` entries each: every edge but the last a multiple of BLOCK (the rows of a
    stripe group into blocks, as its columns do), each stripe BLOCK rows or more (a BLAS call for a stripe of a few
    rows takes another path, a matrix-vector product, whose bits differ), at most `most_rows` but the last, which takes
    the remainder; one stripe up to WHOLE_ENTRIES entries."""
    rows = max(BLOCK, min(most_rows, entries // n) // BLOCK * BLOCK)
    if n * n <= WHOLE_ENTRIES or n < 2 * rows:
        return [(0, n)]
    edges = [k * rows for k in range(n // rows)] + [n]
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
    written into member_d (inf where the mirror pair holds it), stripe by stripe."""
    n = len(z)
    earlier = _EarlierColumns(n, z.dtype)
    by_row = _OwnColumns(n, z.dtype)
    for start, stop in stripes(n, STRIPE_ENTRIES, MOST_ROWS):
        count, width = stop - start, n - start
        blocks = width // BLOCK + 1  # a padding column at least: where the members of earlier columns point
        rows = scratch("stripes", (count, blocks * BLOCK), z)
        rows[:, width:] = float("inf")
        d2 = torch.add(sq[start:stop, None], sq[None, start:], out=rows[:, :width])
        d2.addmm_(z[start:stop], z[start:].T, alpha=-2.0)  # the matrix path's bits
        here = slots.members[start:stop] - start
        here = torch.where(here >= 0, here, width)
        member_d[start:stop] = rows.gather(1, here)
        rows.scatter_(1, torch.where(slots.inside[start:stop], here, width), float("inf"))
        by_row.take(rows, start, stop, blocks)
        if stop < n:
            earlier.take(rows[:, count:width], start, stop)
    nearest, column = by_row.result()
    use_earlier = earlier.value <= nearest  # a tie goes to the earlier column
    return torch.where(use_earlier, earlier.column, column), torch.minimum(earlier.value, nearest)


class _OwnColumns:
    """Each row's first minimum over the columns from its stripe's first on: per stripe the minima of BLOCK-column
    blocks, the first block holding the least kept whole, the column within it found once at the end."""

    def __init__(self, n: int, dtype):
        self.values = torch.empty(n, BLOCK, dtype=dtype)
        self.block_column = torch.empty(n, dtype=torch.int64)  # the first column of the block kept

    def take(self, rows: torch.Tensor, start: int, stop: int, blocks: int):
        count = stop - start
        by_block = rows.view(count * blocks, BLOCK)
        first = torch.argmin(by_block.amin(dim=1).view(count, blocks), dim=1)
        torch.index_select(by_block, 0, torch.arange(0, count * blocks, blocks) + first, out=self.values[start:stop])
        self.block_column[start:stop] = first * BLOCK + start

    def result(self):
        nearest, within = self.values.min(dim=1)
        return nearest, self.block_column + within


class _EarlierColumns:
    """Each row's first minimum over the columns before its stripe, from the stripes above it: d2 is symmetric, so
    a stripe's columns past its own rows are, read down, those rows' distances to the earlier columns; per GROUP
    rows a minimum, then the first group and the first row within it holding the least."""

    def __init__(self, n: int, dtype):
        self.value = torch.full((n,), float("inf"), dtype=dtype)
        self.column = torch.zeros(n, dtype=torch.int64)
        self.steps = torch.arange(GROUP)[:, None]
        self.countdown = torch.arange(MOST_ROWS // GROUP, 0, -1, dtype=torch.uint8)[:, None]

    def take(self, later: torch.Tensor, start: int, stop: int):
        """`later`: the stripe's rows start..stop against the columns from stop on."""
        minima = later.unflatten(0, (-1, GROUP)).amin(dim=1)
        value = minima.amin(dim=0)
        group = self._first(minima, value)
        row = group * GROUP + self._first(later.gather(0, group * GROUP + self.steps), value)
        better = value < self.value[stop:]  # earlier stripes hold earlier columns: a tie keeps theirs
        self.value[stop:] = torch.where(better, value, self.value[stop:])
        self.column[stop:] = torch.where(better, start + row, self.column[stop:])

    def _first(self, candidates: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """Per column, the first row of `candidates` equal to `value` (one is): the largest of a countdown over the
        matches, on bytes (an argmax or an int64 minimum down a dimension is many times slower on the CPU)."""
        count = len(candidates)
        matches = (candidates == value).view(torch.uint8).mul_(self.countdown[-count:])
        return count - matches.amax(dim=0).long()


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

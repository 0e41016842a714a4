"""The short road of row losses whose logits are linear in d2 (cosine between points none of which is zero, squared
euclidean): per row i, the float64 exponentials of l_ij = l_0 - c d2_ij (c > 0) over what the row reads, shifted by
its largest logit, and their sum; the gradient dL/dd2_ij = f_i e_ij with a per-row factor f. The softmax family's
cross-entropies (inhouse/cross_entropy_rows.py) and multi_similarity's negatives (inhouse/similarity.py) take it.

The road is inhouse/distance_rows.py's (`Gram`: the re-centred Gram expansion, near pairs from differences), with
fewer passes over each chunk, and none of them gives up a bit the general road (`row_losses`) keeps:

- the row's largest logit top = l_0 - c x min_j d2_ij comes from the float32 row minimum `Gram.measure` takes anyway:
  rounding is monotone, so it is the float64 maximum bit for bit, without a float64 pass. A loss whose own `entries`
  are `excluded` from the exponentials (multi_similarity's positives) reads them as d2 = +inf (e = 0), the row minimum
  taken again only where one of them held it;
- l - top = c x min - c x d2 in one fused float64 pass (one rounding where a product and a difference had two),
  then e^(l - top) and its row sum. The fused form leaves the rounding of c x min at the row's largest entry (e = 1
  + 1e-4 at most below FUSED_BELOW); beyond it, logits of 1e12 and more, the two roundings give that entry 0 exactly;
- dL/dd2 = f_i e_ij: the matmuls read the chunk's float32 copy of e, with the loss's `entry_gradient` written over
  its entries in float64 first (a cross-entropy's e - Y total: where the softmax nears Y their difference is the
  gradient, and it keeps its bits), and f scales their [rows, D] products (`Gram.pull`): no slope pass (a small
  square matrix, kept whole, takes f in one float32 pass before its one symmetrised product: `Gram`);
- the float64 passes run a block of rows at a time (CACHED_ELEMENTS): each pass reads what the one before it left
  in the cache, and the blocks are few enough that Python's cost per block (about 30 us) stays small; the matmuls
  take the chunks `row_chunks` gives (a wider matmul runs closer to the core's peak).

A large square matrix (inhouse/triangle.py TRIANGLE_FROM: N = 2048 on) is read by its upper triangle instead: each
pair measured once, its two entries' exponentials taken from that one d2 (each shifted by its own row's largest
logit: the entry of row i left of i's strip lies in a mirror), and both pulled in one product: half the products.
"""
from __future__ import annotations

import torch

from .distance_rows import Gram, exp_, row_chunks
from .distances import zero_rows
from .scratch import scratch
from .triangle import Triangle, read_by_triangle

# float64 elements the exponentials are computed in at a time (2 MiB: within the L3 cache, past the L2): 1 thread,
# supcon N = 1024 7.7-8.1 -> 7.3-7.6 ms, N = 4096 86-88 -> 79-80 ms against 512 KiB (four times the blocks, each
# within the L2 cache), the pairs tasks 3 to 7% (same machine, alternating processes, bit for bit the same result)
CACHED_ELEMENTS = 1 << 18

UNITS = {"cosine": 0.5, "squared_euclidean": 1.0}  # D = unit x d2

# |top| below which l - top is one fused pass: the rounding of c x min is then below 2^-13
FUSED_BELOW = 2.0 ** 40


def linear_in_d2(points: torch.Tensor, distance: str) -> bool:
    """Whether the points' distance is linear in their d2 (UNITS): cosine between points none of which is zero (a
    zero point's cosine share 1/2 is not), or squared euclidean."""
    return distance in UNITS and not (distance == "cosine" and bool(zero_rows(points).any()))


class Entries:
    """Entries (i, j) of the rows, sorted by row i (a row may have none; `counts` per row, where the caller knows them);
    `part(chunk)` where a chunk's lie."""

    def __init__(self, i: torch.Tensor, j: torch.Tensor, rows: int, counts=None):
        self.i, self.j = i, j
        counts = torch.bincount(i, minlength=rows) if counts is None else counts
        self.has = counts > 0
        self.starts = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)]).tolist()

    def part(self, chunk: slice) -> slice:
        return slice(self.starts[chunk.start], self.starts[chunk.stop])


class LinearLogits:
    """One reading of a `Gram`'s rows on the short road, at logit scale c (`scale`): `read(differentiable)` fills
    `shifts` (-top + l_0 = c x the least d2 a row reads), `totals` (sum e^(l - top)), and at the `entries` their d2
    (`d2_at`, float64) and l - top (`shifted`), and gives the gradient's thunk. A loss says `excluded` (its entries
    are no part of the exponentials), `entry_gradient(part)` (float64 values to write over e at those entries before
    the pull, or None) and `factor(rows)` (f of those rows, once their totals are summed)."""

    excluded = False

    def __init__(self, gram: Gram, scale: float, entries: Entries):
        self.gram, self.scale, self.entries = gram, scale, entries
        self.totals = torch.zeros(len(gram.rows), dtype=torch.float64, device=gram.rows.device)
        self.shifts = torch.empty_like(self.totals)
        self.d2_at = torch.empty(len(entries.i), dtype=torch.float64, device=gram.rows.device)
        self.shifted = torch.empty_like(self.d2_at)

    def entry_gradient(self, part: slice) -> torch.Tensor | None:
        return None

    def factor(self, rows: slice) -> torch.Tensor:
        raise NotImplementedError

    def read(self, differentiable: bool):
        if self.gram.square and read_by_triangle(self.gram.points):
            return self._by_triangle()
        return self._by_rows(differentiable)

    def _shift(self, rows: slice, smallest: torch.Tensor, part: slice, entry_rows: torch.Tensor) -> bool:
        """The rows' shifts from their least d2, l - top at their entries; whether l - top is one fused pass."""
        shifts = torch.mul(smallest.to(torch.float64), self.scale, out=self.shifts[rows])
        fused = bool(shifts.abs().max() < FUSED_BELOW)
        _shifted_(shifts[entry_rows], self.d2_at[part], self.scale, fused, out=self.shifted[part])
        return fused

    def _by_rows(self, differentiable):
        """A chunk of rows at a time: each chunk's d2 is measured, its exponentials taken and, differentiable, pulled
        (`Gram`) before the next."""
        gram, entries, totals = self.gram, self.entries, self.totals
        rows, n_columns = gram.rows, len(gram.columns)
        smallest = rows.new_empty(len(rows))
        factors = torch.empty_like(totals)
        chunks = list(row_chunks(len(rows), n_columns))
        d2_buffer = gram.rows_buffer(chunks, differentiable)
        in_chunk = entries.i % (chunks[0].stop - chunks[0].start)  # each entry's row counted from its chunk's first
        flat = in_chunk * n_columns + entries.j  # and its place in the chunk's d2
        for chunk in chunks:
            part, d2 = entries.part(chunk), gram.chunk_of(d2_buffer, chunk)
            near = gram.measure(chunk, d2, smallest[chunk])
            local = flat[part]
            self.d2_at[part] = d2.view(-1)[local]
            if self.excluded:
                d2.view(-1).index_fill_(0, local, float("inf"))
                if bool((self.d2_at[part] <= smallest[chunk][in_chunk[part]]).any()):  # it held a row's least
                    torch.amin(d2, dim=1, out=smallest[chunk])
            fused = self._shift(chunk, smallest[chunk], part, in_chunk[part])
            _exps_(d2, self.shifts[chunk], self.scale, fused, totals[chunk])
            if differentiable:  # d2 holds e now
                written = self.entry_gradient(part)
                if written is not None:
                    d2.view(-1).index_copy_(0, local, written.to(d2.dtype))
                factors[chunk] = self.factor(chunk)
                gram.pull(chunk, d2, near, factors[chunk].to(d2.dtype))
        return lambda: gram.gradient(factors)

    def _by_triangle(self):
        """Over the upper triangle (inhouse/triangle.py): the strips measured first (a row's largest logit needs the
        strips above it), then per strip the exponentials of its rows' logits, and in its mirror those of the rows
        left of it (shifted by their own rows' largest). The strips are pulled when the thunk is called."""
        entries, everything = self.entries, slice(None)
        triangle = Triangle(self.gram)
        smallest = triangle.measure()
        mirrored, in_strip, in_mirror = triangle.places(entries.i, entries.j)
        self.d2_at.copy_(triangle.upper[in_strip])
        if self.excluded:
            triangle.upper.index_fill_(0, in_strip, float("inf"))
            if bool((self.d2_at <= smallest[entries.i]).any()):  # it held a row's least
                smallest = triangle.least()
        fused = self._shift(everything, smallest, everything, entries.i)
        shifts, totals = self.shifts, self.totals
        for rows, d2, mirror in triangle.strips():
            _exps_(d2, shifts[rows], self.scale, fused, totals[rows], (mirror, shifts[rows.stop:], totals[rows.stop:]))

        def gradient():  # the strips and mirrors hold e now
            written = self.entry_gradient(everything)
            if written is not None:
                written = written.to(triangle.upper.dtype)
                triangle.upper.index_copy_(0, in_strip[~mirrored], written[~mirrored])
                triangle.mirror.index_copy_(0, in_mirror[mirrored], written[mirrored])
            return triangle.pull(self.factor(everything))

        return gradient


def _exps_(d2, shifts, scale, fused, totals, mirrored=None):
    """d2 := e^(l - top) of the logits l = l_0 - scale x d2, shifts = -top + l_0 the rows' shifts; totals += e's row
    sums. `mirrored` = (mirror, its columns' shifts, their totals): d2's entries right of its leading square block
    are also mirror entries, of the rows its columns are, whose e' = e^(l - top of that row) go to the mirror and their
    column sums to those totals. Computed in float64, a block of rows at a time (each pass within the cache; float64
    points: in place). The diagonal's d2 = +inf reads as e = 0."""
    staged, block = d2.dtype != torch.float64, len(d2)
    step = max(1, CACHED_ELEMENTS // max(d2.shape[1], 1))
    for start in range(0, len(d2), step):
        part = slice(start, start + step)
        d2_rows = d2[part]
        exps = scratch("row work", d2_rows.shape, d2, torch.float64).copy_(d2_rows) if staged else d2_rows
        if mirrored is not None and mirrored[0].shape[1]:  # before the rows' own shift overwrites exps
            mirror, column_shifts, column_totals = mirrored
            out = scratch("mirror work", mirror[part].shape, d2, torch.float64) if staged else mirror[part]
            column_totals.add_(exp_(_shifted_(column_shifts, exps[:, block:], scale, fused, out=out)).sum(dim=0))
            if staged:
                mirror[part].copy_(out)
        totals[part].add_(exp_(_shifted_(shifts[part, None], exps, scale, fused, out=exps)).sum(dim=1))
        if staged:
            d2_rows.copy_(exps)


def _shifted_(shift: torch.Tensor, d2: torch.Tensor, scale: float, fused: bool, out: torch.Tensor) -> torch.Tensor:
    """out := l - top = shift - scale x d2 (float64): fused, or rounded twice (-scale x d2 first: 0 at the top)."""
    if fused:
        return torch.add(shift, d2, alpha=-scale, out=out)
    return torch.mul(d2, -scale, out=out).add_(shift)

"""The square N x N matrix of squared distances read by its upper triangle: each unordered pair measured once, and
the gradient through both of its entries pulled once.

Strip s holds the rows I = [a, b) against the columns [a, N): its diagonal block and what lies right of it. d2 is
symmetric, so the strips hold every pair once, in half the N x N products of reading every row (inhouse/distance_rows.py
`Gram`, whose `measure` each strip uses). A loss that reads whole rows reads row i's entries left of its strip in
the strips above it, transposed: there a loss keeps its per-row quantity of entry (i, j) in the *mirror* of the strip,
the same [rows, columns] layout right of the diagonal block (i the column, j the row), so no entry is ever read
transposed (an element-wise pass over a transposed view runs several times slower).

The gradient: dL/dz = 2 (z (S 1) - S z), S = K + K^T with K = dL/dd2. Per strip S_ij = f_i k_ij + f_j k'_ij right
of the diagonal block (k in the strip, k' = k_ji in its mirror, f a per-row factor) and f_i k_ij within it, whose
transposed entries the block holds itself; rows I take S z_[a:], the columns [a, N) take S^T z_I. That is one N x N x D
product in all, where the rows read whole take two (or one over K + K^T written whole, its transposed copy as
costly as a product at N = 4096).

Both buffers are the points' dtype, N^2 elements in all (TRIANGLE_BYTES bounds them): a larger matrix is read a chunk
of rows at a time instead, and a smaller one (TRIANGLE_FROM) whole.
"""
from __future__ import annotations

import torch

from .distance_rows import Gram
from .scratch import scratch

# Rows of a strip: narrow strips leave less of the square below the diagonal measured twice (N x STRIP_ROWS / 2 pairs:
# 3% at N = 4096), wide ones run the products closer to the core's peak and leave Python fewer strips to run
STRIP_ROWS = 128
# The least N x N a matrix read by its triangle has (N = 2048): below, its rows read whole and pulled in one symmetrised
# product run as fast (1 thread, float32, supcon: N = 1024 8.5 against 9.2 to 9.9 ms; N = 2048 33 against 26.5)
TRIANGLE_FROM = 1 << 22
# The most bytes both buffers may hold (256 MiB: N = 8192 in float32)
TRIANGLE_BYTES = 1 << 28


def read_by_triangle(points: torch.Tensor) -> bool:
    """Whether the points' N x N matrix is read by its upper triangle (TRIANGLE_FROM, TRIANGLE_BYTES)."""
    return TRIANGLE_FROM <= len(points) ** 2 <= TRIANGLE_BYTES // points.element_size()


def strips_of(n: int) -> list[slice]:
    """The rows of each strip of an N x N matrix."""
    return [slice(a, min(a + STRIP_ROWS, n)) for a in range(0, n, STRIP_ROWS)]


class Triangle:
    """The strips of a square `Gram`: `measure` them, `strips` gives (rows, d2 then k, mirror), `pull` the
    gradient of k and k' scaled by a per-row factor, `places` where an ordered entry (i, j) lies."""

    def __init__(self, gram: Gram):
        n = len(gram.points)
        self.gram, self.n = gram, n
        self.rows = strips_of(n)
        sizes = torch.tensor([(r.stop - r.start) * (n - r.start) for r in self.rows], dtype=torch.int64)
        mirror_sizes = torch.tensor([(r.stop - r.start) * (n - r.stop) for r in self.rows], dtype=torch.int64)
        self.starts, self.mirror_starts = (torch.cumsum(s, 0) - s for s in (sizes, mirror_sizes))
        self.upper = scratch("triangle", (int(sizes.sum()),), gram.points)
        self.mirror = scratch("triangle mirror", (int(mirror_sizes.sum()),), gram.points)
        self.nears = [None] * len(self.rows)

    def strips(self):
        """(rows, the strip [rows, N - a], its mirror [rows, N - b]) of every strip, in order."""
        n = self.n
        for s, rows in enumerate(self.rows):
            size, start, mirror_start = rows.stop - rows.start, int(self.starts[s]), int(self.mirror_starts[s])
            yield (rows, self.upper[start: start + size * (n - rows.start)].view(size, n - rows.start),
                   self.mirror[mirror_start: mirror_start + size * (n - rows.stop)].view(size, n - rows.stop))

    def measure(self) -> torch.Tensor:
        """The strips' d2 (diagonal +inf), their near pairs kept for `pull`; each row's least d2 over every other row,
        of the very entries its exponentials read (a row's largest logit must read e = 1)."""
        smallest = self._no_entry()
        for s, (rows, d2, _) in enumerate(self.strips()):
            least = scratch("strip least", (len(d2),), d2)
            self.nears[s] = self.gram.measure(rows, d2, least, first=rows.start)
            _fold_least(smallest, rows, d2, least)
        return smallest

    def least(self) -> torch.Tensor:
        """Each row's least d2 over every other row, of the strips as they stand now (`measure`'s, once a loss has
        set some of their entries to +inf)."""
        smallest = self._no_entry()
        for rows, d2, _ in self.strips():
            _fold_least(smallest, rows, d2, d2.amin(dim=1))
        return smallest

    def _no_entry(self) -> torch.Tensor:
        return torch.full((self.n,), float("inf"), dtype=self.gram.points.dtype, device=self.gram.points.device)

    def places(self, i: torch.Tensor, j: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mirrored, in the strip, in the mirror) of ordered entries (i, j), i != j: whether (i, j) lies in a mirror
        (j's strip above i's), its pair's place in `upper` (where d2 is), its own place in `mirror` (read only where
        mirrored)."""
        mirrored = j // STRIP_ROWS < i // STRIP_ROWS
        row, column = torch.where(mirrored, j, i), torch.where(mirrored, i, j)
        strip = row // STRIP_ROWS
        first = strip * STRIP_ROWS
        last = torch.clamp(first + STRIP_ROWS, max=self.n)
        starts, mirror_starts = self.starts.to(i.device)[strip], self.mirror_starts.to(i.device)[strip]
        in_strip = starts + (row - first) * (self.n - first) + (column - first)
        return mirrored, in_strip, mirror_starts + (row - first) * (self.n - last) + (column - last)

    def pull(self, factor: torch.Tensor) -> torch.Tensor:
        """dL/dpoints of k (the strips) and k' (their mirrors), dL/dd2_ij = factor_i x k_ij, and of what
        `Gram.add_pairs` added (the strips and mirrors are consumed)."""
        gram, z = self.gram, self.gram.z
        factor = factor.to(z.dtype)
        sums, pulled = torch.zeros_like(gram.sq_rows), torch.zeros_like(z)
        places, added, bounds = self._added()
        for s, ((rows, k, mirror), near) in enumerate(zip(self.strips(), self.nears)):
            k.mul_(factor[rows, None])
            k[:, rows.stop - rows.start:].addcmul_(mirror, factor[None, rows.stop:])
            if bounds[s] < bounds[s + 1]:
                piece = slice(bounds[s], bounds[s + 1])
                k.view(-1).index_put_((places[piece] - int(self.starts[s]),), added[piece], accumulate=True)
            gram.push_near(near, k, rows.start, rows.start)
            pulled[rows].addmm_(k, z[rows.start:])
            pulled[rows.start:].addmm_(k.T, z[rows])
            sums[rows] += k.sum(dim=1)
            sums[rows.start:] += k.sum(dim=0)
        return gram.symmetric_gradient(sums, pulled)

    def _added(self) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """(places in `upper`, sorted, their k, the index of each strip's first) of what `Gram.add_pairs` added: an
        entry (i, j) right of a diagonal block shares its place with (j, i), the two summed, as a strip's entries are
        with their mirrors' once scaled."""
        found = [self.places(i, j)[1] for i, j, _ in self.gram.added]
        places = torch.cat(found) if found else torch.zeros(0, dtype=torch.int64, device=self.upper.device)
        added = torch.cat([k for _, _, k in self.gram.added]) if found else self.upper.new_zeros(0)
        order = torch.argsort(places)
        places, added = places[order], added[order].to(self.upper.dtype)
        return places, added, torch.searchsorted(places, self.starts.to(places.device)).tolist() + [len(places)]


def _fold_least(smallest: torch.Tensor, rows: slice, d2: torch.Tensor, least: torch.Tensor) -> None:
    """smallest := the least of smallest and a strip's d2: its rows' `least`, and its columns' right of its diagonal
    block (within it the transposed entry is another rounding than the row's own)."""
    torch.minimum(smallest[rows], least, out=smallest[rows])
    torch.minimum(smallest[rows.stop:], d2[:, len(d2):].amin(dim=0), out=smallest[rows.stop:])

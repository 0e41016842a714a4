"""The softmax family's cross-entropies over a distance linear in d2 (cosine between points none of which is zero,
squared euclidean), row by row on a short road: per row i, log sum_j e^l_ij - sum_j Y_ij l_ij with l = -D / t in
float64 and a target distribution Y (each row's entries sum to 1). The N x N matrix's diagonal is never read.

The road is inhouse/distance_rows.py's (`Gram`: the re-centred Gram expansion, near pairs from differences), with
fewer passes over each chunk, and none of them gives up a bit the general road (`row_losses`) keeps:

- the row's largest logit top = -c x min_j d2_ij (c = unit / t > 0) comes from the float32 row minimum
  `Gram.measure` takes anyway: rounding is monotone, so it is the float64 maximum bit for bit, without a float64 pass;
- l - top = c x min - c x d2 in one fused float64 pass (one rounding where a product and a difference had two),
  then e^(l - top) and its row sum. The fused form leaves the rounding of c x min at the row's largest entry (e = 1
  + 1e-4 at most below FUSED_BELOW); beyond it, logits of 1e12 and more, the two roundings give that entry 0 exactly;
- the value is log(sum_j e^(l - top)) - sum_j Y_ij (l_ij - top): the targets sum to 1, so top cancels in the
  algebra rather than in rounding (at t = 1e-4 the logits reach 2e4);
- dL/dd2 = -c (softmax - Y) = f_i (e_ij - Y_ij total_i), f_i = -c / total_i: the matmuls read the chunk's float32
  copy of e with its target entries made e - Y total in float64 first (where the softmax nears Y their difference
  is the gradient, and it keeps its bits), and f scales their [rows, D] products (`Gram.pull`): no slope pass (a
  small square matrix, kept whole, takes f in one float32 pass before its one symmetrised product: `Gram`);
- the float64 passes run a block of rows at a time (CACHED_ELEMENTS): each pass reads what the one before it left
  in the cache, and the blocks are few enough that Python's cost per block (about 30 us) stays small; the matmuls
  take the chunks `row_chunks` gives (a wider matmul runs closer to the core's peak).

A large square matrix (inhouse/triangle.py TRIANGLE_FROM: N = 2048 on) is read by its upper triangle instead: each
pair measured once, its two entries' exponentials taken from that one d2 (each shifted by its own row's largest
logit: the entry of row i left of i's strip lies in a mirror), and both pulled in one product: half the products.
"""
from __future__ import annotations

import torch

from .distance_rows import Gram, GramGradients, exp_, row_chunks
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


class Targets:
    """A target distribution per row as entries (i, j, Y_ij), sorted by row i (a row may have none; `counts` per row,
    where the caller knows them); `of(chunk)` gives the chunk's, i counted from the chunk's first row; `part(chunk)`
    where they lie."""

    def __init__(self, i: torch.Tensor, j: torch.Tensor, weights: torch.Tensor, rows: int, counts=None):
        self.i, self.j, self.weights = i, j, weights
        counts = torch.bincount(i, minlength=rows) if counts is None else counts
        self.has = counts > 0
        self.starts = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)]).tolist()

    def part(self, chunk: slice) -> slice:
        return slice(self.starts[chunk.start], self.starts[chunk.stop])

    def of(self, chunk: slice) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        part = self.part(chunk)
        return self.i[part] - chunk.start, self.j[part], self.weights[part]


def cross_entropies(points: torch.Tensor, split: int | None, distance: str, temperature: float, targets: Targets,
                    counted: torch.Tensor | None = None):
    """(total, values) as `row_losses(points, split, ...)` gives them (a row without targets has value NaN, one outside
    `counted` 0 and no gradient), or None where the road does not apply: another distance, a zero point (its cosine
    share 1/2 is not linear in d2), a row that reads nothing (a lone point of the N x N matrix)."""
    columns = len(points) - (split or 0)
    if distance not in UNITS or not temperature > 0 or columns < 1 + (split is None):
        return None
    if distance == "cosine" and bool(zero_rows(points).any()):
        return None
    counted = torch.ones_like(targets.has) if counted is None else counted
    return _CrossEntropies.apply(points, split, UNITS[distance] / temperature, (targets, counted))


class _CrossEntropies(GramGradients):
    @staticmethod
    def forward(ctx, points, split, scale, problem):
        targets, counted = problem
        gram, differentiable = Gram(points, split), ctx.needs_input_grad[0]
        factors = counted.to(torch.float64) * -scale  # f without its 1 / total, then with it
        road = _by_triangle if split is None and read_by_triangle(points) else _by_rows
        totals, shifted, gradient = road(gram, scale, targets, factors, differentiable)
        values = torch.log(totals).index_add_(0, targets.i, targets.weights * shifted, alpha=-1.0)
        values = torch.where(targets.has, values, torch.full_like(values, float("nan")))
        values = torch.where(counted, values, torch.zeros_like(values))
        if differentiable:
            ctx.save_for_backward(gradient())
        ctx.mark_non_differentiable(values)
        return values.sum(), values


def _e_minus_y(shifted: torch.Tensor, targets: Targets, totals: torch.Tensor, part=slice(None)) -> torch.Tensor:
    """e - Y total at the targets (float64): where the softmax nears Y their difference is the gradient."""
    return torch.addcmul(shifted[part].exp(), targets.weights[part], totals[targets.i[part]], value=-1.0)


def _by_rows(gram, scale, targets, factors, differentiable):
    """(totals, l - top at the targets, the gradient's thunk), a chunk of rows at a time: each chunk's d2 is measured,
    its exponentials taken and, differentiable, pulled (`Gram`) before the next."""
    rows, n_columns = gram.rows, len(gram.columns)
    totals = torch.zeros(len(rows), dtype=torch.float64, device=rows.device)
    shifted = torch.empty(len(targets.i), dtype=torch.float64, device=rows.device)  # l - top at the targets
    smallest = rows.new_empty(len(rows))
    chunks = list(row_chunks(len(rows), n_columns))
    d2_buffer = gram.rows_buffer(chunks, differentiable)
    in_chunk = targets.i % (chunks[0].stop - chunks[0].start)  # each target's row counted from its chunk's first
    flat = in_chunk * n_columns + targets.j  # and its place in the chunk's d2
    for chunk in chunks:
        part, d2 = targets.part(chunk), gram.chunk_of(d2_buffer, chunk)
        near = gram.measure(chunk, d2, smallest[chunk])
        shifts = smallest[chunk].to(torch.float64).mul_(scale)  # -top
        fused, local = bool(shifts.abs().max() < FUSED_BELOW), flat[part]
        # l - top at the targets, from d2 as _exps_ computes it
        _shifted_(shifts[in_chunk[part]], d2.view(-1)[local].to(torch.float64), scale, fused, out=shifted[part])
        _exps_(d2, shifts, scale, fused, totals[chunk])
        if differentiable:  # d2 holds e now: its target entries become e - Y total
            d2.view(-1).index_copy_(0, local, _e_minus_y(shifted, targets, totals, part).to(d2.dtype))
            gram.pull(chunk, d2, near, factors[chunk].div_(totals[chunk]).to(d2.dtype))
    return totals, shifted, lambda: gram.gradient(factors)


def _by_triangle(gram, scale, targets, factors, differentiable):
    """(totals, l - top at the targets, the gradient's thunk) over the upper triangle (inhouse/triangle.py): the
    strips measured first (a row's largest logit needs the strips above it), then per strip the exponentials of its
    rows' logits, and in its mirror those of the rows left of it (shifted by their own rows' largest). The strips are
    pulled when the thunk is called, so `differentiable` changes nothing here."""
    triangle = Triangle(gram)
    shifts = triangle.measure().to(torch.float64).mul_(scale)  # -top
    fused = bool(shifts.abs().max() < FUSED_BELOW)
    mirrored, in_strip, in_mirror = triangle.places(targets.i, targets.j)
    shifted = _shifted_(shifts[targets.i], triangle.upper[in_strip].to(torch.float64), scale, fused,
                        out=torch.empty(len(targets.i), dtype=torch.float64, device=shifts.device))
    totals = torch.zeros_like(shifts)
    for rows, d2, mirror in triangle.strips():
        _exps_(d2, shifts[rows], scale, fused, totals[rows], (mirror, shifts[rows.stop:], totals[rows.stop:]))

    def gradient():  # the strips and mirrors hold e now: their target entries become e - Y total
        e_minus_y = _e_minus_y(shifted, targets, totals).to(triangle.upper.dtype)
        triangle.upper.index_copy_(0, in_strip[~mirrored], e_minus_y[~mirrored])
        triangle.mirror.index_copy_(0, in_mirror[mirrored], e_minus_y[mirrored])
        return triangle.pull(factors.div_(totals))

    return totals, shifted, gradient


def _exps_(d2, shifts, scale, fused, totals, mirrored=None):
    """d2 := e^(l - top) of the logits l = -scale x d2, shifts = -top the rows' largest logits negated; totals += e's
    row sums. `mirrored` = (mirror, its columns' shifts, their totals): d2's entries right of its leading square
    block are also mirror entries, of the rows its columns are, whose e' = e^(l - top of that row) go to the mirror
    and their column sums to those totals. Computed in float64, a block of rows at a time (each pass within the cache;
    float64 points: in place). The diagonal's d2 = +inf reads as e = 0."""
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

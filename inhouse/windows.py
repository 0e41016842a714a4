"""batch_all's and semi_hard_all's hinge terms: for each anchor a and positive p, the negatives n in a window of
distances, each term d_ap + m - d_an. The window of (a, p) is lower_p < d_an < upper_p, with upper_p = d_ap + m and
lower_p = -inf for batch_all (every negative below d_ap + m), d_ap for semi_hard_all; semi_hard_all's units also count
a negative at d_an = upper_p (a term of 0). What the loss needs, per anchor row:

    cover(n) = #{p : lower_p < d_an < upper_p}   the terms > 0 that n enters: dL/dD_an = -cover(n)
    count_p  = #{n : lower_p < d_an < upper_p}   the terms > 0 of (a, p):     dL/dD_ap = +count_p
    units_p  = #{n : lower_p < d_an <= upper_p}  semi_hard_all's triplets (batch_all's: every negative)

Two exact ways to count them, with the same strict and non-strict comparisons (so the same exact-tie decisions):

- bins (`_by_bins`): each distance is put in one of B bins by a monotone function of its value, bin(x) =
  min(floor(x * B / row maximum), B - 1); so bin(x) < bin(y) implies x < y. A negative in a bin that holds no edge of
  the row compares with every edge as its bin does: its cover is read from a per-row table over bins, and the
  counts from a per-row histogram. Only the negatives that share a bin with an edge (a few percent) are compared
  with the edges one by one. O(N^2 + N K) per batch, no sort.
- sorting (`_by_sorting`): each row's negatives sorted, the edges located by searchsorted; for classes so large that
  most bins would hold an edge, for rows with a distance or an edge that is not finite, and off the CPU (a GPU sorts
  fast, and the bins' data-dependent steps would synchronise it once per chunk).
"""
from __future__ import annotations

import torch

from .chunks import pair_chunks
from .mining import sorted_negatives

# Bins per row: one per negative or so (a few negatives share an edge's bin), within these bounds.
FEWEST_BINS, MOST_BINS = 256, 8192
# The bins pay while the 2 K edges of a row hold few of its bins: up to classes of this many members.
LARGEST_BINNED_CLASS = 64
# Elements of a chunk's [anchors, N] rows on the CPU (1 MiB of float32): the dozen passes over them stay in the cache.
WINDOW_ELEMENTS = 1 << 18


def window_budget(points: torch.Tensor) -> int | None:
    """The chunks' bound for `strategies._linearised`: WINDOW_ELEMENTS on the CPU, CHUNK_ELEMENTS elsewhere."""
    return WINDOW_ELEMENTS if points.device.type == "cpu" else None


def window_terms(d, negative, negatives, members, positive, grad_d, spec):
    """(sum of the terms in float64, units, terms > 0) of a chunk of anchor rows `d` of the distance matrix
    (`strategies._linearised`), their slopes added to the same rows of dL/dD, `grad_d`."""
    d_ap = d.gather(1, members)
    upper = d_ap + spec.margin
    lower = d_ap if spec.mining == "semi_hard_all" else None
    found = None
    if members.shape[1] <= LARGEST_BINNED_CLASS and d.device.type == "cpu":
        found = _by_bins(d, negative, lower, upper, positive)
    cover, counts, units = found or _by_sorting(d, negative, lower, upper, positive)
    counts = counts * positive
    grad_d.sub_(cover)
    grad_d.scatter_add_(1, members, counts.to(d.dtype))
    units = negatives * positive if lower is None else units * positive
    # Every active term is d_ap + m - d_an, so their sum is <grad_d, d> + m * (number of them); products of
    # float32 numbers are exact in float64, which keeps the sum from cancelling.
    total = (grad_d.double() * d.double()).sum() + spec.margin * counts.sum(dtype=torch.float64)
    return total, units.sum(), counts.sum()


def _by_sorting(d, negative, lower, upper, positive):
    """(cover [rows, N] in d's dtype, count [rows, K], units [rows, K]; slots that are no positive: any), from each
    row's negatives sorted."""
    ordered, order = sorted_negatives(d, negative)
    below_upper = torch.searchsorted(ordered, upper)  # d_an < upper
    if lower is None:
        start = end_of_units = torch.zeros_like(below_upper)
    else:
        start = torch.searchsorted(ordered, lower, right=True)  # d_an > lower
        end_of_units = torch.searchsorted(ordered, upper, right=True)  # d_an <= upper
    # the window of (a, p) is the run [start, below_upper) of the sorted row: +1 at its start, -1 past its end
    weight = positive.to(d.dtype)
    coverage = torch.zeros(d.shape[0], d.shape[1] + 1, dtype=d.dtype, device=d.device)
    coverage.scatter_add_(1, start, weight)
    coverage.scatter_add_(1, torch.maximum(start, below_upper), -weight)
    cover = torch.empty_like(d).scatter_(1, order, coverage.cumsum(dim=1)[:, :-1])
    return cover, (below_upper - start).clamp_min(0), (end_of_units - start).clamp_min(0)


def _by_bins(d, negative, lower, upper, positive):
    """`_by_sorting`'s answer from bins of distances, or None where a distance or an edge is not finite."""
    top = d.amax(dim=1, keepdim=True)  # NaN if the row holds one
    if not bool(torch.isfinite(top).all() & torch.isfinite(upper).all()):
        return None
    bins = min(max(d.shape[1], FEWEST_BINS), MOST_BINS)
    scale = bins / top
    scale = torch.where((top > 0) & torch.isfinite(scale), scale, torch.zeros_like(scale))  # 0: one bin, all exact

    def bin_of(x):
        return (x * scale).clamp_(0, bins - 1).to(torch.int64)

    spare = torch.full_like(positive, bins, dtype=torch.int64)  # the edges of slots that are no positive go here
    upper_bin = torch.where(positive, bin_of(upper), spare)
    lower_bin = torch.full_like(upper_bin, -1) if lower is None else torch.where(positive, bin_of(lower), spare)
    element_bin = torch.where(negative, bin_of(d), bins)  # the spare bin holds the non-negatives: no term
    cover = _cover_table(lower_bin, upper_bin, positive, bins, d.dtype).gather(1, element_bin)
    edge_row, edge_column = (cover < 0).nonzero(as_tuple=True)
    counts, units = torch.zeros(2, *upper.shape, dtype=torch.int64, device=d.device)
    edge_cover = torch.empty(len(edge_row), dtype=d.dtype, device=d.device)
    for part in pair_chunks(len(edge_row), upper.shape[1]):  # [M, K] comparisons, M up to every negative
        inside, in_units = _edge_terms(d[edge_row[part], edge_column[part]], edge_row[part], lower, upper, positive)
        edge_cover[part] = inside.sum(dim=1).to(d.dtype)
        counts.index_add_(0, edge_row[part], inside.long())
        units.index_add_(0, edge_row[part], in_units.long())
    cover[edge_row, edge_column] = edge_cover
    element_bin[edge_row, edge_column] = bins
    off_edges = _off_edge_counts(element_bin, lower_bin, upper_bin, bins)
    return cover, counts.add_(off_edges), units.add_(off_edges)


def _cover_table(lower_bin, upper_bin, positive, bins: int, dtype) -> torch.Tensor:
    """[rows, bins + 1]: per bin b, how many windows hold it whole (lower_bin < b < upper_bin), or -1 where an edge
    lies in it; 0 in the spare bin."""
    opens = torch.zeros(upper_bin.shape[0], bins + 2, dtype=dtype, device=upper_bin.device)
    holds = (positive & (lower_bin + 1 < upper_bin)).to(dtype)
    opens.scatter_add_(1, lower_bin + 1, holds).scatter_add_(1, upper_bin, -holds)
    table = opens.cumsum(dim=1)[:, : bins + 1]
    table.scatter_(1, upper_bin, -1.0)
    table.scatter_(1, torch.where(lower_bin >= 0, lower_bin, bins), -1.0)  # batch_all's -1: no lower edge
    table[:, bins] = 0.0
    return table


def _off_edge_counts(element_bin, lower_bin, upper_bin, bins: int) -> torch.Tensor:
    """[rows, K]: per window, how many negatives off the edges lie inside it (element_bin: their bins, the spare bin
    for the rest), from a histogram of the bins per row."""
    rows = element_bin.shape[0]
    keys = element_bin + torch.arange(0, rows * (bins + 1), bins + 1, device=element_bin.device)[:, None]
    histogram = torch.bincount(keys.view(-1), minlength=rows * (bins + 1)).view(rows, bins + 1)
    below = torch.zeros(rows, bins + 2, dtype=torch.int64, device=element_bin.device)
    torch.cumsum(histogram, dim=1, out=below[:, 1:])  # below[b]: how many lie in the bins before b
    return (below.gather(1, upper_bin) - below.gather(1, lower_bin + 1)).clamp_min_(0)


def _edge_terms(values, rows, lower, upper, positive):
    """[M, K] for M negatives (their distances and rows): which windows hold each (lower < d < upper) and which
    count it as a unit (lower < d <= upper)."""
    up = upper[rows]
    live = positive[rows]
    if lower is not None:
        live = live & (lower[rows] < values[:, None])
    return live & (values[:, None] < up), live & (values[:, None] <= up)

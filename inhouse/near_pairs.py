"""The pairs of a batch that may lie closer than a bound, found without the N x N matrix.

contrastive's negative pairs count only below the margin, and in a typical batch hardly any do: the loss needs the
distances of those few pairs and of the positive pairs, each measured from differences (`distances.PairDistances`),
not a matrix. `pairs_within` screens every pair i < j by the Gram expansion of the centred points, stripe by stripe of
rows and only right of the diagonal (half a matmul, one reduction pass and no N x N temporary), and returns a superset
of the pairs whose squared distance, measured from differences, is below the bound: the screen's bound is widened by
the expansion's worst-case rounding (`SLACK_PER_TERM`), so a pair it drops is far from the bound, never near it.

It declines (returns None, and the caller takes the matrix path) off the CPU (a data-dependent `nonzero` per stripe
would synchronise a GPU) and where the bound on the rounding does not hold: norms that are not finite or could
overflow in the expansion.
"""
from __future__ import annotations

import torch

from .distances import centred
from .hardest_stripes import stripes

# The Gram expansion |z_i|^2 + |z_j|^2 - 2 z_i.z_j of D-dimensional float points is within about (2 D + 4) eps
# (|z_i|^2 + |z_j|^2) of the squared distance of z_i and z_j, and the centring moves that distance by at most about
# 4 eps (|z_i|^2 + |z_j|^2) from the points' own (one rounding per coordinate); the measurement from differences
# rounds by (D + 1) eps relative. The screen allows twice their sum: SLACK_PER_TERM (D + SLACK_TERMS) eps.
SLACK_PER_TERM = 4
SLACK_TERMS = 8
# Rows per stripe of the screen (`hardest_stripes.stripes`): about 2^18 entries, at most 256 rows. Its few operations
# per stripe favour more stripes (less of the matrix below the diagonal computed): 2^19 entries, up to 512 rows, took
# 20% longer at N = 1024 and 4096.
SCREEN_ENTRIES = 1 << 18
SCREEN_ROWS = 256


def pairs_within(points: torch.Tensor, bound: float) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(first, second), first < second: every pair whose |points_i - points_j|^2, measured from differences, may be
    below `bound`, and some more; None where the screen cannot vouch for that (the caller then measures all pairs)."""
    n, width = points.shape
    if points.device.type != "cpu":
        return None
    none = torch.zeros(0, dtype=torch.long)
    if n < 2 or not bound > 0:  # distances are >= 0: none is below a bound <= 0
        return none, none
    z = centred(points)
    sq = (z * z).sum(dim=1)
    largest = sq.amax()
    if not bool((largest < torch.finfo(sq.dtype).max / 8) & torch.isfinite(sq).all()):
        return None
    slack = SLACK_PER_TERM * (width + SLACK_TERMS) * torch.finfo(points.dtype).eps
    # a bound below the dtype's normal range would round to 0, and two copies at the very centre screen at 0
    bound = max(bound, torch.finfo(points.dtype).tiny)
    # d2_ij - slack (sq_i + sq_j) < bound (1 + slack), split as (1 - slack) sq_j - 2 z_i.z_j < limit_i
    kept = (1.0 - slack) * sq
    limits = bound * (1.0 + slack) - kept
    firsts, seconds = [], []
    for start, stop in stripes(n, SCREEN_ENTRIES, SCREEN_ROWS):
        rows = stop - start
        # columns j >= start; the stripe's own block keeps only j > i
        screen = torch.addmm(kept[None, start:], z[start:stop], z[start:].T, alpha=-2.0)
        screen[:, :rows].masked_fill_(torch.ones(rows, rows, dtype=torch.bool).tril_(), float("inf"))
        limit = limits[start:stop, None]
        hit_rows = (screen.amin(dim=1, keepdim=True) < limit).nonzero()[:, 0]  # usually none: one pass decides
        if len(hit_rows):
            row, column = (screen[hit_rows] < limit[hit_rows]).nonzero(as_tuple=True)
            firsts.append(hit_rows[row] + start)
            seconds.append(column + start)
    if not firsts:
        return none, none
    return torch.cat(firsts), torch.cat(seconds)

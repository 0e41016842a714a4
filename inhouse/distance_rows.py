"""A loss read row by row from a distance matrix, in one pass over chunks of its rows: the softmax and similarity
families (inhouse/softmax.py, inhouse/similarity.py) in O(N x chunk) memory, their gradient computed in the same pass.

`row_losses(rows, columns, distance, rows_loss)` measures D(rows_i, columns_j) (the N x N matrix when `columns` is
`rows`, or the anchors x positives block of the pairs layout: a quarter of it) a chunk of rows at a time, hands each
chunk to `rows_loss(M_chunk, unit, chunk, work) -> (per-row values, dL/dM_chunk)` (D = unit x M: cosine's 1/2 folded
into the loss's own scaling), and pushes dL/dM through the distances at once: the gradient of a softmax written
out, never autograd over N x N temporaries. Each temporary of a chunk's size is one buffer reused from chunk to chunk and written in place: on the CPU a fresh one costs about ten times the
arithmetic on it, in page faults, and an N x N one falls out of the cache as well.

The distances are the Gram expansion of the re-centred points (inhouse/distances.py `centred`), with the pairs it
cannot resolve (d2 < REFINE_BELOW x (|z_i|^2 + |z_j|^2): near-duplicates) measured from differences of the points as
given, and their gradient from those differences too: the precision of `pairwise_distances`. Cosine is |u_a - u_b|^2
/ 2 of unit points (a zero point adds its share 1/2). The diagonal of the N x N matrix is exactly 0. Unlike
`pairwise_distances`, copies of one row are not forced to bitwise-equal distances: these losses decide nothing on a
tie between two distances (multi_similarity_mined, whose miner does, stays on `pairwise_distances`).
"""
from __future__ import annotations

from typing import Callable

import torch

from .distances import REFINE_BELOW, centred

# float64 elements of a chunk of rows (4 MiB): the chunk's temporaries stay in the cache, few chunks for Python to run
ROW_ELEMENTS = 1 << 19


def row_chunks(rows: int, columns: int):
    step = max(1, ROW_ELEMENTS // max(columns, 1))
    return (slice(start, min(start + step, rows)) for start in range(0, rows, step))


def row_losses(rows: torch.Tensor, columns: torch.Tensor, distance: str,
               rows_loss: Callable) -> tuple[torch.Tensor, torch.Tensor]:
    """(total, values): the per-row values (float64 [len(rows)]) of `rows_loss(M_chunk, unit, chunk, work) -> (values,
    dL/dM_chunk)` over D(rows, columns) = unit x M, and their sum, differentiable (the values are not: a row that does
    not count must have value 0 and dL/dM 0). `work` is a float64 buffer of the chunk's shape for the loss to compute
    in, in place, and return dL/dM in; M_chunk (the points' dtype) is overwritten once the loss returns."""
    return _RowLosses.apply(rows, columns, distance, rows_loss)


class _RowLosses(torch.autograd.Function):
    @staticmethod
    def forward(ctx, rows, columns, distance, rows_loss):
        square = rows is columns
        z = centred(rows) if square else centred(torch.cat([rows, columns]))
        z_rows, z_columns = (z, z) if square else (z[: len(rows)], z[len(rows):])
        sq_rows, sq_columns = (z_rows * z_rows).sum(dim=1), (z_columns * z_columns).sum(dim=1)
        shares = _zero_shares(rows, columns, square) if distance == "cosine" else None
        values = torch.empty(len(rows), dtype=torch.float64, device=rows.device)
        grad_rows, grad_columns = torch.zeros_like(rows), torch.zeros_like(columns)
        # the columns' gradient 2 sum_i k_ij (z_j - z_i), gathered over the chunks as sum_i k_ij and [D, C] z_rows^T k:
        # k^T z_rows would transpose every chunk
        column_weights, pulled = columns.new_zeros(len(columns)), columns.new_zeros(columns.shape[::-1])
        differentiable = any(ctx.needs_input_grad[:2])
        chunks = list(row_chunks(len(rows), len(columns)))
        shape = (chunks[0].stop if chunks else 0, len(columns))
        d2_buffer, work_buffer = rows.new_empty(shape), rows.new_empty(shape, dtype=torch.float64)
        for chunk in chunks:
            size = chunk.stop - chunk.start
            d2 = torch.add(sq_rows[chunk, None], sq_columns[None, :], out=d2_buffer[:size])
            d2.addmm_(z_rows[chunk], z_columns.T, alpha=-2.0)  # d2 < 0 is a near pair: measured again below
            diagonal = diagonal_of(chunk, rows.device) if square else None
            near = _near_pairs(d2, sq_rows[chunk], sq_columns, diagonal)
            if near is not None:
                i, j, diff = near[0], near[1], rows[chunk][near[0]] - columns[near[1]]
                d2[i, j] = (diff * diff).sum(dim=1)
            if diagonal is not None:
                d2[diagonal] = 0.0
            measured, unit = _measured_(d2, distance, shares, chunk)
            values[chunk], dl_dm = rows_loss(measured, unit, chunk, work_buffer[:size])
            if not differentiable:
                continue
            k = _d2_coefficient(dl_dm, measured, distance, shares)  # dL/dd2, in the points' dtype, over M
            if diagonal is not None:
                k[diagonal] = 0.0
            if near is not None:
                push = k[i, j, None] * diff
                k[i, j] = 0.0
            # dd2_ij / dx_i = 2 (x_i - x_j) = 2 (z_i - z_j): one matmul each way, near pairs from their differences
            grad_rows[chunk] += 2.0 * torch.addmm(k.sum(dim=1, keepdim=True) * z_rows[chunk], k, z_columns, alpha=-1.0)
            column_weights.add_(k.sum(dim=0))
            pulled.addmm_(z_rows[chunk].T, k, alpha=-1.0)
            if near is not None:
                grad_rows[chunk].index_add_(0, i, 2.0 * push)
                grad_columns.index_add_(0, j, -2.0 * push)
        grad_columns.add_(2.0 * (column_weights[:, None] * z_columns + pulled.T))
        ctx.square = square
        ctx.save_for_backward(grad_rows, grad_columns)
        ctx.mark_non_differentiable(values)
        return values.sum(), values

    @staticmethod
    def backward(ctx, grad_total, grad_values):
        grad_rows, grad_columns = ctx.saved_tensors
        scale = grad_total.to(grad_rows.dtype)
        if ctx.square:  # one tensor: autograd would add the two halves, give it all to the first
            return (grad_rows + grad_columns) * scale, None, None, None
        return grad_rows * scale, grad_columns * scale, None, None


def _zero_shares(rows, columns, square):
    """Each zero point's share 1/2 of its cosine distances (`unit_rows` gives it cos = 0), or None without one."""
    zero_rows = (rows == 0).all(dim=1)
    zero_columns = zero_rows if square else (columns == 0).all(dim=1)
    if not (zero_rows.any() or zero_columns.any()):
        return None
    return 0.5 * zero_rows.to(rows.dtype), 0.5 * zero_columns.to(columns.dtype)


def _near_pairs(d2, sq_rows, sq_columns, diagonal):
    """(i, j) of the chunk's pairs the Gram expansion cannot resolve (the diagonal aside), or None; one cheap
    comparison settles the usual case."""
    if diagonal is not None:
        d2[diagonal] = float("inf")
    if d2.min() >= REFINE_BELOW * (sq_rows.max() + sq_columns.max()):
        return None
    i, j = (d2 < REFINE_BELOW * (sq_rows[:, None] + sq_columns[None, :])).nonzero(as_tuple=True)
    return (i, j) if len(i) else None


def _measured_(d2, distance, shares, chunk):
    """(M, unit), D = unit x M, in place: cosine's d2 / 2 as d2 and 1/2 (but with zero points), sqrt(d2) (euclidean)."""
    if distance == "cosine" and shares is not None:
        return d2.mul_(0.5).add_(shares[0][chunk, None] + shares[1][None, :]), 1.0
    if distance == "cosine":
        return d2, 0.5
    return (d2, 1.0) if distance == "squared_euclidean" else (d2.sqrt_(), 1.0)


def _d2_coefficient(dl_dm, measured, distance, shares):
    """dL/dd2 from dL/dM (float64, consumed), written over M: 1 (M = d2), 1/2 (cosine with zero points: M = d2 / 2 +
    shares), 1 / (2 D), 0 at D = 0 (euclidean)."""
    if distance == "cosine" and shares is not None:
        dl_dm.mul_(0.5)
    elif distance == "euclidean":
        dl_dm.div_(measured).mul_(0.5).masked_fill_(measured == 0, 0.0)
    return measured.copy_(dl_dm)


def exp_rows(logits: torch.Tensor, live: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(lse, e, total), in place on `logits`, whose entries a row does not read the caller has set to -inf: per row the
    log-sum-exp, e^(l - top) and its sum, shifted by the row's largest logit (as the oracle's reference/terms.py
    `masked_log_sum_exp`); a row not `live` (it reads nothing; None: every row reads something) has lse -inf, e 0 and
    total 1. The softmax is e / total."""
    top = logits.amax(dim=1)
    if live is not None:
        top = torch.where(live, top, torch.zeros_like(top))
    exps = logits.sub_(top[:, None]).exp_()
    total = exps.sum(dim=1)
    if live is None:
        return torch.log(total) + top, exps, total
    total = torch.where(live, total, torch.ones_like(total))
    return torch.where(live, torch.log(total) + top, torch.full_like(top, float("-inf"))), exps, total


def unread_(logits: torch.Tensor, *entries: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """logits with the given (rows, columns) entries set to -inf: what exp_rows does not read."""
    for rows, columns in entries:
        logits.index_put_((rows, columns), torch.tensor(float("-inf"), dtype=logits.dtype, device=logits.device))
    return logits


def sparse_softmax_parts(logits: torch.Tensor, rows: torch.Tensor, n_rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(lse, softmax) of a few entries per row, `logits[e]` in row `rows[e]`, as exp_rows: the softmax per entry."""
    live = torch.bincount(rows, minlength=n_rows) > 0
    top = torch.zeros(n_rows, dtype=logits.dtype, device=logits.device)
    top = torch.where(live, top.scatter_reduce_(0, rows, logits, "amax", include_self=False), top)
    softmax = torch.exp(logits - top[rows])
    total = torch.where(live, torch.zeros_like(top).index_add_(0, rows, softmax), torch.ones_like(top))
    lse = torch.where(live, torch.log(total) + top, torch.full_like(top, float("-inf")))
    return lse, softmax / total[rows]


def class_sizes(labels: torch.Tensor) -> torch.Tensor:
    """Per row, how many rows share its label (itself included)."""
    _, group, sizes = torch.unique(labels, return_inverse=True, return_counts=True)
    return sizes[group]


class ClassPairs:
    """Every ordered pair (a, b) of rows with one label, a != b unless `with_self`, sorted by a, built in O(pairs)
    from the sorted labels (no N x N mask); `of(chunk)` gives the chunk's, a counted from the chunk's first row."""

    def __init__(self, labels: torch.Tensor, with_self: bool = False):
        n, device = len(labels), labels.device
        order = torch.argsort(labels, stable=True)
        _, group, sizes = torch.unique(labels, return_inverse=True, return_counts=True)
        first = torch.cumsum(sizes, 0) - sizes  # where each class starts in `order`
        per_row = sizes[group]
        a = torch.repeat_interleave(torch.arange(n, device=device), per_row)
        starts = torch.cumsum(per_row, 0) - per_row
        b = order[first[group[a]] + torch.arange(len(a), device=device) - starts[a]]
        if not with_self:
            keep = a != b
            a, b, per_row = a[keep], b[keep], per_row - 1
        self.a, self.b = a, b
        self.starts = torch.cat([per_row.new_zeros(1), torch.cumsum(per_row, 0)]).tolist()

    def of(self, chunk: slice) -> tuple[torch.Tensor, torch.Tensor]:
        part = slice(self.starts[chunk.start], self.starts[chunk.stop])
        return self.a[part] - chunk.start, self.b[part]


def diagonal_of(chunk: slice, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, columns) of the N x N diagonal within rows `chunk`, rows counted from the chunk's first."""
    columns = torch.arange(chunk.start, chunk.stop, device=device)
    return columns - chunk.start, columns

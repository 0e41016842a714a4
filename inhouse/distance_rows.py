"""A loss read row by row from a distance matrix, in one pass over chunks of its rows: the softmax and similarity
families (inhouse/softmax.py, inhouse/similarity.py) and lifted (inhouse/lifted.py, two passes) in O(N x chunk)
memory, their gradient computed in the same pass (a small square matrix is kept whole for its gradient, to pull
it in one product: `Gram`, SYMMETRIC_BYTES).

`row_losses(points, split, distance, rows_loss)` measures D(rows_i, columns_j) (the N x N matrix when split is None,
or the anchors x positives block of the pairs layout, points[:split] x points[split:]: a quarter of it) a chunk of
rows at a time, hands each
chunk to `rows_loss(M_chunk, unit, chunk, work) -> (per-row values, dL/dM_chunk)` (D = unit x M: cosine's 1/2 folded
into the loss's own scaling), and pushes dL/dM through the distances at once: the gradient of a softmax written
out, never autograd over N x N temporaries. Each temporary of a chunk's size is one buffer reused from chunk to chunk,
and on the CPU from call to call (inhouse/scratch.py), and written in place: a fresh one costs about ten times the
arithmetic on it, in page faults, and an N x N one falls out of the cache as well. The softmax family's
cross-entropies and multi_similarity's negatives, over a distance linear in d2, take a faster road over the same
`Gram` (inhouse/linear_logits.py).

The distances are the Gram expansion of the re-centred points (inhouse/distances.py `centred`), with the pairs it
cannot resolve (d2 < REFINE_BELOW x (|z_i|^2 + |z_j|^2): near-duplicates) measured from differences of the points as
given, and their gradient from those differences too: the precision of `pairwise_distances`. Cosine is |u_a - u_b|^2
/ 2 of unit points (a zero point adds its share 1/2). The diagonal of the N x N matrix is exactly 0. Unlike
`pairwise_distances`, copies of one row are not forced to bitwise-equal distances: these losses decide nothing on a
tie between two distances (multi_similarity_mined, whose miner does, stays on `pairwise_distances`).
"""
from __future__ import annotations

from typing import Callable

import numpy
import torch

from .distances import REFINE_BELOW, centred, zero_rows
from .scratch import scratch

# float64 elements of a chunk of rows (4 MiB): the chunk's temporaries stay in the cache, few chunks for Python to run
ROW_ELEMENTS = 1 << 19
# An N x N matrix of at most this many bytes keeps every chunk's dL/dd2 and pulls it once, symmetrised: (K + K^T) z is
# one product where K z and K^T z were two, and while K stays in the cache its transposed copy costs less than the
# product it saves (1 thread, float32: N = 1024 2.2 against 3.1 ms, N = 2048 11.0 against 12.6; float64: N = 1024 5.9
# against 8.0, N = 1448 even)
SYMMETRIC_BYTES = 1 << 24


def pulled_whole(points: torch.Tensor, square: bool) -> bool:
    """Whether the gradient through the points' distance matrix is pulled once, symmetrised (SYMMETRIC_BYTES)."""
    return square and len(points) ** 2 * points.element_size() <= SYMMETRIC_BYTES


def symmetrised(k: torch.Tensor) -> torch.Tensor:
    """K + K^T of a square K, in scratch memory: torch's transposed copy, blocked, then one contiguous sum."""
    return scratch("symmetrised", k.shape, k).copy_(k.T).add_(k)


def row_chunks(rows: int, columns: int):
    """Slices of the rows whose [rows, columns] temporaries hold at most ROW_ELEMENTS."""
    step = max(1, ROW_ELEMENTS // max(columns, 1))
    return (slice(start, min(start + step, rows)) for start in range(0, rows, step))


class Gram:
    """The squared distances d2 of the rows `points[:split]` to the columns `points[split:]` (split None: all of
    them, the N x N matrix) a chunk of rows at a time, and the gradient through them of a coefficient k = dL/dd2 given
    chunk by chunk, gathered as [rows, D] and [D, columns] products: dd2_ij / dz_i = 2 (z_i - z_j), one matmul each
    way (k^T z_rows would transpose every chunk).

    k may come as f_i x K_ij with a per-row factor f applied to those products, not to the chunk's entries (an
    elementwise pass saved). The near pairs' share goes through their differences, as their distances did.

    A square matrix of at most SYMMETRIC_BYTES is written whole (`rows_buffer`) and pulled once, at
    `gradient`: dd2_ij / dz_i = 2 (z_i - z_j) = -dd2_ij / dz_j, so dL/dz = 2 (z (S 1) - S z) with S = K + K^T. Its near
    pairs are pushed there too, once its rows are scaled and `add_pairs`' entries added to them."""

    def __init__(self, points: torch.Tensor, split: int | None = None):
        self.points, self.square, self.split = points, split is None, split or 0
        self.z = centred(points)
        sq = (self.z * self.z).sum(dim=1)
        (self.rows, self.columns), (self.z_rows, self.z_columns), (self.sq_rows, self.sq_columns) = (
            (t, t) if self.square else (t[:split], t[split:]) for t in (points, self.z, sq))
        # a row whose smallest d2 is at least its bound has no near pair: one comparison per row settles the usual case
        self.bound = REFINE_BELOW * (self.sq_rows + (self.sq_columns.max() if len(self.columns) else 0.0))
        self.pushes = []  # the near pairs' (rows, columns, f_i k_ij (x_i - x_j))
        self.whole = None  # the N x N matrix of every chunk's k, where it is pulled at once
        self.nears = []  # its chunks' near pairs, with their first rows: pushed once it is scaled
        self.added = []  # the (rows, columns, k) `add_pairs` adds

    def rows_buffer(self, chunks: list[slice], differentiable: bool) -> torch.Tensor:
        """The buffer of the points' dtype the chunks' d2, then k, are written in (`chunk_of` gives a chunk's part):
        the whole N x N matrix where the gradient is pulled at once, else one chunk's rows, reused (and the sums
        and products `pull` gathers per chunk)."""
        if differentiable and pulled_whole(self.points, self.square):
            self.whole = scratch("row distances", (len(self.rows), len(self.columns)), self.rows)
            return self.whole
        self.row_sums, self.pulled_rows = torch.empty_like(self.sq_rows), torch.empty_like(self.z_rows)
        self.column_sums = torch.zeros_like(self.sq_columns)
        self.pulled_columns = self.z_columns.new_zeros(self.z_columns.shape[::-1])
        return scratch("row distances", (chunks[0].stop if chunks else 0, len(self.columns)), self.rows)

    def chunk_of(self, buffer: torch.Tensor, chunk: slice) -> torch.Tensor:
        return buffer[chunk] if self.whole is not None else buffer[: chunk.stop - chunk.start]

    def measure(self, chunk: slice, d2: torch.Tensor, smallest: torch.Tensor, first: int = 0):
        """d2 := the squared distances of the chunk's rows to the columns from `first` on (rows counted from the
        chunk's first, columns from `first`), the N x N diagonal +inf; smallest := each row's least d2 there. The near
        pairs, measured from differences: (i, j, differences), counted as d2's rows and columns, or None."""
        sq_columns, z_columns = self.sq_columns[first:], self.z_columns[first:]
        torch.add(self.sq_rows[chunk, None], sq_columns, out=d2)
        d2.addmm_(self.z_rows[chunk], z_columns.T, alpha=-2.0)  # d2 < 0 is a near pair: measured again below
        if self.square:
            d2.diagonal(chunk.start - first).fill_(float("inf"))
        torch.amin(d2, dim=1, out=smallest)
        if not bool((smallest < self.bound[chunk]).any()):
            return None
        limits = torch.add(self.sq_rows[chunk, None], sq_columns, out=scratch("near limits", d2.shape, d2))
        near = torch.lt(d2, limits.mul_(REFINE_BELOW), out=scratch("near pairs", d2.shape, d2, torch.bool))
        i, j = near.nonzero(as_tuple=True)
        if not len(i):
            return None
        diff = self.rows[chunk][i] - self.columns[j + first]
        d2[i, j] = (diff * diff).sum(dim=1)
        torch.amin(d2, dim=1, out=smallest)
        return i, j, diff

    def pull(self, chunk: slice, k: torch.Tensor, near, factor: torch.Tensor | None = None) -> None:
        """Gathers the gradient of the chunk's k = factor_i x k_ij (factor None: 1), k's diagonal 0 (consumed: the
        near pairs' entries are zeroed, their share pushed from their differences)."""
        if self.whole is not None:  # k stays in the whole matrix, pulled (its near pairs pushed) at `gradient`
            self.nears.append((near, chunk.start))
            return
        self.push_near(near, k, chunk.start, 0, factor)
        torch.sum(k, dim=1, out=self.row_sums[chunk])
        torch.mm(k, self.z_columns, out=self.pulled_rows[chunk])
        z_rows = self.z_rows[chunk] if factor is None else self.z_rows[chunk] * factor[:, None]
        self.pulled_columns.addmm_(z_rows.T, k)
        self.column_sums.add_(k.sum(dim=0) if factor is None else k.T @ factor)

    def push_near(self, near, k: torch.Tensor, first_row: int, first_column: int,
                  factor: torch.Tensor | None = None) -> None:
        """Takes the near pairs' entries (`measure`'s (i, j, differences), or None) out of k = factor_i x k_ij, whose
        rows and columns start at `first_row` and `first_column`: zeroed there, their share kept to push from their
        differences."""
        if near is None:
            return
        i, j, diff = near
        push = (k[i, j] if factor is None else k[i, j] * factor[i])[:, None] * diff
        k[i, j] = 0.0
        self.pushes.append((i + first_row, j + first_column, push))

    def add_pairs(self, i: torch.Tensor, j: torch.Tensor, k: torch.Tensor) -> None:
        """dL/dd2 += k at the pairs (rows i, columns j), beside what `pull` gathered and the factor scales: added once
        it is scaled, before the near pairs are pushed, to a matrix kept whole (at `gradient`) or read by its triangle
        (inhouse/triangle.py `Triangle.pull`); not to chunks of rows pulled one by one."""
        self.added.append((i, j, k))

    def gradient(self, factor: torch.Tensor | None = None) -> torch.Tensor:
        """dL/dpoints of what `pull` gathered over every row, the rows' products scaled by their `factor` now (a matrix
        kept whole: its rows, before its one product)."""
        if self.whole is not None:
            k = self.whole if factor is None else self.whole.mul_(factor[:, None].to(self.whole.dtype))
            for i, j, added in self.added:
                k.index_put_((i, j), added.to(k.dtype), accumulate=True)
            for near, first_row in self.nears:
                self.push_near(near, k[first_row:], first_row, 0)
            both = symmetrised(k)
            return self.symmetric_gradient(both.sum(dim=1), both @ self.z)
        grad = torch.empty_like(self.z)
        rows = grad if self.square else grad[: self.split]
        torch.mul(self.z_rows, self.row_sums[:, None], out=rows).sub_(self.pulled_rows)
        rows.mul_(2.0 if factor is None else 2.0 * factor[:, None].to(rows.dtype))
        if self.square:
            grad.addcmul_(self.z_columns, self.column_sums[:, None], value=2.0).sub_(self.pulled_columns.T, alpha=2.0)
        else:
            torch.mul(self.z_columns, self.column_sums[:, None], out=grad[self.split:])
            grad[self.split:].sub_(self.pulled_columns.T).mul_(2.0)
        return self._pushed(grad)

    def symmetric_gradient(self, sums: torch.Tensor, pulled: torch.Tensor) -> torch.Tensor:
        """dL/dpoints = 2 (z (S 1) - S z) of a symmetric S = K + K^T, given its row sums and S z, with the near pairs'
        share added."""
        return self._pushed(torch.mul(self.z, sums[:, None]).sub_(pulled).mul_(2.0))

    def _pushed(self, grad: torch.Tensor) -> torch.Tensor:
        """grad with the near pairs' share added."""
        for i, j, push in self.pushes:
            grad.index_add_(0, i, push, alpha=2.0)
            grad.index_add_(0, j + self.split, push, alpha=-2.0)
        return grad


def row_losses(points: torch.Tensor, split: int | None, distance: str,
               rows_loss: Callable) -> tuple[torch.Tensor, torch.Tensor]:
    """(total, values): the per-row values (float64 [rows]) of `rows_loss(M_chunk, unit, chunk, work) -> (values,
    dL/dM_chunk)` over D(rows, columns) = unit x M (rows `points[:split]`, columns `points[split:]`, split None: all
    of them, the N x N matrix), and their sum, differentiable (the values are not: a row that does not count must have
    value 0 and dL/dM 0). `work` is a float64 buffer of the chunk's shape for the loss to compute in, in place, and
    return dL/dM in; M_chunk (the points' dtype) is overwritten once the loss returns."""
    return _RowLosses.apply(points, split, distance, rows_loss)


class GramGradients(torch.autograd.Function):
    """A Function of (points, split, two more arguments) whose forward computed the gradient of its total over `Gram`
    and `keep`s it: the backward scales it by dL/dtotal (the per-row values are not differentiable)."""

    @staticmethod
    def keep(ctx, gram: Gram, factor: torch.Tensor | None = None) -> None:
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(gram.gradient(factor))

    @staticmethod
    def backward(ctx, grad_total, grad_values):
        grad, = ctx.saved_tensors
        return grad * grad_total.to(grad.dtype), None, None, None


class _RowLosses(GramGradients):
    @staticmethod
    def forward(ctx, points, split, distance, rows_loss):
        gram = Gram(points, split)
        rows, columns = gram.rows, gram.columns
        shares = _zero_shares(gram) if distance == "cosine" else None
        values = torch.empty(len(rows), dtype=torch.float64, device=rows.device)
        chunks = list(row_chunks(len(rows), len(columns)))
        d2_buffer = gram.rows_buffer(chunks, ctx.needs_input_grad[0])
        work_buffer = scratch("row work", (chunks[0].stop if chunks else 0, len(columns)), rows, torch.float64)
        smallest = rows.new_empty(len(rows))
        for chunk in chunks:
            size = chunk.stop - chunk.start
            d2 = gram.chunk_of(d2_buffer, chunk)
            near = gram.measure(chunk, d2, smallest[chunk])
            if gram.square:
                d2.diagonal(chunk.start).zero_()
            measured, unit = _measured_(d2, distance, shares, chunk)
            values[chunk], dl_dm = rows_loss(measured, unit, chunk, work_buffer[:size])
            if ctx.needs_input_grad[0]:
                k = _d2_coefficient(dl_dm, measured, distance, shares)  # dL/dd2, in the points' dtype, over M
                if gram.square:
                    k.diagonal(chunk.start).zero_()
                gram.pull(chunk, k, near)
        GramGradients.keep(ctx, gram)
        ctx.mark_non_differentiable(values)
        return values.sum(), values


def _zero_shares(gram: Gram):
    """Each zero point's share 1/2 of its cosine distances (`unit_rows` gives it cos = 0), or None without one."""
    zero = zero_rows(gram.points)
    if not zero.any():
        return None
    share = 0.5 * zero.to(gram.points.dtype)
    return (share, share) if gram.square else (share[: gram.split], share[gram.split:])


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
        at_zero = torch.eq(measured, 0.0, out=scratch("zero distances", measured.shape, measured, torch.bool))
        dl_dm.div_(measured).mul_(0.5).masked_fill_(at_zero, 0.0)
    return measured.copy_(dl_dm)


def _numpy_vectorises_exp() -> bool:
    """Whether NumPy's float64 exp runs vectorised on this CPU: NumPy has such a loop for AVX-512 alone, and elsewhere
    (AVX2, ARM, or AVX-512 switched off by NPY_DISABLE_CPU_FEATURES) calls the C library's once per entry."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # NumPy 1
        from numpy.core._multiarray_umath import __cpu_features__
    return bool(__cpu_features__.get("AVX512F"))


# NumPy's exp where it is vectorised: twice torch 2.13's speed on an AVX-512 core (0.5 against 1.0 ms per 2^19
# entries); torch's elsewhere: 2.5 times the C library's, one entry at a time, on an AVX2 core (AMD EPYC, 1 thread:
# 0.54 against 1.33 ms per 2^18 entries). Both within one unit in the last place of e^t.
NUMPY_EXP = _numpy_vectorises_exp()


def exp_(t: torch.Tensor) -> torch.Tensor:
    """t := e^t, in place, by the faster of NumPy's and torch's exp for a contiguous float64 CPU tensor (NUMPY_EXP):
    the softmax and similarity families spend most of their time outside the matmuls in these exponentials."""
    if NUMPY_EXP and t.device.type == "cpu" and t.dtype == torch.float64 and t.is_contiguous() and not t.requires_grad:
        array = t.numpy()
        with numpy.errstate(all="ignore"):  # inf where it overflows, 0 where it underflows: as torch, silently
            numpy.exp(array, out=array)
        return t
    return t.exp_()


def exp_rows(logits: torch.Tensor, live: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(lse, e, total), in place on `logits`, whose entries a row does not read the caller has set to -inf: per row the
    log-sum-exp, e^(l - top) and its sum, shifted by the row's largest logit (as the oracle's reference/terms.py
    `masked_log_sum_exp`); a row not `live` (it reads nothing; None: every row reads something) has lse -inf, e 0 and
    total 1. The softmax is e / total."""
    top = logits.amax(dim=1)
    if live is not None:
        top = torch.where(live, top, torch.zeros_like(top))
    exps = exp_(logits.sub_(top[:, None]))
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
    from the sorted labels (no N x N mask); `counts` the pairs of each row, `of(chunk)` the chunk's, a counted from
    the chunk's first row."""

    def __init__(self, labels: torch.Tensor, with_self: bool = False):
        n, device = len(labels), labels.device
        order = torch.argsort(labels, stable=True)
        _, group, sizes = torch.unique(labels, return_inverse=True, return_counts=True)
        first = (torch.cumsum(sizes, 0) - sizes)[group]  # where each row's class starts in `order`
        self.counts = sizes[group] - (0 if with_self else 1)
        a = torch.repeat_interleave(torch.arange(n, device=device), self.counts)
        ends = torch.cumsum(self.counts, 0)
        rank = torch.arange(len(a), device=device) - (ends - self.counts)[a]  # the partner's place in the class
        if not with_self:  # past the row's own place in `order`
            own = torch.empty_like(order).scatter_(0, order, torch.arange(n, device=device)) - first
            rank += rank >= own[a]
        self.a, self.b = a, order[first[a] + rank]
        self.starts = [0] + ends.tolist()

    def of(self, chunk: slice) -> tuple[torch.Tensor, torch.Tensor]:
        part = slice(self.starts[chunk.start], self.starts[chunk.stop])
        return self.a[part] - chunk.start, self.b[part]


def diagonal_of(chunk: slice, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, columns) of the N x N diagonal within rows `chunk`, rows counted from the chunk's first."""
    columns = torch.arange(chunk.start, chunk.stop, device=device)
    return columns - chunk.start, columns

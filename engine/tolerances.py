"""Tolerances as data, with their sources, and the rounding model that scales them to a batch.

Two tables, per dtype: one for values (the loss), one for gradients. A comparison passes when
|impl - oracle| <= atol + rtol * |oracle| for every element (torch.testing's closeness rule).

The tables are calibrated for quantities of order one from unit-scale inputs. A batch far from the
origin, with near-duplicate points, or a sum over many terms carries more rounding than that in any
correct implementation, so atol grows with a first-order estimate of this batch's rounding:

    atol = max(table atol, SAFETY * estimate)         scale = atol / table atol   (>= 1, in the record)

The estimate carries each distance's rounding delta_ij (contract/precision.py: a direct computation of the
spec by default; the Gram expansion's only where the adapter declares it) through the loss with the oracle's
dL/dD: sum_ij |dL/dD_ij| delta_ij, plus each term's own arithmetic, eps (m + its distances + |term|) weighted
as the reduction weighs it (a log-sum-exp's at its row's largest logit), plus the rounding of the distances read by the terms where dL/dD is one-sided: a
hinge within that rounding of its kink, a term whose positive and negative are one distance (`kink_rounding`).
A sum over T terms therefore scales with T, a mean does not. The gradient
estimate carries the relative rounding of each distance, delta_ij / d_ij, into that distance's gradient
contribution, and takes the largest element.

The model uses the dtype the implementation computes in: the dtype under test, unless the adapter
declares another in Adapter.compute_dtype = {dtype: compute dtype} (our in-house code computes float16 and
bfloat16 in float32 and casts the result back); the tables are the dtype under test's.

An execution target may round matmul inputs below the dtype (contract/targets.py `Target.matmul_mantissa_bits`;
cuda-tf32: TF32 keeps 10 explicit mantissa bits and accumulates in float32). Each product of a dot product then
carries 2 * 2^-bits (both inputs rounded) while the D products and two terms still accumulate in the dtype:

    u = (D + 2) eps + 2 * 2^-bits                  (float32 under TF32: about 2e-3, against 2.4e-6 at D = 18)

The model cannot know which of an implementation's distances pass through a matmul, so the widened u holds for
every distance on that target; the plain dtype model is judged beside it (engine/cell_run.py), and the comparison
record says whether the cell also stayed within it (tolerance.within_dtype_model): which implementations keep
float32's accuracy with TF32 switched on.

Which decisions a dtype cannot resolve on a batch is engine/ambiguity.py's business; it uses the same model.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from contract.dtypes import dtype as dtype_facts
from contract.precision import DEFAULT, squared_error, to_distance
from contract.targets import matmul_eps
from reference import Answer
from reference.distances import pairwise_backward, sine_of_cosine_distance
from reference.strategies import lifted_pairs
from reference.terms import NO_INDEX, hinge_or_soft, lookup

# atol = max(table atol, SAFETY * first-order estimate). The estimate bounds a distance's rounding
# (Higham's gamma_{D+2} for a sum of D products and two more terms); SAFETY leaves room for the
# rest of the pipeline (sqrt, the reduction, casts) and for second-order terms.
SAFETY = 2.0


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float
    source: str
    scale: float = 1.0  # atol / table atol: how much the batch's rounding widened the table's atol

    def allowed(self, expected: np.ndarray) -> np.ndarray:
        return self.atol + self.rtol * np.abs(expected)

    def record(self) -> dict:
        return {"atol": self.atol, "rtol": self.rtol, "source": self.source, "scale": self.scale}


_TORCH = "torch.testing._comparison._DTYPE_PRECISIONS"
_JAX = "jax._src.public_test_util.default_gradient_tolerance (atol = rtol)"

# Values: torch.testing's defaults (docs/upstream/conformance-practice.md, section 2).
VALUES = {
    "float64": Tolerance(atol=1e-7, rtol=1e-7, source=f"{_TORCH}[float64]"),
    "float32": Tolerance(atol=1e-5, rtol=1.3e-6, source=f"{_TORCH}[float32]"),
    "float16": Tolerance(atol=1e-5, rtol=1e-3, source=f"{_TORCH}[float16]"),
    "bfloat16": Tolerance(atol=1e-5, rtol=1.6e-2, source=f"{_TORCH}[bfloat16]"),
}
# Gradients: JAX's gradient tolerances, two to ten orders looser than its value tolerances
# (docs/upstream/conformance-practice.md, section 3).
GRADIENTS = {
    "float64": Tolerance(atol=1e-5, rtol=1e-5, source=f"{_JAX}[float64]"),
    "float32": Tolerance(atol=2e-3, rtol=2e-3, source=f"{_JAX}[float32]"),
    "float16": Tolerance(atol=1e-2, rtol=1e-2, source=f"{_JAX}[float16]"),
    "bfloat16": Tolerance(atol=1e-1, rtol=1e-1, source=f"{_JAX}[bfloat16]"),
}
SCALING = (
    "atol = max(table atol, {safety:g} x first-order rounding estimate of this batch: "
    "{what}, delta_ij = {precision} rounding of d_ij, contract/precision.py)"
)


def unit_roundoff(answer: Answer, dtype: str, target: str | None = None) -> float:
    """u = (D + 2) eps: a sum of D products and two more terms; + 2 * 2^-bits on a `target` that rounds matmul
    inputs to fewer mantissa bits than the dtype has (TF32, module docstring)."""
    u = (answer.measured.shape[1] + 2) * dtype_facts(dtype).eps
    reduced = matmul_eps(target, dtype)
    return u if reduced is None else u + 2.0 * reduced


def distance_rounding(answer: Answer, dtype: str, precision: str = DEFAULT, target: str | None = None) -> np.ndarray:
    """delta_ij: how far a correct `dtype` implementation's d_ij may sit from the exact one (on `target`)."""
    dist, spec = answer.distances, answer.spec
    squared = dist * dist if spec.distance == "euclidean" else dist
    err = squared_error(precision, answer.measured, squared, spec.distance, spec.normalize,
                        unit_roundoff(answer, dtype, target))
    return to_distance(err, dist, spec.distance)


def loss_rounding(answer: Answer, dtype: str, precision: str = DEFAULT, target: str | None = None) -> float:
    """sum_ij |dL/dD_ij| delta_ij + term_rounding + kink_rounding: the loss's first-order rounding for this batch."""
    if not np.isfinite(answer.loss):
        return 0.0
    delta = distance_rounding(answer, dtype, precision, target)
    # the value's own slopes where the gradient holds weights constant (circle's detached alpha)
    slopes = answer.grad_dist if answer.loss_slopes is None else answer.loss_slopes
    spread = np.sum(np.abs(slopes) * delta) + curvature_rounding(answer, delta) \
        + own_distance_rounding(answer, delta)
    return float(spread) + term_rounding(answer, dtype) + kink_rounding(answer, dtype, precision, target)


def own_distance_rounding(answer: Answer, delta: np.ndarray) -> float:
    """sum_t |dL/dv_t| delta_aa over the terms that read a fallback's constant 0 (NO_INDEX: batch_hard's hp for an
    anchor without a positive, semi_hard's negative for an anchor without one), which dL/dD has no entry for.

    A masked maximum over an empty mask falls back to the row minimum, the anchor's own distance d(a, a)
    (TF-Addons zeroes that diagonal, TF-Similarity does not), so an implementation may read the 0 as d(a, a),
    rounded like any distance it computes: exactly 0 from differences (delta_aa = 0 in the direct model), but by
    the Gram expansion whatever |a|^2 + |a|^2 - 2 a.a leaves, a residue that depends on the order the machine's
    matmul sums in (0 on one CPU, 1e-7 |a|^2 on another), amplified by the square root: euclidean delta_aa =
    sqrt(2 u |a|^2), 1.8e-3 for a unit row in D = 11 in float32. Two norms and a dot product, each within
    gamma_D |a|^2 of |a|^2 in any summation order, and one rounding at 2 |a|^2 leave at most (4 D + 2) eps |a|^2 <
    2 err_aa: sqrt(2) delta_aa, inside SAFETY, on the machine that rounds worst."""
    spec = answer.spec
    selection = answer.selection
    if selection.ndim != 2 or selection.shape[1] != 3 or not len(selection):
        return 0.0
    a, p, n = selection.T
    reads = (p == NO_INDEX).astype(float) + (n == NO_INDEX)
    if not reads.any():
        return 0.0
    dist = answer.distances
    hn = lookup(dist, a, n)
    scale = float(hn.mean()) if spec.scaled else 1.0  # [(hp - hn) / mean(hn) + m]+: hp's slope is 1 / mean(hn)
    if not scale > 0:
        return 0.0
    _, slope = hinge_or_soft((lookup(dist, a, p) - hn) / scale, spec.soft, spec.margin)
    own = np.diagonal(delta)[a]
    return float(np.sum(np.abs(answer.weights) * slope / scale * reads * own))


def curvature_rounding(answer: Answer, delta: np.ndarray) -> float:
    """sum_t |w_t| delta_t^2: the second-order rounding of contrastive's squared terms, whose first-order slope
    2 d vanishes at d = 0, where a distance rounded to sqrt(err) (the Gram expansion's) still adds err."""
    if answer.spec.mining != "contrastive" or not len(answer.selection):
        return 0.0
    i, j = answer.selection.T
    return float(np.sum(np.abs(answer.weights) * delta[i, j] ** 2))


def term_rounding(answer: Answer, dtype: str) -> float:
    """eps sum_t |w_t| (m + sum of the distances term t reads + |term t|): each term's own arithmetic.

    m + d_ap - d_an is rounded at the magnitude of its operands, not of its result, and dL/dD misses it
    where two distances cancel (a triplet whose positive and negative are one point: its term is m
    exactly, yet float16 gives m - 0.008 at d = 15)."""
    if not len(answer.selection):
        return 0.0
    if answer.operands is not None:  # a log-sum-exp rounds at its row's largest logit (reference/terms.py Terms)
        operands = answer.operands
    else:
        rows, read = answer.selection[:, :1], answer.selection[:, 1:]
        dist = np.where(read >= 0, answer.distances[rows, np.maximum(read, 0)], 0.0)
        operands = answer.spec.margin + dist.sum(axis=1) + np.abs(answer.values)
    return float(dtype_facts(dtype).eps * np.sum(np.abs(answer.weights) * operands))


def kink_rounding(answer: Answer, dtype: str, precision: str = DEFAULT, target: str | None = None) -> float:
    """sum_t |w_t| (delta_ap + delta_an) over the hinge terms within that rounding of their kink, and over the terms
    whose positive and negative are one distance: what sum_ij |dL/dD_ij| delta_ij misses, since the oracle's dL/dD
    is one-sided there. An inactive term (dL/dD = 0) within rounding of its hinge may come out active; a term
    whose two reads are one distance cancels in dL/dD, but not in an implementation that reads the two apart (a
    masked row maximum that meets the anchor's own distance, which the Gram expansion leaves at about
    sqrt(err) instead of 0). Either moves the loss by up to its reads' rounding; a fallback's 0 reads as d(a, a)
    (`own_distance_rounding`). Negligible at float32's rounding, except for that diagonal under the Gram
    expansion; it matters where the rounding is large (TF32 matmuls, half precision)."""
    spec = answer.spec
    if spec.soft or not np.isfinite(answer.loss) or answer.selection.ndim != 2 or answer.selection.shape[1] != 3 \
            or not len(answer.selection):
        return 0.0
    delta = distance_rounding(answer, dtype, precision, target)
    dist = answer.distances
    a, p, n = answer.selection.T
    has_positive = p >= 0
    hp, hn = lookup(dist, a, p), lookup(dist, a, n)
    slope = 1.0
    if spec.scaled:  # [(hp - hn) / mean(hn) + m]+: the kink where hp - hn + m mean(hn) = 0
        mean_hn = float(hn.mean())
        if not mean_hn > 0:
            return 0.0
        slope = 1.0 / mean_hn
    kink = hp - hn + spec.margin * (hn.mean() if spec.scaled else 1.0)
    own = np.diagonal(delta)[a]  # a fallback's 0 read as d(a, a) (own_distance_rounding)
    reads = np.where(has_positive, delta[a, np.maximum(p, 0)], own) + np.where(n >= 0, delta[a, np.maximum(n, 0)], own)
    near = (np.abs(kink) <= 2.0 * reads) | (has_positive & (p == n))
    return float(slope * np.sum(np.abs(answer.weights)[near] * reads[near]))


def grad_rounding(answer: Answer, dtype: str, precision: str = DEFAULT, target: str | None = None) -> float:
    """max_i sum_j |dL/dD_ij + dL/dD_ji| |dD_ij/dx_i| delta_ij / d_ij: the gradient's rounding."""
    if not np.isfinite(answer.loss):
        return 0.0
    dist = answer.distances
    delta = distance_rounding(answer, dtype, precision, target)
    # An exact copy (d = 0) has a difference of exactly 0 in any dtype, Gram expansion or not, so its
    # gradient is the convention's 0, not noise: only pairs apart carry a relative rounding (the Gram expansion's
    # backward, which forms no difference, is gram_backward_rounding's).
    relative = np.divide(delta, np.maximum(dist, delta), out=np.zeros_like(delta), where=dist > 0)
    weight = np.abs(answer.grad_dist) + np.abs(answer.grad_dist.T)
    distance = answer.spec.distance
    if distance == "euclidean":
        slope = np.ones_like(dist)
    elif distance == "squared_euclidean":
        slope = 2.0 * np.sqrt(dist)
    else:  # cosine, 1 - cos: |d/dx_i| = sin(angle) / |x_i|
        slope = sine_of_cosine_distance(dist)
    if answer.spec.normalize or distance == "cosine":
        slope = slope / np.where(answer.norms > 0, answer.norms, np.inf)[:, None]
    rows = np.sum(weight * slope * relative, axis=1) + slope_rounding(answer, dtype, delta, slope) \
        + projection_rounding(answer, dtype, target) + gram_backward_rounding(answer, dtype, precision, target)
    return float(np.max(rows, initial=0.0))


def gram_backward_rounding(answer: Answer, dtype: str, precision: str, target: str | None) -> np.ndarray:
    """Per row: what the Gram expansion's backward leaves where the distance is the expansion itself (squared).
    d(|p_i|^2 + |p_j|^2 - 2 p_i.p_j)/dp_i = 2 (p_i - p_j) is not formed as a difference there but as the norms'
    2 g p_i and the matmul's -2 g p_j, each rounded at |g| |p| and summed over the N rows (a dot product: gamma_N),
    so 2 (N + 2) eps sum_j (|g_ij| + |g_ji|) (|p_i| + |p_j|) is left however close the rows, even at an exact copy, where
    the difference of a direct computation is exactly 0. Found by the thorough hunt: TF-Similarity's max(Gram, 0)
    passes its gradient at 0, and two copies 5.4e15 from the origin kept 2^25 of their products of 2^50, depending
    on whether the CPU's matmul fuses a multiply and an add (the spec: 0)."""
    if precision != "gram" or answer.spec.distance != "squared_euclidean":
        return np.zeros(len(answer.norms))
    rows = len(answer.norms)
    rounding = (rows + 2) * dtype_facts(dtype).eps
    reduced = matmul_eps(target, dtype)
    rounding += 0.0 if reduced is None else 2.0 * reduced
    weight = np.abs(answer.grad_dist) + np.abs(answer.grad_dist.T)
    sizes = np.linalg.norm(answer.measured, axis=1)
    return 2.0 * rounding * np.sum(weight * (sizes[:, None] + sizes[None, :]), axis=1)


def projection_rounding(answer: Answer, dtype: str, target: str | None) -> np.ndarray:
    """Per row: what normalising leaves in the gradient (normalize, cosine). dL/dx_i = (g - u_i (u_i . g)) / |x_i|,
    g = dL/du_i, whose two terms cancel along u_i; each carries the unit row's rounding (u, and 1 / |x_i| from a
    square root and a division, or a reciprocal square root: eps), so 2 (u + eps) |g| / |x_i| is left, however
    exact the distances: in one dimension every cosine distance is 0 or 2 and the spec's gradient exactly 0, yet a
    row of norm 7.3e-4 keeps its unit row's rounding times 1370 (TF-Addons' l2_normalize, whose rsqrt is the CPU's
    estimate refined by a Newton step, gave -2^-7 there on an AVX2 CPU and 2^-11 on an AVX-512 one)."""
    spec = answer.spec
    if not (spec.normalize or spec.distance == "cosine"):
        return np.zeros(len(answer.norms))
    dist, unit = answer.distances, answer.measured
    if spec.distance == "cosine":  # dD_ij/du_i = -u_j, before any projection
        # A clamp of 1 - u.u passes nothing where cos rounds to 1, but an implementation that reads the similarity
        # unclamped (circle, multi-similarity, any cos_sim) passes its slope there too, into the g the projection
        # cancels up to rounding (found by the thorough hunt: PML's circle, 1-D rows of 3e-4): every pair counts in g.
        size = np.linalg.norm(-(answer.grad_dist + answer.grad_dist.T) @ unit, axis=1)
    else:  # distances between the unit rows themselves
        size = np.linalg.norm(pairwise_backward(unit, dist, answer.grad_dist, spec.distance), axis=1)
    rounding = unit_roundoff(answer, dtype, target) + dtype_facts(dtype).eps
    return 2.0 * rounding * size / np.where(answer.norms > 0, answer.norms, np.inf)


def slope_rounding(answer: Answer, dtype: str, delta: np.ndarray, slope: np.ndarray) -> np.ndarray:
    """Per row: how far a term's slope dL/dD itself moves with the rounding of what it reads, carried to the
    rows it reads. The hinge's slope is constant between its kinks (those are decisions), but softplus'
    slope sigmoid(x) moves by sigmoid(x + r) - sigmoid(x - r) when x = d_ap - d_an is read r off, and
    contrastive's 2 d and -2 (m - d) by 2 r, lifted's with J and with each negative's share (`_lifted_slopes`):
    where distances are large enough that their rounding spans the width of the sigmoid (squared distances of 1e14
    in float32 are rounded by 1e7) the slope is the rounding's, not the spec's."""
    spec = answer.spec
    rows = np.zeros(len(answer.distances))
    softmax = answer.shares is not None
    if not len(answer.selection) or not (spec.soft or softmax or spec.mining in ("contrastive", "lifted")):
        return rows
    dist, weights, eps = answer.distances, np.abs(answer.weights), dtype_facts(dtype).eps
    if softmax:
        pairs = softmax_slopes(answer, delta, weights, eps)
    elif spec.mining == "lifted":
        pairs = _lifted_slopes(answer, delta, weights, eps)
    elif spec.mining == "contrastive":
        i, j = answer.selection.T
        moved = 2.0 * weights * delta[i, j]
        pairs = [(i, j, moved)]
    else:
        a, p, n = answer.selection.T
        positive = np.maximum(p, 0)
        hp = np.where(p >= 0, dist[a, positive], 0.0)
        hn = dist[a, n]
        spread = np.where(p >= 0, delta[a, positive], 0.0) + delta[a, n] + eps * (np.abs(hp) + np.abs(hn))
        moved = weights * (_sigmoid(hp - hn + spread) - _sigmoid(hp - hn - spread))
        pairs = [(a[p >= 0], positive[p >= 0], moved[p >= 0]), (a, n, moved)]
    for first, second, amount in pairs:
        np.add.at(rows, first, amount * slope[first, second])
        np.add.at(rows, second, amount * slope[second, first])
    return rows


def _lifted_slopes(answer: Answer, delta: np.ndarray, weights: np.ndarray, eps: float) -> list:
    """lifted's slopes: w [J]+ on the pair's own distance and -w [J]+ s_k on each negative's, s_k = e^(m - D_k - lse)
    its share of the log-sum-exp. J is read r_J = delta_ij + max_k delta_k + eps (|lse| + D_ij) off (the shares sum
    to 1), which moves every slope by w r_J s_k; a share read with its exponent r_k = delta_k + max delta + eps |lse|
    off moves by s_k (e^(r_k) - 1), at most 1: where distances round by more than the softmax's width (a near tie
    of two negatives far from the origin) the shares are the rounding's, not the spec's."""
    spec, dist, labels = answer.spec, answer.distances, answer.labels
    negative = labels[:, None] != labels[None, :]
    i, j, argument, all_shares = lifted_pairs(dist, labels, spec.margin)
    moved = []
    for a, b, value, row_shares, w in zip(i, j, argument, all_shares, weights):
        if not np.isfinite(value) or w == 0:  # J = -inf: no negative, no slope
            continue
        lse = value - dist[a, b]
        hinge = max(value, 0.0)
        reads = np.concatenate([negative[a], negative[b]])
        read = np.concatenate([delta[a], delta[b]])[reads]
        shares = row_shares[reads]
        r_j = delta[a, b] + read.max() + eps * (abs(lse) + dist[a, b])
        share_moves = np.minimum(shares * np.expm1(np.minimum(read + read.max() + eps * abs(lse), 700.0)), 1.0)
        moved.append(([a], [b], np.array([w * r_j])))
        at = 0
        for row in (a, b):
            ks = np.flatnonzero(negative[row])
            part = slice(at, at + len(ks))
            moved.append((np.full(len(ks), row), ks, w * (r_j * shares[part] + hinge * share_moves[part])))
            at += len(ks)
    return moved


def softmax_slopes(answer: Answer, delta: np.ndarray, weights: np.ndarray, eps: float) -> list:
    """A log-sum-exp term's slopes w share_k c_k on the distances it reads (reference/softmax.py: c = 1 / t, the share
    against its target; reference/similarity.py: c its own rate), each logit moving at rate k with its distance
    (Terms.shares): the logits are read up to r = max over the term's reads of delta k + eps (its largest |logit| +
    |term|) off, which moves each share by at most share (e^(2 r) - 1), and by at most 1: where logits round by more
    than their spread the weights are the rounding's, not the spec's."""
    term, rows, cols = (answer.shares[:, k].astype(np.int64) for k in range(3))
    share, logit_rate, slope_rate = answer.shares[:, 3], answer.shares[:, 4], answer.shares[:, 5]
    read = np.zeros(len(answer.values))
    np.maximum.at(read, term, delta[rows, cols] * logit_rate)
    read += eps * answer.operands
    moved = weights[term] * np.minimum(share * np.expm1(np.minimum(2.0 * read[term], 700.0)), 1.0) * slope_rate
    return [(rows, cols, moved)]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def tolerance(quantity: str, dtype: str, answer: Answer, compute_dtype: str | None = None,
              precision: str = DEFAULT, target: str | None = None) -> Tolerance:
    """The tolerance for `quantity` ("loss" or "grad") of this batch in `dtype`, for an implementation
    that computes in `compute_dtype` (default: `dtype`) with the declared `precision`, on the execution
    `target` (None or one that keeps the dtype's matmuls: the plain dtype model)."""
    compute_dtype = compute_dtype or dtype
    table, estimate, what = (
        (VALUES[dtype], loss_rounding(answer, compute_dtype, precision, target), "sum_ij |dL/dD_ij| delta_ij")
        if quantity == "loss"
        else (GRADIENTS[dtype], grad_rounding(answer, compute_dtype, precision, target),
              "max_i sum_j |dL/dD_ij| delta_ij / d_ij")
    )
    atol = max(table.atol, SAFETY * estimate)
    computed_in = "" if compute_dtype == dtype else f", computed in {compute_dtype}"
    reduced = matmul_eps(target, compute_dtype)
    if reduced is not None:
        computed_in += (f", on {target}: matmul inputs rounded to 2^{round(np.log2(reduced)):d}, "
                        f"u = (D + 2) eps + 2 x {reduced:.3g} (contract/targets.py)")
    source = f"{table.source}; " + SCALING.format(safety=SAFETY, what=what, precision=precision) + computed_in
    return Tolerance(atol=atol, rtol=table.rtol, source=source, scale=atol / table.atol)

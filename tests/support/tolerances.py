"""Tolerances as data, with their sources, and the rounding model that scales them to a batch.

Two tables, per dtype: one for values (the loss), one for gradients. A comparison passes when
|impl - oracle| <= atol + rtol * |oracle| for every element (torch.testing's closeness rule).

The tables are calibrated for quantities of order one from unit-scale inputs. A batch far from the
origin, with near-duplicate points, or a sum over many terms carries more rounding than that in any
correct implementation, so atol grows with a first-order estimate of this batch's rounding:

    atol = max(table atol, SAFETY * estimate)         scale = atol / table atol   (>= 1, in the record)

The rounding model. A dtype with machine epsilon eps computes a squared distance between rows x_i,
x_j through the Gram expansion |x_i|^2 + |x_j|^2 - 2 x_i.x_j (TF-Addons, torch.cdist for larger
batches, most fused kernels) with an error of about

    err_ij = u (|x_i|^2 + |x_j|^2),   u = (D + 2) eps          (D products accumulated, two norms added)

so a distance d_ij carries
    squared_euclidean   delta_ij = err_ij
    euclidean           delta_ij = err_ij / (d_ij + sqrt(err_ij))     (err / d, and sqrt(err) at d = 0)
    cosine              delta_ij = err_ij on unit rows, i.e. 2 u
(normalize=True and cosine measure between unit rows, |x|^2 = 1). The loss estimate carries every
distance's rounding through the loss with the oracle's dL/dD:  sum_ij |dL/dD_ij| delta_ij, plus each
term's own arithmetic, eps (m + its distances + |term|) weighted as the reduction weighs it. A sum
over T terms therefore scales with T, a mean does not. The gradient estimate carries the relative
rounding of each distance, delta_ij / d_ij, into that distance's gradient contribution, and takes the
largest element.

The model uses the dtype the implementation computes in: the dtype under test, unless the adapter
declares another in Adapter.extra["compute_dtype"] = {dtype: compute dtype} (TF-Addons upcasts
float16 and bfloat16 to float32 and casts the result back); the tables are the dtype under test's.

Ambiguity. The oracle reports, per kind of decision (a tie, the hinge, semi-hard's strict d_an > d_ap,
zero distance ...), how far the input is from a point where the selection or the gradient jumps (its
decision gap, in distance units). An implementation computing in `dtype` cannot resolve a gap below
AMBIGUITY_FACTOR * delta at the distances where the decision is taken; such an input is ambiguous
for that dtype: see `ambiguous_kinds`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .oracle import Answer

DTYPES = ("float64", "float32", "float16", "bfloat16")

# Machine epsilon (spacing at 1), explicit mantissa bits and smallest normal exponent, per dtype.
EPS = {"float64": 2.0**-52, "float32": 2.0**-23, "float16": 2.0**-10, "bfloat16": 2.0**-7}
MANTISSA_BITS = {"float64": 52, "float32": 23, "float16": 10, "bfloat16": 7}
MIN_EXPONENT = {"float64": -1022, "float32": -126, "float16": -14, "bfloat16": -126}
LARGEST = {"float64": float(np.finfo(np.float64).max), "float32": float(np.finfo(np.float32).max),
           "float16": 65504.0, "bfloat16": float(np.finfo(np.float32).max)}

# atol = max(table atol, SAFETY * first-order estimate). The estimate bounds the Gram expansion's
# rounding (Higham's gamma_{D+2} for the dot product and the two norms); SAFETY leaves room for the
# rest of the pipeline (sqrt, the reduction, casts) and for second-order terms.
SAFETY = 2.0
# A decision gap below AMBIGUITY_FACTOR * delta may be taken either way by a correct implementation.
AMBIGUITY_FACTOR = 2.0
# x / |x| is undefined at 0, and libraries clamp well before it: torch F.normalize divides by
# max(|x|, 1e-12), tf.math.l2_normalize by sqrt(max(|x|^2, 1e-12)), so norms below 1e-6 may differ;
# and |x|^2 loses its precision below the dtype's smallest normal number.
NORMALIZE_CLAMP = 1e-6
SMALLEST_NORMAL = {"float64": 2.0**-1022, "float32": 2.0**-126, "float16": 2.0**-14, "bfloat16": 2.0**-126}


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

# Values: torch.testing's defaults (notes/conformance.md section 2).
VALUES = {
    "float64": Tolerance(atol=1e-7, rtol=1e-7, source=f"{_TORCH}[float64]"),
    "float32": Tolerance(atol=1e-5, rtol=1.3e-6, source=f"{_TORCH}[float32]"),
    "float16": Tolerance(atol=1e-5, rtol=1e-3, source=f"{_TORCH}[float16]"),
    "bfloat16": Tolerance(atol=1e-5, rtol=1.6e-2, source=f"{_TORCH}[bfloat16]"),
}
# Gradients: JAX's gradient tolerances, two to ten orders looser than its value tolerances
# (notes/conformance.md section 3).
GRADIENTS = {
    "float64": Tolerance(atol=1e-5, rtol=1e-5, source=f"{_JAX}[float64]"),
    "float32": Tolerance(atol=2e-3, rtol=2e-3, source=f"{_JAX}[float32]"),
    "float16": Tolerance(atol=1e-2, rtol=1e-2, source=f"{_JAX}[float16]"),
    "bfloat16": Tolerance(atol=1e-1, rtol=1e-1, source=f"{_JAX}[bfloat16]"),
}
SCALING = (
    "atol = max(table atol, {safety:g} x first-order rounding estimate of this batch: "
    "{what}, delta_ij = Gram-expansion rounding (D+2) eps (|x_i|^2+|x_j|^2) carried to d_ij)"
)


def round_to_dtype(x: np.ndarray, dtype: str) -> np.ndarray:
    """x rounded to the nearest value of `dtype`, returned as float64 (round to nearest even).

    Oracle and implementation then see identical inputs: the adapter's cast to `dtype` is exact.
    """
    x = np.asarray(x, dtype=np.float64)
    if dtype == "float64":
        return x.copy()
    if dtype in ("float32", "float16"):
        return x.astype(dtype).astype(np.float64)
    # bfloat16 is float32's top 16 bits: round the low 16 bits away, to nearest even.
    bits = np.atleast_1d(x.astype(np.float32)).view(np.uint32).astype(np.uint64)
    half, low = np.uint64(0x7FFF), np.uint64(16)
    bits = (bits + half + ((bits >> low) & np.uint64(1))) >> low << low
    return bits.astype(np.uint32).view(np.float32).astype(np.float64).reshape(x.shape)


def ulp(values: np.ndarray, dtype: str) -> np.ndarray:
    """The spacing of `dtype` at |values| (the subnormal spacing below the normal range)."""
    magnitude = np.abs(np.asarray(values, dtype=np.float64))
    with np.errstate(divide="ignore"):
        exponent = np.floor(np.log2(np.where(magnitude > 0, magnitude, 1.0)))
    exponent = np.maximum(np.where(magnitude > 0, exponent, MIN_EXPONENT[dtype]), MIN_EXPONENT[dtype])
    return np.exp2(exponent - MANTISSA_BITS[dtype])


def distance_rounding(answer: Answer, dtype: str) -> np.ndarray:
    """delta_ij: how far a correct `dtype` implementation's d_ij may sit from the exact one."""
    points, dist = answer.points, answer.result.distances
    unit_roundoff = (points.shape[1] + 2) * EPS[dtype]
    squares = np.einsum("ij,ij->i", points, points)
    err = unit_roundoff * (squares[:, None] + squares[None, :])
    if answer.spec.distance == "euclidean":  # (err is 0 only between zero rows, whose distance is exact)
        denominator = dist + np.sqrt(err)
        return np.divide(err, denominator, out=np.zeros_like(err), where=denominator > 0)
    return err


def loss_rounding(answer: Answer, dtype: str) -> float:
    """sum_ij |dL/dD_ij| delta_ij + term_rounding: the loss's first-order rounding for this batch."""
    if not np.isfinite(answer.loss):
        return 0.0
    return float(np.sum(np.abs(answer.grad_dist) * distance_rounding(answer, dtype))) + term_rounding(answer, dtype)


def term_rounding(answer: Answer, dtype: str) -> float:
    """eps sum_t |w_t| (m + sum of the distances term t reads + |term t|): each term's own arithmetic.

    m + d_ap - d_an is rounded at the magnitude of its operands, not of its result, and dL/dD misses it
    where two distances cancel (a triplet whose positive and negative are one point: its term is m
    exactly, yet float16 gives m - 0.008 at d = 15)."""
    result = answer.result
    if not len(result.selection):
        return 0.0
    rows, read = result.selection[:, :1], result.selection[:, 1:]
    dist = np.where(read >= 0, result.distances[rows, np.maximum(read, 0)], 0.0)
    operands = answer.spec.margin + dist.sum(axis=1) + np.abs(result.values)
    return float(EPS[dtype] * np.sum(np.abs(result.weights) * operands))


def grad_rounding(answer: Answer, dtype: str) -> float:
    """max_i sum_j |dL/dD_ij + dL/dD_ji| |dD_ij/dx_i| delta_ij / d_ij: the gradient's rounding."""
    if not np.isfinite(answer.loss):
        return 0.0
    dist = answer.result.distances
    delta = distance_rounding(answer, dtype)
    # An exact copy (d = 0) has a difference of exactly 0 in any dtype, Gram expansion or not, so its
    # gradient is the convention's 0, not noise: only pairs apart carry a relative rounding.
    relative = np.divide(delta, np.maximum(dist, delta), out=np.zeros_like(delta), where=dist > 0)
    weight = np.abs(answer.grad_dist) + np.abs(answer.grad_dist.T)
    distance = answer.spec.distance
    if distance == "euclidean":
        slope = np.ones_like(dist)
    elif distance == "squared_euclidean":
        slope = 2.0 * np.sqrt(dist)
    else:  # cosine, 1 - cos: |d/dx_i| = sin(angle) / |x_i|
        slope = np.sqrt(np.clip(1.0 - (1.0 - dist) ** 2, 0.0, None))
    if answer.spec.normalize or distance == "cosine":
        slope = slope / np.where(answer.norms > 0, answer.norms, np.inf)[:, None]
    return float(np.max(np.sum(weight * slope * relative, axis=1), initial=0.0))


def tolerance(quantity: str, dtype: str, answer: Answer, compute_dtype: str | None = None) -> Tolerance:
    """The tolerance for `quantity` ("loss" or "grad") of this batch in `dtype`, for an implementation
    that computes in `compute_dtype` (default: `dtype`)."""
    compute_dtype = compute_dtype or dtype
    table, estimate, what = (
        (VALUES[dtype], loss_rounding(answer, compute_dtype), "sum_ij |dL/dD_ij| delta_ij")
        if quantity == "loss"
        else (GRADIENTS[dtype], grad_rounding(answer, compute_dtype), "max_i sum_j |dL/dD_ij| delta_ij / d_ij")
    )
    atol = max(table.atol, SAFETY * estimate)
    computed_in = "" if compute_dtype == dtype else f", computed in {compute_dtype}"
    source = f"{table.source}; " + SCALING.format(safety=SAFETY, what=what) + computed_in
    return Tolerance(atol=atol, rtol=table.rtol, source=source, scale=atol / table.atol)


def decision_distance(answer: Answer) -> float:
    """The smallest distance at which a decision is taken: over the selected pairs (and, for the
    window of semi_hard_all, every positive pair). The rounding delta is largest there."""
    dist, selection = answer.result.distances, answer.result.selection
    pairs = []
    if len(selection):
        anchors = selection[:, 0]
        for column in selection.T[1:]:
            real = column >= 0
            pairs.append(dist[anchors[real], column[real]])
    if answer.spec.mining == "semi_hard_all":
        same = answer.labels[:, None] == answer.labels[None, :]
        pairs.append(dist[same & ~np.eye(len(dist), dtype=bool)])
    values = np.concatenate(pairs) if pairs else np.zeros(0)
    return float(values.min()) if values.size else float("inf")


def decision_resolution(answer: Answer, dtype: str) -> dict[str, float]:
    """Per decision kind of the oracle's gaps: the smallest gap `dtype` resolves on this batch."""
    points = answer.points
    unit_roundoff = (points.shape[1] + 2) * EPS[dtype]
    worst_err = unit_roundoff * 2.0 * float(np.max(np.einsum("ij,ij->i", points, points)))
    distance = answer.spec.distance

    def delta(at: float) -> float:
        if distance == "euclidean" and worst_err > 0:
            return worst_err / (at + np.sqrt(worst_err))
        return worst_err

    at_decisions = decision_distance(answer)
    resolution = {}
    for kind, gap in answer.result.gaps.items():
        if kind == "zero_norm":  # embedding units: the input rows' norms
            resolution[kind] = max(NORMALIZE_CLAMP, AMBIGUITY_FACTOR * np.sqrt(SMALLEST_NORMAL[dtype]))
        elif kind in ("zero_distance", "collapse"):  # the decision is taken at the gap itself
            resolution[kind] = AMBIGUITY_FACTOR * delta(gap)
        else:
            resolution[kind] = AMBIGUITY_FACTOR * delta(at_decisions)
    return resolution


def ambiguous_kinds(answer: Answer, dtype: str) -> dict[str, tuple[float, float]]:
    """kind -> (gap, resolution) for every decision this batch sits too close to for `dtype`."""
    resolution = decision_resolution(answer, dtype)
    return {
        kind: (gap, resolution[kind])
        for kind, gap in answer.result.gaps.items()
        if gap < resolution[kind]
    }

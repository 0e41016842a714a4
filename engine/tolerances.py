"""Tolerances as data, with their sources, and the rounding model that scales them to a batch.

Two tables, per dtype: one for values (the loss), one for gradients. A comparison passes when
|impl - oracle| <= atol + rtol * |oracle| for every element (torch.testing's closeness rule).

The tables are calibrated for quantities of order one from unit-scale inputs. A batch far from the
origin, with near-duplicate points, or a sum over many terms carries more rounding than that in any
correct implementation, so atol grows with a first-order estimate of this batch's rounding:

    atol = max(table atol, SAFETY * estimate)         scale = atol / table atol   (>= 1, in the record)

The estimate carries each distance's rounding delta_ij (engine/precision.py: a direct computation of the
spec by default; the Gram expansion's only where the adapter declares it) through the loss with the oracle's
dL/dD: sum_ij |dL/dD_ij| delta_ij, plus each term's own arithmetic, eps (m + its distances + |term|) weighted
as the reduction weighs it. A sum over T terms therefore scales with T, a mean does not. The gradient
estimate carries the relative rounding of each distance, delta_ij / d_ij, into that distance's gradient
contribution, and takes the largest element.

The model uses the dtype the implementation computes in: the dtype under test, unless the adapter
declares another in Adapter.compute_dtype = {dtype: compute dtype} (our in-house code computes float16 and
bfloat16 in float32 and casts the result back); the tables are the dtype under test's.
Which decisions a dtype cannot resolve on a batch is engine/ambiguity.py's business; it uses the same model.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .dtypes import dtype as dtype_facts
from .oracle import Answer
from .precision import DEFAULT, squared_error, to_distance

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
    "{what}, delta_ij = {precision} rounding of d_ij, engine/precision.py)"
)


def unit_roundoff(answer: Answer, dtype: str) -> float:
    """u = (D + 2) eps: a sum of D products and two more terms."""
    return (answer.points.shape[1] + 2) * dtype_facts(dtype).eps


def distance_rounding(answer: Answer, dtype: str, precision: str = DEFAULT) -> np.ndarray:
    """delta_ij: how far a correct `dtype` implementation's d_ij may sit from the exact one."""
    dist, spec = answer.result.distances, answer.spec
    squared = dist * dist if spec.distance == "euclidean" else dist
    err = squared_error(precision, answer.points, squared, spec.distance, spec.normalize, unit_roundoff(answer, dtype))
    return to_distance(err, dist, spec.distance)


def loss_rounding(answer: Answer, dtype: str, precision: str = DEFAULT) -> float:
    """sum_ij |dL/dD_ij| delta_ij + term_rounding: the loss's first-order rounding for this batch."""
    if not np.isfinite(answer.loss):
        return 0.0
    spread = np.sum(np.abs(answer.grad_dist) * distance_rounding(answer, dtype, precision))
    return float(spread) + term_rounding(answer, dtype)


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
    return float(dtype_facts(dtype).eps * np.sum(np.abs(result.weights) * operands))


def grad_rounding(answer: Answer, dtype: str, precision: str = DEFAULT) -> float:
    """max_i sum_j |dL/dD_ij + dL/dD_ji| |dD_ij/dx_i| delta_ij / d_ij: the gradient's rounding."""
    if not np.isfinite(answer.loss):
        return 0.0
    dist = answer.result.distances
    delta = distance_rounding(answer, dtype, precision)
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


def tolerance(quantity: str, dtype: str, answer: Answer, compute_dtype: str | None = None,
              precision: str = DEFAULT) -> Tolerance:
    """The tolerance for `quantity` ("loss" or "grad") of this batch in `dtype`, for an implementation
    that computes in `compute_dtype` (default: `dtype`) with the declared `precision`."""
    compute_dtype = compute_dtype or dtype
    table, estimate, what = (
        (VALUES[dtype], loss_rounding(answer, compute_dtype, precision), "sum_ij |dL/dD_ij| delta_ij")
        if quantity == "loss"
        else (GRADIENTS[dtype], grad_rounding(answer, compute_dtype, precision),
              "max_i sum_j |dL/dD_ij| delta_ij / d_ij")
    )
    atol = max(table.atol, SAFETY * estimate)
    computed_in = "" if compute_dtype == dtype else f", computed in {compute_dtype}"
    source = f"{table.source}; " + SCALING.format(safety=SAFETY, what=what, precision=precision) + computed_in
    return Tolerance(atol=atol, rtol=table.rtol, source=source, scale=atol / table.atol)

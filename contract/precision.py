"""How precisely an implementation computes distances: the default every adapter is held to, and the declared
widenings, as PyTorch's OpInfo declares a tolerance override per operator.

    direct  the accuracy a direct computation of the spec reaches in the dtype: each distance from the
            difference of its rows, |x_i - x_j|^2 rounded once per coordinate, so its error is relative to the
            distance itself. The default: an adapter that declares nothing is judged by it.
    gram    the Gram expansion |x_i|^2 + |x_j|^2 - 2 x_i.x_j (one matmul: TF-Addons, torch.cdist above 25 rows,
            most fused kernels): its error is relative to the rows' norms, so it loses the distances of
            near-duplicate points and of any batch far from the origin. A declared widening
            (`Adapter.precision = "gram"`), shown next to the adapter in the report; its verdict reads
            "conforms, with known divergences".

For a dtype with machine epsilon eps and u = (D + 2) eps (D products accumulated, two terms added), the
error of a squared distance between the rows p_i, p_j the distances are measured between:

    direct, raw rows    err_ij = u d2_ij
    direct, unit rows   err_ij = u (d2_ij + 4 d_ij + 4 u)   (normalize: each unit row carries u of its own, so
                                                       d_ij may be 2 u off, also at 0: (d + 2 u)^2 - d^2)
    gram                err_ij = u (|p_i|^2 + |p_j|^2)
    cosine (both)       err_ij = 2 u                   (1 - u_i.u_j on unit rows is itself a dot product)

and a distance d_ij carries delta_ij = err_ij (squared_euclidean, cosine) or err_ij / (d_ij + sqrt(err_ij))
(euclidean: err / d, and sqrt(err) at d = 0). The diagonal is one of them: a fallback's constant 0 (batch_hard's
hp for an anchor without a positive) may be read as the anchor's own distance d(a, a), exactly 0 from differences,
sqrt(err_aa) = sqrt(2 u |a|^2) by the Gram expansion (engine/tolerances.py `own_distance_rounding`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Precision:
    name: str
    meaning: str
    region: str  # where the declared rounding holds, in words (shown with the declaration)


PRECISIONS: dict[str, Precision] = {
    p.name: p
    for p in (
        Precision("direct", "distances from differences of the rows: error relative to each distance",
                  "every batch"),
        Precision("gram", "distances by the Gram expansion |a|^2 + |b|^2 - 2 a.b: error relative to the rows' norms",
                  "every batch; far from the origin (offset / spread beyond about sqrt(0.1 / ((D + 2) eps))) or "
                  "between near-duplicates the error exceeds the distances themselves, and those decisions are "
                  "judged as ambiguous"),
    )
}
DEFAULT = "direct"


def precision(name: str) -> Precision:
    try:
        return PRECISIONS[name]
    except KeyError:
        raise ValueError(f"unknown precision {name!r}; declared ones: {', '.join(PRECISIONS)}") from None


def squared_error(name: str, points: np.ndarray, squared: np.ndarray, distance: str, unit_rows: bool,
                  unit_roundoff: float) -> np.ndarray:
    """err_ij of the module docstring: how far a `name` computation's squared distance may sit from the exact one.
    `squared` holds the exact squared distances (for cosine, ignored)."""
    if distance == "cosine":
        return np.full_like(squared, 2.0 * unit_roundoff)
    if name == "gram":
        norms = np.einsum("ij,ij->i", points, points)
        return unit_roundoff * (norms[:, None] + norms[None, :])
    if unit_rows:
        return unit_roundoff * (squared + 4.0 * np.sqrt(squared) + 4.0 * unit_roundoff)
    return unit_roundoff * squared


def to_distance(err: np.ndarray, dist: np.ndarray, distance: str) -> np.ndarray:
    """delta_ij from err_ij: the rounding of the distance the spec uses."""
    if distance != "euclidean":
        return err
    denominator = dist + np.sqrt(err)  # err is 0 only where the distance is exactly 0 (identical rows)
    return np.divide(err, denominator, out=np.zeros_like(err), where=denominator > 0)


def rounding_at(name: str, at: float, points: np.ndarray, distance: str, unit_rows: bool, unit_roundoff: float) -> float:
    """The worst delta of a distance of size `at` on this batch (gram: the largest row norms; direct: `at` itself):
    `squared_error` and `to_distance` at one distance."""
    if name == "gram" and distance != "cosine":  # the pair of the largest norms
        err = np.float64(unit_roundoff * 2.0 * float(np.max(np.einsum("ij,ij->i", points, points), initial=0.0)))
    else:
        squared = at * at if distance == "euclidean" else at
        err = squared_error(name, points, np.float64(squared), distance, unit_rows, unit_roundoff)
    return float(to_distance(err, np.float64(at), distance))

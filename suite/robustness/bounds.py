"""The documented expectation of every robustness sweep: how far a careful implementation computing in a
dtype may land from the exact loss and gradient of the batch it received. Each bound is derived from
the dtype's machine epsilon below; an implementation beyond it has lost precision a careful one keeps.

Notation. eps: the dtype's machine epsilon (2^-52, 2^-23, 2^-10, 2^-7 for float64, float32, float16,
bfloat16; 2^-10 for a TF32 matmul, whose inputs keep 10 explicit mantissa bits); u = eps / 2, the unit
roundoff. The received batch: rows x_1..x_N in R^D, exactly representable in the dtype. c: their
centroid; R = max_i |x_i - c|, the batch's radius; lambda: the dtype's smallest normal number.

Why the raw Gram expansion is not the expectation. |x_i|^2 + |x_j|^2 - 2 x_i.x_j rounds each of its
D products and two norms, so d_ij^2 carries an error up to (D + 2) u (|x_i| + |x_j|)^2 (Higham's
gamma_n for a dot product). It cancels |x|^2 down to d^2: translate the batch by an offset O and
|x|^2 ~ O^2 while d^2 does not change, so d_ij is off by about (D + 2) eps O^2 / d_ij. Euclidean losses
are translation invariant; this error is pure precision loss, and it grows like eps * O^2 / d.

Re-centring removes it. Subtract the computed centroid c' = c + e first (a sum of N rows:
|e| <= N u max_i |x_i|); the shift e moves every row alike and changes no distance, and each
subtraction x_ik - c'_k rounds by at most u |x_ik - c'_k|. So the re-centred rows have norms at most

    rho = R + N eps max_i |x_i|                          (the radius about the computed centroid)

and each carries an error of at most u rho, which moves a distance by at most eps rho. The offset enters
only through the centroid's own rounding, N eps |x|, not squared.

Per distance. A careful implementation measures d_ij on the re-centred rows, by the Gram expansion
where that is accurate and from the difference x_i - x_j where it is not:

    euclidean   Delta_ij = (D + 2) eps (rho + d_ij) + sqrt(D lambda)
      - re-centring: eps rho (above);
      - from the difference: D squares summed and a square root give a relative error (D / 2 + 2) u;
      - by the Gram expansion of the re-centred rows: d_ij^2 off by (D + 2) u (2 rho)^2, so d_ij off by
        (D + 2) eps rho^2 / d_ij, within (D + 2) eps rho for pairs at least rho apart. Nearer pairs need the
        difference form: the Gram expansion alone gives a near-duplicate pair about sqrt((D + 2) eps) rho,
        far beyond Delta (what the near-duplicate sweep shows);
      - underflow: a squared difference below lambda keeps no relative precision (flush-to-zero drops it),
        so d^2 may lose D lambda and d up to sqrt(D lambda).
    cosine      Delta_ij = (D + 3) eps
      - unit rows: the norm (D squares, a square root) and the division leave a relative error
        (D / 2 + 2) u per row; their dot product adds D u; 1 - s a last u. The norm itself must not
        overflow or underflow where the rows are finite: a careful implementation scales, or computes
        in a wider type (a clamp such as max(|x|^2, 1e-12) is beyond this bound below |x| = 1e-6).

The loss. L = sum_t w_t v_t over the oracle's terms v_t with weights w_t; G = dL/dD, from the oracle.
To first order

    loss bound = sum_ij |G_ij| Delta_ij  +  (ceil(log2 T) + 2) eps sum_t |w_t| (|v_t| + m)

the first sum carries each distance's error through the loss; the second covers the terms' own
arithmetic (adding the margin m), summing T terms by pairwise or tree reduction (NumPy, torch and
Eigen all do: ceil(log2 T) roundings per term) and the final rounding of the loss to the dtype.

The gradient. g_i = sum_j S_ij dd_ij/dx_i with S = G + G^T, so per row

    grad bound = max_i ( sum_j [ |S_ij| err_ij + |dS_ij| |dd_ij/dx_i| ]
                         + (ceil(log2 N) + 1) eps sum_j |S_ij| |dd_ij/dx_i| )
      euclidean: dd_ij/dx_i is the unit vector (x_i - x_j) / d_ij; from rows and a distance each off by
        Delta_ij its error err_ij is at most min(2 Delta_ij / d_ij, 2) (two unit vectors differ by at most 2;
        at d_ij = 0 any subgradient of norm <= 1 is admissible);
      cosine: |dd_ij/dx_i| = sin(angle) / |x_i|, and err_ij = (2 Delta_ij + 2 sqrt(Delta_ij) [d_ij <= Delta_ij]) / |x_i|
        (a pair within Delta_ij of the clamp at 0 may be clamped or not);
      dS: the coefficients S move with the distances only for soft and scaled terms (a hinge's slope is
        constant away from its kink); dS is the change of the oracle's S when every positive pair's
        distance moves by Delta and every negative pair's by -Delta, or the reverse: the directions in
        which every term's argument d_ap - d_an moves most; a log-sum-exp term's (the softmax and
        similarity families) moves with its logits in any direction, two competing negatives included: each
        share s_k of a row whose logits are read r off moves by at most s_k (e^(2r) - 1), and by at most 1
        (the conformance cells' model, engine/tolerances.py `softmax_slopes`);
      the last term is the rounding of the N - 1 contributions summed into g_i.
The gradient error is measured as the largest element of g_impl - g_oracle, which a row's norm bounds.

Decisions. Selections (max, min, semi-hard's strict >, the semi_hard_all window) and the hinge are
piecewise: the first-order bounds hold where no decision lies within the resolution 2 max_ij Delta_ij (for the
count of soft terms under mean_nonzero, a term within that resolution of the dtype's underflow, in value units:
engine/ambiguity.py `underflow_resolution`; for the count of softmax terms, a term below the rounding of its
log-sum-exp, eps (1 + the largest logit), with its logits read that resolution off: `softmax_rounding_resolution`).
Where one does, the batch is ambiguous for the dtype (a careful implementation may decide either way):
the loss is judged against every admissible outcome (engine/compare.py `admissible_losses`, as
the conformance tests do), and the gradient, which jumps there, is recorded but not judged.

Range. A level is measured only where the received batch, the exact loss, its gradient and every
distance are finite in the dtype: beyond that the dtype itself cannot hold the answer. Within it a
non-finite loss or gradient is beyond the bound.

An implementation that upcasts float16 or bfloat16 to float32 is judged by the bound of the dtype it
was given, which it should meet with room to spare; one that computes in half precision is held to
the same bound, and its over- and underflow shows as a non-finite or collapsed result.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from contract.dtypes import dtype as dtype_facts
from engine.ambiguity import softmax_rounding_resolution, underflow_resolution
from engine.tolerances import softmax_slopes
from reference import GAP_KINDS, Answer
from reference.distances import sine_of_cosine_distance
from reference.gaps import SOFTMAX_ROUNDING, ZERO_DISTANCE

# A TF32 matmul rounds its float32 inputs to 10 explicit mantissa bits and accumulates in float32.
TF32_EPS = 2.0**-10
# Decision kinds whose rounding the bounds judge: not zero_distance (the kink of |x| at 0, covered by the gradient
# bound's subgradient allowance), nor zero_norm (a row's length; only an exact zero row is undefined).
JUDGED = tuple(name for name, kind in GAP_KINDS.items() if kind.resolved_at != "norm" and name != ZERO_DISTANCE)
BOUNDED_DISTANCES = ("euclidean", "cosine")


@dataclass(frozen=True)
class Expectation:
    """The documented expectation for one batch in one dtype."""

    loss: float  # the loss bound
    grad: float  # the gradient bound (largest element)
    resolution: float  # 2 max Delta: a decision closer than this may be taken either way
    ambiguous: dict  # decision kind -> (gap, resolution) for the decisions within the resolution
    eps: float


def recentred_radius(received: np.ndarray, eps: float) -> float:
    """rho = R + N eps max |x_i|: the radius about the centroid a dtype with epsilon `eps` computes."""
    norms = np.linalg.norm(received, axis=1)
    radius = float(np.linalg.norm(received - received.mean(axis=0), axis=1).max())
    return radius + len(received) * eps * float(norms.max())


def distance_errors(answer: Answer, received: np.ndarray, dtype: str, eps: float) -> np.ndarray:
    """Delta_ij for every pair (see the module docstring)."""
    dist = answer.distances
    dim = received.shape[1]
    if answer.spec.distance == "cosine":
        return np.full_like(dist, (dim + 3) * eps)
    rho = recentred_radius(received, eps)
    return (dim + 2) * eps * (rho + dist) + math.sqrt(dim * dtype_facts(dtype).smallest_normal)


def _coefficient_change(answer: Answer, delta: np.ndarray, eps: float) -> np.ndarray:
    """|dS|: how far the oracle's S = G + G^T moves when the distances move by Delta in the worst directions; for
    log-sum-exp terms, by the shares of their logits (`_share_change`)."""
    if answer.shares is not None:
        return _share_change(answer, delta, eps)
    dist, labels = answer.distances, answer.labels
    toward_positive = np.where(labels[:, None] == labels[None, :], 1.0, -1.0)
    base = answer.grad_dist + answer.grad_dist.T
    change = np.zeros_like(dist)
    for direction in (1.0, -1.0):
        moved = np.maximum(dist + direction * toward_positive * delta, 0.0)
        np.fill_diagonal(moved, 0.0)
        outcome = answer.at_distances(moved)
        change = np.maximum(change, np.abs(outcome.grad_dist + outcome.grad_dist.T - base))
    return change


def _share_change(answer: Answer, delta: np.ndarray, eps: float) -> np.ndarray:
    """|dS| of log-sum-exp terms (the softmax and similarity families): each logit read off by its distance's Delta
    and its own rounding moves every share of its row, in any direction, two competing negatives included: the
    conformance cells' model of the same movement (engine/tolerances.py `softmax_slopes`), as a pair matrix."""
    change = np.zeros_like(answer.distances)
    for rows, cols, amount in softmax_slopes(answer, delta, np.abs(answer.weights), eps):
        np.add.at(change, (rows, cols), amount)
        np.add.at(change, (cols, rows), amount)
    return change


def _slopes(answer: Answer, delta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(|dd_ij/dx_i|, err_ij): the size of each pair's distance gradient and its admissible error."""
    dist = answer.distances
    if answer.spec.distance == "cosine":
        norms = np.where(answer.norms > 0, answer.norms, np.inf)[:, None]
        size = sine_of_cosine_distance(dist) / norms
        error = (2.0 * delta + 2.0 * np.sqrt(delta) * (dist <= delta)) / norms
        return size, error
    with np.errstate(divide="ignore", invalid="ignore"):
        error = np.where(dist > 0, np.minimum(2.0 * delta / dist, 2.0), 2.0)
    return np.ones_like(dist), error


def _in_units_of(kind: str, resolution: float, answer: Answer, dtype: str, eps: float) -> float:
    """The resolution in the units of the kind's gap: a distance; for a soft term's count, the value of the smallest
    term `dtype` holds above 0 with its argument read `resolution` off; for a softmax term's, the rounding of its
    log-sum-exp with its logits read `resolution` off (engine/ambiguity.py)."""
    if kind == SOFTMAX_ROUNDING:
        return softmax_rounding_resolution(answer, eps, resolution / 2.0)
    return underflow_resolution(dtype, resolution) if GAP_KINDS[kind].resolved_at == "value" else resolution


def expectation(answer: Answer, received: np.ndarray, dtype: str, eps: float | None = None) -> Expectation:
    """The loss and gradient bounds for the exact answer `answer` of a batch the implementation received as
    `received`, in `dtype` (machine epsilon `eps`, default the dtype's)."""
    spec = answer.spec
    if spec.distance not in BOUNDED_DISTANCES or spec.normalize:
        raise ValueError(f"no bound derived for {spec}: the sweeps use euclidean or cosine without normalize")
    eps = dtype_facts(dtype).eps if eps is None else eps
    delta = distance_errors(answer, received, dtype, eps)
    off_diagonal = ~np.eye(len(delta), dtype=bool)
    resolution = 2.0 * float(delta[off_diagonal].max())
    ambiguous = {
        kind: (gap, resolved)
        for kind, gap in answer.gaps.items()
        if kind in JUDGED and gap < (resolved := _in_units_of(kind, resolution, answer, dtype, eps))
    }

    weights, values = np.abs(answer.weights), np.abs(answer.values)
    terms = max(len(values), 1)
    arithmetic = (math.ceil(math.log2(terms)) + 2) * eps * float(np.sum(weights * (values + spec.margin)))
    loss = float(np.sum(np.abs(answer.grad_dist) * delta)) + arithmetic

    coefficient = np.abs(answer.grad_dist) + np.abs(answer.grad_dist.T)
    np.fill_diagonal(coefficient, 0.0)
    size, error = _slopes(answer, delta)
    moved = _coefficient_change(answer, delta, eps)
    np.fill_diagonal(moved, 0.0)
    per_pair = coefficient * error + moved * size
    summation = (math.ceil(math.log2(len(received))) + 1) * eps * np.sum(coefficient * size, axis=1)
    grad = float(np.max(np.sum(per_pair, axis=1) + summation))
    return Expectation(loss=loss, grad=grad, resolution=resolution, ambiguous=ambiguous, eps=eps)

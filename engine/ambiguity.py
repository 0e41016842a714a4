"""Ambiguity: which decisions of a batch a dtype cannot resolve.

The oracle reports, per kind of decision (reference/gaps.py: a tie, the hinge, semi-hard's strict
d_an > d_ap, zero distance ...), how far the input is from a point where the selection or the gradient
jumps (its decision gap, in distance units). An implementation computing in `dtype` cannot resolve a gap
below AMBIGUITY_FACTOR * delta, delta the rounding of engine/tolerances.py's model where the decision is
taken (the kind's `resolved_at`; a soft term's count is resolved in value units, `underflow_resolution`); such
an input is ambiguous for that dtype. Except where the input is one every implementation computes exactly
(engine/exactness.py): there no decision is ambiguous, and one the input sits exactly on (an exact tie) is
decided by the spec's own rule. See `decisions`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from contract.dtypes import dtype as dtype_facts
from contract.precision import DEFAULT, rounding_at
from reference import GAP_KINDS, Answer
from reference.gaps import SOFTMAX_ROUNDING

from .exactness import exact_kinds
from .tolerances import unit_roundoff

# A decision gap below AMBIGUITY_FACTOR * delta may be taken either way by a correct implementation.
AMBIGUITY_FACTOR = 2.0
# x / |x| is undefined at 0, and libraries clamp well before it: torch F.normalize divides by
# max(|x|, 1e-12), tf.math.l2_normalize by sqrt(max(|x|^2, 1e-12)), so norms below 1e-6 may differ;
# and |x|^2 loses its precision below the dtype's smallest normal number.
NORMALIZE_CLAMP = 1e-6


def zero_norm_resolution(dtype: str) -> float:
    """The smallest row norm `dtype` tells from zero (in embedding units): above the libraries' clamps
    (NORMALIZE_CLAMP), and |x|^2 a normal number with room. engine/draws.py keeps its small rows above it."""
    return max(NORMALIZE_CLAMP, AMBIGUITY_FACTOR * float(np.sqrt(dtype_facts(dtype).smallest_normal)))


def decision_distance(answer: Answer) -> float:
    """The smallest distance at which a decision is taken: over the selected pairs (and, for the
    window of semi_hard_all, every positive pair). The rounding delta is largest there."""
    dist, selection = answer.distances, answer.selection
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


def decision_resolution(answer: Answer, dtype: str, precision: str = DEFAULT,
                        target: str | None = None) -> dict[str, float]:
    """Per decision kind of the oracle's gaps: the smallest gap `dtype` resolves on this batch (on `target`: TF32
    matmuls resolve less, engine/tolerances.py `unit_roundoff`).

    A decision between distances of size `at` is resolved to delta(at). The Gram expansion's delta is largest
    at the smallest distance a decision reads, a direct computation's at the largest (its error is relative):
    the worse of the two ends is taken."""
    spec, dist = answer.spec, answer.distances
    u = unit_roundoff(answer, dtype, target)

    def delta(at: float) -> float:
        if not np.isfinite(at):  # no decision of that kind on this batch
            return 0.0
        return rounding_at(precision, at, answer.measured, spec.distance, spec.normalize, u)

    at_decisions = max(delta(decision_distance(answer)), delta(float(np.max(dist, initial=0.0))))
    resolution = {}
    for kind, gap in answer.gaps.items():
        where = GAP_KINDS[kind].resolved_at
        if where == "norm":  # embedding units: the input rows' norms
            resolution[kind] = zero_norm_resolution(dtype)
        elif where == "gap":  # the decision is taken at the gap itself
            resolution[kind] = AMBIGUITY_FACTOR * delta(gap)
        elif kind == SOFTMAX_ROUNDING:
            resolution[kind] = softmax_rounding_resolution(answer, dtype_facts(dtype).eps, at_decisions)
        elif where == "value":  # a soft term: the hinge's resolution about the dtype's underflow, in value units
            resolution[kind] = underflow_resolution(dtype, AMBIGUITY_FACTOR * at_decisions)
        else:
            resolution[kind] = AMBIGUITY_FACTOR * at_decisions
    return resolution


def softmax_rounding_resolution(answer: Answer, eps: float, distance_delta: float) -> float:
    """The smallest softmax term every correct implementation with machine epsilon `eps` holds above 0, in value
    units: a log-sum-exp rounds at its largest logit (eps (1 + the largest operand)), and each logit moves with its
    distance's rounding `distance_delta` (times the fastest rate at which a logit moves with its distance)."""
    rate = float(np.max(answer.shares[:, 4], initial=0.0))
    largest = float(np.max(answer.operands, initial=0.0))
    return AMBIGUITY_FACTOR * (eps * (1.0 + largest) + distance_delta * rate)


def underflow_resolution(dtype: str, argument_resolution: float) -> float:
    """The smallest soft term every correct `dtype` implementation holds above 0, hence counts: softplus(x_lambda + r),
    x_lambda = ln(e^lambda - 1) (about ln lambda: -87.3 in float32) the argument whose softplus is lambda.

    lambda is the dtype's smallest normal number. A softplus below it is 0 in some correct implementations and not
    in others: TensorFlow flushes subnormals to 0 (its softplus(-88) is 0 in float32), torch keeps them down to
    2^-149, and FTZ/DAZ depend on the machine and on what else the process loaded (contract/dtypes.py has the facts,
    no machine's number). The term's argument x = d_ap - d_an is read within r = the hinge's resolution (the same
    rounding that makes a hinge within r of 0 ambiguous), and softplus is increasing: a term counts for certain
    where softplus(x - r) >= lambda, i.e. where its value is at least softplus(x_lambda + r). The gap it is held
    against is the smallest term's value (reference/gaps.py SOFT_UNDERFLOW)."""
    underflow = np.log(np.expm1(dtype_facts(dtype).smallest_normal))
    return float(np.logaddexp(0.0, underflow + argument_resolution))


@dataclass(frozen=True)
class Decisions:
    """How the decisions of one batch stand for one dtype (what the judging rule reads, engine/judge.py)."""

    ambiguous: dict  # kind -> (gap, resolution): within the dtype's rounding of a decision, either side admissible
    exact: frozenset  # kinds this input decides exactly (engine/exactness.py): the spec's own rule binds
    ties: frozenset  # exact kinds the input sits exactly on (gap 0): decided by the spec's rule, not by rounding

    def __bool__(self) -> bool:  # anything that keeps a quantity from a plain comparison
        return bool(self.ambiguous or self.ties)


def decisions(answer: Answer, dtype: str, precision: str = DEFAULT, target: str | None = None) -> Decisions:
    """Which decisions of this batch `dtype` (the dtype computed in) cannot resolve on the execution `target`, and
    which it decides exactly."""
    exact = exact_kinds(answer, dtype)
    resolution = decision_resolution(answer, dtype, precision, target)
    gaps = answer.gaps
    return Decisions(
        ambiguous={kind: (gap, resolution[kind]) for kind, gap in gaps.items()
                   if kind not in exact and gap < resolution[kind]},
        exact=exact,
        ties=frozenset(kind for kind, gap in gaps.items() if kind in exact and gap == 0.0),
    )

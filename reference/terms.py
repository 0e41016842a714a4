"""What the strategies share: reductions, the hinge/soft term, and decision-gap helpers.

A strategy selects terms; each term is a function of a few entries of the distance matrix D. The
loss is a weighted sum of the terms, so dL/dD follows from each term's slope and weight.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .gaps import HINGE, SOFT_UNDERFLOW

NO_INDEX = -1  # in a selection: "this distance is the constant 0" (a fallback, not a pair)


@dataclass
class Terms:
    """What a mining strategy makes of a distance matrix: the terms it selected, their values and weights, the reduced
    loss, dL/dD and its decision gaps; `evaluate` carries it to embeddings, in an `Answer`."""

    loss: float
    grad_dist: np.ndarray  # dL/dD[i, j]
    selection: np.ndarray  # one row per term: (a, p, n) triplets or (i, j) pairs; NO_INDEX = constant 0
    values: np.ndarray  # each term's loss
    weights: np.ndarray  # each term's coefficient in the reduced loss
    gaps: dict[str, float] = field(default_factory=dict)  # decision kind -> its smallest margin
    # each term's operands' magnitude where its arithmetic rounds at more than the distances it reads (a log-sum-exp
    # rounds at its row's largest logit); None: its reads and its value (engine/tolerances.py `term_rounding`)
    operands: np.ndarray | None = None
    # the log-sum-exp terms' (softmax and similarity families): rows (term, i, j, share of D[i, j]'s logit in the term's
    # log-sum-exp, how fast that logit moves with D[i, j], the term's slope in D[i, j] per unit share), how its slopes
    # move when its logits are read off (engine/tolerances.py `softmax_slopes`); None elsewhere
    shares: np.ndarray | None = None
    # dL/dD of the loss's value where it is not grad_dist (circle's weights are detached for the gradient, yet the
    # value moves with them): what the loss's rounding is carried through (engine/tolerances.py); None: grad_dist
    loss_slopes: np.ndarray | None = None


def reduce(values: np.ndarray, reduction: str, empty: str, positive: np.ndarray | None = None
           ) -> tuple[float, np.ndarray]:
    """Spec.reduction and Spec.empty.

    mean          mean over every unit the strategy produced (zeros included; TF-Addons, torch)
    mean_nonzero  mean over terms > 0, 0 when none (omoindrot; pytorch-metric-learning AvgNonZeroReducer).
                  `positive`: which terms are > 0 in exact arithmetic, where float64's `values > 0` is not it. A
                  soft term softplus(x) is > 0 for every finite x, so every soft term counts (mean_nonzero over
                  soft terms is their mean), also one float64 rounds to 0 (x < -745). A dtype that rounds one
                  to 0 below its smallest normal number may leave it out: a decision within the dtype's
                  rounding (reference/gaps.py SOFT_UNDERFLOW), as a hinge within rounding of 0 is.
    sum           plain sum
    A strategy that produced no unit returns NaN for empty="nan" (TF-Addons semi-hard's 0/0), else 0.
    """
    if len(values) == 0:
        return (float("nan") if empty == "nan" else 0.0), np.zeros(0)
    if reduction == "sum":
        weights = np.ones(len(values))
    elif reduction == "mean":
        weights = np.full(len(values), 1.0 / len(values))
    else:
        active = values > 0 if positive is None else positive
        weights = active / max(int(active.sum()), 1)
    return weighted_sum(weights, values), weights


def weighted_sum(weights: np.ndarray, values: np.ndarray) -> float:
    """sum_k w_k v_k rounded once (math.fsum): the same bits on every CPU, where a BLAS dot sums in the order of the
    kernel it picks for the CPU (nine terms of 0.3 at weight 1/9: 0.3 on one CPU, 0.30000000000000004 on another)."""
    products = weights * values
    try:
        return math.fsum(products.tolist())
    except (OverflowError, ValueError):  # partial sums past the largest float, or inf - inf: the plain sum's inf, NaN
        with np.errstate(over="ignore", invalid="ignore"):
            return float(products.sum())


def hinge_or_soft(excess: np.ndarray, soft: bool, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Term and slope for excess = d_ap - d_an: [excess + m]+, or softplus(excess) when soft (Hermans et al. 2017)."""
    if soft:
        return np.logaddexp(0.0, excess), 0.5 * (1.0 + np.tanh(0.5 * excess))
    return np.maximum(excess + margin, 0.0), (excess + margin > 0).astype(float)


def lookup(dist: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """dist[rows, cols], with NO_INDEX columns read as the constant 0."""
    return np.where(cols == NO_INDEX, 0.0, dist[rows, np.maximum(cols, 0)])


def scatter(grad_dist: np.ndarray, rows: np.ndarray, cols: np.ndarray, amounts: np.ndarray) -> None:
    """grad_dist[rows, cols] += amounts, skipping NO_INDEX columns and adding up repeats."""
    real = cols != NO_INDEX
    np.add.at(grad_dist, (rows[real], cols[real]), amounts[real])


def triplet_outcome(dist: np.ndarray, triplets: np.ndarray, spec, gaps: dict[str, float]) -> Terms:
    """The loss over given (a, p, n) triplets: hinge or soft term, then `spec.reduction`."""
    a, p, n = (triplets[:, k] for k in range(3)) if len(triplets) else (np.zeros(0, int),) * 3
    excess = lookup(dist, a, p) - lookup(dist, a, n)
    values, slope = hinge_or_soft(excess, spec.soft, spec.margin)
    positive = np.ones(len(values), dtype=bool) if spec.soft else None  # softplus > 0: every soft term counts
    loss, weights = reduce(values, spec.reduction, spec.empty, positive)
    grad_dist = np.zeros_like(dist)
    scatter(grad_dist, a, p, weights * slope)
    scatter(grad_dist, a, n, -weights * slope)
    if not spec.soft:
        gaps = {**gaps, HINGE: smallest(np.abs(excess + spec.margin))}
    elif spec.reduction == "mean_nonzero":  # the count's decision: how far the smallest term is above 0
        gaps = {**gaps, SOFT_UNDERFLOW: smallest(values)}
    return Terms(loss, grad_dist, np.asarray(triplets, dtype=np.int64).reshape(-1, 3), values, weights, gaps)


def smallest(values) -> float:
    """min, or +inf when there is nothing to take the minimum of (no decision of that kind)."""
    values = np.asarray(values, dtype=float)
    return float(values.min()) if values.size else float("inf")


def runner_up_gap(values: np.ndarray, mask: np.ndarray, largest: bool) -> np.ndarray:
    """Per row: how far the best masked entry is from the runner-up (inf with fewer than two).

    A gap of 0 is a tie: the value of a max/min is still defined there, its gradient is not.
    """
    fill = -np.inf if largest else np.inf
    ordered = np.sort(np.where(mask, values, fill), axis=1)
    if largest:
        ordered = ordered[:, ::-1]
    if ordered.shape[1] < 2:
        return np.full(ordered.shape[0], np.inf)
    with np.errstate(invalid="ignore"):
        gap = np.abs(ordered[:, 0] - ordered[:, 1])
    return np.where(mask.sum(axis=1) >= 2, gap, np.inf)


def masked_log_sum_exp(logits: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, log sum over the mask of e^l (-inf where the mask is empty) and each entry's share of the sum (0 off the
    mask), shifted by the row's largest masked logit, which moves neither: no exponential overflows."""
    masked = np.where(mask, logits, -np.inf)
    top = np.max(masked, axis=1, initial=-np.inf)[:, None]
    safe_top = np.where(np.isfinite(top), top, 0.0)
    exps = np.where(mask, np.exp(masked - safe_top), 0.0)
    total = exps.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.log(total) + safe_top)[:, 0], np.where(total > 0, exps / np.where(total > 0, total, 1.0), 0.0)

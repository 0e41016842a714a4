"""Comparing an implementation's answer with the oracle's: error measures, NaN rules, admissible outcomes.

The normalised error of one quantity is max |impl - oracle| / (atol + rtol |oracle|) over its
elements: below 1 passes. NaN must sit exactly where the oracle has NaN (empty="nan" with no unit,
scaled batch_hard at exact collapse); NaN or infinity anywhere else is a mismatch, normalised error inf,
except an infinity where the oracle's value is beyond the dtype's range (float16 overflows at 65504).

On an input that is ambiguous for the dtype (`ambiguity.decisions`), the gradient is not
compared, and the loss is compared with every admissible outcome: where the oracle's loss is
continuous across the ambiguous decisions (ties in a max/min, zero distance, the hinge of a mean)
that is the oracle's loss itself; where it jumps (semi-hard's strict d_an > d_ap, the semi_hard_all
window, the count of mean_nonzero), the near decisions are enumerated by nudging the distances involved
each way and running the oracle's strategy on them; a soft term a dtype may round to 0 (the count of
mean_nonzero over soft terms) reads no distance to nudge: it is counted or not. More than MAX_NEAR_DISTANCES
such distances: the loss is not compared either, and the example counts as ambiguous.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from contract.dtypes import dtype as dtype_facts
from contract.dtypes import ulp
from reference import GAP_KINDS, Answer, valid_triplets
from reference.gaps import HINGE, MINED_NEGATIVE, MINED_POSITIVE, SEMI_HARD_SELECTION, SOFT_UNDERFLOW, SOFTMAX_ROUNDING, \
    WINDOW_LOWER, WINDOW_UPPER
from reference.similarity import mined_pairs
from reference.strategies import lifted_pairs

from .tolerances import Tolerance

MAX_NEAR_DISTANCES = 6  # 2**6 = 64 strategy runs on one example at most
NUDGE_FLOOR = 1e-12  # relative nudge that breaks an exact tie


@dataclass(frozen=True)
class Errors:
    """How far one quantity of one example is from the oracle."""

    normalized: float  # max |impl - oracle| / (atol + rtol |oracle|); inf on a NaN mismatch
    max_abs: float
    max_rel: float
    max_ulp: float
    mismatch: str = ""  # what went wrong, in words, when normalized > 1

    @property
    def ok(self) -> bool:
        return self.normalized <= 1.0


def overflows(impl: np.ndarray, oracle: np.ndarray, dtype: str) -> np.ndarray:
    """Where `impl` is the infinity the oracle's value rounds to in `dtype`: the oracle's own infinity
    (scaled batch_hard with mean(hn) = 0), or a finite value beyond the dtype's largest (IEEE overflow)."""
    with np.errstate(invalid="ignore"):
        same_sign = np.sign(impl) == np.sign(oracle)
        return np.isinf(impl) & same_sign & (np.abs(oracle) > dtype_facts(dtype).largest)


def measure(quantity: str, impl, oracle, tolerance: Tolerance, dtype: str) -> Errors:
    """Compare arrays (or scalars) elementwise under `tolerance`, with torch.testing's NaN rules;
    an infinity matches an oracle value that overflows the dtype (`overflows`)."""
    impl = np.asarray(impl, dtype=np.float64)
    oracle = np.asarray(oracle, dtype=np.float64)
    oracle_nan = np.isnan(oracle)
    expected_nan = oracle_nan & ~np.isnan(impl)
    overflow = overflows(impl, oracle, dtype)
    unexpected = ~oracle_nan & ~np.isfinite(impl) & ~overflow
    both = ~oracle_nan & np.isfinite(impl) & np.isfinite(oracle)
    diff = np.where(both, np.abs(impl - oracle), 0.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        rel = np.where(diff > 0, diff / np.abs(oracle), 0.0)
        normalized = np.where(both, diff / tolerance.allowed(oracle), 0.0)
        ulps = np.where(both, diff / ulp(oracle, dtype), 0.0)
    summary = dict(
        max_abs=float(diff.max(initial=0.0)),
        max_rel=float(rel.max(initial=0.0)),
        max_ulp=float(ulps.max(initial=0.0)),
    )
    if expected_nan.any() or unexpected.any():
        bad = np.argwhere(expected_nan | unexpected)[0] if impl.ndim else ()
        where = tuple(int(i) for i in bad)
        got, want = float(impl[where]), float(oracle[where])
        text = f"{quantity} is {got!r} where the oracle gives {want!r}" + (f" (at {where})" if where else "")
        return Errors(normalized=float("inf"), mismatch=text, **summary)
    worst = float(normalized.max(initial=0.0))
    text = ""
    if worst > 1.0:
        where = np.unravel_index(int(np.argmax(normalized)), normalized.shape) if normalized.ndim else ()
        where = tuple(int(i) for i in where)
        text = (
            f"{quantity} differs from the oracle: {float(impl[where])!r} vs {float(oracle[where])!r}"
            + (f" at {where}" if where else "")
            + f", |diff| {float(diff[where]):.3g} > allowed {float(tolerance.allowed(oracle[where])):.3g}"
        )
    return Errors(normalized=worst, mismatch=text, **summary)


# --- admissible outcomes on ambiguous inputs ----------------------------------------------------

def value_jumps(kind: str, spec) -> bool:
    """Whether the oracle's loss jumps (not only its gradient) across a decision of this kind."""
    return GAP_KINDS[kind].loss_jumps(spec)


def _near_decisions(answer: Answer, kind: str, within: float) -> list[tuple[list[tuple[int, int, int]], float]]:
    """For every decision of `kind` within `within` of flipping: the distances it reads, each as
    (i, j, direction), and |its margin|. direction +1 marks the distance whose increase takes the
    loss to the top of its admissible range (a negative pair's), -1 the other (a positive pair's)."""
    spec, dist, labels = answer.spec, answer.distances, answer.labels
    found = []
    if kind in (SEMI_HARD_SELECTION, WINDOW_LOWER, WINDOW_UPPER):
        a, p, n = valid_triplets(labels).T
        margin = dist[a, n] - dist[a, p] - (spec.margin if kind == WINDOW_UPPER else 0.0)
        for k in np.flatnonzero(np.abs(margin) < within):
            found.append(([(a[k], n[k], 1), (a[k], p[k], -1)], abs(margin[k])))
    elif kind in (MINED_POSITIVE, MINED_NEGATIVE):
        # the miner keeps (a, p) while d_ap + eps > the nearest negative's d_an, (a, n) while d_an - eps < the farthest
        # positive's d_ap: a kept pair adds its term, so the pair whose increase keeps it (a positive's own, the
        # farthest positive) is +1, the one whose increase drops it (a negative's own, the nearest negative) -1
        _, _, positive_margin, negative_margin = mined_pairs(dist, labels, spec.margin)
        positive, negative = labels[:, None] == labels[None, :], labels[:, None] != labels[None, :]
        positive &= ~np.eye(len(dist), dtype=bool)
        if kind == MINED_POSITIVE:
            partner = np.argmin(np.where(negative, dist, np.inf), axis=1)[:, None]  # the nearest negative
            margins, own, other = positive_margin, 1, -1
        else:
            partner = np.argmax(np.where(positive, dist, -np.inf), axis=1)[:, None]  # the farthest positive
            margins, own, other = negative_margin, -1, 1
        for a, j in zip(*np.nonzero(np.abs(margins) < within)):
            found.append(([(a, j, own), (a, int(partner[a, 0]), other)], abs(float(margins[a, j]))))
    elif kind == HINGE and spec.mining == "contrastive":
        i, j = answer.selection.T
        same = labels[i] == labels[j]
        margin = np.where(same, dist[i, j], dist[i, j] - spec.margin)
        for k in np.flatnonzero(np.abs(margin) < within):
            found.append(([(i[k], j[k], -1 if same[k] else 1)], abs(margin[k])))
    elif kind == HINGE and spec.mining == "lifted":
        # J_ij = lse(m - D over the negatives of i and of j) + D_ij moves at most twice as fast as any distance it
        # reads: its own (up takes J up) and every negative's (up takes J down), as reference/strategies.py says
        negative = labels[:, None] != labels[None, :]
        i, j, argument, _ = lifted_pairs(dist, labels, spec.margin)
        margins = np.abs(argument) / 2  # J = -inf (no negative): no decision
        for k in np.flatnonzero(margins < within):
            reads = [(i[k], n, 1) for n in np.flatnonzero(negative[i[k]])] + \
                [(j[k], n, 1) for n in np.flatnonzero(negative[j[k]])]
            found.append(([(i[k], j[k], -1)] + reads, float(margins[k])))
    elif kind == HINGE:
        a, p, n = answer.selection.T
        hp = np.where(p >= 0, dist[a, np.maximum(p, 0)], 0.0)
        hn = dist[a, n]
        margin = hp - hn + spec.margin * (hn.mean() if spec.scaled else 1.0)
        for k in np.flatnonzero(np.abs(margin) < within):
            found.append(([(a[k], n[k], 1)] + ([(a[k], p[k], -1)] if p[k] >= 0 else []), abs(margin[k])))
    return found


def _monotone(jumping: dict, spec) -> bool:
    """Whether the two extreme nudges bound every admissible loss: each near decision then adds a term at
    the top of its range or drops one at the bottom (the window's edges, mean_nonzero's count). Semi-hard's
    choice is not: a negative that stops being farther hands its positive pair to the next farther one or to
    the farthest negative, and the positive's own distance moves the term it decides (the thorough hunt found
    TF-Addons 0.04 below both extremes on a wide batch with 15 near distances: engine/regressions.py)."""
    return SEMI_HARD_SELECTION not in jumping


def admissible_losses(answer: Answer, ambiguous: dict) -> list[tuple[float, float]] | None:
    """[(loss, extra atol)] spanning what a correct implementation may return, or None if unknown.

    `ambiguous`: kind -> (gap, resolution), from `ambiguity.decisions`. The distances each
    near decision reads are nudged past it both ways. Up to MAX_NEAR_DISTANCES distances, every
    combination is run; beyond, only the two extremes (all up, all down), where they bound the rest
    (`_monotone`). The extra atol of an outcome covers the nudge itself (|dL/dD| times the nudge).
    A soft term below the dtype's underflow (SOFT_UNDERFLOW), or a softmax term below its rounding (SOFTMAX_ROUNDING),
    moves no distance: in each outcome it is counted or not (`_count_extremes`). The loss is accepted anywhere in the hull of these outcomes.
    """
    jumping = {kind: res for kind, (gap, res) in ambiguous.items() if value_jumps(kind, answer.spec)}
    if not jumping:
        return [(answer.loss, 0.0)]
    if any(GAP_KINDS[kind].unresolved for kind in jumping):
        return None
    underflow = jumping.pop(SOFT_UNDERFLOW, None) or jumping.pop(SOFTMAX_ROUNDING, None)  # one or the other
    outcomes = _nudged_outcomes(answer, jumping) if jumping else [(answer.loss, answer.values, 0.0)]
    if outcomes is None or underflow is None:
        return None if outcomes is None else [(loss, extra) for loss, _, extra in outcomes]
    return [(end, extra) for loss, values, extra in outcomes for end in _count_extremes(loss, values, underflow)]


def _nudged_outcomes(answer: Answer, jumping: dict) -> list[tuple[float, np.ndarray, float]] | None:
    """[(loss, term values, extra atol)]: the oracle's own, then one per pattern of nudges past the near decisions
    of the `jumping` kinds (kind -> resolution); None where the patterns cannot be enumerated."""
    widest: dict[tuple[int, int], float] = {}  # distance -> twice the largest margin it decides
    directions: dict[tuple[int, int], set] = {}
    for kind, resolution in jumping.items():
        for entries, margin in _near_decisions(answer, kind, resolution):
            for i, j, direction in entries:
                key = (int(min(i, j)), int(max(i, j)))
                widest[key] = max(widest.get(key, 0.0), 2.0 * margin)
                directions.setdefault(key, set()).add(direction)
    entries = list(widest)
    dist = answer.distances
    sizes = [widest[e] + NUDGE_FLOOR * (1.0 + dist[e]) for e in entries]
    if len(entries) <= MAX_NEAR_DISTANCES:
        patterns = list(itertools.product((-1.0, 1.0), repeat=len(entries)))
    elif _monotone(jumping, answer.spec) and all(len(directions[e]) == 1 for e in entries):
        top = tuple(float(next(iter(directions[e]))) for e in entries)
        patterns = [top, tuple(-sign for sign in top)]
    else:
        return None
    outcomes = [(answer.loss, answer.values, 0.0)]
    for signs in patterns:
        nudged = dist.copy()
        for (i, j), size, sign in zip(entries, sizes, signs):
            nudged[i, j] = nudged[j, i] = max(dist[i, j] + sign * size, 0.0)
        outcome = answer.at_distances(nudged)
        weight = np.abs(outcome.grad_dist) + np.abs(outcome.grad_dist.T)
        outcomes.append((outcome.loss, outcome.values, float(sum(weight[e] * size for e, size in zip(entries, sizes)))))
    return outcomes


def _count_extremes(loss: float, values: np.ndarray, resolution: float) -> tuple[float, float]:
    """The smallest and largest mean_nonzero loss over the counts a dtype may make of soft `values`: a term of at
    least `resolution` counts (engine/ambiguity.py `underflow_resolution`), each smaller one may or may not, and
    none counted gives 0. A term raises the mean exactly when it exceeds it, so for k of them counted the
    largest mean counts the k largest and the smallest mean the k smallest: the ends over every k are the hull."""
    if not len(values):
        return loss, loss
    certain, undecided = values[values >= resolution], np.sort(values[values < resolution])

    def means(order: np.ndarray) -> np.ndarray:
        sums = certain.sum() + np.concatenate([[0.0], np.cumsum(order)])
        counts = len(certain) + np.arange(len(order) + 1)
        return sums / np.maximum(counts, 1)  # a count of 0 has the sum 0: mean_nonzero's 0

    both = np.concatenate([means(undecided), means(undecided[::-1])])
    return float(both.min()), float(both.max())


def _same_non_finite(a: float, b: float) -> bool:
    return bool(np.isnan(a) and np.isnan(b)) or (np.isinf(a) and a == b)


def measure_loss_against(
    impl_loss: float, outcomes: list[tuple[float, float]], tolerance: Tolerance, dtype: str
) -> Errors:
    """The loss's errors against the hull of the admissible outcomes: 0 inside it, else measured from the outcome
    that reaches farthest that way with its own extra atol (an outcome just inside the end may carry a nudge's
    allowance the end does not). NaN follows `measure`'s rules against the oracle."""
    finite = [outcome for outcome in outcomes if np.isfinite(outcome[0])]
    if not np.isfinite(impl_loss) or not finite:
        # a non-finite loss is admissible where an outcome is the same (NaN where a nudge empties the batch)
        same = [loss for loss, _ in outcomes if _same_non_finite(loss, impl_loss)]
        return measure("loss", impl_loss, same[0] if same else outcomes[0][0], tolerance, dtype)
    outcomes = finite
    low, high = min(outcomes), max(outcomes)
    if low[0] <= impl_loss <= high[0]:
        nearest = min(outcomes, key=lambda outcome: abs(impl_loss - outcome[0]))
        errors = measure("loss", impl_loss, nearest[0], tolerance, dtype)
        return Errors(0.0, errors.max_abs, errors.max_rel, errors.max_ulp)
    below = impl_loss < low[0]
    end, extra = min(outcomes, key=lambda o: o[0] - o[1]) if below else max(outcomes, key=lambda o: o[0] + o[1])
    widened = Tolerance(tolerance.atol + extra, tolerance.rtol, tolerance.source, tolerance.scale)
    errors = measure("loss", impl_loss, end, widened, dtype)
    if errors.ok:
        return errors
    return Errors(
        errors.normalized, errors.max_abs, errors.max_rel, errors.max_ulp,
        f"loss {impl_loss!r} lies outside [{low[0]!r}, {high[0]!r}], the admissible losses of this ambiguous input"
        f" (allowed {float(widened.allowed(end)):.3g} beyond the outcome {end!r}, which reaches farthest)",
    )

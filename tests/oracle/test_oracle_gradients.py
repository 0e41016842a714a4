"""The oracle's hand-derived gradient against central finite differences, in float64.

The loss is only piecewise smooth: a finite difference that straddles a decision point (a tie, a
hinge at 0, a window edge, a zero distance or norm) measures the jump, not the gradient. So a draw
is compared only when its decision gap is comfortably larger than the step; the others are set
aside, counted, reported, and a test fails when that is more than half of its draws.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference.distances import normalize_rows, pairwise
import reference
from oracle_helpers import CONTINUOUS_LAYOUTS, SPECS, Tally, assert_close, batches, by_mining, distance_speed

STEP = 1e-7
SAFETY = 1e3
EPS = np.finfo(np.float64).eps


def gradient_batches(spec, max_n: int):
    """Continuous draws only (Hypothesis' own floats repeat values, which makes exact ties); labels
    that give most anchors a positive and a negative; at least one explicit triplet; and D >= 2
    under cosine or normalize, where in 1-D every distance is 0 or 2 and every decision a tie."""
    return batches(
        spec,
        layouts=CONTINUOUS_LAYOUTS,
        labelings=("mixed", "balanced"),
        min_n=3,
        max_n=max_n,
        min_dim=2 if spec.normalize or spec.distance == "cosine" else 1,
        min_triplets=1,
    )


def clear_of_decisions(result, x, spec) -> bool:
    """A step of STEP along a unit direction moves every distance by at most STEP * distance_speed,
    a hinge's argument (a difference of two distances) by twice that, the scaled hinge's by (2 + m)
    times. Asking the nearest decision to be SAFETY = 1e3 times farther keeps every decision out of
    the step's reach, and keeps the central difference's truncation error, which grows like
    (step / gap)^2 near a sqrt or normalisation kink, near 1e-6 of the gradient."""
    return result.gap > SAFETY * STEP * distance_speed(x, spec)


def _distances(x: np.ndarray, spec) -> np.ndarray:
    unit, _ = normalize_rows(x)
    return pairwise(unit if spec.normalize else x, spec.distance)


def loss_at(batch, spec, x: np.ndarray) -> float:
    """The loss at x; for a record with detached weights (circle's alpha), with the weights held at the batch's own
    distances, as its gradient holds them: the derivative the gradient is, not the value's."""
    loss = reference.LOSSES[spec.mining]
    if not loss.detached:
        return batch.evaluate(spec, x).loss
    labels = np.asarray(batch.labels, dtype=np.int64)
    return loss.oracle(_distances(x, spec), labels, spec, None, weighted_at=_distances(batch.x, spec)).loss


def central_difference(batch, spec, direction: np.ndarray) -> tuple[float, np.ndarray]:
    """(f(x + h v) - f(x - h v)) / 2h, and the direction the rounded inputs really moved along: far from the origin
    x + h v rounds by eps |x|, a step error of eps |x| / h (1e-6 at |x| = 600) that the difference measures."""
    ahead_x, behind_x = batch.x + STEP * direction, batch.x - STEP * direction
    ahead, behind = loss_at(batch, spec, ahead_x), loss_at(batch, spec, behind_x)
    return (ahead - behind) / (2 * STEP), (ahead_x - behind_x) / (2 * STEP)


def tolerance(loss: float) -> float:
    """JAX's float64 gradient tolerance, 1e-5 (docs/upstream/conformance-practice.md, section 3), as atol
    and rtol, plus the difference's rounding error: each loss is off by a few eps * |L|, divided by 2 STEP."""
    return 1e-5 + 10 * EPS * (1.0 + abs(loss)) / STEP


def usable(result, batch, spec, tally: Tally) -> bool:
    if len(result.values) == 0:
        tally.reject("no term at all: nothing to differentiate")  # e.g. semi_hard_all's window caught nothing
    if not np.isfinite(result.loss):
        tally.discard("loss not finite")
        return False
    if not clear_of_decisions(result, batch.x, spec):
        tally.discard("ambiguous: a decision within reach of the step")
        return False
    tally.check()
    return True


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_gradient_along_random_directions(spec):
    tally = Tally(f"finite differences, random directions [{spec}]")

    @given(batch=gradient_batches(spec, max_n=12), seed=st.integers(0, 2**32 - 1))
    def check(batch, seed):
        result = batch.evaluate(spec)
        if not usable(result, batch, spec, tally):
            return
        directions = np.random.default_rng(seed).normal(size=(3, *batch.x.shape))
        directions /= np.linalg.norm(directions, axis=(1, 2), keepdims=True)
        differences = [central_difference(batch, spec, v) for v in directions]
        numeric = [difference for difference, _ in differences]
        analytic = [float(np.sum(result.grad * moved)) for _, moved in differences]
        allowed = tolerance(result.loss)
        assert_close(
            analytic,
            numeric,
            rtol=allowed,
            atol=allowed,
            what="<grad, v> vs finite differences along 3 unit v",
            snippet=batch.snippet(
                spec,
                f"v = np.random.default_rng({seed}).normal(size=(3, *x.shape)); v /= np.linalg.norm(v, axis=(1, 2), keepdims=True)",
                f"h = {STEP}; f = lambda y: reference.evaluate(y, labels, r.spec, triplets=triplets).loss",
                "print([np.sum(r.grad * u) for u in v], [(f(x + h * u) - f(x - h * u)) / (2 * h) for u in v])",
            ),
        )

    tally.judge(check)


@pytest.mark.parametrize("specs", by_mining(SPECS))
def test_full_gradient_on_small_batches(specs):
    tally = Tally(f"finite differences, full gradient [{specs[0].mining}]")

    @given(data=st.data())
    def check(data):
        spec = data.draw(st.sampled_from(specs), label="spec")
        batch = data.draw(gradient_batches(spec, max_n=4), label="batch")
        result = batch.evaluate(spec)
        if not usable(result, batch, spec, tally):
            return
        numeric = np.zeros_like(batch.x)
        for index in np.ndindex(*batch.x.shape):
            unit = np.zeros_like(batch.x)
            unit[index] = 1.0
            difference, moved = central_difference(batch, spec, unit)
            numeric[index] = difference / moved[index]
        allowed = tolerance(result.loss)
        assert_close(
            result.grad,
            numeric,
            rtol=allowed,
            atol=allowed,
            what="gradient vs finite differences per coordinate",
            snippet=batch.snippet(
                spec,
                f"h = {STEP}; f = lambda y: reference.evaluate(y, labels, r.spec, triplets=triplets).loss",
                "e = np.eye(x.size).reshape(x.size, *x.shape)",
                "print(r.grad, np.array([(f(x + h * u) - f(x - h * u)) / (2 * h) for u in e]).reshape(x.shape))",
            ),
        )

    tally.judge(check)

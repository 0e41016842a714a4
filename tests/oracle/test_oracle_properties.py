"""Properties every loss in the catalogue has, checked on the oracle itself.

Transformed inputs give distances that differ by rounding, so each comparison follows
`oracle_helpers.comparable`: at a near-tie only what is continuous there is compared.
"""

import math
from dataclasses import dataclass, replace

import numpy as np
import pytest
from hypothesis import given, reject
from hypothesis import strategies as st
import reference
from engine.tolerances import loss_rounding
from reference.validation import MAX_CLASSES
from oracle_helpers import (
    CONTINUOUS_LAYOUTS,
    SPECS,
    Batch,
    Tally,
    amplification,
    assert_close,
    batches,
    by_mining,
    comparable,
    distance_speed,
    failure,
    scaled_denominator,
)

SAME_SUMS = 1e-12  # the same terms added in another order
ROUNDED_INPUT = 1e-9  # distances from rotated or shifted coordinates: a few ulps of the coordinates
EPS = np.finfo(np.float64).eps


@dataclass(frozen=True)
class Moved:
    """A batch transformed: row i of `batch` is row order[i] of the original, times `linear` (a
    rotation) if any; `code` builds its embeddings from the original `x`, for the reproducer."""

    batch: Batch
    code: str
    order: np.ndarray
    linear: np.ndarray | None = None

    def carry(self, grad: np.ndarray) -> np.ndarray:
        """The original gradient, carried along: what the moved batch's gradient must be."""
        return (grad if self.linear is None else grad @ self.linear)[self.order]

    def distances_back(self, distances: np.ndarray) -> np.ndarray:
        back = np.argsort(self.order)
        return distances[np.ix_(back, back)]


def assert_invariant(batch: Batch, spec, moved: Moved, tolerance: float, tally: Tally) -> None:
    """The loss must not change under the move, and the gradient must move along with the batch,
    wherever the comparison is decided."""
    original, result = batch.evaluate(spec), moved.batch.evaluate(spec)
    level, how = comparable(original, moved.distances_back(result.distances))
    if level == "nothing":
        tally.discard(how)
        return
    tally.check(how)
    triplets = None if moved.batch.triplets is None else f"np.array({moved.batch.triplets.tolist()!r})"
    snippet = batch.snippet(
        spec,
        f"moved = reference.evaluate({moved.code}, np.array({moved.batch.labels.tolist()!r}), r.spec, triplets={triplets})",
        "print(r.loss, moved.loss)",
    )
    allowed = tolerance * amplification(original)
    assert_close(result.loss, original.loss, rtol=allowed, atol=allowed, what="loss after the move", snippet=snippet)
    if level == "all" and np.isfinite(original.loss):
        scale = 1.0 + np.abs(original.grad).max()
        assert_close(
            result.grad,
            moved.carry(original.grad),
            rtol=allowed,
            atol=allowed * scale,
            what="gradient after the move, against the original one carried along",
            snippet=snippet,
        )


def drawn(data, specs, **batch_options):
    spec = data.draw(st.sampled_from(specs), label="spec")
    return spec, data.draw(batches(spec, **batch_options), label="batch")


@pytest.mark.parametrize("specs", by_mining(SPECS))
def test_permuting_the_batch_permutes_the_gradient(specs):
    tally = Tally(f"permutation [{specs[0].mining}]")

    @given(data=st.data())
    def check(data):
        spec, batch = drawn(data, specs)
        if reference.LOSSES[spec.mining].layout == "pairs":  # shuffle the pairs: anchor i keeps positive B + i
            half = len(batch.x) // 2
            pairs = np.array(data.draw(st.permutations(range(half)), label="order"))
            order = np.concatenate([pairs, half + pairs])
        else:
            order = np.array(data.draw(st.permutations(range(len(batch.x))), label="order"))
        new_index = np.argsort(order)  # original row i is row new_index[i] after the move
        triplets = None if batch.triplets is None else new_index[batch.triplets]
        moved = Batch(batch.x[order], batch.labels[order], triplets)
        assert_invariant(batch, spec, Moved(moved, f"x[{order.tolist()}]", order), SAME_SUMS, tally)

    tally.judge(check)


@pytest.mark.parametrize("specs", by_mining(SPECS))
def test_renaming_labels_changes_nothing(specs):
    @given(data=st.data())
    def check(data):
        spec, batch = drawn(data, specs)
        if reference.LOSSES[spec.mining].labels == "class sets":  # a class is a bit: move each to another bit
            bits = np.array(data.draw(st.permutations(range(MAX_CLASSES)), label="bits"))
            moved = [sum(1 << int(bits[b]) for b in range(MAX_CLASSES) if label >> b & 1) for label in batch.labels]
            renamed = Batch(batch.x, np.array(moved, dtype=np.int64), batch.triplets)
            original, result = batch.evaluate(spec), renamed.evaluate(spec)
            assert_close(result.loss, original.loss, rtol=0, atol=0, what="loss after moving the classes' bits",
                         snippet=batch.snippet(spec))
            return
        classes = np.unique(batch.labels)
        names = data.draw(
            st.lists(st.integers(-(2**40), 2**40), min_size=len(classes), max_size=len(classes), unique=True),
            label="names",
        )
        renamed = Batch(batch.x, np.array(names)[np.searchsorted(classes, batch.labels)], batch.triplets)
        original, result = batch.evaluate(spec), renamed.evaluate(spec)
        # labels enter only through equality: the very same numbers must come out
        snippet = batch.snippet(
            spec, f"renamed = reference.evaluate(x, {renamed.labels.tolist()!r}, r.spec, triplets=triplets)"
        )
        assert_close(result.loss, original.loss, rtol=0, atol=0, what="loss after renaming labels", snippet=snippet)
        assert_close(result.grad, original.grad, rtol=0, atol=0, what="gradient after renaming labels", snippet=snippet)

    check()


def random_rotation(seed: int, dim: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(dim, dim)))
    return q * np.sign(np.diag(r))  # Haar-distributed; any orthogonal matrix would do


@pytest.mark.parametrize("specs", by_mining(SPECS))
def test_rotating_the_embeddings_rotates_the_gradient(specs):
    # every distance in the catalogue, cosine and normalised ones included, depends on inner products only
    tally = Tally(f"rotation [{specs[0].mining}]")

    @given(data=st.data(), seed=st.integers(0, 2**32 - 1))
    def check(data, seed):
        spec, batch = drawn(data, specs)
        rotation = random_rotation(seed, batch.x.shape[1])
        code = f"x @ np.array({rotation.tolist()!r})"
        moved = Moved(Batch(batch.x @ rotation, batch.labels, batch.triplets), code, np.arange(len(batch.x)), rotation)
        assert_invariant(batch, spec, moved, ROUNDED_INPUT, tally)

    tally.judge(check)


@pytest.mark.parametrize("specs", by_mining(s for s in SPECS if s.distance != "cosine" and not s.normalize))
def test_translating_the_embeddings_changes_nothing(specs):
    tally = Tally(f"translation [{specs[0].mining}]")

    @given(data=st.data())
    def check(data):
        spec, batch = drawn(data, specs)
        dim = batch.x.shape[1]
        shift = np.array(data.draw(st.lists(st.floats(-10, 10), min_size=dim, max_size=dim), label="shift"))
        code = f"x + np.array({shift.tolist()!r})"
        moved = Moved(Batch(batch.x + shift, batch.labels, batch.triplets), code, np.arange(len(batch.x)))
        assert_invariant(batch, spec, moved, ROUNDED_INPUT, tally)

    tally.judge(check)


@pytest.mark.parametrize("specs", by_mining(SPECS))
def test_loss_is_non_negative_and_nan_only_where_documented(specs):
    @given(data=st.data())
    def check(data):
        spec, batch = drawn(data, specs)
        result = batch.evaluate(spec)
        snippet = batch.snippet(spec)
        assert np.all(result.values[~np.isnan(result.values)] >= 0), failure(
            f"negative terms: {result.values}", snippet
        )
        if len(result.values) == 0:
            empty_ok = math.isnan(result.loss) if spec.empty == "nan" else result.loss == 0.0
            assert empty_ok, failure(f"an empty batch gave {result.loss} under empty={spec.empty!r}", snippet)
        elif not math.isfinite(result.loss):
            # the only other way: Quaterion's division by mean(hn) = 0 at (partial) collapse
            assert spec.scaled and scaled_denominator(result) == 0, failure(
                f"loss {result.loss} outside the documented NaN cases", snippet
            )
        else:
            assert result.loss >= 0, failure(f"loss {result.loss} < 0", snippet)
        if not math.isfinite(result.loss):
            assert np.all(np.isnan(result.grad)), failure("the gradient of a non-finite loss must be all NaN", snippet)

    check()


# --- zero loss when every triplet satisfies its margin --------------------------------------------------


def separated_batch(spec, class_sizes: list[int], noise_seed: int, dim_extra: int) -> Batch:
    """Each class around its own axis, 10 (1 + m) from the origin; within a class, points 1e-2 apart
    at most (exactly on top of each other for contrastive, whose positive term is d^2 itself)."""
    labels = np.repeat(np.arange(len(class_sizes)), class_sizes)
    dim = len(class_sizes) + dim_extra
    centres = 10.0 * (1.0 + spec.margin) * np.eye(len(class_sizes), dim)
    spread = 0.0 if spec.mining == "contrastive" else 1e-2 / (2 * math.sqrt(dim))
    x = centres[labels] + spread * np.random.default_rng(noise_seed).uniform(-1, 1, size=(len(labels), dim))
    triplets = None
    if spec.mining == "triplets":
        valid = [
            (a, p, n)
            for a in range(len(labels))
            for p in range(len(labels))
            for n in range(len(labels))
            if a != p and labels[a] == labels[p] != labels[n]
        ]
        triplets = np.array(valid, dtype=np.int64).reshape(-1, 3)
    return Batch(x, labels, triplets)


def reachable_margin(spec):
    """Orthogonal unit directions sit at cosine distance 1 (euclidean sqrt 2, squared 2), and the
    scaled form's (hp - hn) / mean(hn) is about -1 here: margins beyond those cannot be satisfied."""
    if spec.distance == "cosine" or spec.normalize or spec.scaled:
        return replace(spec, margin=min(spec.margin, 0.5))
    return spec


def bounded_lifted(spec) -> bool:
    """lifted's log-sum-exp is a smooth maximum over every negative: its term is 0 only where the negatives are
    farther than m + log(their count) + d_ij, which distances bounded by 2 (cosine, normalized) cannot be."""
    return spec.mining == "lifted" and (spec.distance == "cosine" or spec.normalize)


def relaxation_only(spec) -> bool:
    """circle's margin m relaxes its optima (Sun et al. 2020): softplus(lse_p + lse_n) > 0 for every anchor with a pair,
    so no margin met zeroes it (multi_similarity_mined's margin is its miner's: met, it mines nothing, 0)."""
    return spec.mining == "circle"


@pytest.mark.parametrize("specs", by_mining(reachable_margin(s) for s in SPECS if not s.soft and not bounded_lifted(s)
                                             and s.mining in reference.MARGIN_MININGS and not relaxation_only(s)))
def test_zero_loss_and_gradient_when_every_margin_is_met(specs):
    @given(
        spec=st.sampled_from(specs),
        class_sizes=st.lists(st.integers(1, 4), min_size=1, max_size=4).map(lambda sizes: [2] + sizes),
        noise_seed=st.integers(0, 2**32 - 1),
        dim_extra=st.integers(0, 2),
    )
    def check(spec, class_sizes, noise_seed, dim_extra):
        batch = separated_batch(spec, class_sizes, noise_seed, dim_extra)
        result = batch.evaluate(spec)
        snippet = batch.snippet(spec)
        # semi_hard_all's window and an empty explicit list select nothing: then `empty` decides
        expected = math.nan if len(result.values) == 0 and spec.empty == "nan" else 0.0
        # 1e-12: under cosine two copies of one point are ~1e-16 apart, not 0, and contrastive squares that
        assert_close(result.loss, expected, rtol=0, atol=1e-12, what="loss", snippet=snippet)
        if expected == 0.0:
            assert_close(result.grad, np.zeros_like(batch.x), rtol=0, atol=1e-12, what="gradient", snippet=snippet)

    check()


# --- collapse: every embedding the same -------------------------------------------------------------------


def units_of(spec, labels: np.ndarray) -> int:
    """batch_hard's units: every anchor, or those with a positive and a negative."""
    if spec.anchors == "all":
        return len(labels)
    counts = {label: int(np.sum(labels == label)) for label in labels}
    return sum(1 for label in labels if counts[label] >= 2 and len(counts) >= 2)


@pytest.mark.parametrize("spec", [s for s in SPECS if s.mining == "batch_hard" and not s.scaled], ids=str)
def test_collapse_costs_the_margin_or_log_2(spec):
    # Every distance is 0, so every anchor's term is [0 - 0 + m]+ = m, or softplus(0) = log 2.
    per_unit = math.log(2) if spec.soft else spec.margin
    nonzero = st.floats(0.1, 3) | st.floats(-3, -0.1)  # a zero point is at cosine distance 1 from itself

    @given(batch=batches(spec, max_n=8), point=st.lists(nonzero, min_size=5, max_size=5))
    def check(batch, point):
        collapsed = Batch(np.tile(point[: batch.x.shape[1]], (len(batch.x), 1)), batch.labels)
        result = collapsed.evaluate(spec)
        units = units_of(spec, batch.labels)
        if units == 0:
            expected = math.nan if spec.empty == "nan" else 0.0
        else:
            expected = {"mean": per_unit, "sum": units * per_unit, "mean_nonzero": per_unit}[spec.reduction]
        # 1e-12: under cosine a point's distance to its copy rounds to ~1e-16, not 0
        assert_close(
            result.loss, expected, rtol=1e-12, atol=1e-12, what="loss at collapse", snippet=collapsed.snippet(spec)
        )

    check()


@pytest.mark.parametrize("spec", [s for s in SPECS if s.scaled], ids=str)
def test_scaled_batch_hard_is_nan_at_exact_collapse(spec):
    # (hp - hn) / mean(hn) = 0 / 0 (Quaterion has no epsilon); autograd's gradient is NaN everywhere
    collapsed = Batch(np.tile([1.0, -2.0, 0.5], (4, 1)), np.array([0, 0, 1, 1]))
    result = collapsed.evaluate(spec)
    snippet = collapsed.snippet(spec)
    assert math.isnan(result.loss), failure(f"loss {result.loss}, expected NaN", snippet)
    assert np.all(np.isnan(result.grad)), failure(f"gradient {result.grad}, expected all NaN", snippet)


# --- descent ------------------------------------------------------------------------------------------------


# circle's gradient holds its weights constant (reference/losses.py `detached`): not a descent direction of its value
# where a negative's weight [s + m]+ grows faster than its logit falls (s_n in (-m, 0)); test_oracle_gradients.py
# checks it against finite differences with the weights held
@pytest.mark.parametrize("specs", by_mining(s for s in SPECS if not reference.LOSSES[s.mining].detached))
def test_a_small_step_against_the_gradient_lowers_the_loss(specs):
    tally = Tally(f"descent [{specs[0].mining}]")

    @given(data=st.data())
    def check(data):
        spec, batch = drawn(data, specs, layouts=CONTINUOUS_LAYOUTS, min_n=3, min_triplets=1)
        result = batch.evaluate(spec)
        norm = np.linalg.norm(result.grad)
        if not norm > 1e-9:  # also NaN: where every hinge is inactive there is nothing to descend
            tally.reject("flat or undefined")
        # A step of length t moves every distance by at most t * distance_speed: a thousandth of the gap crosses
        # no decision and stays where the loss is smooth, so the loss falls by t |g| to first order; half of that
        # is asked for (the Armijo condition). Where nothing is decided (an infinite gap) the step is 1e-4. A
        # log-sum-exp bends within any gap, so the step is halved while it falls short, down to the shortest whose
        # drop stands out of the loss's rounding: float64's at the loss and what the distances' rounding moves it
        # by (engine/tolerances.py loss_rounding; cosine rows 1e3 from the origin 1e-5 apart, scaled batch_hard,
        # once rounded up by 1e-13 a loss a step was to lower by 1e-12). A gradient that is no descent direction
        # falls short at every step down to that one.
        step = min(1e-3 * result.gap / distance_speed(batch.x, spec), 1e-4)
        shortest = max(1e3 * EPS * (1 + abs(result.loss)), 4 * loss_rounding(result, "float64")) / norm
        if not step > shortest:
            tally.discard("ambiguous: a decision too close for a step float64 resolves")
            return
        tally.check()
        first = step
        while True:
            lowered = batch.evaluate(spec, batch.x - step * result.grad / norm).loss
            if result.loss - lowered >= 0.5 * step * norm or step / 2 <= shortest:
                break
            step /= 2
        assert result.loss - lowered >= 0.5 * step * norm, failure(
            f"no step from {first:.3g} down to {step!r} against the gradient (norm {norm}) lowered the "
            f"loss from {result.loss} by half its first-order drop; the last took it to {lowered}",
            batch.snippet(
                spec,
                f"t = {step!r}",
                "print(reference.evaluate(x - t * r.grad / np.linalg.norm(r.grad), labels, r.spec, triplets=triplets).loss)",
            ),
        )

    tally.judge(check)


# --- the decision gap is sound ------------------------------------------------------------------------------


def hinged_terms(result) -> np.ndarray:
    """The terms whose activity (value > 0) the gap vouches for. Softplus has no hinge (its values only
    underflow to 0), nor has a softmax term (> 0 in exact arithmetic, 0 where float64 rounds it: in value
    units, softmax_rounding); contrastive's and lifted's squared hinges are smooth, so their gap watches the count
    of active terms only where mean_nonzero counts them (reference/strategies.py lifted measures it only there)."""
    spec = result.spec
    softmax = reference.LOSSES[spec.mining].term == "softmax row"
    squared = spec.mining in ("contrastive", "lifted")
    watched = not spec.soft and not softmax and (not squared or spec.reduction == "mean_nonzero")
    return np.full(len(result.values), watched)


@pytest.mark.parametrize("specs", by_mining(SPECS))
def test_no_decision_flips_within_the_gap(specs):
    """Conformance tests trust the gap to say how far an input is from any decision point: a move
    that shifts every distance by less than the gap must leave every decision as it was, i.e. the
    same terms selected and the same hinges active."""
    tally = Tally(f"gap soundness [{specs[0].mining}]")

    @given(data=st.data(), seed=st.integers(0, 2**32 - 1))
    def check(data, seed):
        spec, batch = drawn(data, specs, layouts=CONTINUOUS_LAYOUTS, min_triplets=1)
        result = batch.evaluate(spec)
        if not np.isfinite(result.loss):
            reject()  # an empty="nan" batch without a single term has no decision to move across
        if not result.gap > 0:
            tally.discard("on a decision point")
            return
        tally.check()
        # distance_speed bounds the first-order motion; a quarter of the gap covers the second order too
        # (and the scaled hinge's (2 + m) factor for m <= 2); an infinite gap still allows a step of 1
        direction = np.random.default_rng(seed).normal(size=batch.x.shape)
        step = min(0.25 * result.gap / ((2 + spec.margin) * distance_speed(batch.x, spec)), 1.0)
        moved = batch.evaluate(spec, batch.x + step * direction / np.linalg.norm(direction))
        snippet = batch.snippet(
            spec,
            f"v = np.random.default_rng({seed}).normal(size=x.shape); t = {step!r}",
            "moved = reference.evaluate(x + t * v / np.linalg.norm(v), labels, r.spec, triplets=triplets)",
            "print(r.gaps, r.selection.tolist(), moved.selection.tolist(), r.values > 0, moved.values > 0)",
        )
        assert np.array_equal(moved.selection, result.selection), failure(
            f"a move of {step} (gap {result.gap}, gaps {result.gaps}) changed the selection", snippet
        )
        hinged = hinged_terms(result)
        assert np.array_equal(moved.values[hinged] > 0, result.values[hinged] > 0), failure(
            f"a move of {step} (gap {result.gap}, gaps {result.gaps}) switched a hinge", snippet
        )

    tally.judge(check)

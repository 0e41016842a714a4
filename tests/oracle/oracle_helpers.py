"""What the oracle's self-tests share: the specs they run, the batches they draw, how a failure
prints its reproducer, and when an input is too close to a decision point to compare exactly."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import event, reject
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import reference
from contract.batch import in_layout
from reference import Spec, SpecError
from reference.gaps import in_distance_units

# --- specs ----------------------------------------------------------------------------------------

FIELD_VALUES = {
    "mining": reference.MININGS,
    "distance": reference.DISTANCES,
    "normalize": (False, True),
    "margin": (0.0, 0.5, 2.0),  # 0 puts every hinge at its kink at collapse; 2 exceeds cosine's typical range
    "soft": (False, True),
    "scaled": (False, True),
    "reduction": reference.REDUCTIONS,
    "anchors": reference.ANCHORS,
    "empty": reference.EMPTIES,
}


def _spec_or_none(values: dict) -> Spec | None:
    try:
        return Spec(**values)
    except SpecError:
        return None


def _degenerate(spec: Spec) -> bool:
    """semi_hard_all with margin 0 selects nothing, ever (its window is 0 < x <= 0): a hand-computed
    test says so once, and the sweeps leave it out instead of drawing empty batches from it."""
    return spec.mining == "semi_hard_all" and spec.margin == 0


# Every valid combination of FIELD_VALUES (soft specs store margin 0, so they collapse to one each).
ALL_SPECS = tuple(
    dict.fromkeys(
        spec
        for combo in itertools.product(*FIELD_VALUES.values())
        if (spec := _spec_or_none(dict(zip(FIELD_VALUES, combo)))) is not None and not _degenerate(spec)
    )
)


def _value_pairs(spec: Spec) -> frozenset:
    return frozenset(itertools.combinations([(name, getattr(spec, name)) for name in FIELD_VALUES], 2))


def pairwise_cover(specs: tuple[Spec, ...], start: tuple[Spec, ...]) -> tuple[Spec, ...]:
    """`start`, then a few more specs, such that every pair of field values that some valid spec
    combines occurs at least once (all-pairs testing): every mining meets every distance, reduction,
    flag and margin."""
    pairs = {spec: _value_pairs(spec) for spec in specs}
    uncovered = frozenset().union(*pairs.values()).difference(*map(_value_pairs, start))
    chosen = list(start)
    while uncovered:
        best = max(specs, key=lambda spec: len(pairs[spec] & uncovered))
        chosen.append(best)
        uncovered -= pairs[best]
    return tuple(chosen)


# The specs docs/design.md names for known implementations come first (pairs alone would leave out, say,
# plain batch_hard: its pairs all occur in soft and scaled specs).
KNOWN_SPECS = (
    Spec(),  # TF-Addons triplet_hard_loss
    Spec(soft=True),  # TF-Addons triplet_hard_loss(soft=True)
    Spec(mining="semi_hard", empty="nan"),  # TF-Addons triplet_semihard_loss
    Spec(mining="batch_all", normalize=True, margin=0.05, reduction="mean_nonzero"),  # pml TripletMarginLoss
    Spec(normalize=True, margin=0.05, reduction="mean_nonzero", anchors="valid"),  # pml + BatchHardMiner
    Spec(mining="semi_hard_all", normalize=True, margin=0.05, reduction="mean_nonzero"),  # pml + semihard miner
    Spec(mining="triplets"),  # torch TripletMarginLoss (without its eps)
    Spec(mining="contrastive", reduction="sum"),  # TF-Addons contrastive_loss, summed
    Spec(distance="cosine", margin=0.5, scaled=True),  # Quaterion TripletLoss(mining="hard")
    Spec(mining="multi_similarity", distance="cosine"),  # pml MultiSimilarityLoss
    Spec(mining="multi_similarity_mined", distance="cosine", margin=0.1, beta=40.0),  # + miner; TF-Similarity's
    Spec(mining="circle", distance="cosine", margin=0.4, reduction="mean_nonzero"),  # pml CircleLoss
)
SPECS = pairwise_cover(ALL_SPECS, KNOWN_SPECS)


def by_mining(specs) -> list:
    """pytest params, one per mining, each holding that mining's specs: a test draws one of them per
    example, so every spec is reached at a sixth of the cost of parametrizing over all of them."""
    specs = tuple(specs)
    groups = {spec.mining: [] for spec in specs}
    for spec in specs:
        groups[spec.mining].append(spec)
    return [pytest.param(tuple(group), id=mining) for mining, group in groups.items()]


# --- batches --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """One input to the oracle; `snippet` prints it so that a failure can be pasted and rerun."""

    x: np.ndarray
    labels: np.ndarray
    triplets: np.ndarray | None = None

    def evaluate(self, spec: Spec, x: np.ndarray | None = None) -> reference.Answer:
        return reference.evaluate(self.x if x is None else x, self.labels, spec, triplets=self.triplets)

    def snippet(self, spec: Spec, *then: str) -> str:
        lines = [
            "import numpy as np",
            "import reference",
            "from reference import Spec",
            f"x = np.array({self.x.tolist()!r})",
            f"labels = np.array({self.labels.tolist()!r})",
            f"triplets = {None if self.triplets is None else f'np.array({self.triplets.tolist()!r}, dtype=np.int64)'}",
            f"r = reference.evaluate(x, labels, {spec!r}, triplets=triplets)",
            *then,
        ]
        return "\n".join(lines)


def failure(message: str, snippet: str) -> str:
    return f"{message}\n\nFAILING CODE SNIPPET:\n{snippet}"


def assert_close(actual, expected, *, rtol: float, atol: float, what: str, snippet: str) -> None:
    """|actual - expected| <= atol + rtol |expected| elementwise, NaN only where NaN is expected."""
    __tracebackhide__ = True
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    same = actual.shape == expected.shape and np.allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)
    if not same:
        with np.errstate(invalid="ignore"):
            worst = np.max(np.abs(actual - expected)) if actual.shape == expected.shape else "shapes differ"
        raise AssertionError(
            failure(
                f"{what}: got\n{actual!r}\nexpected\n{expected!r}\n"
                f"(largest difference {worst}; allowed {atol} + {rtol} * |expected|)",
                snippet,
            )
        )


LABELINGS = ("random", "one_class", "all_distinct", "with_singletons", "balanced", "mixed")
CONTINUOUS_LAYOUTS = ("gaussian", "clustered", "unit_norm", "far_from_origin")
LAYOUTS = CONTINUOUS_LAYOUTS + ("duplicates", "integer_grid", "hypothesis_floats")


@st.composite
def label_lists(draw, n: int, labeling: str) -> np.ndarray:
    if labeling == "random":
        k = draw(st.integers(1, n), label="classes")
        return np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n), label="labels"))
    if labeling == "one_class":
        return np.zeros(n, dtype=np.int64)
    if labeling == "all_distinct":
        return np.arange(n)
    if labeling == "with_singletons":  # pairs first, then classes of one, shuffled
        paired = 2 * draw(st.integers(0, n // 2), label="paired")
        ordered = [i // 2 for i in range(paired)] + list(range(paired // 2, paired // 2 + n - paired))
        return np.array(draw(st.permutations(ordered), label="labels"))
    if labeling == "balanced":  # P >= 2 classes of K (the PK sampling of Hermans et al.), the last one short
        size = draw(st.integers(2, max(2, min(4, n - 1))), label="class size")
        return np.array(draw(st.permutations([i // size for i in range(n)]), label="labels"))
    # mixed: random, but with a positive pair and a negative whenever n >= 3
    k = draw(st.integers(2, max(2, n - 1)), label="classes")
    rest = draw(st.lists(st.integers(0, k - 1), min_size=max(0, n - 3), max_size=max(0, n - 3)), label="labels")
    return np.array([0, 0, 1, *rest][:n])


def _points(layout: str, labels: np.ndarray, dim: int, rng: np.random.Generator, spread: float) -> np.ndarray:
    n = len(labels)
    if layout == "gaussian":
        return rng.normal(size=(n, dim))
    if layout == "clustered":  # class centres `spread` apart on the scale of unit noise: easy, semi-hard and hard
        _, index = np.unique(labels, return_inverse=True)
        return spread * rng.normal(size=(index.max() + 1, dim))[index] + rng.normal(size=(n, dim))
    if layout == "unit_norm":
        x = rng.normal(size=(n, dim))
        return x / np.linalg.norm(x, axis=1, keepdims=True)
    if layout == "far_from_origin":
        return rng.normal(size=(n, dim)) + 100.0 * rng.normal(size=dim)
    if layout == "duplicates":
        distinct = rng.normal(size=(max(1, n // 2), dim))
        return distinct[rng.integers(0, len(distinct), size=n)]
    if layout == "integer_grid":
        return rng.integers(-2, 3, size=(n, dim)).astype(float)
    raise ValueError(layout)


@st.composite
def batches(
    draw,
    spec: Spec,
    *,
    layouts=LAYOUTS,
    labelings=LABELINGS,
    min_n: int = 1,
    max_n: int = 24,
    min_dim: int = 1,
    min_triplets: int = 0,
) -> Batch:
    """Random and structured batches: small N (1-4) as often as moderate N (5-max_n), on scales
    from well inside to well outside the margins in SPECS."""
    small = st.integers(min_n, max(min_n, min(4, max_n)))
    n = draw(small | st.integers(max(min_n, 5), max_n) if max_n >= 5 else small, label="N")
    if reference.LOSSES[spec.mining].layout == "pairs":
        n = max(n, 2)  # one pair at least
    dim = draw(st.integers(min_dim, 5), label="D")
    labels = draw(label_lists(n, draw(st.sampled_from(labelings), label="labeling")))
    layout = draw(st.sampled_from(layouts), label="layout")
    if layout == "hypothesis_floats":  # Hypothesis' own values: many repeats, zeros and exact ties
        elements = st.floats(-4, 4, allow_subnormal=False)
        x = draw(hnp.arrays(np.float64, (n, dim), elements=elements), label="x")
    else:  # continuous draws from a seed: generic points, no accidental ties
        seed = draw(st.integers(0, 2**32 - 1), label="seed")
        spread = draw(st.sampled_from([0.5, 2.0, 6.0]), label="spread")
        scale = draw(st.sampled_from([1.0, 0.25, 4.0]), label="scale")
        x = scale * _points(layout, labels, dim, np.random.default_rng(seed), spread)
    triplets = None
    if spec.mining == "triplets":  # indices only: labels play no part in explicit triplets
        index = st.integers(0, n - 1)
        rows = draw(st.lists(st.tuples(index, index, index), min_size=min_triplets, max_size=2 * n), label="triplets")
        triplets = np.array(rows, dtype=np.int64).reshape(-1, 3)
    x, labels = in_layout(spec, x, labels)  # the pairs layout, class sets (contract/batch.py)
    return Batch(x, labels, triplets)


# --- decisions: when can two computations of "the same" loss disagree? ------------------------------

# Kinds of decision point at which the loss *value* is continuous: a tie in a max or min picks either
# element but the value is the same; the euclidean kink at distance 0 bends the gradient only. A zero
# norm is deterministic in both computations (a zero row stays zero). The hinge is continuous too,
# except that mean_nonzero counts terms > 0, which a hinge at exactly 0 changes, and that the scaled
# hinge's gap |hp - hn + m mean(hn)| is also 0 at collapse, where 0/0 turns the value into NaN.
VALUE_CONTINUOUS = frozenset({"tie_positive", "tie_negative", "zero_distance", "zero_norm"})


def undecided(result: reference.Answer, resolution: float) -> set[str]:
    """The kinds within `resolution` (a distance) of a decision. A soft term's count (soft_underflow) is measured in
    value units, and two float64 computations both hold a softplus down to 1e-308: no distance rounding flips it."""
    return {kind for kind, gap in result.gaps.items() if in_distance_units(kind) and gap <= resolution}


def loss_is_decided(result: reference.Answer, resolution: float) -> bool:
    """Whether two computations that agree to `resolution` in distance must agree on the loss value."""
    spec = result.spec
    continuous_hinge = spec.reduction != "mean_nonzero" and not spec.scaled
    return undecided(result, resolution) <= VALUE_CONTINUOUS | ({"hinge"} if continuous_hinge else set())


def comparable(result: reference.Answer, other_distances: np.ndarray) -> tuple[str, str]:
    """What two computations of one loss must agree on, given the distances each one saw: "all"
    (terms and gradient too), "loss", or "nothing"; and why, for the tally."""
    resolution = rounding_resolution(result)
    if result.gap > resolution:
        return "all", "fully"
    if np.array_equal(result.distances, other_distances, equal_nan=True):
        # The same numbers on both sides: every decision, exact ties included (semi_hard's strict >,
        # the window's edges, a hinge at exactly 0), comes out the same; only which of two tied
        # elements is picked may differ, and with it the gradient.
        return "loss", "loss only: exact tie on identical distances"
    if loss_is_decided(result, resolution):
        return "loss", "loss only: near-tie the loss value is continuous across"
    return "nothing", "near-tie that moves the loss"


def scaled_denominator(result: reference.Answer) -> float:
    """mean(hn), what the scaled form of batch_hard divides by."""
    anchors, _, negatives = result.selection.T
    return float(result.distances[anchors, negatives].mean())


def amplification(result: reference.Answer) -> float:
    """How much the terms magnify the distances' rounding: not at all, except that the scaled form
    divides by mean(hn), which far from the origin under cosine can be 1e-4."""
    if not result.spec.scaled or len(result.selection) == 0:
        return 1.0
    scale = scaled_denominator(result)
    return 1.0 / scale if 0.0 < scale < 1.0 else 1.0


def rounding_resolution(result: reference.Answer, relative: float = 1e-9) -> float:
    """Decisions closer than this may go either way between two float64 computations of the same
    distances (they differ by a few ulps of the largest distance; 1e-9 leaves a wide berth)."""
    finite = result.distances[np.isfinite(result.distances)]
    return relative * (1.0 + (finite.max() if finite.size else 0.0))


def distance_speed(x: np.ndarray, spec: Spec) -> float:
    """A bound on how far any distance (and the zero_norm gap) moves per unit Frobenius norm of a
    step in the embeddings, to first order.

    x_i - x_j moves by at most 2 |step|; x / ||x|| moves at most 1 / ||x|| times as fast as x; a
    squared distance moves 2 d times as fast as the distance d.
    """
    speed, points = 2.0, x
    if spec.normalize or spec.distance == "cosine":
        norms = np.linalg.norm(x, axis=1)
        speed /= min(1.0, norms.min())
        points = x / np.where(norms > 0, norms, 1.0)[:, None]
    if spec.distance == "squared_euclidean":
        spans = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=-1)
        speed *= 2.0 * (spans.max() + 1.0)
    return speed


@dataclass
class Tally:
    """What a test did with each draw: checked (and how), set aside (and why), or rejected as no
    input for this test at all (then Hypothesis draws another). A test that sets aside most of its
    draws has proven little, so it fails."""

    name: str
    checked: Counter = field(default_factory=Counter)
    set_aside: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)

    def check(self, how: str = "fully") -> None:
        event(f"checked: {how}")
        self.checked[how] += 1

    def discard(self, reason: str) -> None:
        event(f"set aside: {reason}")
        self.set_aside[reason] += 1

    def reject(self, reason: str) -> None:
        event(f"rejected: {reason}")
        self.rejected[reason] += 1
        reject()

    def summary(self) -> str:
        def listed(counter):
            return ", ".join(f"{what} {count}" for what, count in sorted(counter.items())) or "none"

        done, skipped = sum(self.checked.values()), sum(self.set_aside.values())
        rejected = f"; rejected {sum(self.rejected.values())} ({listed(self.rejected)})" if self.rejected else ""
        return (
            f"{self.name}: checked {done} of {done + skipped} draws ({listed(self.checked)}); "
            f"set aside {skipped} ({listed(self.set_aside)}){rejected}"
        )

    def mostly_checked(self) -> bool:
        done, skipped = sum(self.checked.values()), sum(self.set_aside.values())
        return done > 0 and skipped <= done

    def judge(self, check) -> None:
        """Run `check` (a Hypothesis test that tallies here), then assert that most of its draws were checked. After
        an interesting draw Hypothesis draws its neighbours, so one round can set most aside by chance where a
        strategy is sound (20 of 30 ambiguous, where 2 to 13 are usual): such a round gets a second, with new draws
        outside a derandomised profile, and the two are judged together; a strategy that sets most aside fails both."""
        check()
        if not self.mostly_checked():
            check()
        TALLIES.append(self)
        assert self.mostly_checked(), f"more than half of the draws were set aside: {self.summary()}"


TALLIES: list[Tally] = []  # read by tests/oracle/conftest.py for the end-of-run summary


# --- the hand-computed batches (test_oracle_hand_computed*.py) -----------------------------------------

EXACT = 1e-14  # the arithmetic below is exact in binary or one rounding away from it


def points(*coordinates) -> np.ndarray:
    """1-D embeddings as an [N, 1] array."""
    return np.array(coordinates, dtype=float)[:, None]


def check(x, labels, spec, *, loss, terms=None, grad=None, weights=None, triplets=None, tolerance=EXACT):
    """The oracle on one batch against the numbers worked out by hand; terms are ((indices), value)."""
    __tracebackhide__ = True
    batch = Batch(
        np.asarray(x, dtype=float),
        np.asarray(labels),
        None if triplets is None else np.asarray(triplets, dtype=np.int64).reshape(-1, 3),
    )
    result, snippet = batch.evaluate(spec), batch.snippet(spec)
    assert_close(result.loss, loss, rtol=tolerance, atol=tolerance, what="loss", snippet=snippet)
    if terms is not None:
        got = sorted(zip(map(tuple, result.selection.tolist()), result.values.tolist()))
        expected = sorted(terms)
        assert [t for t, _ in got] == [t for t, _ in expected], failure(
            f"selected {[t for t, _ in got]}, expected {[t for t, _ in expected]}", snippet
        )
        assert_close(
            [v for _, v in got], [v for _, v in expected], rtol=EXACT, atol=EXACT, what="term values", snippet=snippet
        )
    if weights is not None:
        assert_close(result.weights, weights, rtol=EXACT, atol=EXACT, what="weights", snippet=snippet)
    if grad is not None:
        assert_close(result.grad, grad, rtol=EXACT, atol=EXACT, what="gradient", snippet=snippet)
    return result

"""Hypothesis strategies for batches that reach the interesting cases, and the regimes they reach.

A batch is built in two layers. Hypothesis draws its structure: the size N (small 2-4, up to 16, or
moderate up to 64), the dimension D (1-16), the label layout (clustered classes, one class, all labels
distinct, sometimes sparse label values), and the modifiers (exact duplicate rows, near-duplicate rows,
unit-norm rows, a large common offset). A NumPy generator seeded by Hypothesis fills the coordinates:
64 x 16 floats drawn one by one would overflow Hypothesis's buffer and shrink no better than a seed.

Clustered classes: class centres at scale s (s follows the margin, so d_an - d_ap lands on both
sides of m), each point at its centre plus noise whose spread is 5% to 200% of s. Tight clusters
give easy triplets, wide ones overlap and give hard and semi-hard ones, and a far positive with
no farther negative makes semi_hard fall back to the anchor's farthest negative.

Each example's regimes (`regimes`) are computed from the oracle's answer and reported with
hypothesis.event(). `REGIMES` says which regimes each spec's strategy is meant to reach and how
often at least; the session fails if one never occurred in enough examples to be sure (see plugin).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace
from typing import Callable, NamedTuple

import numpy as np
from hypothesis import strategies as st

from reference import Spec
from reference.strategies import label_masks, valid_triplets

from .oracle import Answer
from .tolerances import EPS, LARGEST, round_to_dtype

MAX_N = 64
MAX_D = 16
TRIPLET_MININGS = ("batch_all", "batch_hard", "semi_hard", "semi_hard_all", "triplets")


@dataclass(frozen=True, eq=False)
class Batch:
    """One input: float64 embeddings [N, D], int64 labels [N], and (mining="triplets") index triples."""

    embeddings: np.ndarray
    labels: np.ndarray
    triplets: np.ndarray | None = None
    layout: str = "explicit"  # how the strategy built it, for the falsifying-example line

    def __repr__(self) -> str:
        n, d = self.embeddings.shape
        extra = "" if self.triplets is None else f", T={len(self.triplets)}"
        return f"Batch({self.layout!r}, N={n}, D={d}{extra})"

    def rounded(self, dtype: str) -> "Batch":
        """The same batch with embeddings exactly representable in `dtype` (oracle and adapter share it)."""
        return replace(self, embeddings=round_to_dtype(self.embeddings, dtype))

    def digest(self) -> str:
        h = hashlib.sha1(self.embeddings.tobytes())
        h.update(self.labels.tobytes())
        if self.triplets is not None:
            h.update(self.triplets.tobytes())
        return h.hexdigest()[:16]


def finite_limit(dtype: str, d: int) -> float:
    """The largest coordinate for which |x|^2 summed over D stays finite in `dtype`, with room."""
    return math.sqrt(LARGEST[dtype] / (8.0 * (d + 2)))


def offset_limit(dtype: str, d: int, scale: float) -> float:
    """The largest common offset: where the Gram expansion in `dtype` still resolves distances of size
    `scale` to 10% ((D + 2) eps |x|^2 / d ~ 0.1 d; beyond, every example is ambiguous), and |x|^2
    stays finite. About 200 x scale in float32, 2 x scale in float16, under 1 x scale in bfloat16."""
    return min(scale * math.sqrt(0.1 / ((d + 2) * EPS[dtype])), finite_limit(dtype, d) / 2)


def _labels(draw, rng: np.random.Generator, n: int) -> tuple[np.ndarray, str]:
    layout = draw(st.sampled_from(["clustered"] * 8 + ["one class", "all distinct"]), label="labels")
    if layout == "one class":
        classes = np.zeros(n, dtype=np.int64)
    elif layout == "all distinct":
        classes = rng.permutation(n).astype(np.int64)
    else:
        k = int(rng.integers(2, max(2, min(n, 8)) + 1))
        classes = rng.integers(0, k, size=n).astype(np.int64)
    if draw(st.booleans(), label="sparse label values"):  # labels need not be 0..k-1
        values = np.sort(rng.choice(10**6, size=n, replace=False))
        classes = values[classes]
        layout += ", sparse labels"
    return classes, layout


def _triplets(draw, rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    """Explicit (a, p, n) triples: valid ones where the labels have them, and sometimes any indices
    at all (a == p included), as torch's TripletMarginLoss takes whatever it is given."""
    n = len(labels)
    count = int(rng.integers(1, 2 * n + 1))
    valid = valid_triplets(labels)
    if len(valid) and not draw(st.booleans(), label="arbitrary triplets"):
        return valid[rng.integers(0, len(valid), size=count)]
    return rng.integers(0, n, size=(count, 3)).astype(np.int64)


@st.composite
def batches(draw, spec: Spec, dtype: str, duplicates: bool | None = None) -> Batch:
    """Structured batches for `spec` in `dtype` (see the module docstring); `duplicates=True` always
    copies some rows exactly, False never, None lets Hypothesis choose."""
    n = draw(st.one_of(st.integers(2, 4), st.integers(5, 16), st.integers(17, MAX_N)), label="N")
    d = draw(st.integers(1, MAX_D), label="D")
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))
    labels, layout = _labels(draw, rng, n)
    _, codes = np.unique(labels, return_inverse=True)

    scale = (spec.margin or 1.0) * 2.0 ** rng.uniform(-1.0, 1.5)
    centres = rng.normal(size=(codes.max() + 1, d)) * scale
    spreads = scale * 10.0 ** rng.uniform(-1.3, 0.7, size=len(centres))  # wide classes next to tight ones
    x = centres[codes] + rng.normal(size=(n, d)) * spreads[codes][:, None]
    spread = float(spreads.mean())

    def copies(noise: float) -> None:
        """Overwrite up to N/2 rows with another row (plus noise)."""
        order = rng.permutation(n)
        targets = order[: int(rng.integers(1, max(1, n // 2) + 1))]
        sources = rng.choice(order[len(targets):], size=len(targets))  # rows that keep their values
        x[targets] = x[sources] + rng.normal(size=(len(targets), d)) * noise

    if draw(st.integers(0, 4), label="near duplicates") == 0:
        copies(spread * 10.0 ** rng.uniform(-9.0, -2.0))
        layout += ", near duplicates"
    if duplicates is None:
        duplicates = draw(st.integers(0, 4), label="duplicates") == 0
    if duplicates:  # after the near duplicates, which could overwrite them
        copies(0.0)
        layout += ", duplicates"
    geometry = draw(st.sampled_from(["plain"] * 4 + ["unit norm", "large offset"]), label="geometry")
    if geometry == "unit norm":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = np.where(norms > 0, x / np.where(norms > 0, norms, 1.0), x)
        layout += ", unit norm"
    elif geometry == "large offset":
        direction = rng.normal(size=d)
        limit = offset_limit(dtype, d, scale)
        size = 10.0 ** rng.uniform(math.log10(min(10 * scale, limit / 2)), math.log10(limit))
        x = x + direction / np.linalg.norm(direction) * size
        layout += ", large offset"
    x = np.clip(x, -finite_limit(dtype, d), finite_limit(dtype, d))
    triplets = _triplets(draw, rng, labels) if spec.mining == "triplets" else None
    return Batch(x, labels, triplets, layout)


# --- regimes: what an example reached, from the oracle's answer -----------------------------------

@dataclass(frozen=True)
class Regime:
    """A case the strategy is meant to reach, for the cells `applies` accepts, in at least
    `min_frequency` of the examples (tests/conformance/test_conformance_strategies.py measures it)."""

    name: str
    applies: Callable[[Spec, str], bool]  # (spec, dtype)
    holds: Callable[[Batch, Answer], bool]
    min_frequency: float


def _always(spec: Spec, dtype: str) -> bool:
    return True


def _labelled(spec: Spec, dtype: str) -> bool:
    return spec.mining != "triplets"


def _hinged(spec: Spec, dtype: str) -> bool:
    return spec.mining in TRIPLET_MININGS and not spec.soft


def _selects(spec: Spec, dtype: str) -> bool:
    """Minings whose selection can tie: a max/min, semi-hard's strict >, the window's edges."""
    return spec.mining in ("batch_hard", "semi_hard", "semi_hard_all")


def _mining(name: str) -> Callable[[Spec, str], bool]:
    return lambda spec, dtype: spec.mining == name


def _class_sizes(batch: Batch) -> np.ndarray:
    return np.unique(batch.labels, return_counts=True)[1]


def _selection_gaps(answer: Answer) -> list[float]:
    kinds = ("tie_positive", "tie_negative", "semi_hard_selection", "window_lower", "window_upper")
    return [gap for kind, gap in answer.result.gaps.items() if kind in kinds]


def _all_triplet_kinds(batch: Batch, answer: Answer) -> bool:
    """Hard (d_an < d_ap), semi-hard (d_ap < d_an < d_ap + m) and easy (d_an > d_ap + m) triplets."""
    a, p, n = valid_triplets(answer.labels).T
    excess = answer.result.distances[a, n] - answer.result.distances[a, p]
    margin = answer.spec.margin
    return bool((excess < 0).any() and ((excess > 0) & (excess < margin)).any() and (excess > margin).any())


def _positive_pairs_with_farther_negative(answer: Answer) -> np.ndarray:
    """Per positive pair (a, p) of an anchor that has negatives: is some negative farther than p?"""
    positive, negative = label_masks(answer.labels)
    a, p = np.nonzero(positive & negative.any(axis=1)[:, None])
    dist = answer.result.distances
    return (negative[a] & (dist[a] > dist[a, p][:, None])).any(axis=1)


def _negative_pair_margins(answer: Answer) -> np.ndarray:
    i, j = answer.result.selection.T
    different = answer.labels[i] != answer.labels[j]
    return answer.result.distances[i, j][different] - answer.spec.margin


def _offset_ratio(batch: Batch, answer: Answer) -> float:
    centroid = np.linalg.norm(batch.embeddings.mean(axis=0))
    return centroid / max(float(answer.result.distances.max()), 1e-300)


def _has_duplicate_rows(batch: Batch) -> bool:
    return len(np.unique(batch.embeddings, axis=0)) < len(batch.embeddings)


def _repeats_an_index(batch: Batch, answer: Answer) -> bool:
    a, p, n = batch.triplets.T
    return bool(((a == p) | (a == n)).any())


REGIMES: tuple[Regime, ...] = (
    Regime("small batch (N <= 4)", _always, lambda b, a: len(b.labels) <= 4, 0.2),
    Regime("moderate batch (N > 16)", _always, lambda b, a: len(b.labels) > 16, 0.15),
    Regime("one class", _labelled, lambda b, a: len(_class_sizes(b)) == 1, 0.05),
    Regime("no positive pair", _labelled, lambda b, a: _class_sizes(b).max() == 1, 0.05),
    Regime("singleton class", _labelled, lambda b, a: bool((_class_sizes(b) == 1).any() and (_class_sizes(b) > 1).any()), 0.1),
    Regime("exact duplicate points", _always, lambda b, a: _has_duplicate_rows(b), 0.1),
    Regime("exact tie in a selection", _selects, lambda b, a: 0.0 in _selection_gaps(a), 0.05),
    Regime(
        "near tie in a selection",
        _selects,
        lambda b, a: any(0 < gap < 1e-3 * np.median(a.result.distances) for gap in _selection_gaps(a)),
        0.02,
    ),
    Regime("unit-norm embeddings", _always, lambda b, a: bool(np.allclose(np.linalg.norm(b.embeddings, axis=1), 1.0, atol=1e-2)), 0.05),
    # float16 and bfloat16 resolve distances only near the origin: their offsets stay below ~2 x scale
    Regime("large offset", lambda s, dtype: dtype in ("float32", "float64"), lambda b, a: _offset_ratio(b, a) > 3.0, 0.05),
    Regime("hinge active", _hinged, lambda b, a: bool((a.result.values > 0).any()), 0.3),
    Regime(
        "hinge inactive",
        lambda s, dtype: _hinged(s, dtype) and s.mining != "semi_hard_all",  # its window keeps every term active
        lambda b, a: bool((a.result.values == 0).any()),
        0.05,
    ),
    Regime(
        "easy, semi-hard and hard triplets together",
        lambda s, dtype: s.mining in TRIPLET_MININGS and _labelled(s, dtype) and s.margin > 0,
        _all_triplet_kinds,
        0.1,
    ),
    Regime("semi_hard fallback fired", _mining("semi_hard"), lambda b, a: bool((~_positive_pairs_with_farther_negative(a)).any()), 0.5),
    Regime("semi-hard negative found", _mining("semi_hard"), lambda b, a: bool(_positive_pairs_with_farther_negative(a).any()), 0.5),
    Regime("tie in the hardest negative", _mining("batch_hard"), lambda b, a: a.result.gaps.get("tie_negative") == 0.0, 0.05),
    Regime(
        "anchor without a positive",
        lambda s, dtype: s.mining == "batch_hard" and s.anchors == "all",
        lambda b, a: bool((a.result.selection[:, 1] < 0).any()),
        0.2,
    ),
    Regime("window non-empty", _mining("semi_hard_all"), lambda b, a: len(a.result.selection) > 0, 0.2),
    Regime("window empty", _mining("semi_hard_all"), lambda b, a: len(a.result.selection) == 0, 0.1),
    Regime("negative pair inside the margin", _mining("contrastive"), lambda b, a: bool((_negative_pair_margins(a) < 0).any()), 0.2),
    Regime("negative pair beyond the margin", _mining("contrastive"), lambda b, a: bool((_negative_pair_margins(a) > 0).any()), 0.2),
    Regime("index repeated inside a triplet", _mining("triplets"), _repeats_an_index, 0.1),
)


def applicable_regimes(spec: Spec, dtype: str) -> list[Regime]:
    return [regime for regime in REGIMES if regime.applies(spec, dtype)]


def regimes(batch: Batch, answer: Answer, dtype: str) -> list[str]:
    """The names of the regimes this example reached."""
    return [regime.name for regime in applicable_regimes(answer.spec, dtype) if regime.holds(batch, answer)]


# --- regression examples: every bug found becomes one ------------------------------------------

class Regression(NamedTuple):
    applies: Callable[[Spec], bool]  # to which specs
    batch: Batch
    source: str  # where it comes from: the divergence or the bug it pins down
    properties: tuple[str, ...] = ()  # the property checks that run it too (conformance cells run them all)


REGRESSIONS: tuple[Regression, ...] = (
    Regression(
        lambda spec: spec.distance == "cosine",
        Batch(np.array([[1.0], [2.0], [-1.0], [3.0], [-2.0]]), np.array([0, 0, 1, 1, 0]), layout="regression: cosine D=1"),
        "notes/measured.md: cosine with D=1 gives distances of exactly 0 or 2, every selection a tie; TF-Addons "
        "float32 turns some zeros into ~1e-7 and its semi-hard choice moves the loss by up to 0.8: ambiguous, not a divergence",
    ),
    Regression(
        lambda spec: spec.mining == "batch_hard",
        Batch(np.array([[0.0], [1.5], [0.25], [-1.5]]), np.array([0, 0, 0, 1]), layout="regression: positive and negative at the row maximum"),
        "adapters/divergences.py tfa-hard-loss-gradient-split-at-a-tied-row-maximum: the nearest negative is the farthest "
        "point of its row and a positive shares that distance; TF-Addons splits the gradient among the tied entries",
    ),
    Regression(
        lambda spec: spec.mining != "triplets",
        Batch(np.array([[0.0, 1.0], [1.0, 0.5], [3.0, -1.0]]), np.array([7, 7, 7]), layout="regression: one class"),
        "adapters/divergences.py seed001-one-class-batch-raises-in-conformance: min() over an empty set of negatives",
    ),
    Regression(
        lambda spec: spec.mining == "triplets" and spec.distance == "euclidean",
        Batch(np.array([[0.3, 0.1, -0.2], [0.3 + 7e-4, 0.1 - 5e-4, -0.2 + 3e-4], [1.0, 0.5, 0.2]]), np.array([0, 0, 1]),
              layout="regression: near-duplicate anchor and positive"),
        "adapters/divergences.py torch-triplet-margin-eps-in-norm: at d(a, p) = 9e-4 torch's eps = 1e-6 inside the "
        "norm turns the gradient's direction by 2e-3, beyond float64's tolerance (found by Hypothesis at d = 0.014)",
    ),
    Regression(
        lambda spec: spec.mining == "batch_hard",
        Batch(np.random.default_rng(0).normal(size=(40, 8)) * 0.03 + 3.0, np.zeros(40, dtype=np.int64),
              layout="regression: one tight class of 40 rows off the origin"),
        "adapters/divergences.py quaterion-fallback-reads-the-cdist-diagonal: above 25 rows torch.cdist's Gram "
        "expansion leaves d(a, a) > 0, and the masked-minimum fallback reads it",
        properties=("translation",),
    ),
    Regression(
        lambda spec: spec.mining == "triplets",
        Batch(np.array([[0.0625, 0.0, 0.0], [0.0625, 0.0625, 0.0], [0.0625, 0.0, 0.0]]), np.array([0, 0, 0]),
              np.array([[0, 2, 1], [2, 1, 0]]), layout="regression: a duplicate pair as positive and as negative"),
        "adapters/divergences.py torch-triplet-margin-eps-at-duplicates: rows 0 and 2 are one point; their pair is "
        "a positive in one triplet and a negative in the other, so the oracle's gradients cancel, while torch's "
        "eps directions add up (found by Hypothesis)",
    ),
    Regression(
        lambda spec: spec.mining == "batch_hard" and spec.distance == "cosine",
        Batch(np.array([[3.0, 1.0], [3.0, 1.0 + 2e-6]]), np.array([0, 0]),
              layout="regression: one class of two nearly parallel rows"),
        "adapters/divergences.py quaterion-fallback-reads-the-cosine-diagonal: 1 - cos = 1.8e-13 between the rows, "
        "so the scaled loss divides the diagonal's rounding by 1.8e-13 (found by Hypothesis far from the origin)",
    ),
    Regression(
        lambda spec: spec.mining == "batch_hard",
        Batch(np.array([[1.0, 0.0], [0.0, 1.0], [0.96, 0.28], [0.0, -1.0]]), np.array([0, 0, 0, 1]),
              layout="regression: positive and negative at the row maximum, in 2-D"),
        "adapters/divergences.py masked-minimum-ties-at-the-row-maximum: the same tie as the 1-D batch, exact "
        "for every distance (d = sqrt 2, 2 and 1 - cos = 1 from row 0 to rows 1 and 3)",
    ),
    Regression(
        lambda spec: spec.mining == "contrastive" and spec.distance != "cosine" and not spec.normalize,
        Batch((np.arange(20.0) * 5.0)[:, None], np.zeros(20, dtype=np.int64),
              layout="regression: 190 positive pairs whose squares sum past float16's range"),
        "adapters/divergences.py tfa-contrastive-float16-sum-overflows: the mean is 1750, the sum 332500; an "
        "implementation that sums in float16 returns inf",
    ),
    Regression(
        lambda spec: spec.mining == "batch_hard",
        Batch(np.array([[0.75, -2.125, -0.625], [-0.5625, 0.5, 2.25], [-0.5625, 0.5, 2.25]]), np.array([1, 1, 0]),
              layout="regression: a positive and a negative copy of one point"),
        "adapters/divergences.py tfa-hard-loss-gradient-split-at-a-tied-row-maximum: row 0's only positive and only "
        "negative are one point, at its row maximum; found by Hypothesis in float16 under cosine (the euclidean "
        "cells see a zero distance there and compare the loss only)",
    ),
)


def regression_examples(spec: Spec, prop: str | None = None) -> list[Batch]:
    """The regression batches for `spec`: all of them for a conformance cell, those meant for it for the
    property check `prop`."""
    found = []
    for regression in REGRESSIONS:
        if regression.applies(spec) and (prop is None or prop in regression.properties):
            triplets = None
            if spec.mining == "triplets":  # the batch's own triples, else the first valid ones of its labels
                given = regression.batch.triplets
                triplets = valid_triplets(regression.batch.labels)[:4] if given is None else given
            found.append(replace(regression.batch, triplets=triplets))
    return found

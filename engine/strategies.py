"""Hypothesis strategies for batches that reach the interesting cases.

A batch is built in two layers. Hypothesis draws its structure: the size N (small 2-4, up to 16, or
moderate up to 64), the dimension D (1-16), the label layout (clustered classes, one class, all labels
distinct, sometimes sparse label values), and the modifiers (exact duplicate rows, near-duplicate rows,
unit-norm rows, a large common offset). A NumPy generator seeded by Hypothesis fills the coordinates:
64 x 16 floats drawn one by one would overflow Hypothesis's buffer and shrink no better than a seed.

Clustered classes: class centres at scale s (s follows the margin, so d_an - d_ap lands on both
sides of m), each point at its centre plus noise whose spread is 5% to 200% of s. Tight clusters
give easy triplets, wide ones overlap and give hard and semi-hard ones, and a far positive with
no farther negative makes semi_hard fall back to the anchor's farthest negative.

What each example reached is engine/regimes.py's business; the regression batches every cell runs
first are engine/regressions.py's.
"""
from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from reference import Spec, valid_triplets

from .batch import Batch
from .dtypes import dtype as dtype_facts
from .precision import DEFAULT

MAX_N = 64
MAX_D = 16
TRIPLET_MININGS = ("batch_all", "batch_hard", "semi_hard", "semi_hard_all", "triplets")


def finite_limit(dtype: str, d: int) -> float:
    """The largest coordinate for which |x|^2 summed over D stays finite in `dtype`, with room."""
    return math.sqrt(dtype_facts(dtype).largest / (8.0 * (d + 2)))


def offset_limit(dtype: str, d: int, scale: float, precision: str = DEFAULT) -> float:
    """The largest common offset, also the widest spread of class centres, with |x|^2 finite.

    direct: where rounding the batch to `dtype` still keeps points `scale` apart distinct to 1%
    (eps x offset = 0.01 x scale): about 8e4 x scale in float32, 10 x scale in float16, 1.3 x scale in bfloat16.
    gram: where the Gram expansion still resolves distances of size `scale` to 10% ((D + 2) eps |x|^2 / d ~ 0.1 d;
    beyond, every example of such an adapter is ambiguous): about 200 x scale in float32, 2 x in float16."""
    eps = dtype_facts(dtype).eps
    resolved = scale * (0.01 / eps if precision == "direct" else math.sqrt(0.1 / ((d + 2) * eps)))
    return min(resolved, finite_limit(dtype, d) / 2)


def lattice_radius(dtype: str, d: int) -> int:
    """The largest integer coordinate of a lattice batch that every implementation computes exactly in `dtype`
    (engine/exactness.py: every squared distance below 2^(mantissa bits - 1)), at most 4 so that ties abound."""
    return max(1, min(4, math.isqrt((dtype_facts(dtype).exact_integers - 1) // (16 * d))))


def lattice_step(spec: Spec) -> float:
    """The power of two the lattice counts in: the margin itself where it is a power of two (the squared
    distance unit s^2 for squared_euclidean), so that d_an - d_ap can equal m exactly."""
    margin = spec.margin or 1.0
    exponent = math.floor(math.log2(margin))
    return 2.0 ** (exponent // 2 if spec.distance == "squared_euclidean" else exponent)




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


GEOMETRIES = ["plain"] * 4 + ["unit norm", "large offset", "wide spread", "wide scale", "lattice"]


@st.composite
def batches(draw, spec: Spec, dtype: str, precision: str = DEFAULT, duplicates: bool | None = None,
            processes: int = 1, equal_shards: bool = False) -> Batch:
    """Structured batches for `spec` in `dtype`, for an adapter of the declared `precision` (see the module
    docstring); `duplicates=True` always copies some rows exactly, False never, None lets Hypothesis choose.
    processes > 1 (a distributed target): at least one row per rank, and a shard layout drawn last (`_shards`), so
    that the draws of a single-process cell are exactly what they were."""
    n = draw(st.one_of(st.integers(max(2, processes), 4), st.integers(5, 16), st.integers(17, MAX_N)), label="N")
    if equal_shards:  # as many rows on every rank: a multiple of the world size
        n -= n % processes
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
    geometry = draw(st.sampled_from(GEOMETRIES), label="geometry")
    limit = offset_limit(dtype, d, scale, precision)
    if geometry == "unit norm":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = np.where(norms > 0, x / np.where(norms > 0, norms, 1.0), x)
        layout += ", unit norm"
    elif geometry == "large offset":
        direction = rng.normal(size=d)
        size = 10.0 ** rng.uniform(math.log10(min(10 * scale, limit / 2)), math.log10(limit))
        x = x + direction / np.linalg.norm(direction) * size
        layout += ", large offset"
    elif geometry == "wide spread":  # classes far apart, near-duplicates inside them: norms far above distances
        x = x + centres[codes] * (10.0 ** rng.uniform(1.0, max(1.0, math.log10(limit / scale))) - 1.0)
        copies(spread * 10.0 ** rng.uniform(-7.0, -3.0))
        layout += ", wide spread with near duplicates"
    elif geometry == "wide scale":  # magnitudes up to what the dtype holds: softplus and sums must not overflow
        reach = max(float(np.max(np.abs(x))), 1e-300)
        x = x * 10.0 ** rng.uniform(0.0, max(0.0, math.log10(finite_limit(dtype, d) / 2 / reach)))
        layout += ", wide scale"
    elif geometry == "lattice":
        x, lattice_layout = _lattice(rng, codes, d, spec, dtype)
        layout = layout.replace("clustered", lattice_layout)
    x = np.clip(x, -finite_limit(dtype, d), finite_limit(dtype, d))
    triplets = _triplets(draw, rng, labels) if spec.mining == "triplets" else None
    shards = None
    if processes > 1:
        shards, shard_layout = _shards(draw, rng, n, processes, equal_shards)
        layout += f", {shard_layout} shards {shards}"
    return Batch(x, labels, triplets, layout, shards)


SHARD_LAYOUTS = ["even"] * 2 + ["uneven", "one row"]


def _shards(draw, rng: np.random.Generator, n: int, processes: int, equal: bool) -> tuple[tuple[int, ...], str]:
    """The rows each rank holds: the even split; uneven (random cut points, every rank a row at least); or one rank
    with a single row (its shard has no pair at all) and the rest split evenly. Equal shards only when asked."""
    from .distributed import even_shards

    layout = "even" if equal else draw(st.sampled_from(SHARD_LAYOUTS), label="shard layout")
    if layout == "uneven" and n > processes:
        cuts = np.sort(rng.choice(np.arange(1, n), size=processes - 1, replace=False))
        return tuple(int(s) for s in np.diff([0, *cuts, n])), layout
    if layout == "one row" and n > processes:
        lonely = int(rng.integers(0, processes))
        rest = list(even_shards(n - 1, processes - 1))
        return tuple(rest[:lonely] + [1] + rest[lonely:]), layout
    return even_shards(n, processes), "even"


def _lattice(rng: np.random.Generator, codes: np.ndarray, d: int, spec: Spec, dtype: str) -> tuple[np.ndarray, str]:
    """Small integers times `lattice_step`: class centres on the integer grid with members one step around
    them, or every point on one axis (all distances then integers, so d_an - d_ap meets the margin exactly)."""
    radius = lattice_radius(dtype, d)
    if rng.integers(0, 2):
        x = np.zeros((len(codes), d))
        x[:, int(rng.integers(0, d))] = rng.integers(-radius, radius + 1, size=len(codes))
        layout = "lattice on one axis"
    else:
        centres = rng.integers(-radius, radius + 1, size=(codes.max() + 1, d))
        x = np.clip(centres[codes] + rng.integers(-1, 2, size=(len(codes), d)), -radius, radius).astype(float)
        layout = "lattice"
    return x * lattice_step(spec), layout

"""Hypothesis strategies for batches that reach the interesting cases, and the same batches at their extremes.

A batch is built in two layers. Hypothesis draws its structure (a `Plan`): the size N (small 2-4, up to 16, or
moderate up to 64), the dimension D (1-16), the label layout (clustered classes, one class, all labels distinct,
sometimes sparse label values), the modifiers (exact duplicate rows, near-duplicate rows) and the geometry (plain,
unit-norm rows, a large common offset, a wide spread, a wide scale, an integer lattice, small rows). A NumPy
generator seeded by Hypothesis fills the coordinates (`build`): 64 x 16 floats drawn one by one would overflow
Hypothesis's buffer and shrink no better than a seed.

Clustered classes: class centres at scale s (s follows the margin, so d_an - d_ap lands on both
sides of m), each point at its centre plus noise whose spread is 5% to 200% of s. Tight clusters
give easy triplets, wide ones overlap and give hard and semi-hard ones, and a far positive with
no farther negative makes semi_hard fall back to the anchor's farthest negative.

Each geometry reaches out to a limit (how far from the origin, how wide, how large, how small): a draw lands
anywhere up to it, and `extremes` builds each geometry *at* its limit, by the same code (`Plan.extreme`), as fixed
examples every cell runs beside its regression batches, in every Hypothesis profile: ci's fixed sample of draws
need not reach N = 64 at the largest offset, where an implementation that switches to one matmul above some batch
size first loses its distances, nor float16 rows past |x| = 256, nor rows of norm 1e-4.

What each example reached is engine/regimes.py's business; the regression batches every cell runs
first are engine/regressions.py's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from hypothesis import strategies as st

from contract.batch import Batch
from contract.dtypes import dtype as dtype_facts
from contract.dtypes import most_precise
from contract.precision import DEFAULT
from contract.targets import processes as processes_of
from reference import LOSSES, Spec, minings_of, valid_triplets
from reference.validation import MAX_CLASSES

from .ambiguity import zero_norm_resolution
from .distributed import even_shards
from .regressions import regression_examples

MAX_N = 64
MAX_D = 16
TRIPLET_MININGS = minings_of("triplet")
# A common offset beyond a batch's spread keeps the dtype's spacing there within 1/OFFSET_GRID of the spread's reach
OFFSET_GRID = 32
SMALL_ROWS = 1e-4  # the smallest row norm the small-rows geometry reaches where the dtype resolves it
SMALL_ROW_ROOM = 4.0  # ... and at least this many times the norm engine/ambiguity.py tells from zero


def finite_limit(dtype: str, d: int, power: int = 2) -> float:
    """The largest coordinate for which |x|^power summed over D stays finite in `dtype`, with room: the spread every
    batch keeps, so that |x - y|^2 (what the spec squares) is finite for every pair, and a term that grows like
    |x - y|^power (contrastive's or lifted's square of a squared distance: power 4) with its gradient."""
    room = dtype_facts(dtype).largest / 2.0 ** (power + 1)
    return math.sqrt(room ** (2.0 / power) / (d + 2))


def coordinate_power(spec: Spec) -> int:
    """The power of |x - y| a term of the spec's loss grows like: its record's growth in the distance, the distance
    itself |x - y| or |x - y|^2; at least 2, what measuring a distance squares."""
    return max(2, LOSSES[spec.mining].growth * (2 if spec.distance == "squared_euclidean" else 1))


def magnitude_limit(dtype: str, d: int) -> float:
    """The largest coordinate a batch reaches: what `dtype` holds (with room for x - y and for sums over the rows),
    while |x|^2 stays finite in float32 or `dtype`, whichever is wider.

    The spec needs |x - y|^2 and the loss finite, not |x|^2: float16 rows sit far beyond their finite_limit (|x|^2
    overflows float16 at |x| = 256, where every distance may be small), and a norm or a Gram expansion computed in
    float16 is then an overflow, not a rounding. Computed in float32 it is finite up to 1.8e19, beyond any
    embedding; float32 and bfloat16 (float32's range) keep their finite_limit, float64 its own."""
    wider = most_precise((dtype, "float32"))
    return min(dtype_facts(dtype).largest / 16.0, finite_limit(wider, d))


def offset_limit(dtype: str, d: int, scale: float, precision: str = DEFAULT) -> float:
    """The largest common offset, also the widest spread of class centres, within magnitude_limit.

    direct: where rounding the batch to `dtype` still keeps points `scale` apart distinct to 1%
    (eps x offset = 0.01 x scale): about 8e4 x scale in float32, 10 x scale in float16, 1.3 x scale in bfloat16.
    gram: where the Gram expansion still resolves distances of size `scale` to 10% ((D + 2) eps |x|^2 / d ~ 0.1 d;
    beyond, every example of such an adapter is ambiguous): about 200 x scale in float32, 2 x in float16."""
    eps = dtype_facts(dtype).eps
    resolved = scale * (0.01 / eps if precision == "direct" else math.sqrt(0.1 / ((d + 2) * eps)))
    return min(resolved, magnitude_limit(dtype, d) / 2)


def lattice_width(dtype: str, d: int) -> int:
    """How many coordinates of a lattice batch may be non-zero in `dtype`: at radius 1, 16 x the width below the
    exactly represented integers (engine/exactness.py), so all of them but in bfloat16 (15, where D may be 16 or
    more: a row of sixteen +-1 would leave the lattice's exactness)."""
    return min(d, (dtype_facts(dtype).exact_integers - 1) // 16)


def lattice_radius(dtype: str, d: int) -> int:
    """The largest integer coordinate of a lattice batch that every implementation computes exactly in `dtype`
    (engine/exactness.py: every squared distance below 2^(mantissa bits - 1)), at most 4 so that ties abound."""
    return max(1, min(4, math.isqrt((dtype_facts(dtype).exact_integers - 1) // (16 * lattice_width(dtype, d)))))


def lattice_step(spec: Spec) -> float:
    """The power of two the lattice counts in: the margin itself where it is a power of two (the squared
    distance unit s^2 for squared_euclidean), so that d_an - d_ap can equal m exactly."""
    margin = spec.margin or 1.0
    exponent = math.floor(math.log2(margin))
    return 2.0 ** (exponent // 2 if spec.distance == "squared_euclidean" else exponent)


def small_row_floor(dtype: str) -> float:
    """The smallest row norm of the small-rows geometry: SMALL_ROWS where `dtype` tells such a row from zero with
    room (float32, bfloat16, float64: 100 x NORMALIZE_CLAMP), else SMALL_ROW_ROOM x the norm it tells from zero
    (float16: |x|^2 of a row of 1e-4 underflows; 0.0625, where |x|^2 is 64 x its smallest normal number)."""
    return max(SMALL_ROWS, SMALL_ROW_ROOM * zero_norm_resolution(dtype))


# --- the plan Hypothesis draws, and the batch it makes ---------------------------------------------------------

LABEL_LAYOUTS = ["clustered"] * 8 + ["one class", "all distinct"]
GEOMETRIES = ["plain"] * 4 + ["unit norm", "large offset", "wide spread", "wide scale", "lattice", "small rows"]
SHARD_LAYOUTS = ["even"] * 2 + ["uneven", "one row"]


@dataclass(frozen=True)
class Plan:
    """The structure of one batch; `build` fills in the coordinates from a seeded generator. extreme=True takes
    every limit a geometry reaches to at its end (the largest offset, widest spread and nearest duplicates, the
    largest magnitude, lattice ties on one axis, rows at the smallest norm) instead of drawing up to it."""

    n: int
    d: int
    labels: str = "clustered"  # one of LABEL_LAYOUTS
    sparse_labels: bool = False  # label values spread over 0..10^6, not 0..k-1
    near_duplicates: bool = False
    duplicates: bool = False
    geometry: str = "plain"  # one of GEOMETRIES
    arbitrary_triplets: bool = False  # mining="triplets": any index triples, not valid ones
    shard_layout: str = "even"  # one of SHARD_LAYOUTS (a distributed target)
    extreme: bool = False


@st.composite
def batches(draw, spec: Spec, dtype: str, precision: str = DEFAULT, duplicates: bool | None = None,
            processes: int = 1, equal_shards: bool = False) -> Batch:
    """Structured batches for `spec` in `dtype`, for an adapter of the declared `precision` (see the module
    docstring); `duplicates=True` always copies some rows exactly, False never, None lets Hypothesis choose.
    processes > 1 (a distributed target): at least one row per rank, and a shard layout (`_shards`)."""
    n = draw(st.one_of(st.integers(max(2, processes), 4), st.integers(5, 16), st.integers(17, MAX_N)), label="N")
    if equal_shards:  # as many rows on every rank: a multiple of the world size
        n -= n % processes
    plan = Plan(
        n=n,
        d=draw(st.integers(1, MAX_D), label="D"),
        labels=draw(st.sampled_from(LABEL_LAYOUTS), label="labels"),
        sparse_labels=draw(st.booleans(), label="sparse label values"),
        near_duplicates=draw(st.integers(0, 4), label="near duplicates") == 0,
        duplicates=draw(st.integers(0, 4), label="duplicates") == 0 if duplicates is None else duplicates,
        geometry=draw(st.sampled_from(GEOMETRIES), label="geometry"),
        arbitrary_triplets=spec.mining == "triplets" and draw(st.booleans(), label="arbitrary triplets"),
        shard_layout="even" if processes == 1 or equal_shards else draw(st.sampled_from(SHARD_LAYOUTS),
                                                                        label="shard layout"),
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))
    return build(spec, dtype, plan, rng, precision, processes)


def build(spec: Spec, dtype: str, plan: Plan, rng: np.random.Generator, precision: str = DEFAULT,
          processes: int = 1) -> Batch:
    """The batch `plan` describes, its coordinates drawn from `rng`: what `batches` draws, and (Plan.extreme) what
    `extremes` fixes."""
    loss = LOSSES[spec.mining]
    pairs = loss.layout == "pairs"
    n, d = (max(2, plan.n - plan.n % 2) if pairs else plan.n), plan.d
    labels, layout = _labels(rng, n // 2 if pairs else n, plan.labels, plan.sparse_labels)
    if loss.labels == "class sets":
        labels, layout = _class_sets(rng, labels), layout + ", class sets"
    if pairs:  # row B + i is the positive of anchor i: the same label, so the same cluster
        labels, layout = np.tile(labels, 2), layout + ", as pairs"
    _, codes = np.unique(labels, return_inverse=True)

    scale = (spec.margin or 1.0) * 2.0 ** rng.uniform(-1.0, 1.5)
    centres = rng.normal(size=(codes.max() + 1, d)) * scale
    spreads = scale * _ten_to(rng.uniform(-1.3, 0.7, size=len(centres)))  # wide classes next to tight ones
    x = centres[codes] + rng.normal(size=(n, d)) * spreads[codes][:, None]
    spread = float(spreads.mean())

    def copies(noise: float) -> None:
        """Overwrite up to N/2 rows with another row (plus noise)."""
        order = rng.permutation(n)
        targets = order[: int(rng.integers(1, max(1, n // 2) + 1))]
        sources = rng.choice(order[len(targets):], size=len(targets))  # rows that keep their values
        x[targets] = x[sources] + rng.normal(size=(len(targets), d)) * noise

    def reach(low: float, high: float, size=None):
        """An exponent drawn between `low` and `high` (`size` of them); `high`, the limit, at the extreme."""
        if plan.extreme:
            return high if size is None else np.full(size, high)
        return rng.uniform(low, high, size)

    if plan.near_duplicates:
        copies(spread * _ten_to(rng.uniform(-9.0, -2.0)))
        layout += ", near duplicates"
    if plan.duplicates:  # after the near duplicates, which could overwrite them
        copies(0.0)
        layout += ", duplicates"
    # the spread every |x_i - x_j|^2 the spec squares keeps finite; cosine and normalize square unit rows only
    bound = (magnitude_limit(dtype, d) if spec.distance == "cosine" or spec.normalize
             else finite_limit(dtype, d, coordinate_power(spec)))
    limit = offset_limit(dtype, d, scale, precision)
    offset = np.zeros(d)  # a common shift, added after the spread is bounded
    geometry = plan.geometry
    if geometry == "unit norm":
        norms = _row_norms(x)
        x = np.where(norms > 0, x / np.where(norms > 0, norms, 1.0), x)
    elif geometry == "large offset":
        offset = _direction(rng, d) * _ten_to(reach(math.log10(min(10 * scale, limit / 2)), math.log10(limit)))
    elif geometry == "wide spread":  # classes far apart, near-duplicates inside them: norms far above distances
        x = x + centres[codes] * (_ten_to(reach(1.0, max(1.0, math.log10(limit / scale)))) - 1.0)
        copies(spread * _ten_to(-reach(3.0, 7.0)))
        geometry = "wide spread with near duplicates"
    elif geometry == "wide scale":  # magnitudes up to what the dtype holds: softplus, sums and norms must not overflow
        x, offset = _wide_scale(x, rng, dtype, d, bound, reach)
    elif geometry == "lattice":
        x, lattice_layout = _lattice(rng, codes, d, spec, dtype, on_axis=True if plan.extreme else None)
        layout = layout.replace("clustered", lattice_layout)
    elif geometry == "small rows":  # norms down to what the dtype tells from zero: normalisations must not clamp
        floor = small_row_floor(dtype)
        norms = _row_norms(x)
        wanted = _ten_to(-reach(0.0, -math.log10(floor), size=(n, 1)))  # from 1 down to the floor
        x = np.where(norms > 0, x * wanted / np.where(norms > 0, norms, 1.0), x)
    if geometry not in ("plain", "lattice"):
        layout += f", {geometry}"
    x = np.clip(np.clip(x, -bound, bound) + offset, -magnitude_limit(dtype, d), magnitude_limit(dtype, d))
    triplets = _triplets(rng, labels, plan.arbitrary_triplets) if spec.mining == "triplets" else None
    shards = None
    if processes > 1:
        shards, shard_layout = _shards(rng, n, processes, plan.shard_layout)
        layout += f", {shard_layout} shards {shards}"
    return Batch(x, labels, triplets, layout + (", at its extreme" if plan.extreme else ""), shards)


def _labels(rng: np.random.Generator, n: int, layout: str, sparse: bool) -> tuple[np.ndarray, str]:
    if layout == "one class":
        classes = np.zeros(n, dtype=np.int64)
    elif layout == "all distinct":
        classes = rng.permutation(n).astype(np.int64)
    else:
        k = int(rng.integers(2, max(2, min(n, 8)) + 1))
        classes = rng.integers(0, k, size=n).astype(np.int64)
    if sparse:  # labels need not be 0..k-1
        values = np.sort(rng.choice(10**6, size=max(n, int(classes.max()) + 1), replace=False))  # one pair: 2 classes
        classes = values[classes]
        layout += ", sparse labels"
    return classes, layout


def _class_sets(rng: np.random.Generator, classes: np.ndarray) -> np.ndarray:
    """Each row's class as the set {its class}, and a third of them one more class of the batch: rows that share
    some classes and not others (the multilabel case)."""
    _, codes = np.unique(classes, return_inverse=True)
    codes = codes.reshape(-1) % MAX_CLASSES
    more = np.where(rng.random(len(codes)) < 1 / 3, rng.choice(codes, size=len(codes)), codes)
    return (np.left_shift(1, codes) | np.left_shift(1, more)).astype(np.int64)


def _triplets(rng: np.random.Generator, labels: np.ndarray, arbitrary: bool) -> np.ndarray:
    """Explicit (a, p, n) triples: valid ones where the labels have them, and sometimes any indices
    at all (a == p included), as torch's TripletMarginLoss takes whatever it is given."""
    n = len(labels)
    count = int(rng.integers(1, 2 * n + 1))
    valid = valid_triplets(labels)
    if len(valid) and not arbitrary:
        return valid[rng.integers(0, len(valid), size=count)]
    return rng.integers(0, n, size=(count, 3)).astype(np.int64)


def _direction(rng: np.random.Generator, d: int) -> np.ndarray:
    direction = rng.normal(size=d)
    return direction / _row_norms(direction[None, :])[0, 0]


# A batch is the same on every machine: NumPy's power, and its BLAS's dot products, take other roundings on other CPUs
# (an AVX-512 power, a kernel's order of summation), so the coordinates go through the C library's pow and exact sums.
def _ten_to(exponent):
    """10^exponent, elementwise (a number or an array), by the C library's pow."""
    if np.ndim(exponent) == 0:
        return math.pow(10.0, float(exponent))
    return np.array([math.pow(10.0, float(e)) for e in np.ravel(exponent)]).reshape(np.shape(exponent))


def _row_norms(x: np.ndarray) -> np.ndarray:
    """|x_i| of each row, [N, 1]: the square root of an exactly rounded sum of squares."""
    return np.array([[math.sqrt(math.fsum(row * row))] for row in x]).reshape(len(x), 1)


def _wide_scale(x: np.ndarray, rng: np.random.Generator, dtype: str, d: int, bound: float,
                reach) -> tuple[np.ndarray, np.ndarray]:
    """x scaled so that its largest coordinate reaches up to magnitude_limit / 2, and a common offset.

    The scaling stops at `bound` / 2: finite_limit / 2 where the spec squares x - y (|x - y|^2 would overflow
    beyond), the magnitude limit where it squares unit rows only (cosine, normalize). What is left of the magnitude
    (float16 only: its magnitude_limit lies beyond its finite_limit) becomes a common offset, at most OFFSET_GRID x
    the batch's reach over eps, so the dtype's spacing there stays within 1/OFFSET_GRID of the rows' spread. float16
    rows then sit at norms of 300 to 800 (cosine: up to 8000, in every direction), where |x|^2 overflows float16
    and every distance the spec computes stays finite."""
    largest = max(float(np.max(np.abs(x))), 1e-300)
    top = magnitude_limit(dtype, d) / 2
    magnitude = largest * _ten_to(reach(0.0, max(0.0, math.log10(top / largest))))
    body = min(magnitude, bound / 2)
    size = min(magnitude - body, body / (OFFSET_GRID * dtype_facts(dtype).eps))
    return x * (body / largest), _direction(rng, d) * size


def _shards(rng: np.random.Generator, n: int, processes: int, layout: str) -> tuple[tuple[int, ...], str]:
    """The rows each rank holds: the even split; uneven (random cut points, every rank a row at least); or one rank
    with a single row (its shard has no pair at all) and the rest split evenly."""
    from .distributed import even_shards

    if layout == "uneven" and n > processes:
        cuts = np.sort(rng.choice(np.arange(1, n), size=processes - 1, replace=False))
        return tuple(int(s) for s in np.diff([0, *cuts, n])), layout
    if layout == "one row" and n > processes:
        lonely = int(rng.integers(0, processes))
        rest = list(even_shards(n - 1, processes - 1))
        return tuple(rest[:lonely] + [1] + rest[lonely:]), layout
    return even_shards(n, processes), "even"


def _lattice(rng: np.random.Generator, codes: np.ndarray, d: int, spec: Spec, dtype: str,
             on_axis: bool | None = None) -> tuple[np.ndarray, str]:
    """Small integers times `lattice_step`: class centres on the integer grid with members one step around
    them, or every point on one axis (all distances then integers, so d_an - d_ap meets the margin exactly;
    on_axis=None lets `rng` choose)."""
    radius, width = lattice_radius(dtype, d), lattice_width(dtype, d)
    x = np.zeros((len(codes), d))
    if on_axis if on_axis is not None else rng.integers(0, 2):
        x[:, int(rng.integers(0, d))] = rng.integers(-radius, radius + 1, size=len(codes))
        layout = "lattice on one axis"
    else:
        centres = rng.integers(-radius, radius + 1, size=(codes.max() + 1, width))
        x[:, :width] = np.clip(centres[codes] + rng.integers(-1, 2, size=(len(codes), width)), -radius, radius)
        layout = "lattice"
    return x * lattice_step(spec), layout


# --- each geometry at its extreme: fixed examples for every cell ------------------------------------------------

# (geometry, labels, N) of each extreme, built at D = MAX_D. The largest offset at the largest N (a matmul past
# some batch size); the other geometries at N = 16, where every label layout has pairs to decide at a drawn
# example's cost; one class (no negative) and all labels distinct (no positive) on the unit-norm and plain geometries.
EXTREMES = (
    ("large offset", "clustered", MAX_N),
    ("wide spread", "clustered", 16),
    ("wide scale", "clustered", 16),
    ("lattice", "clustered", 16),
    ("small rows", "clustered", 16),
    ("unit norm", "one class", 16),
    ("plain", "all distinct", 16),
)


def extremes(spec: Spec, dtype: str, precision: str = DEFAULT, duplicates: bool | None = None,
             processes: int = 1, equal_shards: bool = False) -> list[Batch]:
    """Every geometry of `batches(spec, dtype, precision, duplicates, processes, equal_shards)` at its extreme
    (EXTREMES), as that strategy would draw it: exact duplicates only where it always copies rows
    (duplicates=True); on a distributed target a row per rank at least, the even split, N a multiple of the world
    size where the adapter needs equal shards. Each from its own fixed seed: the same batches on every run."""
    found = []
    for seed, (geometry, labels, n) in enumerate(EXTREMES):
        n = max(n, processes)
        if equal_shards:
            n -= n % processes
        plan = Plan(n=n, d=MAX_D, labels=labels, duplicates=bool(duplicates), geometry=geometry, extreme=True)
        found.append(build(spec, dtype, plan, np.random.default_rng(seed), precision, processes))
    return found


def with_extremes(regressions: list[Batch], spec: Spec, dtype: str, precision: str = DEFAULT, **options) -> list[Batch]:
    """A cell's fixed examples: its regression batches, then `extremes` (options: those of `batches`)."""
    return list(regressions) + extremes(spec, dtype, precision, **options)


# --- a cell's batches ------------------------------------------------------------------------------------

def shard_options(adapter, device: str) -> dict:
    """The keyword arguments `batches` takes for a cell on `device`: none on a single-process target
    (its batches are drawn exactly as before), else the world size and whether the adapter needs equal shards
    (Adapter.extra["equal_shards"], e.g. pytorch-metric-learning, whose all_gather assumes them)."""
    world_size = processes_of(device)
    if world_size == 1:
        return {}
    return {"processes": world_size, "equal_shards": bool(adapter.extra.get("equal_shards"))}


def with_shards(batches, processes: int = 1, equal_shards: bool = False) -> list:
    """Fixed batches (the regression batches) for a distributed cell: each with the even split, dropping those the
    world size cannot split (fewer rows than ranks; a row count the ranks cannot share equally, where required)."""
    if processes == 1:
        return list(batches)
    return [replace(batch, shards=even_shards(len(batch.labels), processes)) for batch in batches
            if len(batch.labels) >= processes and (not equal_shards or len(batch.labels) % processes == 0)]


def for_cell(cell) -> tuple:
    """A conformance cell's draws and its fixed examples (its regression batches, then each geometry at its extreme),
    sharded as its target needs: no shards on a single-process target, else W ranks' shards."""
    sharding = shard_options(cell.adapter, cell.target)
    fixed = with_extremes(regression_examples(cell.spec, dtype=cell.dtype), cell.spec, cell.dtype, cell.precision,
                          **sharding)
    return batches(cell.spec, cell.dtype, cell.precision, **sharding), with_shards(fixed, **sharding)

"""What the batch strategy reaches (engine/draws.py), and that every cell runs it in every profile.

Every conformance cell and every property whose strategy is `batches` runs each geometry at its extreme (`extremes`)
beside its regression batches, as explicit Hypothesis examples: the largest N at the largest offset, the widest
spread with near duplicates, the largest magnitude, lattice ties, one class, all labels distinct, and rows at the
smallest norm the dtype tells from zero. float16 batches reach row norms where |x|^2 overflows float16 while every
|x - y|^2 stays finite, and a Gram expansion computed in float16 fails there, declared precision or not."""
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, find, given, settings, strategies as st

import adapters
from engine.cells import conformance_cells, property_cells
from engine.distributed import check_shards
from engine.draws import shard_options
from contract.dtypes import NAMES, dtype as dtype_facts
from engine.exactness import exact_kinds
from reference import evaluate
from engine.draws import (
    EXTREMES, MAX_D, MAX_N, batches, extremes, finite_limit, magnitude_limit, small_row_floor,
)
from reference import Spec
from suite import test_conformance, test_properties

SEARCH = settings(max_examples=600, derandomize=True, database=None, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# What marks each geometry in a batch's layout (the plain geometry has none: all labels distinct is its extreme)
GEOMETRY_LAYOUTS = ("large offset", "wide spread with near duplicates", "wide scale", "lattice on one axis",
                    "small rows", "unit norm", "all distinct")


def fixed_examples(module, cell, monkeypatch) -> list:
    """The explicit examples the suite's item for `cell` hands to for_each_batch (its regression batches and more)."""
    given_to = []
    monkeypatch.setattr(module, "for_each_batch", lambda cell, check, strategy, fixed, *rest: given_to.extend(fixed))
    run = SimpleNamespace(examine=None, reproducer_for=None, skip_unless_runnable=lambda: None)
    session = SimpleNamespace(start=lambda cell, nodeid: run)
    test = test_conformance.test_conformance if module is test_conformance else test_properties.test_property
    test(cell, session, SimpleNamespace(node=SimpleNamespace(nodeid=str(cell))))
    return given_to


def assert_every_extreme(batches_given, processes: int = 1, equal_shards: bool = False) -> None:
    at_extremes = [batch for batch in batches_given if batch.layout.endswith("at its extreme")]
    assert len(at_extremes) == len(EXTREMES)
    for marker in GEOMETRY_LAYOUTS:
        assert any(marker in batch.layout for batch in at_extremes), marker
    assert "one class" in " ".join(batch.layout for batch in at_extremes)
    largest = max(at_extremes, key=lambda batch: len(batch.labels))
    assert "large offset" in largest.layout and len(largest.labels) == MAX_N - (MAX_N % processes if equal_shards else 0)
    for batch in at_extremes:
        if processes > 1:  # a row per rank at least, as many on each where the adapter needs it
            shards = check_shards(batch.shards, len(batch.labels), processes)
            assert not equal_shards or len(set(shards)) == 1
        else:
            assert batch.shards is None


def distinct_cells(cells):
    """One cell per (spec, dtype, precision, target, equal shards): what the fixed examples depend on."""
    seen = {}
    for cell in cells:
        options = shard_options(cell.adapter, cell.target)
        seen.setdefault((str(cell.spec), cell.dtype, cell.precision, cell.target, str(options)), cell)
    return list(seen.values())


def test_every_conformance_cell_runs_each_geometry_at_its_extreme(monkeypatch):
    cells = distinct_cells(cell for cell in conformance_cells(adapters.catalog()) if cell.check == "loss")
    assert {cell.target for cell in cells} >= {"cpu", "dist-gloo-2", "dist-gloo-3"}
    for cell in cells:
        options = shard_options(cell.adapter, cell.target)
        assert_every_extreme(fixed_examples(test_conformance, cell, monkeypatch), **options)


def test_every_property_on_the_batch_strategy_runs_each_geometry_at_its_extreme(monkeypatch):
    cells = property_cells(adapters.catalog(), test_properties.PROPERTIES)
    for cell in distinct_cells(cells) + [c for c in cells if c.check == "property:duplicates_finite"][:3]:
        given_to = fixed_examples(test_properties, cell, monkeypatch)
        if cell.check == "property:margins_hold":  # its own strategy (separated classes) has no such geometries
            assert not any(batch.layout.endswith("at its extreme") for batch in given_to)
            continue
        assert_every_extreme(given_to)
        if cell.check == "property:duplicates_finite":  # its strategy always copies rows: so do its extremes
            assert all("duplicates" in b.layout for b in given_to if b.layout.endswith("at its extreme"))


@pytest.mark.parametrize("dtype", NAMES)
def test_each_extreme_sits_at_its_limit_and_is_the_same_on_every_run(dtype):
    spec = Spec(mining="batch_hard", distance="squared_euclidean", margin=1.0)
    found = {marker: next(b for b in extremes(spec, dtype) if marker in b.layout) for marker in GEOMETRY_LAYOUTS}
    assert [b.digest() for b in extremes(spec, dtype)] == [b.digest() for b in found.values()]
    rounded = {marker: batch.rounded(dtype).embeddings for marker, batch in found.items()}
    norms = {marker: np.linalg.norm(x, axis=1) for marker, x in rounded.items()}
    assert norms["small rows"].min() == pytest.approx(small_row_floor(dtype), rel=0.01)
    widest = np.max(np.abs(rounded["wide scale"]))
    assert widest >= min(finite_limit(dtype, MAX_D), magnitude_limit(dtype, MAX_D)) / 4
    if dtype in ("float32", "float64"):  # far from the origin: the centroid far beyond the batch's distances
        x = rounded["large offset"]
        spread = np.max(np.linalg.norm(x[:, None] - x[None], axis=-1))
        assert np.linalg.norm(x.mean(axis=0)) > 1e3 * spread
    assert exact_kinds(evaluate(rounded["lattice on one axis"], found["lattice on one axis"].labels, spec), dtype)
    assert len(np.unique(found["all distinct"].labels)) == len(found["all distinct"].labels)


def test_the_small_rows_floor_is_what_each_dtype_tells_from_zero():
    """1e-4 wherever the dtype holds it with room; float16, where |x|^2 of a row of 1e-4 underflows, 0.0625: |x|^2
    64 times its smallest normal number, 4 times the norm engine/ambiguity.py judges as zero."""
    assert [small_row_floor(name) for name in ("float64", "float32", "bfloat16")] == [1e-4] * 3
    float16 = dtype_facts("float16")
    assert (1e-4) ** 2 < float16.smallest_normal and small_row_floor("float16") ** 2 >= 64 * float16.smallest_normal


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_drawn_batches_reach_the_small_rows(dtype):
    spec = Spec(mining="batch_all", distance="cosine", margin=0.2)
    floor = small_row_floor(dtype)
    small = find(batches(spec, dtype), lambda b: "small rows" in b.layout and np.linalg.norm(
        b.rounded(dtype).embeddings, axis=1).min() < 2 * floor, settings=SEARCH)
    assert np.linalg.norm(small.rounded(dtype).embeddings, axis=1).min() >= floor


def test_the_limits_let_float16_rows_past_a_norm_of_256_and_change_nothing_for_the_other_dtypes():
    for d in (1, MAX_D):
        assert finite_limit("float16", d) * np.sqrt(d) < 256 < magnitude_limit("float16", d)
        for name in ("float64", "float32", "bfloat16"):  # float32's range: |x|^2 finite where it was
            assert magnitude_limit(name, d) == finite_limit(name, d)


def test_drawn_float16_batches_reach_norms_above_256_with_every_squared_distance_finite():
    """A Gram expansion computed in float16 overflows there (|x|^2 > 65504); the spec's |x - y|^2 does not."""
    spec = Spec(mining="batch_hard", distance="euclidean", margin=1.0)
    far = find(batches(spec, "float16"), lambda b: np.linalg.norm(b.rounded("float16").embeddings, axis=1).max() > 256,
               settings=SEARCH)
    assert "wide scale" in far.layout

    @settings(max_examples=300, derandomize=True, database=None, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(batch=batches(spec, "float16"))
    def squared_distances_finite(batch):
        x = batch.rounded("float16").embeddings
        assert np.max(np.sum((x[:, None] - x[None]) ** 2, axis=-1)) < dtype_facts("float16").largest

    squared_distances_finite()
    # cosine squares unit rows only: its rows spread over every direction, up to what float16 holds
    cosine = next(b for b in extremes(Spec(distance="cosine"), "float16") if "wide scale" in b.layout)
    norms = np.linalg.norm(cosine.rounded("float16").embeddings, axis=1)
    assert norms.max() > 1000 and np.isfinite(cosine.rounded("float16").embeddings).all()


@pytest.mark.parametrize("name, verdict", [("zoo.wrong.gram-float16-overflows", "fail"),
                                           ("zoo.right.gram-float16-in-float32", "pass")])
def test_a_float16_gram_expansion_fails_at_the_largest_magnitude_declared_or_not(name, verdict):
    """The wide-scale extreme in float16: rows of norm 300 to 350, |x|^2 past 65504. Computed in float16 the expansion
    gives inf - inf = NaN, which no declared precision admits; computed in float32 it conforms."""
    pytest.importorskip("torch")
    from tests.engine.test_conformance_meta import run_cell
    from tests.mutants import zoo

    adapter = next(a for a in zoo.WRONG + zoo.RIGHT if a.name == name)
    spec = adapter.specs[0]
    widest = next(b for b in extremes(spec, "float16", adapter.precision) if "wide scale" in b.layout)
    assert np.linalg.norm(widest.rounded("float16").embeddings, axis=1).min() > 256
    run, exc = run_cell(adapter, spec, "float16", "loss", examples=1, strategy=st.just(widest), regressions=[widest])
    assert (exc is None) == (verdict == "pass"), exc
    if verdict == "fail":
        assert "loss is nan where the oracle gives" in run.failing.failure

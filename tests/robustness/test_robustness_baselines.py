"""The bounds mean something: NumPy float32 reference lines (baselines.py) measured on every level of the
sweeps, on every vetted batch. A bound that every implementation met, careless or not, would prove
nothing; one that no implementation could meet would flag everything. Their records go to --results too,
so the report draws them beside the real implementations.

Also the vetting the sweeps rely on: on the offset and scale sweeps no decision of any catalogued
adapter's sweep spec lies within float32's resolution, so float32 gradients are judged at every level (but for
the count of soft terms under mean_nonzero, which no batch keeps above float32's underflow once scaled by 10^2).
The near-duplicate sweep creates ties on purpose (two points of one class almost coincide, so a third
anchor's nearest negative is either of them); there the loss is judged against every admissible outcome.
"""
from __future__ import annotations

import dataclasses

import pytest

from adapters import catalog
from baselines import DIFFERENCE, GRAM, RECENTRED, SHIFTED, SOFTMAX_SPEC, SPEC, UNSHIFTED
from contract.dtypes import round_to_dtype
from reference import LOGIT_SCALES, LOSSES, evaluate
from reference.gaps import in_distance_units
from suite.robustness.bounds import expectation
from suite.robustness.sweeps import BATCH_SEEDS, FULL_LEVELS, base_batch, measure_level, sweep_specs, transformed, triplets_for

MEASURED_SWEEPS = ("offset", "near_duplicate", "scale")


def sweep(adapter, name: str, results, spec=SPEC) -> dict[float, dict]:
    """Level -> record of the adapter's full sweep in float32 on every vetted batch, each record written."""
    measured = {}
    for level in FULL_LEVELS[name]:
        record = measure_level(adapter, spec, "float32", "cpu", name, level, BATCH_SEEDS, timeout=60.0)
        assert record is not None, f"{name} level {level:g} lies outside float32's range"
        results.write("robustness", **record, divergence=None)
        measured[level] = record
    return measured


def beyond(measured: dict[float, dict]) -> list[float]:
    return [level for level, record in measured.items() if not record["within_bound"]]


def test_the_raw_gram_expansion_leaves_its_bound_far_from_the_origin(results):
    # Its distance error grows like eps * offset^2 / d: within the bound near the origin, 20x beyond at 10^2.
    assert beyond(sweep(GRAM, "offset", results)) == [1e2, 1e3, 1e4, 1e5, 1e6]


def test_recentring_keeps_the_gram_expansion_within_its_bound_at_every_offset(results):
    assert beyond(sweep(RECENTRED, "offset", results)) == []


def test_recentring_does_not_rescue_near_duplicates(results):
    # The Gram expansion alone gives a pair r apart about sqrt((D + 2) eps) rho, whatever the origin.
    assert beyond(sweep(RECENTRED, "near_duplicate", results))


@pytest.mark.parametrize("name", MEASURED_SWEEPS)
def test_distances_from_differences_meet_every_bound(name, results):
    # The bound is achievable: a careful float32 implementation stays within it at every level.
    assert beyond(sweep(DIFFERENCE, name, results)) == []


def test_an_unshifted_log_sum_exp_leaves_its_bound_at_low_temperature(results):
    # e^(s / t) overflows float32 once s / t > 88.7: some pair's similarity passes 0.887 at t = 10^-2, any positive one
    # at 10^-4
    pytest.importorskip("torch")
    measured = sweep(UNSHIFTED, "temperature", results, SOFTMAX_SPEC)
    assert beyond(measured) == [1e-2, 1e-3, 1e-4] and measured[1e-4]["nonfinite"]


def test_a_shifted_log_sum_exp_meets_every_temperature_bound(results):
    pytest.importorskip("torch")
    assert beyond(sweep(SHIFTED, "temperature", results, SOFTMAX_SPEC)) == []


def test_the_temperature_sweep_asks_only_adapters_that_read_their_scales():
    """One spec per loss with logit scales, for an adapter whose function reads them from its spec (free_fields);
    none for one whose temperature is fixed in its code."""
    assert [s.mining for s in sweep_specs(SHIFTED, "temperature")] == ["multiple_negatives"]
    fixed = dataclasses.replace(SHIFTED, free_fields=())
    assert sweep_specs(fixed, "temperature") == [] and sweep_specs(fixed, "scale") == [SOFTMAX_SPEC]
    inhouse = next(adapter for adapter in catalog() if adapter.name == "inhouse.torch")
    swept = {s.mining for s in sweep_specs(inhouse, "temperature")}
    assert swept == {name for name, loss in LOSSES.items() if set(loss.takes) & set(LOGIT_SCALES)} & {
        s.mining for s in inhouse.specs}


@pytest.mark.parametrize("name", ("offset", "scale"))
def test_the_batches_are_vetted_no_decision_within_float32_resolution(name):
    specs = {str(spec): spec for adapter in catalog() for spec in sweep_specs(adapter, name)}
    ambiguous = []
    for seed in BATCH_SEEDS:
        for label, spec in specs.items():
            batch = base_batch(seed, spec)  # in the spec's layout
            exact_input = round_to_dtype(batch.embeddings, "float32")
            for level in FULL_LEVELS[name]:
                received = round_to_dtype(transformed(batch, name, level), "float32")
                exact = evaluate(exact_input if name == "offset" else received, batch.labels, spec,
                               triplets_for(spec, batch.labels))
                # a soft term's count is no choice of batch: scaled by 10^2 and more, every batch has soft terms below
                # float32's smallest normal (soft_underflow, in value units); its loss is judged among the admissible
                # counts and its gradient is not, at those levels
                found = {kind: gap for kind, gap in expectation(exact, received, "float32").ambiguous.items()
                         if in_distance_units(kind)}
                if found:
                    ambiguous.append(f"seed {seed}, level {level:g}, {label}: {found}")
    assert not ambiguous, "\n".join(ambiguous)

"""The robustness sweeps, one item per adapter x sweep spec x dtype x device x sweep, with an id like
`test_sweep[inhouse.torch|batch_hard euclidean m=1 mean anchors=valid empty=nan|float32|cpu|robustness:offset]`.

Each item measures every level of its sweep (sweeps.py) and writes one "robustness" record per level
through --results. Our own implementations must stay within the documented bound (bounds.py) at every
level; any other implementation beyond it is recorded (within_bound=False, flagged in the report) and
the item passes, unless a registry entry covers "robustness:<sweep>": then the item is a strict xfail and
the divergence must show. The default run measures a few levels on one batch; ROBUSTNESS_SWEEP=full or
`--hypothesis-profile thorough` measures every level on every vetted batch.
"""
from __future__ import annotations

import pytest
from hypothesis import settings

from adapters import unavailable
from contract.targets import TARGETS
from engine.cells import Cell, params
from engine.harness import AdapterUnavailable

from .sweeps import (
    SWEEPS,
    full_sweep_requested,
    measure_level,
    plan,
    skipped_record,
    sweep_dtypes,
    sweep_specs,
)

# Ours: held to the bound. Every other implementation is measured and recorded.
INHOUSE = ("inhouse.torch", "inhouse.triton")


def sweep_cases(adapters) -> list[Cell]:
    return [
        Cell(adapter, spec, dtype, device, f"robustness:{sweep}")
        for adapter in adapters
        for sweep in SWEEPS
        for spec in sweep_specs(adapter, sweep)
        for device in (tf32_targets(adapter) if sweep == "tf32" else full_precision_targets(adapter))
        if device in adapter.targets
        for dtype in sweep_dtypes(adapter, spec, device, sweep)
    ]


def tf32_targets(adapter) -> tuple[str, ...]:
    """Where the TF32 sweep runs: the cuda-tf32 target where the adapter claims it (its plumbing switches TF32 on
    for the call), else cuda under the sweep's own switch, except for torch, whose plumbing runs plain cuda with
    TF32 off (adapters/_torch.py): a torch adapter that does not claim cuda-tf32 has no TF32 sweep."""
    if "cuda-tf32" in adapter.targets:
        return ("cuda-tf32",)
    return () if adapter.framework == "torch" else ("cuda",)


def full_precision_targets(adapter) -> list[str]:
    """The targets the other sweeps run on: those whose matmuls keep the dtype (the sweeps' bounds are the dtype's),
    in one process. Sharding a batch across processes (dist-gloo-*) changes no arithmetic a sweep measures: each rank
    computes on the gathered batch, and the conformance cells judge that against the oracle."""
    return [device for device in adapter.targets
            if TARGETS[device].matmul_mantissa_bits is None and TARGETS[device].processes == 1]


def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        metafunc.parametrize("case", params(sweep_cases(metafunc.config.conformance_adapters)))


def sweep_of(case: Cell) -> str:
    return case.check.removeprefix("robustness:")


def beyond_bound(records: list[dict]) -> str:
    """The levels beyond the bound, in words, for the failure message."""
    return "; ".join(
        f"level {r['level']:g}: loss error {r['loss_error']} (bound {r['bound']:.3g}), "
        f"gradient error {r['grad_error']} (bound {r['grad_bound']:.3g}), non-finite {r['nonfinite']}"
        + (f", {r['error']}" if r["error"] else "")
        for r in records if not r["within_bound"]
    )


def test_sweep(case: Cell, results, pytestconfig):
    adapter, sweep = case.adapter, sweep_of(case)
    levels, seeds = plan(full_sweep_requested(settings.get_current_profile_name()))
    reason = unavailable(adapter, case.target)
    if reason:
        if sweep == "tf32":  # the results say the TF32 sweep did not run here, and why
            for level in levels[sweep]:
                results.write("robustness", **skipped_record(adapter, case.spec, case.dtype, case.target, sweep,
                                                             level, reason))
        pytest.skip(reason)
    divergence = ", ".join(d.id for d in case.divergences()) or None
    records = []
    for level in levels[sweep]:
        try:
            record = measure_level(adapter, case.spec, case.dtype, case.target, sweep, level, seeds,
                                   pytestconfig.getoption("adapter_timeout"))
        except AdapterUnavailable as missing:
            pytest.skip(missing.reason)
        if record is not None:  # None: the level lies outside the dtype's range
            results.write("robustness", **record, divergence=divergence)
            records.append(record)
    assert records, f"no level of the {sweep} sweep lies within {case.dtype}'s range"
    if adapter.name in INHOUSE or divergence:
        assert all(r["within_bound"] for r in records), f"{case}: beyond the bound at {beyond_bound(records)}"

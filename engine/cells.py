"""The conformance matrix: one cell per adapter x claimed spec x dtype x device x quantity (loss, grad).

A cell's id reads `adapter|spec|dtype|device|check`, e.g.
`tfa.triplet_semihard_loss|semi_hard euclidean m=1 mean empty=nan|float32|cpu|loss`. A cell that a
known divergence covers (registry.matching) becomes a strict xfail at collection: the
divergence must reproduce, and an unexpected pass fails the run. Edge-case and property items use the
same registry with the checks "edge:<case>" and "property:<name>".
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

import registry
from contract.adapter import Adapter
from contract.dtypes import most_precise
from contract.targets import applies
from reference import Spec

QUANTITIES = ("loss", "grad")


@dataclass(frozen=True)
class Cell:
    adapter: Adapter
    spec: Spec
    dtype: str
    target: str  # the execution target (contract/targets.py); the results' field `device`
    check: str  # what is checked: the quantity "loss" or "grad", or "edge:<case>", "property:<name>", "robustness:<sweep>"

    @property
    def key(self) -> str:
        """The cell without its check: the loss and grad items of one cell share their examples."""
        return f"{self.adapter.name}|{self.spec}|{self.dtype}|{self.target}"

    def __str__(self) -> str:
        return f"{self.key}|{self.check}"

    @property
    def compute_dtype(self) -> str:
        """The dtype the implementation computes in (Adapter.compute_dtype, default `dtype`)."""
        return self.adapter.compute_dtype.get(self.dtype, self.dtype)

    @property
    def precision(self) -> str:
        """How precisely the adapter declares it computes distances (contract/precision.py; default "direct")."""
        return self.adapter.precision

    def divergences(self) -> list:
        return registry.matching(self.adapter.name, self.spec, self.dtype, self.target, self.check)


def conformance_cells(adapters: list[Adapter]) -> list[Cell]:
    """Every claimed spec x dtype x target x quantity, where the target runs the dtype (cuda-tf32: float32 only)."""
    return [
        Cell(adapter, spec, dtype, device, quantity)
        for adapter in adapters
        for spec in adapter.specs
        for dtype in adapter.dtypes
        for device in adapter.targets
        if applies(device, dtype)
        for quantity in QUANTITIES
    ]


def edge_case_cells(adapters: list[Adapter], cases: tuple[str, ...],
                    expressible: Callable[[Spec, str], bool] = lambda spec, case: True) -> list[Cell]:
    """Per adapter x claimed spec x case the spec's batch layout can express, on its first dtype and the CPU (the
    behaviour, recorded)."""
    return [
        Cell(adapter, spec, adapter.dtypes[0], "cpu", f"edge:{case}")
        for adapter in adapters
        if "cpu" in adapter.targets
        for spec in adapter.specs
        for case in cases
        if expressible(spec, case)
    ]


@dataclass(frozen=True)
class Property:
    """A property an adapter must have, checked on the adapter against itself (suite/test_properties.py)."""

    verify: Callable  # verify(run, cell, batch): asserts the property on one base batch
    applies: Callable  # applies(adapter, spec): whether it holds for what the adapter claims
    dtype: str | None = None  # the dtype it prefers, where the adapter runs it (else the most precise)


def property_cells(adapters: list[Adapter], properties: dict[str, Property]) -> list[Cell]:
    """Per adapter x claimed spec x property that applies to both, in the most precise dtype the adapter runs for that
    spec on the CPU (a property compares the adapter with itself: noise only hides a violation), or in the property's
    own dtype where the adapter runs that one."""
    cells = []
    for adapter in adapters:
        if "cpu" not in adapter.targets:
            continue
        for spec in adapter.specs:
            runnable = runnable_dtypes(adapter, spec, "cpu") or list(adapter.dtypes)
            for name, found in properties.items():
                if found.applies(adapter, spec):
                    dtype = found.dtype if found.dtype in runnable else most_precise(runnable)
                    cells.append(Cell(adapter, spec, dtype, "cpu", f"property:{name}"))
    return cells


def runnable_dtypes(adapter: Adapter, spec: Spec, device: str) -> list[str]:
    """The claimed dtypes the registry does not list as rejected (kind "unsupported") for this spec and device: a
    property or a robustness sweep run in a rejected dtype would never get an answer to start from."""
    return [
        dtype for dtype in adapter.dtypes
        if not any(d.kind == "unsupported" for d in registry.matching(adapter.name, spec, dtype, device, "loss"))
    ]


def params(cells: list[Cell]) -> list:
    """pytest.param per cell, id str(cell), marked strict xfail where the registry covers it."""
    marked = []
    for cell in cells:
        found = cell.divergences()
        marks = []
        if found:
            reason = "; ".join(f"known divergence {d.id}: {d.reason} ({d.link})" for d in found)
            marks = [pytest.mark.xfail(strict=True, reason=reason), pytest.mark.divergence(*[d.id for d in found])]
        marked.append(pytest.param(cell, id=str(cell), marks=marks))
    return marked

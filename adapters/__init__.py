"""Adapters: one module per implementation family, each listing its adapters in `ADAPTERS` and recording the
family in `FAMILY` (contract/family.py: its library, upstream source, required packages, and where the
benchmarks, the GPU command and the migration document take it in).

`catalog()` gathers every built-in adapter; a framework that is not installed still lists its
adapters, whose `available()` then gives the reason they skip. `families()` gathers the family records, in
the order of `MODULES`; tests/adapters/test_adapter_registry.py fails when a module defining `ADAPTERS` is
missing from it or has no `FAMILY`.
"""
from __future__ import annotations

import importlib

from contract.adapter import DTYPES, Adapter, Output, Unavailable
from contract.family import Family
from contract.targets import TARGETS

from ._tf import import_torch_first
from .frameworks import unavailable
from .inhouse import interpret_triton_without_a_gpu
from .wrap import wrap_numpy, wrap_tensorflow, wrap_torch

# The implementation family modules, adapters/<name>.py, in catalogue order: the one list of them.
MODULES = ("torch_native", "pml", "tfa", "seeds", "sentence_transformers", "tf_similarity", "quaterion", "inhouse",
           "distributed")


def _module(name: str):
    return importlib.import_module(f"{__name__}.{name}")


def catalog() -> list[Adapter]:
    found: list[Adapter] = []
    for name in MODULES:
        found.extend(_module(name).ADAPTERS)
    return found


def families() -> tuple[Family, ...]:
    """Every family's record (each module's `FAMILY`), in the order of `MODULES`."""
    records = []
    for name in MODULES:
        record = getattr(_module(name), "FAMILY", None)
        if not isinstance(record, Family):
            raise TypeError(f"adapters/{name}.py must define FAMILY = contract.family.Family(...), "
                            f"got {type(record).__name__}")
        if record.module != name:
            raise ValueError(f"adapters/{name}.py: FAMILY.module is {record.module!r}, not {name!r}")
        records.append(record)
    for what in ("prefix", "migration", "benchmarks"):  # each names one family only
        taken = [v for r in records for v in (getattr(r, what) if what == "benchmarks" else (getattr(r, what),))
                 if v is not None]
        twice = sorted({str(v) for v in taken if taken.count(v) > 1})
        if twice:
            raise ValueError(f"adapters: more than one family's FAMILY.{what} is {', '.join(twice)}")
    return tuple(records)


def family(module: str) -> Family:
    """The record of adapters/<module>.py."""
    if module not in MODULES:
        raise KeyError(f"no implementation family {module!r}; the families: {', '.join(MODULES)}")
    return next(record for record in families() if record.module == module)


__all__ = [
    "DTYPES",
    "MODULES",
    "TARGETS",
    "Adapter",
    "Family",
    "Output",
    "Unavailable",
    "catalog",
    "families",
    "family",
    "import_torch_first",
    "interpret_triton_without_a_gpu",
    "unavailable",
    "wrap_numpy",
    "wrap_tensorflow",
    "wrap_torch",
]

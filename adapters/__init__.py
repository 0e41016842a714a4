"""Adapters: one module per implementation family, each listing its adapters in `ADAPTERS`.

`catalog()` gathers every built-in adapter; a framework that is not installed still lists its
adapters, whose `available()` then gives the reason they skip.
"""
from __future__ import annotations

import importlib

from contract.adapter import DTYPES, Adapter, Output, Unavailable
from contract.targets import TARGETS
from .frameworks import unavailable
from .wrap import wrap_numpy, wrap_tensorflow, wrap_torch

FAMILIES = ("torch_native", "pml", "tfa", "seeds", "sentence_transformers", "tf_similarity", "quaterion", "inhouse",
            "distributed")


def catalog() -> list[Adapter]:
    found: list[Adapter] = []
    for family in FAMILIES:
        found.extend(importlib.import_module(f"{__name__}.{family}").ADAPTERS)
    return found


__all__ = [
    "DTYPES",
    "TARGETS",
    "Adapter",
    "Output",
    "Unavailable",
    "catalog",
    "unavailable",
    "wrap_numpy",
    "wrap_tensorflow",
    "wrap_torch",
]

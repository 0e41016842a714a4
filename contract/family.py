"""The record of an implementation family: one per adapter module (adapters/<module>.py, as `FAMILY`).

It is the one list of implementations the rest of the suite reads: the benchmarks take their implementations and
devices from it (`benchmarks`, `cuda`), the GPU command the adapters it judges and the wheels it brings (`gpu`,
`requires`), the migration document the libraries it lists and their order (`prefix`, `migration`).
`adapters.families()` gathers the records; tests/adapters/test_adapter_registry.py holds the consumers to them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_MODULE = re.compile(r"[a-z][a-z0-9_]*")
_PIP = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Family:
    """One implementation family: the library as users know it, and what the suite does with it."""

    module: str  # the adapter module, adapters.<module>
    library: str  # the library's name as its users know it, e.g. "pytorch-metric-learning"
    source: str  # where it lives upstream (owner/name), or where in this repository
    # The prefix of the adapter names that are this library's own (the migration document groups them by it;
    # "pml." takes in adapters.distributed's pml.DistributedLossWrapper too); None: no name space of its own.
    prefix: str | None = None
    requires: tuple[str, ...] = ()  # pip distributions beyond numpy and torch (triton comes with torch's CUDA wheels)
    cuda: bool = False  # its code runs on a CUDA device: the benchmarks measure it there too
    gpu: bool = False  # the GPU command (gpu/) judges its adapters on CUDA; its `requires` go there as wheels
    migration: int | None = None  # its rows' place in docs/migration-from-tf-addons.md (1 first); None: not listed
    benchmarks: tuple[str, ...] = ()  # its implementations in benchmarks/implementations.py, in their order

    def __post_init__(self) -> None:
        if not isinstance(self.module, str) or not _MODULE.fullmatch(self.module):
            raise ValueError(f"a family's module must be a module name under adapters/ (e.g. 'pml'), got {self.module!r}")
        who = f"family {self.module!r}"
        for what in ("library", "source"):
            value = getattr(self, what)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{who}: {what} must be a non-empty string, got {value!r}")
        if self.prefix is not None and (not isinstance(self.prefix, str) or not self.prefix.endswith(".")
                                        or len(self.prefix) < 2):
            raise ValueError(f"{who}: prefix must be None or an adapter name prefix ending in '.', got {self.prefix!r}")
        for what in ("requires", "benchmarks"):
            value = getattr(self, what)
            if isinstance(value, str) or not isinstance(value, (tuple, list)) or not all(
                    isinstance(v, str) and v.strip() for v in value):
                raise TypeError(f"{who}: {what} must be a tuple of non-empty names, got {value!r}")
            if len(set(value)) != len(value):
                raise ValueError(f"{who}: {what} names one twice: {value!r}")
            object.__setattr__(self, what, tuple(value))
        bad = [r for r in self.requires if not _PIP.fullmatch(r)]
        if bad:
            raise ValueError(f"{who}: requires holds pip distribution names, got {bad}")
        for what in ("cuda", "gpu"):
            if not isinstance(getattr(self, what), bool):
                raise TypeError(f"{who}: {what} must be True or False, got {getattr(self, what)!r}")
        if self.gpu and not self.cuda:
            raise ValueError(f"{who}: gpu=True (the GPU command judges it) needs cuda=True (its code runs on CUDA)")
        if self.migration is not None:
            if isinstance(self.migration, bool) or not isinstance(self.migration, int) or self.migration < 1:
                raise ValueError(f"{who}: migration must be None or a row position >= 1, got {self.migration!r}")
            if self.prefix is None:
                raise ValueError(f"{who}: the migration document finds a library's adapters by prefix: give one")

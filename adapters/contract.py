"""The adapter contract: an adapter is data plus two small functions.

    available() -> None when the implementation can run here, else the reason it cannot (a skip)
    run(embeddings, labels, spec, dtype, device, triplets) -> Output

`run` receives float64 NumPy embeddings [N, D] and int64 labels [N] (and, for mining="triplets",
int64 index triples [T, 3]); it casts to `dtype`, runs on `device` in its own framework, and returns
the loss and dL/d embeddings as float64 NumPy. It may raise: the harness records the exception as
the cell's outcome. Framework imports happen inside `available` and `run`, never at import time,
so a missing framework is a skip and never an import error.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from reference import Spec

DTYPES = ("float64", "float32", "float16", "bfloat16")
DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class Output:
    """What one call of an implementation returned, in float64."""

    loss: float
    grad: Optional[np.ndarray]  # None for a loss-only adapter
    version: str  # e.g. "torch 2.13.0" or "tensorflow 2.15.1 + tensorflow-addons 0.23.0"
    target: str  # the execution target it really ran on, e.g. "cpu" or "cuda:0 NVIDIA H200"


@dataclass(frozen=True)
class Adapter:
    """One implementation and the specs it claims to implement, on which dtypes and devices."""

    name: str
    framework: str
    specs: tuple[Spec, ...]
    run: Callable[..., Output]
    available: Callable[[], Optional[str]] = lambda: None
    dtypes: tuple[str, ...] = ("float32",)
    devices: tuple[str, ...] = ("cpu",)
    gradient: bool = True  # False: the implementation gives the loss only; gradients are not compared
    notes: str = ""  # what the suite knows about it, in a sentence or two (shown in the report)
    source: str = ""  # where the implementation lives upstream (a path or link)
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"an adapter needs a non-empty name, got {self.name!r}")
        specs = (self.specs,) if isinstance(self.specs, Spec) else tuple(self.specs)
        if not specs or not all(isinstance(s, Spec) for s in specs):
            raise ValueError(f"adapter {self.name!r}: spec must be a reference.Spec or a list of them")
        object.__setattr__(self, "specs", specs)
        for value, allowed, what in ((self.dtypes, DTYPES, "dtypes"), (self.devices, DEVICES, "devices")):
            unknown = [v for v in value if v not in allowed]
            if unknown or not value:
                raise ValueError(f"adapter {self.name!r}: {what} {unknown or '()'} not in {allowed}")

"""The adapter contract: an adapter is data plus two small functions (three on a distributed target).

    available(device=None) -> None when the implementation can run here (on `device`, an execution target of
                              contract/targets.py, when given), else the reason it cannot (a skip)
    run(embeddings, labels, spec, dtype, device, triplets) -> Output
                              on a single-process target
    rank_call(spec, dtype, device) -> on_rank
                              an adapter that claims a distributed target (contract/targets.py processes > 1) must
                              give it: on such a target the engine shards the batch over W processes and runs
                              on_rank(embeddings_r, labels_r) -> Output on each rank r, on its own rows, with L_r
                              and dL_r/dX_r (engine/distributed.py judges rank 0's loss and the averaged gradients)

`run` receives float64 NumPy embeddings [N, D] and int64 labels [N] (and, for mining="triplets",
int64 index triples [T, 3]); it casts to `dtype`, runs on `device` in its own framework, and returns
the loss and dL/d embeddings as float64 NumPy. It may raise: the harness records the exception as
the cell's outcome. Framework imports happen inside `available` and `run`, never at import time,
so a missing framework is a skip and never an import error.

`rank_call` runs in the engine's process, where it checks the call as `run` does (and raises as `run` may:
`Unavailable` is a skip); `on_rank` travels to the ranks by pickle, that is by reference, so it must be an instance
or partial of module-level code (the ranks import it). Sharding, the ranks and their timeout are the engine's.

The Adapter checks its own fields when it is made (one place: the wrap_* helpers build through it):
wrong types raise TypeError, values outside the dtype and target tables ValueError.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field, fields
from typing import Callable, Optional

import numpy as np

from reference import Spec

from .dtypes import DTYPES as DTYPE_TABLE
from .precision import DEFAULT as DIRECT
from .precision import PRECISIONS
from .targets import TARGETS, processes

DTYPES = tuple(DTYPE_TABLE)
SPEC_FIELDS = tuple(f.name for f in fields(Spec))


# compute_dtype of an implementation that upcasts half precision and computes in float32
HALF_IN_FLOAT32 = {"float16": "float32", "bfloat16": "float32"}


class Unavailable(RuntimeError):
    """`run` was asked for something this machine lacks (the framework, or a CUDA device): a skip, not a failure."""


@dataclass(frozen=True)
class Output:
    """What one call of an implementation returned, in float64."""

    loss: float
    grad: Optional[np.ndarray]  # None for a loss-only adapter
    version: str  # e.g. "torch 2.13.0" or "tensorflow 2.15.1 + tensorflow-addons 0.23.0"
    target: str  # the execution target it really ran on, e.g. "cpu" or "cuda:0 NVIDIA H200"


def _runs_anywhere(device: str | None = None) -> Optional[str]:
    return None


@dataclass(frozen=True)
class Adapter:
    """One implementation and the specs it claims to implement, on which dtypes and execution targets."""

    name: str
    framework: str  # "torch", "tensorflow", "numpy", or another name (then no framework check applies)
    specs: tuple[Spec, ...]
    run: Callable[..., Output]
    available: Callable[..., Optional[str]] = _runs_anywhere
    dtypes: tuple[str, ...] = ("float32",)
    targets: tuple[str, ...] = ("cpu",)  # execution targets (contract/targets.py)
    gradient: bool = True  # False: the implementation gives the loss only; gradients are not compared
    notes: str = ""  # what the suite knows about it, in a sentence or two (shown in the report)
    source: str = ""  # where the implementation lives upstream (a path or link)
    # How precisely it computes distances (contract/precision.py): "direct" is what every adapter is held to;
    # "gram" declares the Gram expansion's rounding, a widening the report shows next to the adapter.
    precision: str = DIRECT
    compute_dtype: dict = field(default_factory=dict, compare=False)  # dtype -> the dtype it computes in (upcasts)
    extra: dict = field(default_factory=dict, compare=False)  # "isolate": run each call in a child process
    # (spec, dtype, device) -> on_rank, a picklable on_rank(embeddings_r, labels_r) -> Output: what each rank runs
    # on a distributed target (the module docstring); required where the adapter claims one
    rank_call: Optional[Callable[..., Callable[..., Output]]] = None
    # Spec fields `run` reads from the spec it is given, so that any value the vocabulary allows may be asked beside
    # the claimed ones (the robustness sweep over temperature asks for others; reference.LOGIT_SCALES)
    free_fields: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"an adapter needs a non-empty name, got {self.name!r}")
        who = f"adapter {self.name!r}"
        specs = (self.specs,) if isinstance(self.specs, Spec) else self.specs
        if not isinstance(specs, (list, tuple)) or not specs or not all(isinstance(s, Spec) for s in specs):
            raise TypeError(f"{who}: spec must be a reference.Spec or a non-empty list of them, got {self.specs!r}")
        object.__setattr__(self, "specs", tuple(specs))
        for what, known, supports in (("dtypes", DTYPES, _dtype_support), ("targets", tuple(TARGETS), _target_support)):
            names = _names(who, what, getattr(self, what))
            unknown = [v for v in names if v not in known or not supports(v, self.framework)]
            if unknown or not names:
                allowed = tuple(v for v in known if supports(v, self.framework))
                raise ValueError(f"{who}: {what} {unknown or '()'} not supported for {self.framework}; choose from {allowed}")
            object.__setattr__(self, what, names)
        for text, what in ((self.notes, "notes"), (self.source, "source")):
            if not isinstance(text, str):
                raise TypeError(f"{who}: {what} must be a string, got {type(text).__name__}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"{who}: precision {self.precision!r} is not one of {tuple(PRECISIONS)} (contract/precision.py)")
        if not isinstance(self.compute_dtype, dict) or not all(
            k in self.dtypes and v in DTYPES for k, v in self.compute_dtype.items()
        ):
            raise ValueError(f"{who}: compute_dtype must map claimed dtypes to dtypes of {DTYPES}, got {self.compute_dtype!r}")
        if not isinstance(self.gradient, bool):
            raise TypeError(f"{who}: gradient must be True or False, got {self.gradient!r}")
        for function, what in ((self.run, "run"), (self.available, "available")):
            if not callable(function):
                raise TypeError(f"{who}: {what} must be callable, got {type(function).__name__}")
        distributed = [t for t in self.targets if processes(t) > 1]
        if self.rank_call is not None and not callable(self.rank_call):
            raise TypeError(f"{who}: rank_call must be callable or None, got {type(self.rank_call).__name__}")
        if distributed and self.rank_call is None:
            raise ValueError(f"{who}: targets {distributed} are distributed: the engine runs a rank_call(spec, dtype, "
                             "device) on each rank, and the adapter gives none (contract/adapter.py)")
        free = _names(who, "free_fields", self.free_fields)
        unknown = [name for name in free if name not in SPEC_FIELDS or name == "mining"]
        if unknown:
            raise ValueError(f"{who}: free_fields {unknown} are not Spec fields a run can read (mining is what it "
                             f"claims); choose from {tuple(f for f in SPEC_FIELDS if f != 'mining')}")
        object.__setattr__(self, "free_fields", free)
        if not _takes_an_argument(self.available):  # the contract before targets: available() with no device
            object.__setattr__(self, "available", _ignoring_device(self.available))


def claims(adapter: Adapter, spec: Spec) -> bool:
    """Whether the adapter computes `spec`: a spec it claims, or one that differs from a claimed spec only in its
    free fields."""
    asked = _fixed(spec, adapter.free_fields)
    return any(_fixed(claimed, adapter.free_fields) == asked for claimed in adapter.specs)


def _fixed(spec: Spec, free: tuple[str, ...]) -> dict:
    return {name: value for name, value in spec.to_dict().items() if name not in free}


def _names(who: str, what: str, value) -> tuple[str, ...]:
    names = (value,) if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(v, str) for v in names):
        raise TypeError(f"{who}: {what} must be a tuple of names, got {value!r}")
    return tuple(names)


def _dtype_support(name: str, framework: str) -> bool:
    """A framework the dtype table names (torch, tensorflow, numpy) must have the dtype; others are trusted."""
    return getattr(DTYPE_TABLE[name], framework, "") is not None


def _target_support(name: str, framework: str) -> bool:
    known = {"torch", "tensorflow", "numpy"}
    return framework not in known or framework in TARGETS[name].frameworks


def _takes_an_argument(function) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # no signature to read: trust it
        return True
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in parameters)


def _ignoring_device(available: Callable[[], Optional[str]]) -> Callable[..., Optional[str]]:
    def with_device(device: str | None = None) -> Optional[str]:
        return available()

    return with_device

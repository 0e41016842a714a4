"""Execution targets, declared once: where an adapter's call runs, and what that changes.

An adapter claims targets by name (`Adapter.devices`); a conformance cell runs on one. A new target is one
entry here plus, in the framework plumbing (adapters/_torch.py, adapters/_tf.py), what it takes to run there.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    name: str
    device: str  # where the tensors live: "cpu" or "cuda"
    meaning: str
    frameworks: tuple[str, ...]  # the frameworks that can run there


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("cpu", "cpu", "the CPU, one process", ("torch", "tensorflow", "numpy")),
        Target("cuda", "cuda", "one CUDA device, one process", ("torch", "tensorflow")),
    )
}
NAMES: tuple[str, ...] = tuple(TARGETS)


def target(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise ValueError(f"unknown execution target {name!r}; the suite knows {', '.join(NAMES)}") from None

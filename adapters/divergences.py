"""The known-divergence registry: every accepted difference between an implementation and the oracle.

One declarative entry per divergence (jax2tf limitations, PyTorch OpInfo DecorateInfo): which adapter,
spec, dtype, device and quantity it covers (fnmatch patterns), why, and the upstream link. Tests turn a
matching check into a strict xfail, so a fixed upstream bug shows up as an unexpected pass; an entry
that matched nothing in a run is reported as stale.
"""
from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

KINDS = ("semantics", "precision", "edge_case", "unsupported")


@dataclass(frozen=True)
class Divergence:
    id: str
    adapter: str  # pattern on Adapter.name
    kind: str  # one of KINDS
    reason: str
    link: str
    spec: str = "*"  # pattern on str(Spec)
    dtype: str = "*"
    device: str = "*"
    quantity: str = "*"  # "loss", "grad", or "edge:<case>" for an edge-case record

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"divergence {self.id}: kind {self.kind!r} not in {KINDS}")

    def covers(self, adapter: str, spec: str, dtype: str, device: str, quantity: str) -> bool:
        return all(
            fnmatchcase(value, pattern)
            for value, pattern in (
                (adapter, self.adapter),
                (spec, self.spec),
                (dtype, self.dtype),
                (device, self.device),
                (quantity, self.quantity),
            )
        )


REGISTRY: tuple[Divergence, ...] = ()


def matching(adapter: str, spec: str, dtype: str, device: str, quantity: str) -> list[Divergence]:
    return [d for d in REGISTRY if d.covers(adapter, spec, dtype, device, quantity)]

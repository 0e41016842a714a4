"""The framework plumbing modules by name, and whether an adapter can run on an execution target here."""
from __future__ import annotations

from . import _numpy, _tf, _torch
from contract.adapter import Adapter

PLUMBING = {module.FRAMEWORK: module for module in (_torch, _tf, _numpy)}


def unavailable(adapter: Adapter, device: str) -> str | None:
    """Why `adapter` cannot run on the target `device` here (its own reason first, then its framework's), else
    None. An adapter of a framework the suite has no plumbing for answers for itself."""
    reason = adapter.available(device)
    plumbing = PLUMBING.get(adapter.framework)
    if reason or plumbing is None:
        return reason
    return plumbing.missing() or plumbing.device_problem(device)

"""The known-divergence registry: every accepted difference between an implementation and the oracle.

One declarative entry per divergence (jax2tf limitations, PyTorch OpInfo DecorateInfo): which cells it
covers (adapter name, dtype, target and check as fnmatch patterns; the spec by its fields), why, the
upstream link, the test that confirms it, and the regression batches that reach it in every covered cell.
Everything else is derived from the entry: the strict xfails of the cells it covers (a fixed upstream bug
shows up as an unexpected pass), the regression examples the cells run first, the stale-entry report,
and docs/known-divergences.md.

The entry type is registry/entry.py; the entries live by family (known_torch.py, known_tf.py,
known_tfsim.py, known_distributed.py) and are joined here.
"""
from __future__ import annotations

from reference import Spec

from . import known_distributed, known_tf, known_tfsim, known_torch
from .entry import CONFORMANCE, KINDS, Divergence, alternatives, in_words, matches

__all__ = ["CONFORMANCE", "KINDS", "REGISTRY", "Divergence", "alternatives", "in_words", "matches", "matching"]

REGISTRY: tuple[Divergence, ...] = known_torch.ENTRIES + known_tf.ENTRIES + known_tfsim.ENTRIES + known_distributed.ENTRIES


def matching(adapter: str, spec: Spec, dtype: str, target: str, check: str) -> list[Divergence]:
    return [d for d in REGISTRY if d.covers(adapter, spec, dtype, target, check)]

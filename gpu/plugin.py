"""The GPU command's pytest plugin (`-p gpu.plugin`): which conformance cells one shard of the command runs.

    --gpu-targets cuda cuda-tf32   only the cells on these execution targets (contract/targets.py)
    --gpu-shard I/K                only the cells whose key hashes to I of K (the loss and grad items of a cell,
                                   which share the adapter's outputs, stay together)
    --gpu-dry                      a few cells per adapter: its first spec, in float32 (else its first dtype)

The command runs under the Hypothesis profiles "gpu" and "gpu-dry" (engine/profiles.py). Deselection happens in a hook wrapper, before the
conformance session counts the collected items, so the known-divergence records count only what ran.
"""
from __future__ import annotations

import zlib

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("gpu command (gpu/)")
    group.addoption("--gpu-targets", nargs="+", metavar="TARGET", default=None,
                    help="run only the conformance cells on these execution targets")
    group.addoption("--gpu-shard", metavar="I/K", default="0/1", help="run only shard I of K (0-based)")
    group.addoption("--gpu-dry", action="store_true", help="a few cells per adapter (the dry mode)")


def shard_of(key: str, shards: int) -> int:
    return zlib.crc32(key.encode()) % shards


def _dry_pick(adapter) -> tuple:
    dtype = "float32" if "float32" in adapter.dtypes else adapter.dtypes[0]
    return adapter.specs[0], dtype


def keep(cell, targets, shard: tuple[int, int], dry: bool) -> bool:
    """Whether this shard runs the conformance cell."""
    if targets is not None and cell.target not in targets:
        return False
    if dry and (cell.spec, cell.dtype) != _dry_pick(cell.adapter):
        return False
    index, shards = shard
    return shard_of(cell.key, shards) == index


def _shard(text: str) -> tuple[int, int]:
    index, _, shards = text.partition("/")
    try:
        index, shards = int(index), int(shards)
    except ValueError:
        raise pytest.UsageError(f"--gpu-shard {text!r}: expected I/K, e.g. 0/8") from None
    if not 0 <= index < shards:
        raise pytest.UsageError(f"--gpu-shard {text!r}: I must be in 0 .. K - 1")
    return index, shards


@pytest.hookimpl(hookwrapper=True)
def pytest_collection_modifyitems(session, config, items):
    from engine.cells import Cell

    targets = config.getoption("gpu_targets")
    shard = _shard(config.getoption("gpu_shard"))
    dry = config.getoption("gpu_dry")
    kept, dropped = [], []
    for item in items:
        cell = getattr(item, "callspec", None) and item.callspec.params.get("cell")
        if isinstance(cell, Cell) and cell.check in ("loss", "grad") and not keep(cell, targets, shard, dry):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        items[:] = kept
        config.hook.pytest_deselected(items=dropped)
    yield

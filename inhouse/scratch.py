"""Scratch buffers kept from call to call: one per name, dtype and device, per thread.

On the CPU a fresh buffer of a megabyte is handed out by the C library as fresh pages, and touching each page costs a
fault: 256 faults, about 0.3 ms at N = 1024, a third of the arithmetic batch_hard's mining does in it; circle's 8 MB
of per-chunk weights at N = 1024 cost a sixth of its time. A buffer that lives on between calls is touched once.
Only a temporary that a call consumes before it returns may live in one: never a tensor returned, or saved for the
backward (two losses may be in flight at once). Off the CPU the device's caching allocator already reuses its memory,
so each call gets a fresh tensor there.
"""
from __future__ import annotations

import math
import threading

import torch

_buffers = threading.local()


def scratch(name: str, shape: tuple[int, ...], like: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """An uninitialised tensor of `shape`, of `dtype` (None: `like`'s) on `like`'s device: on the CPU the same memory
    on every call with this name (per thread and dtype), grown when too small."""
    dtype = dtype or like.dtype
    if like.device.type != "cpu":
        return like.new_empty(shape, dtype=dtype)
    pool = _buffers.__dict__.setdefault("pool", {})
    size = math.prod(shape)
    held = pool.get((name, dtype))
    if held is None or held.numel() < size:
        held = pool[(name, dtype)] = like.new_empty(size, dtype=dtype)
    return held[:size].view(shape)

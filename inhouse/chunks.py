"""How much temporary memory the vectorised losses hold beyond their O(N^2) matrices, and the slices that keep
them within it.

Two kinds of chunk: a slice of a *pair list* (gathers of [pairs, D] rows) and a slice of *anchors* (the
anchors' rows of an N x N matrix, or [anchors, K, N] selections). Both are sized so that a chunk's
temporaries hold at most `CHUNK_ELEMENTS` elements; the functions read it when called, so a test can lower it.
"""
from __future__ import annotations

# How many elements a chunk's temporaries may hold (16 MiB of float32): bounds the memory beyond O(N^2).
CHUNK_ELEMENTS = 1 << 22



def _step(width: int, budget: int | None) -> int:
    limit = CHUNK_ELEMENTS if budget is None else min(budget, CHUNK_ELEMENTS)
    return max(1, limit // max(width, 1))


def pair_chunks(pairs: int, width: int, budget: int | None = None):
    """Slices of a pair list whose [pairs, width] gathers stay within CHUNK_ELEMENTS (or within a smaller
    `budget`, for passes that run faster when their temporaries stay in the cache)."""
    step = _step(width, budget)
    return (slice(start, start + step) for start in range(0, pairs, step))


def anchor_chunks(n: int, width: int, budget: int | None = None):
    """Slices of the N anchors whose [anchors, width] temporaries stay within CHUNK_ELEMENTS (or `budget`)."""
    step = _step(width, budget)
    return (slice(start, min(start + step, n)) for start in range(0, n, step))

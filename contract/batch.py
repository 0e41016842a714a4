"""One input to a loss, and a regression batch: an input that pins a known behaviour in every cell it reaches.

Plain data (NumPy only), so that the divergence registry can name the batches that reproduce an entry.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from reference import LOSSES, Scope, Spec, check_scope, in_scope, valid_triplets
from reference.validation import MAX_CLASSES

from .dtypes import round_to_dtype


@dataclass(frozen=True, eq=False)
class Batch:
    """float64 embeddings [N, D], int64 labels [N], and (mining="triplets") index triples [T, 3]."""

    embeddings: np.ndarray
    labels: np.ndarray
    triplets: np.ndarray | None = None
    layout: str = "explicit"  # how it was built, for the falsifying-example line
    # On a distributed target: the rows each rank holds, in the global row order (engine/distributed.py); None: the
    # even split (and the only value on a single-process target)
    shards: tuple[int, ...] | None = None

    def __repr__(self) -> str:
        n, d = self.embeddings.shape
        extra = "" if self.triplets is None else f", T={len(self.triplets)}"
        extra += "" if self.shards is None else f", shards={self.shards}"
        return f"Batch({self.layout!r}, N={n}, D={d}{extra})"

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        """How Hypothesis prints an example: this repr, not every array field by field (it formats each explicit
        example's arguments before running it, whether or not it fails); the arrays are in the reproducer note."""
        printer.text(repr(self))

    def rounded(self, dtype: str) -> "Batch":
        """The same batch with embeddings exactly representable in `dtype` (oracle and adapter share it)."""
        return replace(self, embeddings=round_to_dtype(self.embeddings, dtype))

    def digest(self) -> str:
        h = hashlib.sha1(self.embeddings.tobytes())
        h.update(self.labels.tobytes())
        if self.triplets is not None:
            h.update(self.triplets.tobytes())
        if self.shards is not None:  # the same rows split another way is another input to a distributed loss
            h.update(repr(self.shards).encode())
        return h.hexdigest()[:16]


@dataclass(frozen=True, eq=False)
class Regression:
    """A batch every conformance cell whose spec is in `reaches` runs first (whatever the adapter), and the
    property checks named in `properties` too; `why` says what it pins down."""

    embeddings: np.ndarray
    labels: np.ndarray
    layout: str
    why: str
    reaches: Scope
    triplets: np.ndarray | None = None
    properties: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_scope(self.reaches, f"regression batch {self.layout!r}")

    def applies(self, spec: Spec, prop: str | None = None, dtype: str | None = None) -> bool:
        """Whether a cell of `spec` (and property `prop`, dtype `dtype`) runs it: a batch the dtype cannot hold
        (a coordinate past its range) is not an input of that dtype."""
        representable = dtype is None or bool(np.all(np.isfinite(round_to_dtype(self.embeddings, dtype))))
        has_a_pair = LOSSES[spec.mining].layout != "pairs" or len(self.labels) >= 2
        return in_scope(spec, self.reaches) and (prop is None or prop in self.properties) and representable \
            and has_a_pair

    def batch(self, spec: Spec) -> Batch:
        """The batch for `spec`: with its own triples, or the first valid ones of its labels, for mining="triplets";
        in the loss's layout (`in_layout`)."""
        embeddings, labels = in_layout(spec, np.array(self.embeddings, dtype=np.float64), self.labels)
        triplets = None
        if spec.mining == "triplets":
            triplets = valid_triplets(labels)[:4] if self.triplets is None else np.array(self.triplets, dtype=np.int64)
        return Batch(embeddings, labels, triplets, f"regression: {self.layout}")


def in_layout(spec: Spec, embeddings: np.ndarray, labels) -> tuple[np.ndarray, np.ndarray]:
    """A labelled batch as the spec's loss reads it (reference/losses.py LAYOUTS, LABEL_KINDS): for the pairs layout
    an even number of rows (the last one dropped) whose second half takes the first half's labels, so that row
    B + i is the positive of anchor i; for class sets, class c as the set {c}. Other losses read it as it is."""
    loss = LOSSES[spec.mining]
    labels = np.array(labels, dtype=np.int64)
    if loss.layout == "pairs":
        half = len(labels) // 2
        embeddings, labels = embeddings[: 2 * half], np.tile(labels[:half], 2)
    if loss.labels == "class sets":
        _, codes = np.unique(labels, return_inverse=True)
        labels = np.left_shift(1, codes.reshape(-1) % MAX_CLASSES).astype(np.int64)
    return embeddings, labels


# Batches a search found, too large to read as source: arrays by name (NAME_x, NAME_y).
_FOUND = np.load(Path(__file__).with_name("regression_batches.npz"))


def found(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The embeddings and labels of the found batch `name` (contract/regression_batches.npz)."""
    return _FOUND[f"{name}_x"], _FOUND[f"{name}_y"]

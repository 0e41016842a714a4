"""Input checks with messages that name the argument, so no caller meets an IndexError from inside."""
from __future__ import annotations

import numpy as np

from .spec import OracleError, Spec


def as_embeddings(embeddings) -> np.ndarray:
    try:
        if np.asarray(embeddings).dtype.kind == "c":  # a float64 cast would silently drop the imaginary part
            raise TypeError("got complex values")
        x = np.asarray(embeddings, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise OracleError(f"embeddings must be a 2-D array of real numbers ({exc})") from None
    if x.ndim != 2:
        raise OracleError(f"embeddings must be 2-D [N, D], got shape {x.shape}")
    if x.shape[0] < 1:
        raise OracleError("embeddings must hold at least one row (N >= 1), got N = 0")
    if x.shape[1] < 1:
        raise OracleError("embeddings must have at least one column (D >= 1), got D = 0")
    bad = np.argwhere(~np.isfinite(x))
    if len(bad):
        row, col = bad[0]
        raise OracleError(
            f"embeddings must be finite: {len(bad)} non-finite value(s), the first {x[row, col]} at [{row}, {col}]"
        )
    return x


def as_labels(labels, n: int) -> np.ndarray:
    """1-D integer-like labels of length N; [N, 1] is accepted as TF-Addons accepts it."""
    try:
        y = np.asarray(labels)
    except ValueError as exc:  # a ragged list
        raise OracleError(f"labels must be 1-D [N] (or [N, 1]) integers ({exc})") from None
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise OracleError(f"labels must be 1-D [N] (or [N, 1]), got shape {y.shape}")
    if len(y) != n:
        raise OracleError(f"labels has length {len(y)} but embeddings has N = {n} rows")
    if y.dtype.kind in "iu":
        return y.astype(np.int64)
    if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
        if np.any(np.abs(y) >= 2.0**63):  # the int64 cast would wrap them, merging distinct classes
            raise OracleError(f"labels must be integers that fit in int64, got {y[np.abs(y) >= 2.0**63][:5]!r}")
        return y.astype(np.int64)
    raise OracleError(f"labels must be integers (or integral floats), got dtype {y.dtype} with values {y[:5]!r}")


def as_class_sets(labels) -> object:
    """A [N, C] 0/1 matrix as each row's bit mask (bit c set = class c); anything else as it is (`as_labels`)."""
    try:
        y = np.asarray(labels)
    except ValueError:
        return labels  # as_labels says what is wrong with it
    if y.ndim != 2 or y.shape[1] == 1:
        return labels
    if y.shape[1] > MAX_CLASSES:
        raise OracleError(f"class-set labels have {y.shape[1]} classes; at most {MAX_CLASSES} fit a bit mask")
    if not np.all((y == 0) | (y == 1)):
        raise OracleError(f"class-set labels [N, C] must hold 0 or 1, got values {np.unique(y)[:5]!r}")
    return (y.astype(np.int64) << np.arange(y.shape[1], dtype=np.int64)).sum(axis=1)


MAX_CLASSES = 62  # bits of an int64 mask that stay positive, with one to spare


def as_layout(labels: np.ndarray, loss) -> np.ndarray:
    """The batch as the loss's record reads it: the pairs layout needs an even N and both rows of a pair with one
    label; class sets need masks of at most MAX_CLASSES bits."""
    if loss.labels == "class sets" and np.any((labels < 0) | (labels >= 2**MAX_CLASSES)):
        raise OracleError(f"mining={loss.name!r} reads each label as a set of classes, a bit mask in 0..2^{MAX_CLASSES}"
                          f" - 1 (or a [N, C] 0/1 matrix); got {labels[(labels < 0) | (labels >= 2**MAX_CLASSES)][:5]!r}")
    if loss.layout != "pairs":
        return labels
    if len(labels) % 2:
        raise OracleError(f"mining={loss.name!r} reads the batch as pairs: rows 0..B-1 the anchors, row B + i the "
                          f"positive of anchor i; N must be even, got N = {len(labels)}")
    half = len(labels) // 2
    differ = np.flatnonzero(labels[:half] != labels[half:])
    if len(differ):
        i = int(differ[0])
        raise OracleError(f"mining={loss.name!r} reads row {half + i} as the positive of anchor {i}: both need the "
                          f"pair's label, got {labels[i]} and {labels[half + i]}")
    return labels


def as_triplets(triplets, spec: Spec, n: int) -> np.ndarray | None:
    if spec.mining != "triplets":
        if triplets is not None:
            raise OracleError(f"triplets are given but mining={spec.mining!r} selects its own; pass triplets=None")
        return None
    if triplets is None:
        raise OracleError("mining='triplets' needs the (anchor, positive, negative) index triples: pass triplets=[[a, p, n], ...]")
    try:
        t = np.asarray(triplets)
    except ValueError:  # a ragged list
        raise OracleError("triplets must have shape [T, 3] (anchor, positive, negative), got rows of unequal length") from None
    if t.size == 0:
        return np.zeros((0, 3), dtype=np.int64)
    if t.ndim != 2 or t.shape[1] != 3:
        raise OracleError(f"triplets must have shape [T, 3] (anchor, positive, negative), got {t.shape}")
    if t.dtype.kind not in "iu":
        raise OracleError(f"triplets must be integer indices, got dtype {t.dtype}")
    outside = np.argwhere((t < 0) | (t >= n))
    if len(outside):
        row, col = outside[0]
        raise OracleError(f"triplets[{row}, {col}] = {t[row, col]} is out of range for N = {n} embeddings")
    return t.astype(np.int64)


def as_spec(spec) -> Spec:
    if not isinstance(spec, Spec):
        raise OracleError(f"spec must be a reference.Spec, got {type(spec).__name__}")
    return spec

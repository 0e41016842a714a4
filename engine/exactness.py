"""Exact decisions: on which inputs every implementation computes the spec's distances exactly, so that a tie
there is decided by the spec's own rule (reference/gaps.py `exact_when`), not by rounding.

An input qualifies when every coordinate is an integer multiple of one power of two s (a lattice: scaling by s
is exact) and the integers are small enough that every squared distance, every squared norm and every Gram
entry stays an exactly representable integer in the dtype the implementation computes in, and that two
different squared distances keep different square roots there: every squared distance (at most 4 max_i |x_i / s|^2)
below 2^(mantissa bits - 1), where consecutive integers' square roots are more than one unit in the last place
apart. Then both ways of computing distances, from differences and by the Gram expansion |a|^2 + |b|^2 - 2 a.b,
give every squared distance exactly, and IEEE sqrt, monotone and correctly rounded, keeps their order and their
ties ("squares" kinds); where the squared distances are perfect
squares (euclidean) or are the distance (squared_euclidean), the distances themselves are exact, and so is a
comparison with a margin on the same lattice ("values" kinds). Cosine and normalize divide by norms: never exact.
"""
from __future__ import annotations

import numpy as np

from contract.dtypes import dtype as dtype_facts
from reference import GAP_KINDS, Answer


def common_power_of_two(x: np.ndarray) -> float | None:
    """The largest power of two s with every coordinate an integer multiple of s (1 for an all-zero batch),
    or None where a coordinate is not finite."""
    values = np.asarray(x, dtype=np.float64).ravel()
    if not np.all(np.isfinite(values)):
        return None
    nonzero = values[values != 0]
    if not nonzero.size:
        return 1.0
    mantissa, exponent = np.frexp(nonzero)  # value = mantissa * 2^exponent, 0.5 <= |mantissa| < 1
    significand = np.abs(mantissa * 2.0**53).astype(np.int64)  # an integer: value = significand * 2^(exponent - 53)
    trailing = np.array([int(v & -v).bit_length() - 1 for v in significand])
    return float(2.0 ** int(np.min(exponent - 53 + trailing)))


def exact_kinds(answer: Answer, compute_dtype: str) -> frozenset[str]:
    """The decision kinds this input decides exactly for an implementation computing in `compute_dtype`."""
    spec = answer.spec
    if spec.distance == "cosine" or spec.normalize:
        return frozenset()
    x = answer.measured
    step = common_power_of_two(x)
    if step is None:
        return frozenset()
    integers = x / step
    largest_square = float(np.max(np.einsum("ij,ij->i", integers, integers), initial=0.0))
    if 16.0 * largest_square >= dtype_facts(compute_dtype).exact_integers:  # 4 max|q|^2 < 2^(mantissa bits - 1)
        return frozenset()
    kinds = {name for name, kind in GAP_KINDS.items() if kind.exact_when == "squares"}
    if _distances_exact(answer, step) and _margin_on_the_lattice(spec, step, compute_dtype) and not spec.scaled:
        kinds |= {name for name, kind in GAP_KINDS.items() if kind.exact_when == "values"}
    return frozenset(kinds)


def _distances_exact(answer: Answer, step: float) -> bool:
    """squared_euclidean: always, on a lattice; euclidean: when every squared distance is a perfect square."""
    if answer.spec.distance == "squared_euclidean":
        return True
    units = answer.distances / step
    return bool(np.all(units == np.round(units)))


def _margin_on_the_lattice(spec, step: float, compute_dtype: str) -> bool:
    """m is a small integer multiple of the distance unit (s for euclidean, s^2 for squared distances)."""
    unit = step if spec.distance == "euclidean" else step * step
    multiple = spec.margin / unit
    return multiple == round(multiple) and abs(multiple) < dtype_facts(compute_dtype).exact_integers

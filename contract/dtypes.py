"""The dtypes the suite knows, declared once: every fact about a dtype that any part of the suite needs.

A new dtype is one entry here (and its tolerance rows in engine/tolerances.py): the adapter contract, the
framework plumbing, the rounding model, the batch strategies and the report all read this table.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Dtype:
    name: str
    mantissa_bits: int  # explicit mantissa bits: eps = 2^-mantissa_bits, the spacing at 1
    min_exponent: int  # the smallest normal number is 2^min_exponent
    largest: float  # the largest finite value
    torch: str  # the attribute of the torch module
    tensorflow: str  # tf.as_dtype's name
    numpy: str | None  # NumPy's dtype, None where NumPy has none (bfloat16)

    @property
    def eps(self) -> float:
        return 2.0**-self.mantissa_bits

    @property
    def smallest_normal(self) -> float:
        return 2.0**self.min_exponent

    @property
    def exact_integers(self) -> int:
        """Every integer of magnitude up to this is exactly representable (2^(mantissa bits + 1))."""
        return 2 ** (self.mantissa_bits + 1)


_FLOAT32_LARGEST = float(np.finfo(np.float32).max)

DTYPES: dict[str, Dtype] = {
    d.name: d
    for d in (
        Dtype("float64", 52, -1022, float(np.finfo(np.float64).max), "float64", "float64", "float64"),
        Dtype("float32", 23, -126, _FLOAT32_LARGEST, "float32", "float32", "float32"),
        Dtype("float16", 10, -14, 65504.0, "float16", "float16", "float16"),
        # bfloat16 is float32's top 16 bits: float32's range with 7 mantissa bits
        Dtype("bfloat16", 7, -126, _FLOAT32_LARGEST, "bfloat16", "bfloat16", None),
    )
}
NAMES: tuple[str, ...] = tuple(DTYPES)  # most precise first


def dtype(name: str) -> Dtype:
    try:
        return DTYPES[name]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; the suite knows {', '.join(NAMES)}") from None


def most_precise(names) -> str:
    return min(names, key=NAMES.index)


def round_to_dtype(x: np.ndarray, name: str) -> np.ndarray:
    """x rounded to the nearest value of the dtype (round to nearest even), returned as float64.

    Oracle and implementation then see identical inputs: the adapter's cast to the dtype is exact."""
    x = np.asarray(x, dtype=np.float64)
    numpy_name = dtype(name).numpy
    if numpy_name == "float64":
        return x.copy()
    if numpy_name is not None:
        return x.astype(numpy_name).astype(np.float64)
    # bfloat16 is float32's top 16 bits: round the low 16 bits away, to nearest even.
    bits = np.atleast_1d(x.astype(np.float32)).view(np.uint32).astype(np.uint64)
    half, low = np.uint64(0x7FFF), np.uint64(16)
    bits = (bits + half + ((bits >> low) & np.uint64(1))) >> low << low
    return bits.astype(np.uint32).view(np.float32).astype(np.float64).reshape(x.shape)


def ulp(values: np.ndarray, name: str) -> np.ndarray:
    """The spacing of the dtype at |values| (the subnormal spacing below the normal range)."""
    d = dtype(name)
    magnitude = np.abs(np.asarray(values, dtype=np.float64))
    with np.errstate(divide="ignore"):
        exponent = np.floor(np.log2(np.where(magnitude > 0, magnitude, 1.0)))
    exponent = np.maximum(np.where(magnitude > 0, exponent, d.min_exponent), d.min_exponent)
    return np.exp2(exponent - d.mantissa_bits)

"""The benchmark tables under the charts: per device, implementation x N, time and peak memory in one cell."""
from __future__ import annotations

import math

import pandas as pd

from ..reader import number
from ..schema import columns
from .common import Table

BENCHMARK_COLUMNS = columns("benchmark")


def duration(seconds) -> str:
    x = number(seconds)
    if x is None or not math.isfinite(x):
        return "—"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if x >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x / 1e-9:.3g} ns"


def size(nbytes) -> str:
    x = number(nbytes)
    if x is None or not math.isfinite(x):
        return "—"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if x < 1024:
            return f"{x:.3g} {unit}"
        x /= 1024
    return f"{x:.3g} TiB"


def benchmark_tables(benchmarks: pd.DataFrame) -> list[Table]:
    """Per device: implementation x N, time and peak memory in one cell, or why there is no number."""
    if benchmarks.empty:
        return []
    table = benchmarks.assign(
        n=benchmarks["n"].map(lambda v: int(number(v))),
        shown=[f"{duration(row.seconds)} · {size(row.peak_bytes)}" if row.status == "ok" else f"✗ {row.status}"
               for row in benchmarks.itertuples()],
        series=[" · ".join(str(p) for p in (row.implementation, row.spec_label, f"D={row.d}") if p is not None)
                for row in benchmarks.itertuples()],
    )
    keys = ["device"] + (["run_label"] if (table.groupby("device")["run_id"].nunique() > 1).any() else [])
    tables = []
    for key, of_device in table.groupby(keys, sort=True):
        grid = of_device.pivot_table(index="series", columns="n", values="shown", aggfunc="first").fillna("")
        tables.append(Table(" · ".join(map(str, key)), ["implementation"] + [f"N={n}" for n in grid.columns],
                            [[series] + list(values) for series, values in zip(grid.index, grid.values.tolist())]))
    return tables


"""The benchmark tables under the charts: per device, implementation x N, time and peak memory in one cell; then,
per device, how far ahead the in-house implementation is: the fastest peer's time over its time, and its time over
one N x N x D matmul's (the physical floor), per task and N; where the task's least work was measured (the softmax and
similarity families: benchmarks/tasks.py), the fastest peer's time over it, the most any implementation doing that
work could be ahead."""
from __future__ import annotations

import math

import pandas as pd

from ..reader import number
from ..schema import LEAST_WORK, NOT_PEERS, OURS, columns
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
        ratios = ratio_table(of_device)
        if ratios is not None:
            title = f"{' · '.join(map(str, key))} · {OURS} against the fastest peer, the matmul and the least work"
            tables.append(Table(title, *ratios))
    return tables


def ratio_table(rows: pd.DataFrame):
    """(header, rows) per task, D and N where inhouse.torch was timed: its time, the fastest peer (its time over
    ours), ours over the matmul's, and the task's least work (the fastest peer's time over it); "no peer" where no
    peer computes the task or none finished, "—" where a number is missing."""
    ok = rows[(rows["status"] == "ok") & rows["seconds"].map(lambda v: number(v) is not None)]
    ours = ok[ok["implementation"] == OURS]
    if ours.empty:
        return None
    out = []
    for row in ours.sort_values(["task", "d", "n"]).itertuples():
        same = ok[(ok["task"] == row.task) & (ok["d"] == row.d) & (ok["n"] == row.n)]
        peers = same[~same["implementation"].isin(NOT_PEERS)]
        mine = number(row.seconds)
        least = same[same["implementation"] == LEAST_WORK]["seconds"].map(number)
        least = least.iloc[0] if len(least) else None
        if peers.empty:
            tried = rows[(rows["task"] == row.task) & (rows["d"] == row.d) & (rows["n"] == row.n)
                         & ~rows["implementation"].isin(NOT_PEERS)]
            peer = "no peer" + (" finished: " + ", ".join(f"{r.implementation} {r.status}" for r in tried.itertuples())
                                if len(tried) else " computes it")
            speedup = ceiling = "—"
        else:
            fastest = peers.loc[peers["seconds"].map(number).idxmin()]
            peer = f"{fastest['implementation']} {duration(fastest['seconds'])}"
            speedup = f"{number(fastest['seconds']) / mine:.3g}x"
            ceiling = f"{number(fastest['seconds']) / least:.3g}x" if least else "—"
        matmul = number(row.reference_seconds)
        floor = f"{mine / matmul:.3g}x" if matmul else "—"
        out.append([row.task, f"D={row.d}", f"N={int(number(row.n))}", duration(mine), peer, speedup, floor,
                    duration(least) if least else "—", ceiling])
    return ["task", "D", "N", OURS, "fastest peer", "peer / in-house", "in-house / matmul", "least work",
            "peer / least work"], out


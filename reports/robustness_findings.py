"""The measured robustness findings as one Markdown table, for a resolution report or a README:

    python -m reports.robustness_findings reports/results/robustness-cpu.jsonl

One row per implementation x loss x distance x dtype x device: from which offset the loss error exceeds the
dtype's value tolerance and its bound, from which near-duplicate distance it leaves its bound or goes
non-finite, at which scales it leaves its bound, goes non-finite or collapses (underflow: it answers
as if every distance were 0), and from which temperature it leaves its bound or goes non-finite. Levels are read
in order of stress (reports.sections.robustness.stress).
"""
from __future__ import annotations

import argparse
import sys

import pandas as pd

from . import describe
from .model import build_report
from .sections.robustness import stress
from .reader import read_results

KEYS = ["adapter", "loss", "distance", "dtype", "device"]


def _is_false(column: pd.Series) -> pd.Series:
    return column.map(lambda v: v is False)


def _is_true(column: pd.Series) -> pd.Series:
    return column.map(lambda v: v is True)


# (column, sweep, which points, the first of them in order of stress or every one)
FINDINGS = (
    ("offset: loss > tolerance from", "offset", lambda p: _is_false(p["within_tolerance"]), True),
    ("offset: beyond bound from", "offset", lambda p: p["flagged"], True),
    ("offset: non-finite from", "offset", lambda p: p["broken"], True),
    ("near-dup: beyond bound from", "near_duplicate", lambda p: p["flagged"], True),
    ("near-dup: non-finite from", "near_duplicate", lambda p: p["broken"], True),
    ("scale: beyond bound at", "scale", lambda p: p["flagged"], False),
    ("scale: non-finite or collapsed at", "scale", lambda p: p["broken"] | _is_true(p["collapsed"]), False),
    ("temperature: beyond bound from", "temperature", lambda p: p["flagged"], True),
    ("temperature: non-finite from", "temperature", lambda p: p["broken"], True),
)
COLUMNS = ["implementation", "loss", "distance", "dtype", "device", *(finding[0] for finding in FINDINGS)]


def _levels(points: pd.DataFrame, first_only: bool) -> str:
    if points.empty:
        return "—"
    ordered = points.assign(order=[stress(s, x) for s, x in zip(points["sweep"], points["x"])]).sort_values("order")
    shown = list(dict.fromkeys(describe.scientific(x) for x in ordered["x"]))
    return shown[0] if first_only else ", ".join(sorted(shown, key=float))


def findings(robustness: pd.DataFrame) -> pd.DataFrame:
    measured = robustness[robustness["measured"]]
    rows = []
    for key, points in measured.groupby(KEYS, sort=True, dropna=False):
        row = list(key)
        for _, sweep, which, first_only in FINDINGS:
            of_sweep = points[points["sweep"] == sweep]
            row.append(_levels(of_sweep[which(of_sweep)], first_only))
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def markdown(table: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports.robustness_findings", description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", help="results files (JSON lines) holding robustness records")
    args = parser.parse_args(argv)
    robustness = build_report(read_results(args.results)).robustness
    if robustness.empty:
        print("no robustness records in these files", file=sys.stderr)
        return 1
    print(markdown(findings(robustness)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

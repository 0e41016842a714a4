"""The edge-case table: per implementation, spec, dtype and device, what each degenerate batch gave, beside
what the oracle gives."""
from __future__ import annotations

import math
from dataclasses import dataclass

from .. import describe
from ..schema import EDGE_CASES, columns
from .common import add_variants, frame, ordered, text_of
from .runs import RunView

EDGE_COLUMNS = columns("edge_case")


@dataclass
class EdgeVariant:
    label: str
    outcome: str
    text: str
    oracle: str
    mismatch: bool
    title: str


@dataclass
class EdgeRow:
    adapter: str
    spec_label: str
    dtype: str
    device: str
    cells: list[list[EdgeVariant]]


@dataclass
class EdgeTable:
    cases: list[str]
    rows: list[EdgeRow]
    mismatches: int


def _outcome_text(outcome: str, loss, error: str) -> str:
    if outcome == "value":
        return describe.scientific(loss, 4)
    if outcome == "error":
        return "error: " + (error.split(":")[0] if error else "?")
    return {"nan": "NaN", "inf": "inf"}[outcome]


def build_edge_cases(records: list[dict], runs: dict[str, RunView]) -> EdgeTable:
    table = frame(records, EDGE_COLUMNS)
    if table.empty:
        return EdgeTable([], [], 0)
    keys = ["adapter", "spec_label", "dtype", "device", "case"]
    table = add_variants(table, runs, keys, lambda row: row.run_label)
    cases = ordered(table["case"], EDGE_CASES)
    rows = []
    for (adapter, spec_label, dtype, device), of_row in table.groupby(keys[:-1], sort=True, dropna=False):
        cells = []
        for case in cases:
            variants = []
            for row in of_row[of_row["case"] == case].itertuples():
                oracle = describe.number(row.oracle_loss)
                oracle_text = "NaN" if oracle is not None and math.isnan(oracle) else describe.scientific(oracle, 4)
                mismatch = row.matches_oracle is False
                title = "\n".join(v for v in (
                    f"{case}: {row.outcome}" + (f" {describe.full(row.loss)}" if row.outcome == "value" else ""),
                    text_of(row.error), f"oracle {oracle_text}",
                    "gradient finite" if row.grad_finite is True else ("gradient not finite" if row.grad_finite is False else ""),
                    "DIFFERS from the oracle" if mismatch else "", f"run {row.run_label}") if v)
                variants.append(EdgeVariant(row.variant, row.outcome, _outcome_text(row.outcome, row.loss, text_of(row.error)),
                                            oracle_text, mismatch, title))
            cells.append(variants)
        rows.append(EdgeRow(adapter, spec_label, text_of(dtype), text_of(device), cells))
    return EdgeTable(cases, rows, int((table["matches_oracle"] == False).sum()))  # noqa: E712 (None is not False)


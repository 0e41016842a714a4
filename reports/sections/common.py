"""What every section shares: the verdict vocabulary, canonical orders, records as tables, and run labels."""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from contract.dtypes import NAMES as DTYPE_NAMES
from contract.targets import NAMES as TARGET_NAMES

SEVERITY = ("error", "fail", "xpass", "xfail", "ambiguous", "skip", "pass")  # worst first
DISCREPANT = ("fail", "error")
DECIDED = ("pass", "xfail", "xpass")
VERDICT_LABELS = {
    "pass": "pass",
    "fail": "fail",
    "xfail": "known divergence",
    "xpass": "unexpected pass",
    "skip": "skipped",
    "ambiguous": "ambiguous only",
    "error": "error",
}
VERDICT_MEANINGS = {
    "pass": "every example within tolerance; the number is the worst error as a multiple of the tolerance",
    "fail": "an example beyond tolerance: a discrepancy (click for the counterexample)",
    "xfail": "differs as a registered divergence says it does",
    "xpass": "a registered divergence no longer reproduces: the registry entry is stale",
    "skip": "not run here (reason on hover and in the footnotes)",
    "ambiguous": "every example sat on a decision point the dtype cannot resolve; accepted, nothing decided",
    "error": "the implementation raised (click for the message)",
}
GLYPHS = {"pass": "✓", "fail": "✗", "xfail": "◇", "xpass": "!", "skip": "–", "ambiguous": "?", "error": "⚠"}
DTYPE_ORDER = DTYPE_NAMES  # contract/dtypes.py: most precise first
DEVICE_ORDER = TARGET_NAMES  # contract/targets.py
QUANTITY_ORDER = ("loss", "grad")
QUANTITY_WORDS = {"loss": "loss", "grad": "gradient"}


def ordered(values, preferred) -> list:
    """The known values in their canonical order, then any others alphabetically."""
    present = [v for v in dict.fromkeys(values) if v is not None]
    return [v for v in preferred if v in present] + sorted(v for v in present if v not in preferred)


def text_of(value) -> str:
    """A record's value as text: nothing for a missing one, alternatives (a list of patterns) joined."""
    if isinstance(value, (list, tuple)):
        return " or ".join(text_of(item) for item in value)
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def frame(records: list[dict], columns) -> pd.DataFrame:
    """Records as an object-dtype DataFrame with every expected column: a field a record lacks is None,
    never NaN, so "not recorded" and a recorded NaN stay apart."""
    names = list(dict.fromkeys([*columns, *(name for record in records for name in record)]))
    return pd.DataFrame([[record.get(name) for name in names] for record in records], columns=names, dtype=object)


def add_variants(table: pd.DataFrame, runs: dict, cell_keys: list[str], describe_row) -> pd.DataFrame:
    """Label each row with what tells it apart from other runs of the same cell (version, target, run)."""
    table = table.copy()
    table["run_label"] = table["run_id"].map(lambda r: runs[r].label)
    table["variant"] = [describe_row(row) for row in table.itertuples()]
    if not table.empty:
        repeated = table.groupby(cell_keys + ["variant"], dropna=False)["run_id"].transform("nunique") > 1
        table.loc[repeated, "variant"] = table.loc[repeated, "variant"] + " · " + table.loc[repeated, "run_label"]
    return table


@dataclass
class Table:
    """A plain table the page lays out under a chart."""

    caption: str
    header: list[str]
    rows: list[list[str]]

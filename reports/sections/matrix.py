"""The conformance matrix (implementation x spec rows, dtype x device columns, a chip per quantity and run)
and drift: the same cell with different verdicts in different runs (framework versions, yesterday's run)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd

from .. import describe
from ..schema import columns
from .common import (DECIDED, DEVICE_ORDER, DISCREPANT, DTYPE_ORDER, GLYPHS, QUANTITY_ORDER, QUANTITY_WORDS,
                     VERDICT_LABELS, ordered, text_of)

COMPARISON_COLUMNS = columns("comparison")
CELL_KEYS = ["adapter", "spec_label", "dtype", "device", "quantity"]  # one matrix cell's comparison records


def comparison_variant(row) -> str:
    return " · ".join(v for v in (text_of(row.version), text_of(row.target)) if v) or row.run_label


@dataclass
class Chip:
    quantity: str
    verdict: str  # a verdict, or "missing" where the run recorded nothing for this quantity
    text: str
    title: str
    footnote: int | None = None
    href: str | None = None


@dataclass
class Variant:
    label: str  # only what tells it apart from the cell's other variants, e.g. "tensorflow 2.15.1"
    full_label: str
    chips: list[Chip]


def distinguishing(labels) -> dict[str, str]:
    """Each label shortened to the parts ("a + b · c") not shared by all of them; whole where nothing remains."""
    parts = {label: [p for chunk in label.split(" · ") for p in chunk.split(" + ")] for label in labels}
    shared = set.intersection(*(set(p) for p in parts.values())) if parts else set()
    return {label: " · ".join(p for p in own if p not in shared) or label for label, own in parts.items()}


@dataclass
class MatrixCell:
    variants: list[Variant]
    drift: bool


@dataclass
class MatrixRow:
    spec_label: str
    spec_words: str
    cells: list[MatrixCell | None]


@dataclass
class MatrixGroup:
    adapter: str
    framework: str
    status: str  # "conforms", "conforms, with N known divergences", "discrepant", "not checked"
    rows: list[MatrixRow]
    known: list[str] = field(default_factory=list)  # registry ids its cells met, and its declared precision
    precision: str = "direct"  # how precisely it declares it computes distances (contract/precision.py)

    @property
    def anchor(self) -> str:
        return implementation_anchor(self.adapter)

    @property
    def status_class(self) -> str:
        """The badge's CSS class: a registered divergence or a declared widening reads differently from none."""
        return "conforms-known" if self.status.startswith("conforms,") else self.status.replace(" ", "-")


@dataclass
class Matrix:
    columns: list[tuple[str, str]]  # (dtype, device)
    dtype_spans: list[tuple[str, int]]
    groups: list[MatrixGroup]
    footnotes: list[str]  # skip reasons; a chip's footnote n refers to footnotes[n - 1]


@dataclass
class DriftItem:
    adapter: str
    spec_label: str
    dtype: str
    device: str
    quantity: str
    variants: list[tuple[str, str, str]]  # (variant, verdict, error multiple)


def implementation_anchor(adapter: str) -> str:
    """The id of an implementation's rows in the page, which docs/migration-from-tf-addons.md links to."""
    return "impl-" + re.sub(r"[^A-Za-z0-9]+", "-", adapter).strip("-").lower()


def implementation_status(verdicts, known: int = 0) -> str:
    """"conforms" only where nothing is registered or declared; with registered divergences (or a declared
    precision widening) "conforms, with N known divergences"."""
    verdicts = set(verdicts)
    if verdicts & set(DISCREPANT):
        return "discrepant"
    if not verdicts & set(DECIDED):
        return "not checked"
    return f"conforms, with {known} known divergence{'s' if known != 1 else ''}" if known else "conforms"


def known_divergences(of_adapter: pd.DataFrame) -> tuple[list[str], str]:
    """(the registry ids its cells met, and its declared precision) -- a declared widening counts as one."""
    ids = sorted({part.strip() for text in of_adapter["divergence"].dropna() for part in str(text).split(",")
                  if part.strip()})
    declared = {text_of(p) for p in of_adapter.get("precision", pd.Series(dtype=object)).dropna()} - {"", "direct"}
    precision = ", ".join(sorted(declared)) or "direct"
    return ids + [f"precision: {p}" for p in sorted(declared)], precision


def dtype_model_text(tolerance: dict, dtype: str) -> str:
    """On a target that rounds matmul inputs (cuda-tf32): whether the cell also stayed within the plain dtype's model."""
    bits = tolerance.get("matmul_mantissa_bits")
    worst = describe.number(tolerance.get("dtype_model_error"))
    worst_text = f" (worst {describe.multiple(worst)}× its tolerance)" if worst is not None else ""
    within = tolerance.get("within_dtype_model")
    if within is True:
        return f"judged with matmul inputs at {bits} mantissa bits; stayed within the plain {dtype} model{worst_text}"
    if within is False:
        return f"judged with matmul inputs at {bits} mantissa bits; beyond the plain {dtype} model{worst_text}"
    return f"judged with matmul inputs at {bits} mantissa bits; the plain {dtype} model could not be compared"


def examples_text(row) -> str:
    """"20 examples, 3 ambiguous (soft_underflow 3)": the cell's examples, and per decision kind (reference/gaps.py)
    those that kind made ambiguous, i.e. decided within the dtype's rounding (older records: the total only)."""
    ambiguous = describe.number(row.ambiguous_examples) or 0
    kinds = row.ambiguous_kinds
    by_kind = ", ".join(f"{kind} {count}" for kind, count in kinds.items()) if isinstance(kinds, dict) else ""
    return f"{int(row.examples)} examples" + (f", {int(ambiguous)} ambiguous" if ambiguous else "") + (
        f" ({by_kind})" if ambiguous and by_kind else "")


def _chip_title(row) -> str:
    tolerance = row.tolerance if isinstance(row.tolerance, dict) else {}
    lines = [f"{QUANTITY_WORDS.get(row.quantity, row.quantity)}: {VERDICT_LABELS[row.verdict]}"]
    if describe.number(row.normalized_error) is not None:
        lines.append(f"worst error {describe.multiple(row.normalized_error)}× tolerance "
                     f"({describe.tolerance_text(tolerance)})")
    if "matmul_mantissa_bits" in tolerance:  # a reduced-precision matmul target (cuda-tf32): the plain model too
        lines.append(dtype_model_text(tolerance, row.dtype))
    if describe.number(row.examples):
        lines.append(examples_text(row))
    if text_of(row.reason):
        lines.append(text_of(row.reason))
    if text_of(row.divergence):
        lines.append(f"registered divergence: {row.divergence}")
    lines.append(f"{row.variant} — run {row.run_label}")
    return "\n".join(lines)


def _chip(row, footnotes: dict[str, int], anchors: dict[int, str]) -> Chip:
    number = footnotes.setdefault(text_of(row.reason) or "no reason given", len(footnotes) + 1) \
        if row.verdict == "skip" else None
    shown = {"skip": "skip", "ambiguous": "amb.", "error": "error"}.get(row.verdict) or (
        f"{describe.multiple(row.normalized_error)}×" if describe.number(row.normalized_error) is not None
        else VERDICT_LABELS[row.verdict])
    return Chip(row.quantity, row.verdict, f"{GLYPHS[row.verdict]} {shown}", _chip_title(row), number,
                anchors.get(row.Index))


def build_matrix(comparisons: pd.DataFrame, anchors: dict[int, str]) -> tuple[Matrix, list[DriftItem]]:
    columns = [(dtype, device)
               for dtype in ordered(comparisons["dtype"], DTYPE_ORDER)
               for device in ordered(comparisons["device"], DEVICE_ORDER)
               if ((comparisons["dtype"] == dtype) & (comparisons["device"] == device)).any()]
    spans = [(dtype, sum(1 for d, _ in columns if d == dtype)) for dtype in dict.fromkeys(d for d, _ in columns)]
    footnotes: dict[str, int] = {}
    drift: list[DriftItem] = []
    groups = []
    for adapter, of_adapter in comparisons.groupby("adapter", sort=True):
        rows = []
        for spec_label, of_spec in of_adapter.groupby("spec_label", sort=False):
            cells: list[MatrixCell | None] = []
            for dtype, device in columns:
                here = of_spec[(of_spec["dtype"] == dtype) & (of_spec["device"] == device)]
                cells.append(_cell(here, footnotes, anchors, drift) if not here.empty else None)
            first = of_spec.iloc[0]
            rows.append(MatrixRow(spec_label, describe.describe_spec(first["spec"], spec_label), cells))
        known, precision = known_divergences(of_adapter)
        groups.append(MatrixGroup(adapter, text_of(of_adapter["framework"].dropna().iloc[0])
                                  if of_adapter["framework"].notna().any() else "",
                                  implementation_status(of_adapter["verdict"], len(known)), rows, known, precision))
    ordered_notes = [reason for reason, _ in sorted(footnotes.items(), key=lambda item: item[1])]
    return Matrix(columns, spans, groups, ordered_notes), drift


def _cell(here: pd.DataFrame, footnotes, anchors, drift: list[DriftItem]) -> MatrixCell:
    quantities = ordered(here["quantity"], QUANTITY_ORDER)
    short = distinguishing(here["variant"].unique())
    variants = []
    for label, of_variant in here.groupby("variant", sort=True):
        chips = []
        for quantity in quantities:
            found = [row for row in of_variant.itertuples() if row.quantity == quantity]
            chips += [_chip(row, footnotes, anchors) for row in found] or [
                Chip(quantity, "missing", "·", f"no {QUANTITY_WORDS.get(quantity, quantity)} record in this run")]
        variants.append(Variant(short[label], label, chips))
    drifted = False
    for quantity, of_quantity in here.groupby("quantity", sort=False):
        decided = of_quantity[of_quantity["verdict"] != "skip"]
        if decided["variant"].nunique() > 1 and decided["verdict"].nunique() > 1:
            drifted = True
            first = of_quantity.iloc[0]
            drift.append(DriftItem(first["adapter"], first["spec_label"], first["dtype"], first["device"],
                                   quantity, [(row.variant, row.verdict, describe.multiple(row.normalized_error))
                                              for row in of_quantity.itertuples()]))
    return MatrixCell(variants, drifted)


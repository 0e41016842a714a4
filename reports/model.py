"""What the page shows, computed from the merged records: runs, summary, matrix, discrepancies, drift,
edge cases, known divergences, and the tables under the plots. pandas does the grouping; the
template only lays the result out. Each section is a module of reports/sections/; `build_report`
assembles them into one `Report`, and the names below stay importable from here.

Definitions the page and the README use:
  discrepancy   a comparison cell whose verdict is "fail" or "error" (an unregistered difference)
  conforms      an implementation none of whose cells is a discrepancy, with at least one cell decided
                (pass, or a registered divergence: xfail / xpass). Skipped and ambiguous-only cells say
                nothing either way: they are shown, not counted for or against it
  not checked   an implementation whose cells were all skipped or ambiguous-only
  drift         the same cell (adapter, spec, dtype, device, quantity) with different verdicts in
                different runs (two framework versions, yesterday's run), skips left out
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .reader import Loaded, Problem
from .sections.benchmarks import BENCHMARK_COLUMNS, benchmark_tables, duration, size
from .sections.common import (DECIDED, DEVICE_ORDER, DISCREPANT, DTYPE_ORDER, GLYPHS, QUANTITY_ORDER,
                              QUANTITY_WORDS, SEVERITY, VERDICT_LABELS, VERDICT_MEANINGS, Table, add_variants, frame)
from .sections.discrepancies import ArrayView, Discrepancy, build_discrepancies
from .sections.divergences import DivergenceView, build_divergences, safe_link
from .sections.edge_cases import EDGE_COLUMNS, EdgeRow, EdgeTable, EdgeVariant, build_edge_cases
from .sections.matrix import (CELL_KEYS, COMPARISON_COLUMNS, Chip, DriftItem, Matrix, MatrixCell, MatrixGroup,
                              MatrixRow, Variant, build_matrix, comparison_variant, distinguishing,
                              implementation_status, known_divergences)
from .sections.robustness import (ROBUSTNESS_COLUMNS, SERIES_HEADER, robustness_first_exceeded, robustness_points,
                                  robustness_series_keys, stress)
from .sections.runs import RunView, build_runs, describe_target
from .sections.summary import Summary, build_summary

__all__ = [
    "BENCHMARK_COLUMNS", "CELL_KEYS", "COMPARISON_COLUMNS", "DECIDED", "DEVICE_ORDER", "DISCREPANT", "DTYPE_ORDER",
    "EDGE_COLUMNS", "GLYPHS", "QUANTITY_ORDER", "QUANTITY_WORDS", "ROBUSTNESS_COLUMNS", "SERIES_HEADER", "SEVERITY",
    "VERDICT_LABELS", "VERDICT_MEANINGS", "ArrayView", "Chip", "Discrepancy", "DivergenceView", "DriftItem",
    "EdgeRow", "EdgeTable", "EdgeVariant", "Matrix", "MatrixCell", "MatrixGroup", "MatrixRow", "Report", "RunView",
    "Summary", "Table", "Variant", "add_variants", "benchmark_tables", "build_discrepancies", "build_divergences",
    "build_edge_cases", "build_matrix", "build_report", "build_runs", "build_summary", "comparison_variant",
    "describe_target", "distinguishing", "duration", "frame", "implementation_status", "known_divergences", "robustness_first_exceeded",
    "robustness_points", "robustness_series_keys", "safe_link", "size", "stress",
]


@dataclass
class Report:
    runs: list[RunView]
    problems: list[Problem]
    summary: Summary
    matrix: Matrix
    drift: list[DriftItem]
    discrepancies: list[Discrepancy]
    edge_cases: EdgeTable
    divergences: list[DivergenceView]
    comparisons: pd.DataFrame
    robustness: pd.DataFrame
    benchmarks: pd.DataFrame
    records: int


def build_report(loaded: Loaded) -> Report:
    comparisons = frame(loaded.of_kind("comparison"), COMPARISON_COLUMNS)
    runs = build_runs(loaded, comparisons)
    comparisons = add_variants(comparisons, runs, CELL_KEYS, comparison_variant)
    discrepancies, anchors = build_discrepancies(comparisons)
    matrix, drift = build_matrix(comparisons, anchors)
    with_labels = {kind: frame(loaded.of_kind(kind), columns).assign(
        run_label=lambda t: t["run_id"].map(lambda r: runs[r].label))
        for kind, columns in (("robustness", ROBUSTNESS_COLUMNS), ("benchmark", BENCHMARK_COLUMNS))}
    return Report(
        runs=list(runs.values()),
        problems=loaded.problems,
        summary=build_summary(matrix, discrepancies, comparisons),
        matrix=matrix,
        drift=drift,
        discrepancies=discrepancies,
        edge_cases=build_edge_cases(loaded.of_kind("edge_case"), runs),
        divergences=build_divergences(loaded.of_kind("divergence"), runs, comparisons),
        comparisons=comparisons,
        robustness=robustness_points(with_labels["robustness"]),
        benchmarks=with_labels["benchmark"],
        records=len(loaded.entries),
    )

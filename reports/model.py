"""What the page shows, computed from the merged records: runs, summary, matrix, discrepancies, drift,
edge cases, known divergences, and the tables under the plots. pandas does the grouping; the
template only lays the result out.

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

import datetime as _dt
import math
import re
from dataclasses import dataclass, field
from urllib.parse import urlparse

import numpy as np
import pandas as pd

from . import describe
from .reader import Loaded, Problem, number
from .schema import EDGE_CASES

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
DTYPE_ORDER = ("float64", "float32", "float16", "bfloat16")
DEVICE_ORDER = ("cpu", "cuda")
QUANTITY_ORDER = ("loss", "grad")
QUANTITY_WORDS = {"loss": "loss", "grad": "gradient"}


def _ordered(values, preferred) -> list:
    """The known values in their canonical order, then any others alphabetically."""
    present = [v for v in dict.fromkeys(values) if v is not None]
    return [v for v in preferred if v in present] + sorted(v for v in present if v not in preferred)


def _text(value) -> str:
    """A record's value as text: nothing for a missing one, alternatives (a list of patterns) joined."""
    if isinstance(value, (list, tuple)):
        return " or ".join(_text(item) for item in value)
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


GITHUB_SHORTHAND = re.compile(r"\b([\w.-]+/[\w.-]+)#(\d+)\b")  # pytorch/pytorch#61538
WEB_URL = re.compile(r"https?://[^\s;,<>\"']+")


def safe_link(text) -> str | None:
    """Where an upstream reference may link: the first http(s) URL in it, else a GitHub "owner/repo#N"
    shorthand as its issue URL, else nothing (a javascript: or data: URL never becomes a link)."""
    if not isinstance(text, str):
        return None
    for url in WEB_URL.findall(text):
        parsed = urlparse(url)
        if parsed.scheme in ("http", "https") and parsed.netloc:
            return url
    shorthand = GITHUB_SHORTHAND.search(text)
    return f"https://github.com/{shorthand[1]}/issues/{shorthand[2]}" if shorthand else None


# ---------------------------------------------------------------------------------------------- runs
@dataclass
class RunView:
    run_id: str
    label: str
    sources: list[str]
    environment: str
    started: str
    git_revision: str
    host: str
    python: str
    hypothesis: str
    frameworks: list[str]
    targets: list[str]
    dtypes: list[str]
    examples: str
    status: str  # "complete", "interrupted", or "no header"
    status_detail: str

    @property
    def partial(self) -> bool:
        return self.status != "complete"


def _hypothesis_text(settings) -> str:
    if not isinstance(settings, dict):
        return "unknown"
    profile = settings.get("profile") or "default"
    if settings.get("seed") is not None:
        seed = f"seed {settings['seed']}"
    else:
        seed = "derandomised" if settings.get("derandomize") else "random seed (not recorded)"
    limit = settings.get("max_examples")
    return f"profile {profile} · {seed}" + (f" · at most {limit} examples" if limit is not None else "")


def _examples_text(examples: pd.Series) -> str:
    counts = pd.to_numeric(examples, errors="coerce").dropna()
    counts = counts[counts > 0]
    if counts.empty:
        return "—"
    low, mid, high = int(counts.min()), int(counts.median()), int(counts.max())
    return str(low) if low == high else f"{low}–{high} (median {mid})"


def _when(timestamp) -> str:
    try:
        return _dt.datetime.fromisoformat(str(timestamp)).astimezone(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return _text(timestamp) or "—"


def _status(header: dict | None, end: dict | None) -> tuple[str, str]:
    if header is None:
        return "no header", "its 'run' header record was not read: environment and settings unknown"
    if end is None:
        return "interrupted", "no run_end record: the run stopped before it finished, its results are partial"
    duration = describe.scientific(end.get("duration_s"), 4)
    if end.get("interrupted"):
        return "interrupted", f"stopped by the user after {duration} s; its results are partial"
    return "complete", f"finished in {duration} s, pytest exit status {end.get('exit_status', '?')}"


def build_runs(loaded: Loaded, comparisons: pd.DataFrame) -> dict[str, RunView]:
    headers = {r["run_id"]: r for r in loaded.of_kind("run")}
    ends = {r["run_id"]: r for r in loaded.of_kind("run_end")}
    sources: dict[str, list[str]] = {}
    for entry in loaded.entries:
        sources.setdefault(entry.record["run_id"], [])
        if entry.source not in sources[entry.record["run_id"]]:
            sources[entry.record["run_id"]].append(entry.source)
    runs = {}
    for run_id, files in sources.items():
        header = headers.get(run_id) or {}
        mine = comparisons[comparisons["run_id"] == run_id]
        # The header's {name: version}; without one (older runs), what the adapters reported.
        frameworks = [f"{name} {version}" for name, version in (header.get("frameworks") or {}).items()] or [
            v for v in mine["version"].dropna().unique() if v]
        targets = [describe_target(t) for t in header.get("devices") or []]
        status, detail = _status(headers.get(run_id), ends.get(run_id))
        runs[run_id] = RunView(
            run_id=run_id,
            label=_text(header.get("environment")) or _text(header.get("hostname")) or run_id,
            sources=files,
            environment=_text(header.get("environment")) or "—",
            started=_when(header.get("started")),
            git_revision=_text(header.get("git_revision")) or "—",
            host=_text(header.get("hostname")) or "—",
            python=_text(header.get("python")) or "—",
            hypothesis=_hypothesis_text(header.get("hypothesis")),
            frameworks=frameworks,
            targets=list(dict.fromkeys(targets + [t for t in mine["target"].dropna().unique() if t])),
            dtypes=_ordered(mine["dtype"], DTYPE_ORDER),
            examples=_examples_text(mine.loc[mine["verdict"] != "skip", "examples"]),
            status=status,
            status_detail=detail,
        )
    labels = [r.label for r in runs.values()]
    for run in runs.values():  # two runs of one environment (yesterday's and today's): tell them apart by date
        if labels.count(run.label) > 1:
            run.label = f"{run.label} ({run.started[:16] if run.started != '—' else run.run_id})"
    return runs


def describe_target(target) -> str:
    """An execution target as the header lists it: a string, or the array-api-tests style dict."""
    if isinstance(target, dict):
        return " ".join(str(v) for v in target.values() if v not in (None, ""))
    return str(target)


# ---------------------------------------------------------------------------------------------- frames
COMPARISON_COLUMNS = (
    "run_id", "adapter", "framework", "spec", "spec_label", "dtype", "device", "target", "version", "quantity",
    "verdict", "reason", "examples", "ambiguous_examples", "max_abs", "max_rel", "max_ulp", "normalized_error",
    "errors", "tolerance", "divergence", "counterexample",
)


def frame(records: list[dict], columns) -> pd.DataFrame:
    """Records as an object-dtype DataFrame with every expected column: a field a record lacks is None,
    never NaN, so "not recorded" and a recorded NaN stay apart."""
    names = list(dict.fromkeys([*columns, *(name for record in records for name in record)]))
    return pd.DataFrame([[record.get(name) for name in names] for record in records], columns=names, dtype=object)


def add_variants(table: pd.DataFrame, runs: dict[str, RunView], cell_keys: list[str], describe_row) -> pd.DataFrame:
    """Label each row with what tells it apart from other runs of the same cell (version, target, run)."""
    table = table.copy()
    table["run_label"] = table["run_id"].map(lambda r: runs[r].label)
    table["variant"] = [describe_row(row) for row in table.itertuples()]
    if not table.empty:
        repeated = table.groupby(cell_keys + ["variant"], dropna=False)["run_id"].transform("nunique") > 1
        table.loc[repeated, "variant"] = table.loc[repeated, "variant"] + " · " + table.loc[repeated, "run_label"]
    return table


def _comparison_variant(row) -> str:
    return " · ".join(v for v in (_text(row.version), _text(row.target)) if v) or row.run_label


# ---------------------------------------------------------------------------------------------- matrix
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
    status: str  # "conforms", "discrepant", "not checked"
    rows: list[MatrixRow]


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


def implementation_status(verdicts) -> str:
    verdicts = set(verdicts)
    if verdicts & set(DISCREPANT):
        return "discrepant"
    return "conforms" if verdicts & set(DECIDED) else "not checked"


def _chip_title(row) -> str:
    tolerance = row.tolerance if isinstance(row.tolerance, dict) else {}
    lines = [f"{QUANTITY_WORDS.get(row.quantity, row.quantity)}: {VERDICT_LABELS[row.verdict]}"]
    if describe.number(row.normalized_error) is not None:
        lines.append(f"worst error {describe.multiple(row.normalized_error)}× tolerance "
                     f"({describe.tolerance_text(tolerance)})")
    if describe.number(row.examples):
        ambiguous = describe.number(row.ambiguous_examples) or 0
        lines.append(f"{int(row.examples)} examples" + (f", {int(ambiguous)} ambiguous" if ambiguous else ""))
    if _text(row.reason):
        lines.append(_text(row.reason))
    if _text(row.divergence):
        lines.append(f"registered divergence: {row.divergence}")
    lines.append(f"{row.variant} — run {row.run_label}")
    return "\n".join(lines)


def _chip(row, footnotes: dict[str, int], anchors: dict[int, str]) -> Chip:
    number = footnotes.setdefault(_text(row.reason) or "no reason given", len(footnotes) + 1) \
        if row.verdict == "skip" else None
    shown = {"skip": "skip", "ambiguous": "amb.", "error": "error"}.get(row.verdict) or (
        f"{describe.multiple(row.normalized_error)}×" if describe.number(row.normalized_error) is not None
        else VERDICT_LABELS[row.verdict])
    return Chip(row.quantity, row.verdict, f"{GLYPHS[row.verdict]} {shown}", _chip_title(row), number,
                anchors.get(row.Index))


def build_matrix(comparisons: pd.DataFrame, anchors: dict[int, str]) -> tuple[Matrix, list[DriftItem]]:
    columns = [(dtype, device)
               for dtype in _ordered(comparisons["dtype"], DTYPE_ORDER)
               for device in _ordered(comparisons["device"], DEVICE_ORDER)
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
        groups.append(MatrixGroup(adapter, _text(of_adapter["framework"].dropna().iloc[0])
                                  if of_adapter["framework"].notna().any() else "",
                                  implementation_status(of_adapter["verdict"]), rows))
    ordered_notes = [reason for reason, _ in sorted(footnotes.items(), key=lambda item: item[1])]
    return Matrix(columns, spans, groups, ordered_notes), drift


def _cell(here: pd.DataFrame, footnotes, anchors, drift: list[DriftItem]) -> MatrixCell:
    quantities = _ordered(here["quantity"], QUANTITY_ORDER)
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


# ---------------------------------------------------------------------------------------------- discrepancies
@dataclass
class ArrayView:
    name: str
    text: str
    rows: int


@dataclass
class Discrepancy:
    anchor: str
    adapter: str
    spec_label: str
    spec_words: str
    dtype: str
    device: str
    quantity: str
    verdict: str
    variant: str
    run_label: str
    reason: str
    error: str
    max_abs: str
    max_rel: str
    max_ulp: str
    tolerance: str
    examples: str
    oracle_value: str
    impl_value: str
    worst_element: str
    inputs: list[ArrayView]
    gradients: list[ArrayView]
    selection: str
    gap: str
    layout: str  # how the strategy built the batch (clustered, near-ties, ...), where the record says
    reproducer: str


def _worst_element(oracle, impl) -> str:
    """Where the two gradients differ most, with both values: the first thing a reader looks for."""
    if oracle is None or impl is None or oracle.shape != impl.shape or oracle.size == 0:
        return ""
    difference = np.abs(impl.astype(float) - oracle.astype(float))
    if np.isnan(difference).all():
        return "every element is NaN in one of them"
    index = np.unravel_index(int(np.nanargmax(difference)), difference.shape)
    return (f"largest difference at {[int(i) for i in index]}: oracle {describe.full(oracle[index])}, "
            f"implementation {describe.full(impl[index])}")


def build_discrepancies(comparisons: pd.DataFrame) -> tuple[list[Discrepancy], dict[int, str]]:
    found = comparisons[comparisons["verdict"].isin(DISCREPANT)].copy()
    found["_order"] = found["verdict"].map({"fail": 0, "error": 1})
    found["_error"] = found["normalized_error"].map(lambda v: describe.number(v) or 0.0)
    found = found.sort_values(["_order", "_error"], ascending=[True, False], kind="stable")
    views, anchors = [], {}
    for position, row in enumerate(found.itertuples(), start=1):
        anchor = f"discrepancy-{position}"
        anchors[row.Index] = anchor
        example = row.counterexample if isinstance(row.counterexample, dict) else {}
        arrays = {name: describe.as_array(example.get(name))
                  for name in ("embeddings", "labels", "triplets", "oracle_grad", "impl_grad", "selection")}
        tolerance = row.tolerance if isinstance(row.tolerance, dict) else {}
        loss_quantity = row.quantity == "loss"
        views.append(Discrepancy(
            anchor=anchor, adapter=row.adapter, spec_label=row.spec_label,
            spec_words=describe.describe_spec(row.spec, row.spec_label), dtype=row.dtype, device=row.device,
            quantity=QUANTITY_WORDS.get(row.quantity, row.quantity), verdict=row.verdict, variant=row.variant,
            run_label=row.run_label, reason=_text(row.reason) or _text(example.get("failure")),
            error=describe.multiple(row.normalized_error), max_abs=describe.scientific(row.max_abs),
            max_rel=describe.scientific(row.max_rel), max_ulp=describe.scientific(row.max_ulp),
            tolerance=describe.tolerance_text(tolerance) + (f" ({tolerance['source']})" if tolerance.get("source") else ""),
            examples=_text(row.examples),
            oracle_value=describe.full(example.get("oracle_loss")),
            impl_value=describe.full(example.get("impl_loss")),
            worst_element="" if loss_quantity else _worst_element(arrays["oracle_grad"], arrays["impl_grad"]),
            inputs=[ArrayView(name, describe.array_text(arrays[name]), len(arrays[name]))
                    for name in ("embeddings", "labels", "triplets") if arrays[name] is not None],
            gradients=[ArrayView(label, describe.array_text(arrays[name]), len(arrays[name]))
                       for name, label in (("oracle_grad", "oracle gradient"), ("impl_grad", "implementation gradient"))
                       if arrays[name] is not None],
            selection=describe.selection_text(arrays["selection"]) if "selection" in example else "",
            gap=describe.scientific(example.get("gap")) if "gap" in example else "",
            layout=_text(example.get("layout")),
            reproducer=_text(example.get("reproducer")),
        ))
    return views, anchors


# ---------------------------------------------------------------------------------------------- edge cases
EDGE_COLUMNS = ("run_id", "adapter", "spec_label", "dtype", "device", "case", "outcome", "loss", "grad_finite",
                "error", "oracle_loss", "matches_oracle")


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
    cases = _ordered(table["case"], EDGE_CASES)
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
                    _text(row.error), f"oracle {oracle_text}",
                    "gradient finite" if row.grad_finite is True else ("gradient not finite" if row.grad_finite is False else ""),
                    "DIFFERS from the oracle" if mismatch else "", f"run {row.run_label}") if v)
                variants.append(EdgeVariant(row.variant, row.outcome, _outcome_text(row.outcome, row.loss, _text(row.error)),
                                            oracle_text, mismatch, title))
            cells.append(variants)
        rows.append(EdgeRow(adapter, spec_label, _text(dtype), _text(device), cells))
    return EdgeTable(cases, rows, int((table["matches_oracle"] == False).sum()))  # noqa: E712 (None is not False)


# ---------------------------------------------------------------------------------------------- divergences
@dataclass
class DivergenceView:
    id: str
    adapter: str
    pattern: str
    kind: str
    reason: str
    link: str | None
    link_text: str
    state: str  # "reproduces", "no longer reproduces", "not exercised", "differs between runs"
    stale: bool
    per_run: list[tuple[str, str]]
    cells: int


def _scope(pattern) -> str:
    """Which cells an entry covers: its patterns (a dict, as adapters.divergences.Divergence has them) or text."""
    if isinstance(pattern, dict):
        return " · ".join(f"{name} {value}" for name, value in pattern.items() if _text(value) not in ("", "*")) or "*"
    return _text(pattern)


def _cited(comparisons: pd.DataFrame) -> dict[str, int]:
    """How many comparison cells cite each divergence id (a cell may cite several, comma-separated)."""
    counts: dict[str, int] = {}
    for cited in comparisons["divergence"].dropna():
        for divergence_id in str(cited).split(","):
            counts[divergence_id.strip()] = counts.get(divergence_id.strip(), 0) + 1
    return counts


def build_divergences(records: list[dict], runs: dict[str, RunView], comparisons: pd.DataFrame) -> list[DivergenceView]:
    table = frame(records, ("run_id", "id", "adapter", "pattern", "divergence_kind", "reason", "link", "reproduces"))
    cited = _cited(comparisons)
    views = []
    for divergence_id, of_id in table.groupby("id", sort=True):
        first = of_id.iloc[0]
        observed = {runs[row.run_id].label: row.reproduces for row in of_id.itertuples()}
        exercised = {v for v in observed.values() if v is not None}
        state = ("not exercised" if not exercised else "reproduces" if exercised == {True}
                 else "no longer reproduces" if exercised == {False} else "differs between runs")
        words = {True: "reproduces", False: "no longer reproduces", None: "not exercised"}
        views.append(DivergenceView(
            id=divergence_id, adapter=_text(first["adapter"]), pattern=_scope(first["pattern"]),
            kind=_text(first["divergence_kind"]), reason=_text(first["reason"]), link=safe_link(first["link"]),
            link_text=_text(first["link"]), state=state, stale=state == "no longer reproduces",
            per_run=[(label, words.get(value, str(value))) for label, value in observed.items()],
            cells=cited.get(divergence_id, 0),
        ))
    return views


# ---------------------------------------------------------------------------------------------- summary
@dataclass
class Summary:
    implementations: int
    conform: int
    discrepant: int
    unchecked: int
    discrepancies: int
    sentence: str
    counts: dict[str, int] = field(default_factory=dict)


def build_summary(matrix: Matrix, discrepancies: list[Discrepancy], comparisons: pd.DataFrame) -> Summary:
    statuses = [g.status for g in matrix.groups]
    conform, discrepant, unchecked = (statuses.count(s) for s in ("conforms", "discrepant", "not checked"))
    counts = {v: int((comparisons["verdict"] == v).sum()) for v in SEVERITY if (comparisons["verdict"] == v).any()}
    if not statuses:
        return Summary(0, 0, 0, 0, 0, "No conformance results in these files.", counts)
    parts = [f"{len(statuses)} implementation{'s' if len(statuses) != 1 else ''}: {conform} conform"]
    if discrepant:
        parts.append(f"{discrepant} {'has' if discrepant == 1 else 'have'} discrepancies")
    if unchecked:
        parts.append(f"{unchecked} not checked (every cell skipped or ambiguous)")
    sentence = ", ".join(parts) + ". "
    if discrepancies:
        worst = discrepancies[0]
        what = (f"{worst.error}× its tolerance" if worst.verdict == "fail"
                else f"an error: {worst.reason or 'no message'}")
        sentence += (f"{len(discrepancies)} discrepanc{'y' if len(discrepancies) == 1 else 'ies'}; the worst is "
                     f"{worst.adapter} on “{worst.spec_label}” ({worst.dtype}, {worst.device}, {worst.quantity}): "
                     f"{what}.")
    else:
        sentence += "No discrepancies."
    return Summary(len(statuses), conform, discrepant, unchecked, len(discrepancies), sentence, counts)


# ---------------------------------------------------------------------------------------------- the whole page
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


ROBUSTNESS_COLUMNS = ("run_id", "adapter", "spec_label", "dtype", "device", "sweep", "level", "loss_error",
                      "grad_error", "nonfinite", "bound", "grad_bound", "within_bound", "within_tolerance", "collapsed",
                      "error", "skipped", "divergence")
BENCHMARK_COLUMNS = ("run_id", "implementation", "spec_label", "device", "n", "d", "seconds", "peak_bytes",
                     "status", "reference_seconds")


def build_report(loaded: Loaded) -> Report:
    comparisons = frame(loaded.of_kind("comparison"), COMPARISON_COLUMNS)
    runs = build_runs(loaded, comparisons)
    comparisons = add_variants(comparisons, runs, ["adapter", "spec_label", "dtype", "device", "quantity"],
                               _comparison_variant)
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


# ---------------------------------------------------------------------------------------------- tables under the charts
@dataclass
class Table:
    caption: str
    header: list[str]
    rows: list[list[str]]


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


def _ratio(error, bound) -> float | None:
    """error / bound; a zero bound allows no error at all."""
    error, bound = number(error), number(bound)
    if error is None or bound is None:
        return None
    if bound > 0:
        return error / bound
    return 0.0 if error == 0 else math.inf


def robustness_points(robustness: pd.DataFrame) -> pd.DataFrame:
    """The sweep records with what the charts and the table read: the level as a number, the distance, each
    error over its bound, and whether the point is flagged (beyond its bound) or broken (non-finite, or the
    call failed)."""
    return robustness.assign(
        x=robustness["level"].map(number),
        distance=robustness["spec"].map(lambda spec: spec.get("distance") if isinstance(spec, dict) else None)
        if "spec" in robustness else None,
        loss_ratio=[_ratio(e, b) for e, b in zip(robustness["loss_error"], robustness["bound"])],
        grad_ratio=[_ratio(e, b) for e, b in zip(robustness["grad_error"], robustness["grad_bound"])],
        flagged=robustness["within_bound"].map(lambda v: v is False),
        broken=[n is True or bool(e) for n, e in zip(robustness["nonfinite"], robustness["error"])],
        measured=robustness["skipped"].map(lambda v: v is None),
    )


SERIES_HEADER = {"adapter": "implementation", "distance": "distance", "dtype": "dtype", "device": "device",
                 "run_label": "run"}


def robustness_series_keys(robustness: pd.DataFrame) -> list[str]:
    """What one curve is: an implementation's spec (by distance) in one dtype on one device, per run when
    several runs are merged."""
    return ["adapter", "distance", "dtype", "device"] + (["run_label"] if robustness["run_id"].nunique() > 1 else [])


def stress(sweep: str, level: float) -> float:
    """How hard a level pushes: offsets grow, near-duplicate distances shrink, scale leaves 1 either way."""
    exponent = math.log10(level)
    return {"near_duplicate": -exponent, "scale": abs(exponent)}.get(sweep, exponent)


def _first_level(points: pd.DataFrame) -> str:
    return describe.scientific(points["x"].iloc[0]) if len(points) else "—"


def _worst_ratio(points: pd.DataFrame) -> str:
    ratios = [r for r in list(points["loss_ratio"]) + list(points["grad_ratio"]) if r is not None]
    return f"{describe.scientific(max(ratios))}×" if ratios else "—"


def robustness_first_exceeded(robustness: pd.DataFrame) -> Table | None:
    """Per curve that leaves its bound: the first level (in order of stress) beyond it, the first non-finite
    one, every level beyond it, the worst error over its bound, and the registry entry that explains it."""
    measured = robustness[robustness["measured"]]
    if measured.empty:
        return None
    keys = ["sweep"] + robustness_series_keys(measured)
    rows, curves = [], 0
    for key, points in measured.groupby(keys, sort=True, dropna=False):
        curves += 1
        points = points.assign(order=[stress(str(key[0]), x) for x in points["x"]]).sort_values("order")
        beyond, broken = points[points["flagged"]], points[points["broken"]]
        if beyond.empty and broken.empty:
            continue
        rows.append([*(_text(k) for k in key), _first_level(beyond), _first_level(broken),
                     ", ".join(dict.fromkeys(describe.scientific(x) for x in beyond["x"])), _worst_ratio(points),
                     ", ".join(sorted({str(d) for d in points["divergence"] if d}))])
    header = ["sweep", *(SERIES_HEADER[k] for k in keys[1:]), "first beyond bound", "first non-finite",
              "beyond bound at", "worst error ÷ bound", "known divergence"]
    caption = (f"{len(rows)} of {curves} curves leave their bound; the other {curves - len(rows)} stay within it at "
               "every level measured")
    skipped = sorted(set(map(str, robustness.loc[~robustness["measured"], "skipped"])))
    if skipped:
        caption += f" (not run here: {'; '.join(skipped)})"
    return Table(caption, header, rows)

"""'What ran': one header per run, from its "run" and "run_end" records and the comparisons it wrote."""
from __future__ import annotations

import datetime as _dt
import pathlib
from dataclasses import dataclass

import pandas as pd

from .. import describe
from ..reader import Loaded
from .common import DTYPE_ORDER, ordered, text_of


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
    reference: str = ""  # a committed reference run (reports/results/): where it comes from, in words


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
    box = settings.get("cell_seconds")
    return (f"profile {profile} · {seed}" + (f" · at most {limit} examples" if limit is not None else "")
            + (f" · {box:g} s per item" if box else ""))


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
        return text_of(timestamp) or "—"


def _status(header: dict | None, end: dict | None) -> tuple[str, str]:
    if header is None:
        return "no header", "its 'run' header record was not read: environment and settings unknown"
    if end is None:
        return "interrupted", "no run_end record: the run stopped before it finished, its results are partial"
    duration = describe.scientific(end.get("duration_s"), 4)
    if end.get("interrupted"):
        return "interrupted", f"stopped by the user after {duration} s; its results are partial"
    return "complete", f"finished in {duration} s, pytest exit status {end.get('exit_status', '?')}"


COMMITTED = ("reports", "results")  # the folder of committed reference runs, merged into every page


def reference_run(files: list[str], header: dict) -> str:
    """Why a run is a reference run rather than this one, in words; "" when it is not. A run read from the
    committed reports/results/ was made elsewhere or earlier: on another machine, at another revision."""
    committed = [f for f in files if tuple(pathlib.PurePath(f).parts[-3:-1]) == COMMITTED]
    if not committed:
        return ""
    where = text_of(header.get("machine")) or text_of(header.get("hostname")) or "another machine"
    revision = text_of(header.get("git_revision")) or "an unrecorded revision"
    return f"reference run committed in {', '.join(committed)}: measured on {where} at revision {revision}"


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
            label=text_of(header.get("environment")) or text_of(header.get("hostname")) or run_id,
            sources=files,
            environment=text_of(header.get("environment")) or "—",
            started=_when(header.get("started")),
            git_revision=text_of(header.get("git_revision")) or "—",
            host=text_of(header.get("hostname")) or "—",
            python=text_of(header.get("python")) or "—",
            hypothesis=_hypothesis_text(header.get("hypothesis")),
            frameworks=frameworks,
            targets=list(dict.fromkeys(targets + [t for t in mine["target"].dropna().unique() if t])),
            dtypes=ordered(mine["dtype"], DTYPE_ORDER),
            examples=_examples_text(mine.loc[mine["verdict"] != "skip", "examples"]),
            status=status,
            status_detail=detail,
            reference=reference_run(files, header),
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

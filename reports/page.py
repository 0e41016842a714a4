"""Results files -> one self-contained HTML page (Jinja2 with autoescape; inline CSS, SVG and a little JS)."""
from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from pathlib import Path

import jinja2

from . import model, plots
from .reader import Loaded, Problem, read_results
from .schema import SCHEMA, SCHEMA_VERSION

TEMPLATES = Path(__file__).resolve().parent / "templates"
PROBLEMS_LISTED = 300  # the banner lists this many lines one by one; the counts above it are always complete


@dataclass
class ProblemGroup:
    source: str
    counts: dict[str, int]
    total: int


def group_problems(problems: list[Problem]) -> list[ProblemGroup]:
    groups: dict[str, dict[str, int]] = {}
    for problem in problems:
        counts = groups.setdefault(problem.source, {})
        counts[problem.category] = counts.get(problem.category, 0) + 1
    return [ProblemGroup(source, counts, sum(counts.values())) for source, counts in groups.items()]


def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,  # every value from a record is text, never markup; charts come in as Markup
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(loaded: Loaded) -> tuple[str, model.Report]:
    report = model.build_report(loaded)
    html = environment().get_template("report.html.j2").render(
        report=report,
        generated=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        tallies=loaded.tallies,
        problem_groups=group_problems(loaded.problems),
        problems_listed=loaded.problems[:PROBLEMS_LISTED],
        verdicts=[(v, model.GLYPHS[v], model.VERDICT_LABELS[v], model.VERDICT_MEANINGS[v]) for v in model.SEVERITY],
        error_chart=plots.error_distribution(report.comparisons) if not report.comparisons.empty else None,
        robustness_charts=plots.robustness_curves(report.robustness) if not report.robustness.empty else [],
        robustness_table=model.robustness_first_exceeded(report.robustness),
        benchmark_charts=plots.benchmark_charts(report.benchmarks) if not report.benchmarks.empty else [],
        benchmark_tables=model.benchmark_tables(report.benchmarks),
        schema=f"{SCHEMA} v{SCHEMA_VERSION}",
    )
    return html, report


def build(paths: list[str | os.PathLike], output: str | os.PathLike) -> model.Report:
    """Read, merge and render; raises reader.ResultsFileError for a path that cannot be read."""
    html, report = render(read_results(paths))
    Path(output).write_text(html, encoding="utf-8")
    return report


def one_line(report: model.Report) -> str:
    """The summary a terminal prints after writing the page."""
    notes = []
    if report.problems:
        notes.append(f"{len(report.problems)} reading problem(s) listed at the top of the page")
    partial = [run.label for run in report.runs if run.partial]
    if partial:
        notes.append(f"partial run(s): {', '.join(partial)}")
    return report.summary.sentence + (f" ({'; '.join(notes)})" if notes else "")

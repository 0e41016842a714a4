"""The known divergences: each registry entry the runs knew, whether it reproduced in each run, and how many
comparison cells cite it."""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlparse

import pandas as pd

from ..schema import columns
from .common import frame, text_of
from .runs import RunView

DIVERGENCE_COLUMNS = columns("divergence")
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
    """Which cells an entry covers: its patterns (a dict, as registry.Divergence has them) or text."""
    if isinstance(pattern, dict):
        return " · ".join(f"{name} {value}" for name, value in pattern.items() if text_of(value) not in ("", "*")) or "*"
    return text_of(pattern)


def _cited(comparisons: pd.DataFrame) -> dict[str, int]:
    """How many comparison cells cite each divergence id (a cell may cite several, comma-separated)."""
    counts: dict[str, int] = {}
    for cited in comparisons["divergence"].dropna():
        for divergence_id in str(cited).split(","):
            counts[divergence_id.strip()] = counts.get(divergence_id.strip(), 0) + 1
    return counts


def build_divergences(records: list[dict], runs: dict[str, RunView], comparisons: pd.DataFrame) -> list[DivergenceView]:
    table = frame(records, DIVERGENCE_COLUMNS)
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
            id=divergence_id, adapter=text_of(first["adapter"]), pattern=_scope(first["pattern"]),
            kind=text_of(first["divergence_kind"]), reason=text_of(first["reason"]), link=safe_link(first["link"]),
            link_text=text_of(first["link"]), state=state, stale=state == "no longer reproduces",
            per_run=[(label, words.get(value, str(value))) for label, value in observed.items()],
            cells=cited.get(divergence_id, 0),
        ))
    return views


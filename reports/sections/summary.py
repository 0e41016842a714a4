"""The summary at the top of the page: how many implementations conform, and the worst discrepancy."""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from .common import SEVERITY
from .discrepancies import Discrepancy
from .matrix import Matrix


@dataclass
class Summary:
    implementations: int
    conform: int  # with nothing registered or declared
    conform_known: int  # with registered divergences or a declared precision widening
    discrepant: int
    unchecked: int
    discrepancies: int
    sentence: str
    counts: dict[str, int] = field(default_factory=dict)


def build_summary(matrix: Matrix, discrepancies: list[Discrepancy], comparisons: pd.DataFrame) -> Summary:
    statuses = [g.status_class for g in matrix.groups]
    conform, known, discrepant, unchecked = (
        statuses.count(s) for s in ("conforms", "conforms-known", "discrepant", "not-checked"))
    counts = {v: int((comparisons["verdict"] == v).sum()) for v in SEVERITY if (comparisons["verdict"] == v).any()}
    if not statuses:
        return Summary(0, 0, 0, 0, 0, 0, "No conformance results in these files.", counts)
    parts = [f"{len(statuses)} implementation{'s' if len(statuses) != 1 else ''}: {conform} conform"]
    if known:
        parts.append(f"{known} conform{'s' if known == 1 else ''} with known divergences")
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
    return Summary(len(statuses), conform, known, discrepant, unchecked, len(discrepancies), sentence, counts)


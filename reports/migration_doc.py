"""docs/migration-from-tf-addons.md: for each TF-Addons loss as a porter calls it, one row per library: the closest
configuration as one line of code, whether it computes the same thing, what differs in words, and the evidence.

The rows are declared in reports/migration_rows.py; their verdicts are checked here against what the adapters claim
(adapters/, each claim confirmed by the conformance run) and the known-divergence registry, so a row cannot say "same"
where no adapter of its library claims the TF-Addons spec, nor "differs" where one does. tests/report/
test_migration_doc.py fails when a verdict disagrees with the claims or the committed file no longer matches them.

    python -m reports.migration_doc            rewrite docs/migration-from-tf-addons.md
    python -m reports.migration_doc --check    exit 1 when the committed file is out of date
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, fields

from adapters import Adapter, catalog, families, family
from registry import REGISTRY, Divergence, in_words, matches
from reference import Spec, in_scope

from . import generated
from .generated import cell
from .migration_rows import CALLS, IMPORTS, PENDING, ROWS, Call, Row
from .sections.matrix import implementation_anchor

DOCUMENT = generated.DOCS / "migration-from-tf-addons.md"
COMMAND = "python -m reports.migration_doc"
SOURCE = family("tfa").prefix  # the adapters whose replacements the document lists
# (adapter name prefix, the library), in the tables' order: the families the records list as replacements.
FAMILIES = tuple((f.prefix, f.library) for f in sorted((f for f in families() if f.migration is not None),
                                                       key=lambda f: f.migration))
# A free parameter: a configuration that differs only here computes the same loss at its own setting.
PARAMETERS = ("margin",)
# Fields that change the loss only on a batch without a unit (no positive pair, an anchor without a negative): a
# claim that differs from TF-Addons' only there is "same except"; any other field makes it another loss.
EDGE_ONLY = ("empty", "anchors")
NOT_SAME = ("differs", "no equivalent")  # the verdicts a claim of the same spec would contradict
NOT_CHECKED = "not checked by the suite yet"


def family_of(adapter: Adapter) -> str | None:
    return next((library for prefix, library in FAMILIES if adapter.name.startswith(prefix)), None)


def differing(a: Spec, b: Spec) -> list[str]:
    return [f.name for f in fields(Spec) if getattr(a, f.name) != getattr(b, f.name)]


def entries(adapter: Adapter, spec: Spec) -> list[Divergence]:
    """The registry entries that cover some cell, edge case or property of `adapter` on `spec`."""
    return [entry for entry in REGISTRY
            if matches(adapter.name, entry.adapter) and in_scope(spec, entry.spec)
            and any(matches(dtype, entry.dtype) for dtype in adapter.dtypes)
            and any(matches(device, entry.target) for device in adapter.targets)]


def every_claim() -> list[Adapter]:
    """The catalogue, with our in-house adapters claiming every spec they implement (the default run checks a
    covering set of them: adapters/inhouse.py)."""
    from adapters import inhouse

    thorough = {a.name: a for a in inhouse.THOROUGH}
    return [thorough.get(a.name, a) for a in catalog()]


@dataclass(frozen=True)
class Judgement:
    """What an adapter's nearest claim says about a TF-Addons spec: the fields it differs in (the margin aside) and the
    registry entries on it that are more than a precision widening."""

    adapter: Adapter
    claim: Spec
    fields: tuple[str, ...]
    registered: tuple[Divergence, ...]

    @property
    def verdict(self) -> str:
        if not self.fields:
            return "same except" if self.registered else "same"
        return "same except" if set(self.fields) <= set(EDGE_ONLY) else "differs"


def judge(adapter: Adapter, spec: Spec) -> Judgement:
    def apart(claim: Spec) -> tuple[str, ...]:
        return tuple(name for name in differing(spec, claim) if name not in PARAMETERS)

    # The nearest claim, at TF-Addons' margin where there is one, else the first in the adapter's order.
    claim = min(adapter.specs, key=lambda c: (len(apart(c)), c.margin != spec.margin))
    registered = tuple(e for e in entries(adapter, claim) if e.kind != "precision")
    return Judgement(adapter, claim, apart(claim), registered)


def problems(adapters: list[Adapter], rows: tuple[Row, ...] = ROWS, calls: tuple[Call, ...] = CALLS,
             pending: tuple[str, ...] = PENDING) -> list[str]:
    """Every way the rows disagree with the catalogue's claims and the registry; [] when they agree. An evidence
    adapter missing from `adapters` is a problem unless `pending` announces it (its row is then not checked)."""
    by_name = {a.name: a for a in adapters}
    libraries = [library for _, library in FAMILIES]
    found = []
    for call in calls:
        source = by_name.get(call.adapter)
        if source is None or call.spec not in source.specs:
            found.append(f"{call.key}: {call.adapter} does not claim `{call.spec}`")
        listed = [row.library for row in rows if row.call == call.key]
        if sorted(listed) != sorted(libraries):
            found.append(f"{call.key}: one row per library wanted ({', '.join(libraries)}), got {', '.join(listed)}")
    keys = {call.key: call for call in calls}
    for row in rows:
        where = f"{row.call} / {row.library}"
        call = keys.get(row.call)
        if call is None or row.library not in libraries:
            found.append(f"{where}: no such TF-Addons call or library")
            continue
        wanted = "differs" if row.verdict in NOT_SAME else row.verdict
        if row.evidence is not None:
            adapter = by_name.get(row.evidence)
            if adapter is None:
                if row.evidence not in pending:
                    found.append(f"{where}: evidence {row.evidence!r} is no adapter of the catalogue (nor PENDING)")
            elif family_of(adapter) != row.library:
                found.append(f"{where}: evidence {row.evidence!r} is not an adapter of {row.library}")
            elif judge(adapter, call.spec).verdict != wanted:
                judged = judge(adapter, call.spec)
                found.append(f"{where}: says {row.verdict!r}, but {adapter.name} claims `{judged.claim}` "
                             f"(apart in: {', '.join(judged.fields) or 'nothing'}; registered: "
                             f"{', '.join(e.id for e in judged.registered) or 'nothing'}): {judged.verdict!r}")
        if row.verdict in NOT_SAME:
            for adapter in (a for a in adapters if family_of(a) == row.library):
                judged = judge(adapter, call.spec)
                if judged.verdict != "differs":
                    found.append(f"{where}: says {row.verdict!r}, but {adapter.name} claims `{judged.claim}` "
                                 f"({judged.verdict!r}): say so, and name it as the evidence")
    return found


def variants(call: Call, source: Adapter) -> list[Spec]:
    """The TF-Addons adapter's claims for this call: its spec first, then those apart from it in `call.variants`."""
    return [call.spec] + [s for s in source.specs if s != call.spec
                          and set(differing(s, call.spec)) <= set(call.variants)]


def apart_in_words(spec: Spec, other: Spec) -> str:
    return " ".join(f"{name}={getattr(other, name)}" for name in differing(spec, other) if name not in PARAMETERS)


def link(name: str) -> str:
    return f"[`{cell(name)}`](../report.html#{implementation_anchor(name)})"


def evidence_text(row: Row, call: Call, source: Adapter, by_name: dict[str, Adapter]) -> str:
    parts = []
    adapter = by_name.get(row.evidence) if row.evidence else None
    if adapter is not None:
        judged = judge(adapter, call.spec)
        apart = "".join(f"; {name}: {getattr(judged.claim, name)}, TF-Addons {getattr(call.spec, name)}"
                        for name in judged.fields)
        parts.append(f"{link(adapter.name)} claims `{judged.claim}`{apart}")
        parts += [f"registered `{e.id}` ({e.kind}; {in_words(e.check)})" for e in judged.registered]
        if adapter.precision != "direct":
            parts.append(f"declared precision: {adapter.precision}")
        if judged.verdict != "differs":  # where the same line serves TF-Addons' other configurations too
            also = [words for words in (apart_in_words(call.spec, v) for v in variants(call, source)[1:]
                                        if judge(adapter, v).verdict == judged.verdict) if words]
            if also:
                parts.append("also for " + ", ".join(also))
    elif row.evidence:
        parts.append(f"`{row.evidence}`: not in the catalogue yet")
    if row.shown_by:
        parts.append(f"shown by `{row.shown_by}`")
    return "; ".join(parts) or "none"


def row_text(row: Row, call: Call, source: Adapter, by_name: dict[str, Adapter]) -> str:
    code = f"`{row.code}`" if row.code else "none"
    if row.miner:
        code += f", with `miner = {row.miner}`: `loss(embeddings, labels, miner(embeddings, labels))`"
    pending = row.evidence is not None and row.evidence not in by_name
    verdict = NOT_CHECKED if pending else row.verdict
    return (f"| {row.library} | {cell(code)} | {verdict} | {cell(row.words) or 'none'} | "
            f"{cell(evidence_text(row, call, source, by_name))} |")


def header(call: Call, source: Adapter) -> list[str]:
    own = {e.id: e for spec in variants(call, source) for e in entries(source, spec)}
    others = variants(call, source)[1:]
    lines = [f"## `{call.code}`", "",
             f"The same loss as a function: `{call.function}`." + (f" {call.inputs}." if call.inputs else ""),
             "",
             f"It computes `{call.spec}`" + (f"; the suite checks it also as {', '.join(f'`{s}`' for s in others)}"
                                             if others else "")
             + f" (adapter {link(source.name)}: {source.notes} Dtypes: {', '.join(source.dtypes)}; declared precision: "
               f"{source.precision}). Its own known divergences: "
             + (", ".join(f"`{e.id}` ({e.kind}; {in_words(e.check)}; {in_words(e.dtype)})" for e in own.values())
                or "none") + ".",
             ""]
    return lines + ["| library | closest configuration | verdict | what differs | evidence |", "|---|---|---|---|---|"]


INTRO = (
    "TF-Addons is end-of-life (its last release supports TF 2.15 at most). For each of its metric-learning losses as "
    "a porter calls it, one row per library: the closest configuration as one line of code, whether it computes the "
    "same thing under the suite's spec (`reference.Spec`), what differs, and the evidence: the adapter whose claim "
    "the conformance run confirms (its nearest claim, the registry's known divergences on it "
    "([the list](known-divergences.md)) and its declared precision), or a test that shows the difference. The margin "
    "is a parameter of every loss: a claim at another margin computes the same loss at its own. The implementation "
    "links go to the report's matrix rows (`./run.sh report` writes `report.html`).")
VERDICT_WORDS = (
    ("same", "an adapter of the library claims the TF-Addons spec and the registry holds no divergence on it beyond a "
     "declared precision"),
    ("same except", "claimed up to what a batch without a unit gives (`empty`, `anchors`), or with registered "
     "divergences: the words say which"),
    ("differs", "computes another loss; the words say how"),
    ("no equivalent", "the library has no such loss; a line, where given, builds it from the library's parts"),
    (NOT_CHECKED, "the adapter that will check the row is announced but not in the catalogue yet"),
)


def render(adapters: list[Adapter] | None = None, rows: tuple[Row, ...] = ROWS,
           pending: tuple[str, ...] = PENDING) -> str:
    adapters = every_claim() if adapters is None else adapters
    found = problems(adapters, rows, pending=pending)
    if found:
        raise ValueError("the migration rows disagree with the adapters' claims:\n  " + "\n  ".join(found))
    by_name = {a.name: a for a in adapters}
    order = {library: place for place, (_, library) in enumerate(FAMILIES)}
    lines = ["# Leaving TF-Addons: what to call instead", "",
             f"<!-- Generated from reports/migration_rows.py, the adapters' claims and registry/__init__.py by "
             f"`{COMMAND}`. Do not edit by hand. -->", "", INTRO, "", "Verdicts:", ""]
    lines += [f"- *{verdict}*: {words};" for verdict, words in VERDICT_WORDS]
    lines[-1] = lines[-1].rstrip(";") + "."
    lines += ["", "The lines assume these imports:", "", "| library | imports |", "|---|---|"]
    lines += [f"| {library} | `{cell(IMPORTS[library])}` |" for _, library in FAMILIES]
    lines.append("")
    for call in CALLS:
        source = by_name[call.adapter]
        lines += header(call, source)
        lines += [row_text(row, call, source, by_name)
                  for row in sorted((r for r in rows if r.call == call.key), key=lambda r: order[r.library])]
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    return generated.main(argv, document=DOCUMENT, render=render, command=COMMAND,
                          source="reports/migration_rows.py, the adapters' claims and registry/__init__.py",
                          description=__doc__.split("\n\n")[0],
                          summary=lambda: f"{len(CALLS)} TF-Addons calls x {len(FAMILIES)} libraries")


if __name__ == "__main__":
    sys.exit(main())

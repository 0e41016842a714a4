"""docs/migration-from-tf-addons.md: for each TF-Addons loss and configuration, which configurations of the
libraries people move to compute the same thing under the suite's spec, and where they differ. Generated
from what the adapters claim (adapters/, each claim confirmed by a test) and the known-divergence registry;
tests/report/test_migration_doc.py fails when the committed file no longer matches them.

    python -m reports.migration_doc            rewrite docs/migration-from-tf-addons.md
    python -m reports.migration_doc --check    exit 1 when the committed file is out of date
"""
from __future__ import annotations

import sys
from dataclasses import fields

from adapters import Adapter, catalog, families, family
from registry import REGISTRY, Divergence, in_words, matches
from reference import Spec, in_scope

from . import generated
from .generated import cell
from .sections.matrix import implementation_anchor

DOCUMENT = generated.DOCS / "migration-from-tf-addons.md"
COMMAND = "python -m reports.migration_doc"
SOURCE = family("tfa").prefix  # the adapters whose replacements the document lists
# (adapter name prefix, the library), in the tables' order: the families the records list as replacements.
FAMILIES = tuple((f.prefix, f.library) for f in sorted((f for f in families() if f.migration is not None),
                                                       key=lambda f: f.migration))
# A free parameter: a configuration that differs only here computes the same loss at its own setting.
PARAMETERS = ("margin",)
# Fields in which a configuration may differ from TF-Addons' and still be the nearest: the difference is listed.
NEAR = ("empty", "reduction", "anchors", "normalize")
# Configurations with no vocabulary value that users take for a TF-Addons one, each shown by a test.
NOT_EQUIVALENT = (
    ("tfa.triplet_semihard_loss", "TF-Similarity", 'TripletLoss(negative_mining_strategy="semi-hard")',
     "one term per anchor, the threshold its hardest positive's distance, mean over anchors, finite without a "
     "positive pair: TF-Addons' semi_hard takes one term per ordered positive pair; they agree only when every "
     "class has two members",
     "tests/adapters/test_adapter_tf_similarity.py::test_semi_hard_is_not_tf_addons_semi_hard"),
    ("tfa.triplet_semihard_loss", "pytorch-metric-learning", 'TripletMarginMiner(type_of_triplets="semihard")',
     "every triplet with 0 < d_an - d_ap <= m (semi_hard_all), not one nearest farther negative per positive pair",
     "tests/adapters/test_adapter_pml.py"),
    ("tfa.triplet_semihard_loss", "Quaterion", 'TripletLoss(mining="semi_hard")',
     "every same-label pair (a == p included) against every different-label pair of any anchor, clamped at m",
     "tests/adapters/test_adapter_quaterion.py::test_semi_hard_is_no_vocabulary_mining"),
)


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


def divergences_text(adapter: Adapter, spec: Spec) -> str:
    found = entries(adapter, spec)
    parts = [f"`{e.id}` ({e.kind}; {in_words(e.check)}; {in_words(e.dtype)})" for e in found]
    if adapter.precision != "direct":
        parts.append(f"declared precision: {adapter.precision}")
    return "; ".join(parts) or "none: conforms"


def rows_for(source: Adapter, spec: Spec, candidates: list[Adapter]) -> list[str]:
    lines = []
    for prefix, library in FAMILIES:
        matched = []
        for adapter in (a for a in candidates if a.name.startswith(prefix)):
            for claimed in adapter.specs:
                differ = [name for name in differing(spec, claimed) if name not in PARAMETERS]
                if differ and (len(differ) > 1 or differ[0] not in NEAR):
                    continue
                how = "same" if not differ else "differs: " + ", ".join(
                    f"{name}={getattr(claimed, name)} (TF-Addons {getattr(spec, name)})" for name in differ)
                if claimed.margin != spec.margin:
                    how += f"; margin {claimed.margin:g} in the suite's claim (a parameter)"
                matched.append((adapter, claimed, how))
        for adapter, claimed, how in matched:
            lines.append(
                f"| {library} | [`{cell(adapter.name)}`](../report.html#{implementation_anchor(adapter.name)}) | `{cell(claimed)}` | "
                f"{cell(how)} | {cell(', '.join(adapter.dtypes))} | {cell(divergences_text(adapter, claimed))} |")
        if not matched:
            lines.append(f"| {library} | none claims it | | | | |")
    return lines


def every_claim() -> list[Adapter]:
    """The catalogue, with our in-house adapters claiming every spec they implement (the default run checks a
    covering set of them: adapters/inhouse.py)."""
    from adapters import inhouse

    thorough = {a.name: a for a in inhouse.THOROUGH}
    return [thorough.get(a.name, a) for a in catalog()]


def render(adapters: list[Adapter] | None = None) -> str:
    adapters = every_claim() if adapters is None else adapters
    sources = [a for a in adapters if a.name.startswith(SOURCE) and "(graph)" not in a.name]
    candidates = [a for a in adapters if family_of(a)]
    lines = [
        "# Leaving TF-Addons: what computes the same loss",
        "",
        f"<!-- Generated from the adapters' claims and registry/__init__.py by `{COMMAND}`. Do not edit by hand. -->",
        "",
        "TF-Addons is end-of-life (its last release supports TF 2.15 at most). For each of its losses and the "
        "configurations the suite checks, the configurations of other libraries that compute the same thing under "
        "the suite's spec (`reference.Spec`), each confirmed by the conformance run, and where they differ: the "
        "registry's known divergences (loss, gradient, dtype, edge cases; [the list](known-divergences.md)) and "
        "declared precisions. *same*: the same spec; *differs*: one field apart (the nearest there is); the margin "
        "is a parameter of every loss. The implementation links go to the report's matrix rows (`./run.sh report` "
        "writes `report.html`).",
        "",
    ]
    for source in sources:
        own = {e.id: e for spec in source.specs for e in entries(source, spec)}
        lines += [f"## `{source.name}`", "", f"{cell(source.notes)} Dtypes: {', '.join(source.dtypes)}; declared "
                  f"precision: {source.precision}. Its own known divergences: "
                  + (", ".join(f"`{i}`" for i in own) or "none") + ".", ""]
        for spec in source.specs:
            lines += [f"### `{spec}`", "", "| library | implementation | its spec | match | dtypes | known divergences |",
                      "|---|---|---|---|---|---|", *rows_for(source, spec, candidates), ""]
        not_equivalent = [n for n in NOT_EQUIVALENT if n[0] == source.name]
        if not_equivalent:
            lines += ["Not the same, though often taken for it:", ""]
            lines += [f"- {library} `{config}`: {why} (`{test}`)" for _, library, config, why, test in not_equivalent]
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    return generated.main(argv, document=DOCUMENT, render=render, command=COMMAND,
                          source="the adapters' claims and registry/__init__.py",
                          description=__doc__.split("\n\n")[0], summary=lambda: "TF-Addons losses and their matches")


if __name__ == "__main__":
    sys.exit(main())

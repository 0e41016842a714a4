"""docs/known-divergences.md, generated from registry.REGISTRY (as jax2tf generates its list of
primitives with limited support): the committed file is what a user reads without running anything, and
tests/report/test_divergences_doc.py fails when it no longer matches the registry.

    python -m reports.divergences_doc            rewrite docs/known-divergences.md
    python -m reports.divergences_doc --check    exit 1 when the committed file is out of date
"""
from __future__ import annotations

import sys
from collections import Counter

from registry import KINDS, REGISTRY, Divergence, alternatives, in_words
from reference import scope_in_words

from . import generated
from .generated import cell

DOCUMENT = generated.DOCS / "known-divergences.md"
COMMAND = "python -m reports.divergences_doc"
KIND_MEANINGS = {
    "semantics": "the implementation computes a different quantity than its spec says",
    "precision": "the right quantity, computed with less precision than the dtype allows",
    "edge_case": "a degenerate batch (no positive, one class, duplicates) handled differently",
    "unsupported": "a dtype or device the implementation rejects",
}


def scope(entry: Divergence) -> str:
    """What narrows the entry, in words; "everything" when nothing does."""
    parts = [f"spec `{scope_in_words(entry.spec)}`"] if entry.spec else []
    parts += [f"{name} `{in_words(value)}`" for name, value in
              (("dtype", entry.dtype), ("target", entry.target), ("check", entry.check)) if value != "*"]
    return ", ".join(parts) or "everything"


def confirming(entry: Divergence) -> str:
    return ", ".join(f"`{test}`" for test in alternatives(entry.confirmed_by))


def render(registry: tuple[Divergence, ...] = REGISTRY) -> str:
    counts = Counter(entry.kind for entry in registry)
    lines = [
        "# Known divergences",
        "",
        f"<!-- Generated from registry/__init__.py by `{COMMAND}`. Do not edit by hand. -->",
        "",
        "Every accepted difference between an implementation and the oracle (`reference/`). The tests turn each "
        "entry into a strict xfail: the divergence must reproduce, so a fixed upstream bug shows up as an "
        "unexpected pass. A spec scope names Spec fields (`a|b`: either value); the other patterns (`*`, `?`, "
        "`[...]`) follow `fnmatch`; a check is the quantity `loss` or `grad`, `edge:<case>`, `property:<name>` or "
        "`robustness:<sweep>`.",
        "",
        f"{len(registry)} entries: " + ", ".join(f"{counts[kind]} {kind}" for kind in KINDS if counts[kind]) + ".",
        "",
        "| kind | meaning |",
        "|---|---|",
        *(f"| {kind} | {KIND_MEANINGS[kind]} |" for kind in KINDS),
        "",
        "| id | adapter | scope | kind | reason | upstream | confirmed by |",
        "|---|---|---|---|---|---|---|",
    ]
    for entry in sorted(registry, key=lambda e: (in_words(e.adapter), e.id)):
        lines.append(f"| `{entry.id}` | `{cell(in_words(entry.adapter))}` | {cell(scope(entry))} | {entry.kind} | "
                     f"{cell(entry.reason)} | {cell(entry.link)} | {cell(confirming(entry))} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    return generated.main(argv, document=DOCUMENT, render=render, command=COMMAND, source="registry/__init__.py",
                          description=__doc__.split("\n\n")[0], summary=lambda: f"{len(REGISTRY)} entries")


if __name__ == "__main__":
    sys.exit(main())

"""docs/known-divergences.md is generated from the registry and committed: it must match it."""
from __future__ import annotations

from registry import REGISTRY, Divergence
from reports import divergences_doc


def test_the_committed_document_matches_the_registry():
    assert divergences_doc.DOCUMENT.exists(), f"{divergences_doc.DOCUMENT} is missing; run: {divergences_doc.COMMAND}"
    committed = divergences_doc.DOCUMENT.read_text(encoding="utf-8")
    assert committed == divergences_doc.render(), (
        f"{divergences_doc.DOCUMENT} is out of date with registry.REGISTRY; regenerate it with "
        f"`{divergences_doc.COMMAND}` and commit the result"
    )


def test_every_entry_is_listed_with_its_reason_and_link():
    document = divergences_doc.render()
    for entry in REGISTRY:
        row = next(line for line in document.splitlines() if line.startswith(f"| `{entry.id}` |"))
        assert divergences_doc.cell(entry.reason) in row and divergences_doc.cell(entry.link) in row


def test_a_pipe_in_a_reason_stays_inside_its_table_cell():
    entry = Divergence(id="x", adapter="a|b", kind="semantics", reason="d(a|b)\nsecond line", link="l",
                       confirmed_by="tests/x.py::test_x", dtype="float32")
    row = divergences_doc.render((entry,)).splitlines()[-1]
    assert row == r"| `x` | `a\|b` | dtype `float32` | semantics | d(a\|b) second line | l | `tests/x.py::test_x` |"

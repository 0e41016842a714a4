"""docs/migration-from-tf-addons.md is generated from reports/migration_rows.py, checked against the adapters' claims
and the registry, and committed."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from adapters import catalog, families
from reports import migration_doc, migration_rows
from reports.migration_doc import every_claim, judge, problems
from reports.migration_rows import CALLS, ROWS, Row

ROOT = Path(__file__).resolve().parents[2]
LIBRARIES = [library for _, library in migration_doc.FAMILIES]


def replaced(call: str, library: str, **changes) -> tuple[Row, ...]:
    """ROWS with one record changed, as a slip in reports/migration_rows.py would change it."""
    return tuple(dataclasses.replace(row, **changes) if (row.call, row.library) == (call, library) else row
                 for row in ROWS)


def section(document: str, call) -> str:
    return document.split(f"\n## `{call.code}`\n")[1].split("\n## ")[0]


def test_the_committed_document_matches_the_generator():
    assert migration_doc.DOCUMENT.exists(), f"{migration_doc.DOCUMENT} is missing; run: {migration_doc.COMMAND}"
    assert migration_doc.DOCUMENT.read_text(encoding="utf-8") == migration_doc.render(), (
        f"{migration_doc.DOCUMENT} is out of date; regenerate it with `{migration_doc.COMMAND}` and commit the result")


def test_the_rows_agree_with_the_claims_and_the_registry():
    assert problems(every_claim()) == []


def test_every_tf_addons_loss_has_exactly_one_row_per_library():
    losses = {a.name for a in catalog() if a.name.startswith(migration_doc.SOURCE) and "(graph)" not in a.name}
    assert {call.adapter for call in CALLS} == losses  # six losses; triplet_hard_loss twice, hinge and soft
    document = migration_doc.render()
    for call in CALLS:
        rows = [line for line in section(document, call).splitlines() if line.startswith("| ")][1:]  # the head off
        assert [line.split(" | ")[0][2:] for line in rows] == LIBRARIES, call.key
        assert sorted(row.library for row in ROWS if row.call == call.key) == sorted(LIBRARIES), call.key


def test_a_same_row_is_backed_by_a_claim_of_its_library():
    adapters = {a.name: a for a in every_claim()}
    for row in ROWS:
        if row.verdict in ("same", "same except"):
            call = next(c for c in CALLS if c.key == row.call)
            adapter = adapters[row.evidence]
            assert migration_doc.family_of(adapter) == row.library
            assert judge(adapter, call.spec).verdict == row.verdict, (row.call, row.library)


@pytest.mark.parametrize("slip, complaint", [
    # "same" where the library's adapter claims the spec only up to `empty` (0 instead of NaN): "same except"
    (("TripletSemiHardLoss", "sentence-transformers", {"verdict": "same"}), "'same except'"),
    # "same" backed by no adapter that exists
    (("TripletHardLoss", "in-house (this suite)", {"evidence": "inhouse.torchh"}), "no adapter of the catalogue"),
    # "same" backed by another library's adapter
    (("TripletHardLoss", "PyTorch", {"evidence": "st.BatchHardTripletLoss"}), "not an adapter of PyTorch"),
    # "same" backed by an adapter whose claim is another loss (scaled)
    (("TripletHardLoss", "Quaterion", {"verdict": "same"}), "'differs'"),
    # "differs" where the library's adapter claims the spec, with registered divergences only
    (("TripletHardLoss", "TF-Similarity", {"verdict": "differs"}), "name it as the evidence"),
])
def test_a_verdict_the_claims_contradict_is_refused(slip, complaint):
    call, library, changes = slip
    found = problems(every_claim(), replaced(call, library, **changes))
    assert found and all(f"{call} / {library}" in line for line in found) and complaint in " ".join(found), found
    with pytest.raises(ValueError, match=re.escape(f"{call} / {library}")):
        migration_doc.render(rows=replaced(call, library, **changes))


def test_a_same_row_without_evidence_is_refused_when_declared():
    with pytest.raises(ValueError, match="must name the adapter"):
        Row("NpairsLoss", "PyTorch", "same", "F.cross_entropy(logits, targets)", "", evidence=None)


def test_an_announced_adapter_renders_not_checked_never_same():
    rows = replaced("NpairsLoss", "pytorch-metric-learning", evidence="pml.AnnouncedNPairs")
    assert any("pml.AnnouncedNPairs" in line for line in problems(every_claim(), rows))
    assert problems(every_claim(), rows, pending=("pml.AnnouncedNPairs",)) == []
    document = migration_doc.render(rows=rows, pending=("pml.AnnouncedNPairs",))
    row = next(line for line in document.splitlines() if line.startswith("| pytorch-metric-learning | `losses.NPairs"))
    assert f"| {migration_doc.NOT_CHECKED} |" in row and "| same" not in row
    assert "`pml.AnnouncedNPairs`: not in the catalogue yet" in row


def test_no_announced_adapter_is_in_the_catalogue_already():
    landed = set(migration_rows.PENDING) & {a.name for a in catalog()}
    assert not landed, f"{sorted(landed)} landed: remove them from PENDING in reports/migration_rows.py and regenerate"


def test_every_code_line_is_a_single_line():
    for row in ROWS:
        for line in (row.code, row.miner):
            assert line is None or (line.strip() and "\n" not in line), (row.call, row.library)
    with pytest.raises(ValueError, match="one non-empty line"):
        Row("NpairsLoss", "PyTorch", "no equivalent", "logits = a @ p.T\nloss = F.cross_entropy(logits, y)", "why")
    document = migration_doc.render()
    for row in ROWS:
        if row.code:
            assert sum(f"`{row.code}`" in line for line in document.splitlines()) >= 1, row.code


def test_a_difference_shown_by_a_test_names_one_that_exists():
    for row in ROWS:
        if row.shown_by:
            path, name = row.shown_by.split("::")
            assert re.search(rf"^def {name}\(", (ROOT / path).read_text(encoding="utf-8"), re.M), row.shown_by


def test_a_row_names_its_differences_and_its_registered_divergences():
    document = migration_doc.render()
    row = next(line for line in document.splitlines() if "`st.BatchSemiHardTripletLoss`" in line)
    assert "| same except |" in row and "empty: zero, TF-Addons nan" in row
    row = next(line for line in document.splitlines() if "`st.BatchHardTripletLoss`" in line)
    assert "`masked-minimum-ties-at-the-row-maximum`" in row and "declared precision: gram" in row


def test_the_migration_document_lists_the_families_the_records_name():
    listed = sorted((f for f in families() if f.migration is not None), key=lambda f: f.migration)
    assert migration_doc.FAMILIES == tuple((f.prefix, f.library) for f in listed)
    assert migration_doc.SOURCE == next(f for f in families() if f.module == "tfa").prefix
    assert set(migration_rows.IMPORTS) == set(LIBRARIES)

"""docs/migration-from-tf-addons.md is generated from the adapters' claims and the registry, and committed."""
from __future__ import annotations

from adapters import catalog
from reports import migration_doc


def test_the_committed_table_matches_the_claims_and_the_registry():
    assert migration_doc.DOCUMENT.exists(), f"{migration_doc.DOCUMENT} is missing; run: {migration_doc.COMMAND}"
    assert migration_doc.DOCUMENT.read_text(encoding="utf-8") == migration_doc.render(), (
        f"{migration_doc.DOCUMENT} is out of date; regenerate it with `{migration_doc.COMMAND}` and commit the result")


def test_every_tf_addons_configuration_has_its_table_and_every_family_a_row():
    document = migration_doc.render()
    for adapter in catalog():
        if adapter.name.startswith("tfa.") and "(graph)" not in adapter.name:
            assert f"## `{adapter.name}`" in document
            for spec in adapter.specs:
                section = document.split(f"### `{spec}`")[1].split("\n### ")[0].split("\n## ")[0]
                assert all(library in section for _, library in migration_doc.FAMILIES), spec


def test_a_match_names_its_differences_and_its_registered_divergences():
    document = migration_doc.render()
    row = next(line for line in document.splitlines() if "`st.BatchSemiHardTripletLoss`" in line)
    assert "differs: empty=zero (TF-Addons nan)" in row
    row = next(line for line in document.splitlines() if "`st.BatchHardTripletLoss`" in line)
    assert "`masked-minimum-ties-at-the-row-maximum`" in row and "declared precision: gram" in row


def test_the_migration_document_lists_the_families_the_records_name():
    from adapters import families
    from reports import migration_doc

    listed = sorted((f for f in families() if f.migration is not None), key=lambda f: f.migration)
    assert migration_doc.FAMILIES == tuple((f.prefix, f.library) for f in listed)
    assert migration_doc.SOURCE == next(f for f in families() if f.module == "tfa").prefix

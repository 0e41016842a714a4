"""The results schema as code (reports/schema.py): the writer refuses what it does not declare, the committed
results and the demo files conform, the reader and the report take their field lists from it, and
docs/results-schema.md is what `python -m reports.schema_doc` generates."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from reports import model, reader, schema, schema_doc
from reports.results import ResultsWriter
from reports.schema import ENVELOPE, KINDS, RECORDS

REPO = Path(__file__).resolve().parents[2]
COMMITTED = sorted((REPO / "reports" / "results").glob("*.jsonl"))

COMPARISON = dict(adapter="a", framework="numpy", spec={"mining": "batch_hard"}, spec_label="batch_hard",
                  dtype="float32", device="cpu", quantity="loss", verdict="pass")


def conformance_problems(path: Path) -> list[str]:
    """Every way a file's records differ from the schema, with the line."""
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        record = json.loads(line)
        envelope = {name: record.get(name) for name in ENVELOPE.names}
        fields = {name: value for name, value in record.items() if name not in ENVELOPE.names}
        kind = RECORDS.get(record.get("kind"))
        problems = schema.violations(ENVELOPE, envelope) + (schema.violations(kind, fields) if kind else [])
        found += [f"{path.name}:{number}: {problem}" for problem in problems]
    return found


def test_the_document_is_generated_from_the_schema():
    assert schema_doc.DOCUMENT.read_text(encoding="utf-8") == schema_doc.render(), (
        f"docs/results-schema.md is stale: run {schema_doc.COMMAND}")
    assert schema_doc.main(["--check"]) == 0


def test_the_document_names_every_kind_and_field():
    document = schema_doc.render()
    for record in (ENVELOPE, *RECORDS.values(), *schema.NESTED):
        assert f"### {record.name}" in document or record is ENVELOPE
        for field in record.fields:
            assert f"| `{field.name}` |" in document, (record.name, field.name)


@pytest.mark.parametrize("path", COMMITTED, ids=[p.name for p in COMMITTED])
def test_committed_results_conform_and_load(path):
    assert conformance_problems(path) == []
    loaded = reader.read_results([path])
    assert loaded.problems == []
    assert len(loaded.entries) == len(path.read_text(encoding="utf-8").splitlines())


def test_the_demo_files_conform(demo_files):
    assert [problem for path in demo_files for problem in conformance_problems(path)] == []


def test_the_reader_and_the_report_take_their_fields_from_the_schema():
    assert reader.REQUIRED_FIELDS == {kind: RECORDS[kind].keys for kind in KINDS}
    # what the reader has always needed to place a record: changing these changes which records a page shows
    assert reader.REQUIRED_FIELDS["comparison"] == ("adapter", "spec_label", "dtype", "device", "quantity", "verdict")
    assert reader.REQUIRED_FIELDS["edge_case"] == ("adapter", "spec_label", "case", "outcome")
    for columns, kind in ((model.COMPARISON_COLUMNS, "comparison"), (model.EDGE_COLUMNS, "edge_case"),
                          (model.ROBUSTNESS_COLUMNS, "robustness"), (model.BENCHMARK_COLUMNS, "benchmark")):
        assert columns == ("run_id", *RECORDS[kind].names)


def test_divergence_records_carry_divergence_kind_not_kind():
    names = RECORDS["divergence"].names
    assert "divergence_kind" in names and "kind" not in names


@pytest.fixture
def writer(tmp_path):
    writer = ResultsWriter(tmp_path / "results.jsonl")
    yield writer
    writer.close()


@pytest.mark.parametrize("kind, fields, named", [
    ("comparison", {**COMPARISON, "colour": "red"}, "unknown field 'colour'"),
    ("comparison", {k: v for k, v in COMPARISON.items() if k != "verdict"}, "missing required field 'verdict'"),
    ("comparison", {**COMPARISON, "examples": "40"}, "field 'examples' is string '40', expected integer"),
    ("comparison", {**COMPARISON, "verdict": "maybe"}, "field 'verdict' is 'maybe', not one of pass"),
    ("comparison", {**COMPARISON, "adapter": ""}, "field 'adapter' is empty"),
    ("comparison", {**COMPARISON, "tolerance": {"atol": "tight", "rtol": 1e-5, "source": "x"}},
     "field 'tolerance.atol' is string 'tight', expected number"),
    ("comparison", {**COMPARISON, "errors": [0.1, "big"]}, "field 'errors[1]' is string 'big'"),
    ("comparison", {**COMPARISON, "run_id": "mine"}, "field 'run_id' is set by the writer"),
    ("divergence", dict(id="x", adapter="a", pattern="*", kind="semantics", reason="r", link="l", reproduces=None),
     "field 'kind' is set by the writer"),
    ("edge_case", {**{k: COMPARISON[k] for k in ("adapter", "spec", "spec_label", "dtype", "device")},
                   "case": "singletons", "outcome": "value", "loss": 1.0, "grad_finite": True, "error": "",
                   "oracle_loss": 1.0, "matches_oracle": "yes"}, "field 'matches_oracle' is string 'yes'"),
])
def test_the_writer_refuses_a_record_that_does_not_match_and_writes_nothing(writer, kind, fields, named):
    with pytest.raises(ValueError) as refused:
        writer.write(kind, **fields)
    assert str(refused.value).startswith(f"{kind} record does not match the results schema")
    assert named in str(refused.value)
    assert writer.path.read_text() == ""


def test_the_writer_refuses_an_unknown_kind(writer):
    with pytest.raises(ValueError, match="unknown record kind 'telemetry'"):
        writer.write("telemetry", adapter="a")


def test_the_writer_takes_numpy_values_and_non_finite_numbers(writer):
    record = writer.write("comparison", **COMPARISON, examples=np.int64(3), max_abs=np.float32(0.5),
                          normalized_error=float("nan"), errors=np.array([0.1, np.inf]), tolerance={},
                          counterexample=None, divergence=None)
    assert (record["examples"], record["normalized_error"], record["errors"]) == (3, "nan", [0.1, "inf"])
    [entry] = reader.read_results([writer.path]).entries
    assert np.isnan(entry.record["normalized_error"]) and entry.record["errors"] == [0.1, float("inf")]


def test_the_reader_lists_a_value_outside_a_closed_set(tmp_path, writer):
    writer.write("edge_case", **{k: COMPARISON[k] for k in ("adapter", "spec", "spec_label", "dtype", "device")},
                 case="singletons", outcome="value", loss=1.0, grad_finite=True, error="", oracle_loss=1.0,
                 matches_oracle=True)
    record = json.loads(writer.path.read_text())
    path = tmp_path / "edited.jsonl"
    path.write_text(json.dumps({**record, "oracle_outcome": "maybe"}) + "\n")
    [problem] = reader.read_results([path]).problems
    assert (problem.category, problem.line) == ("unknown oracle_outcome", 1)

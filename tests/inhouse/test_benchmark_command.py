"""`python -m benchmarks.run` works end to end and writes records the report reads and draws.

A smoke test of the command, not a benchmark: it asserts what was written, never how fast anything was.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the quick run measures the torch implementations")
pytest.importorskip("pandas", reason="the report that draws the records needs pandas")

from benchmarks import run  # noqa: E402
from reports.page import render  # noqa: E402
from reports.reader import read_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_writes_benchmark_records_the_report_draws(tmp_path):
    output = tmp_path / "benchmarks.jsonl"
    command = [sys.executable, "-m", "benchmarks.run", "--quick", "--sizes", "64", "--tasks", "batch_hard",
               "--implementations", "oracle", "inhouse.torch", "--devices", "cpu", "--output", str(output)]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]

    loaded = read_results([output])
    assert not loaded.problems
    kinds = [entry.kind for entry in loaded.entries]
    assert kinds[0] == "run" and kinds[-1] == "run_end"
    assert loaded.entries[0].record["machine"]
    measured = [entry.record for entry in loaded.entries if entry.kind == "benchmark"]
    assert {(r["implementation"], r["status"]) for r in measured} == {
        ("matmul", "ok"), ("oracle", "ok"), ("inhouse.torch", "ok")}
    for record in measured:
        assert record["n"] == 64 and record["d"] == 64 and record["device"] == "cpu"
        assert record["seconds"] > 0 and record["peak_bytes"] >= 0 and record["reference_seconds"] > 0

    html, report = render(loaded)
    assert len(report.benchmarks) == 3
    assert "inhouse.torch" in html


def test_a_failed_measurement_is_a_record_and_ends_that_implementation(tmp_path, monkeypatch):
    """An out-of-memory at one N is recorded, and the larger N of that implementation are skipped, not run."""
    verdicts = iter([{"status": "ok", "seconds": 1e-3, "peak_bytes": 0}, {"status": "oom", "reason": "cap"}])
    monkeypatch.setattr(run, "measure", lambda job, time_cap, memory_cap, threads: next(verdicts))
    monkeypatch.setattr(run, "plan", lambda args: [("cpu", 64, "batch_hard", "inhouse.torch")])
    args = run.parse(["--quick", "--sizes", "64", "128", "256", "--output", str(tmp_path / "out.jsonl")])
    writer = run.ResultsWriter(args.output)
    records = run.sweep(args, writer)
    writer.close()
    assert [(r["n"], r["status"]) for r in records] == [(64, "ok"), (128, "oom"), (256, "skipped")]
    lines = args.output.read_text().splitlines()
    assert [json.loads(line)["status"] for line in lines] == ["ok", "oom", "skipped"]

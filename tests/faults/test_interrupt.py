"""Ctrl-C mid-run: the partial results file stays readable line by line, pytest's run_end record says
the run was interrupted, and the report built from it marks the run as interrupted."""
import signal
import subprocess
import time

from fault_runs import ROOT, build_page, conformance_command, records

ENOUGH = 2  # comparison records written before the interrupt: the run is well under way


def wait_for_comparisons(run: subprocess.Popen, results, deadline_s: float = 120.0) -> None:
    stop = time.monotonic() + deadline_s
    while time.monotonic() < stop and run.poll() is None:
        if results.exists() and results.read_text(encoding="utf-8").count('"kind": "comparison"') >= ENOUGH:
            return
        time.sleep(0.1)
    raise AssertionError(f"no {ENOUGH} comparison records within {deadline_s} s (exit status {run.poll()})")


def test_ctrl_c_leaves_a_readable_partial_file_that_the_report_marks_interrupted(tmp_path):
    results, page, log = tmp_path / "results.jsonl", tmp_path / "page.html", tmp_path / "pytest.log"
    # every spec in every dtype: a run far longer than the wait for its first records
    with open(log, "w") as out:
        run = subprocess.Popen(conformance_command("support.fake_adapters:ORACLES", results, timeout=60),
                               cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for_comparisons(run, results)
            run.send_signal(signal.SIGINT)
            assert run.wait(timeout=60) == 2, log.read_text()  # pytest's ExitCode.INTERRUPTED
        finally:
            if run.poll() is None:
                run.kill()
    found = records(results)  # every line is JSON
    assert sum(r["kind"] == "comparison" for r in found) >= ENOUGH
    assert found[-1]["kind"] == "run_end" and found[-1]["interrupted"] is True
    built = build_page(results, page)
    assert built.returncode == 0, built.stderr
    html = page.read_text(encoding="utf-8")
    assert 'class="badge interrupted"' in html and "stopped by the user after" in html

"""Ctrl-C mid-run: the partial results file stays readable line by line, pytest's run_end record says
the run was interrupted, and the report built from it marks the run as interrupted.

The test waits on what the run prints, never on a clock: it reads the child's verbose output line by line
(a blocking read) until two items have passed, whose records the session wrote before pytest printed them,
and only then sends SIGINT."""
import signal
import subprocess

from fault_runs import ROOT, build_page, conformance_command, records

ENOUGH = 2  # items passed before the interrupt: the run is well under way


def test_ctrl_c_leaves_a_readable_partial_file_that_the_report_marks_interrupted(tmp_path):
    results, page = tmp_path / "results.jsonl", tmp_path / "page.html"
    # every spec in every dtype: a run far longer than the wait for its first items
    command = [arg for arg in conformance_command("tests.fake_adapters:ORACLES", results, timeout=60) if arg != "-q"]
    run = subprocess.Popen([*command, "-v"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    try:
        for line in run.stdout:
            seen.append(line)
            if sum(" PASSED" in item for item in seen) >= ENOUGH:
                break
        run.send_signal(signal.SIGINT)
        rest, _ = run.communicate(timeout=600)
    finally:
        if run.poll() is None:
            run.kill()
    log = "".join(seen) + rest
    assert run.returncode == 2, log  # pytest's ExitCode.INTERRUPTED
    found = records(results)  # every line is JSON
    assert sum(r["kind"] == "comparison" for r in found) >= ENOUGH
    assert found[-1]["kind"] == "run_end" and found[-1]["interrupted"] is True
    built = build_page(results, page)
    assert built.returncode == 0, built.stderr
    html = page.read_text(encoding="utf-8")
    assert 'class="badge interrupted"' in html and "stopped by the user after" in html

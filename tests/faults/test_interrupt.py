"""Ctrl-C mid-run: the partial results file stays readable line by line, pytest's run_end record says
the run was interrupted, and the report built from it marks the run as interrupted.

The test waits on what the run prints, never on a clock: it reads the child's verbose output line by line
(a blocking read) until two items have passed, whose records the session wrote before pytest printed them,
and only then sends SIGINT. Under pytest-xdist (`-n 2`) the same holds: the controller writes a worker's records
when its report arrives, before it prints the item's line, and a Ctrl-C at a terminal reaches the controller and
both workers (the process group), a SIGINT sent to pytest's process only the controller."""
import os
import signal
import subprocess

import pytest
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


def test_a_ctrl_c_in_the_middle_of_a_call_stops_the_run_when_the_item_ends(tmp_path):
    """The first Ctrl-C lets the item under way finish (its record whole), then stops the run as interrupted."""
    results = tmp_path / "results.jsonl"
    command = [arg for arg in conformance_command("tests.fake_adapters:PRESSES_CTRL_C", results) if arg != "-q"]
    run = subprocess.run([*command, "-v"], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 2, run.stdout[-5000:] + run.stderr[-2000:]
    assert run.stdout.count(" PASSED") == 1 and "KeyboardInterrupt: stopped by the user after" in run.stdout
    kinds = [r["kind"] for r in records(results)]
    assert kinds.count("comparison") == 1 and kinds[-1] == "run_end"
    assert records(results)[-1]["interrupted"] is True


@pytest.mark.parametrize("to", ["the process group", "the controller"])
def test_ctrl_c_of_a_parallel_run_leaves_one_readable_file_that_ends_interrupted(tmp_path, to):
    pytest.importorskip("xdist", reason="pytest-xdist (a dev dependency) runs the workers")
    results = tmp_path / "results.jsonl"
    command = [arg for arg in conformance_command("tests.fake_adapters:ORACLES", results, timeout=60) if arg != "-q"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST") and k != "PYTEST_ADDOPTS"}
    run = subprocess.Popen([*command, "-v", "-n", "2"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, env=env, start_new_session=True)
    seen = []
    try:
        for line in run.stdout:
            seen.append(line)
            if sum(" PASSED " in item and item.startswith("[gw") for item in seen) >= ENOUGH:
                break
        if to == "the process group":
            os.killpg(run.pid, signal.SIGINT)
        else:
            run.send_signal(signal.SIGINT)
        rest, _ = run.communicate(timeout=600)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    log = "".join(seen) + rest
    assert run.returncode == 2, log[-5000:]
    found = records(results)  # every line is JSON
    kinds = [r["kind"] for r in found]
    assert kinds[0] == "run" and kinds.count("run") == 1 and kinds.count("run_end") == 1, kinds
    assert sum(kind == "comparison" for kind in kinds) >= ENOUGH
    assert found[-1]["kind"] == "run_end" and found[-1]["interrupted"] is True
    assert len({r["run_id"] for r in found}) == 1

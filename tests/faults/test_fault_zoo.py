"""Faults: adapters that misbehave on purpose (tests/fake_adapters.py FAULT_ZOO) fail their own
cells with a reason that names the fault, and nothing else: the run completes, the adapters that
behave still pass, the results file stays valid JSON lines with its run_end record, and the report
shows each fault with its reason, escaped."""
import subprocess

import pytest
from fault_runs import ROOT, build_page, conformance_command, records
from markupsafe import escape  # what the page's Jinja2 autoescape uses

# adapter -> (what its failed cells' reason must say, the quantities it fails)
FAULTS = {
    "test.broken.raises": ("raised RuntimeError: kernel launch failed: out of shared memory", ("loss", "grad")),
    "test.broken.nan_loss": ("loss is nan where the oracle gives", ("loss",)),
    "test.broken.inf_loss": ("loss is inf where the oracle gives", ("loss",)),
    "test.broken.transposed_gradient": ("returned a gradient of shape", ("loss", "grad")),
    "test.broken.integer_gradient": ("returned a gradient of dtype int64, not a floating dtype", ("loss", "grad")),
    "test.broken.object_loss": ("returned a loss of type builtins.object (<object object at", ("loss", "grad")),
    "test.broken.hangs": ("gave no answer within the per-call timeout of 10 s", ("loss", "grad")),
    "test.broken.segfaults": ("died with signal 11 (SIGSEGV) before it answered", ("loss", "grad")),
    "test.broken.exits": ("exited with exit code 3 before it answered", ("loss", "grad")),
    "test.broken.kills_itself": ("died with signal 9 (SIGKILL) before it answered", ("loss", "grad")),
    "test.broken.hangs_isolated": ("timeout of 10 s; its process was killed", ("loss", "grad")),
}
BEHAVING = ("test.oracle", "test.oracle_isolated")


@pytest.fixture(scope="module")
def zoo_run(tmp_path_factory):
    """(the finished pytest process, its results records, the page built from them)."""
    where = tmp_path_factory.mktemp("zoo")
    results, page = where / "results.jsonl", where / "page.html"
    run = subprocess.run(conformance_command("tests.fake_adapters:FAULT_ZOO", results),
                         cwd=ROOT, capture_output=True, text=True, timeout=1800, check=False)
    built = build_page(results, page)
    assert built.returncode == 0, built.stderr
    return run, records(results), page.read_text(encoding="utf-8")


def comparisons(found: list[dict], adapter: str) -> dict[str, dict]:
    return {r["quantity"]: r for r in found if r["kind"] == "comparison" and r["adapter"] == adapter}


def test_the_run_completes_with_every_cell_recorded_and_a_run_end(zoo_run):
    run, found, _ = zoo_run
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]  # tests failed: no crash, no interrupt
    cells = [r for r in found if r["kind"] == "comparison"]
    assert len(cells) == 2 * (len(FAULTS) + len(BEHAVING))
    assert found[0]["kind"] == "run" and found[-1]["kind"] == "run_end"
    assert found[-1]["interrupted"] is False and found[-1]["exit_status"] == 1


@pytest.mark.parametrize("adapter", BEHAVING)
def test_an_adapter_that_behaves_still_passes(zoo_run, adapter):
    cells = comparisons(zoo_run[1], adapter)
    assert {q: r["verdict"] for q, r in cells.items()} == {"loss": "pass", "grad": "pass"}


@pytest.mark.parametrize("adapter", FAULTS)
def test_each_fault_fails_its_cells_with_a_reason_that_names_it(zoo_run, adapter):
    reason, failing = FAULTS[adapter]
    cells = comparisons(zoo_run[1], adapter)
    assert set(cells) == {"loss", "grad"}
    for quantity, record in cells.items():
        if quantity in failing:
            assert record["verdict"] == "fail" and reason in record["reason"], record
        else:
            assert record["verdict"] == "pass", record


@pytest.mark.parametrize("adapter", FAULTS)
def test_the_page_shows_each_fault_with_its_reason_escaped(zoo_run, adapter):
    page = zoo_run[2]
    reason = FAULTS[adapter][0]
    assert escape(adapter) in page and escape(reason) in page
    assert "<object object at" not in page  # what an adapter returned is shown as text, never as markup

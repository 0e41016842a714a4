"""`pytest -n 2` (pytest-xdist) gives what a serial run gives: the same verdict per cell, one results file (one run
header, every worker's records, the divergence records summed over the workers, one run_end counting them all),
the same end-of-run summary, and a page with the same matrix; regime coverage is judged over the union of the
workers' examples; every worker runs the derandomised Hypothesis profile; the main job shows its progress.

A small conformance run (tests/engine/parallel_run.py: the oracle and two broken adapters, float64, two test-only
registry entries) goes through a pytest subprocess serially and in two workers, and the two are compared."""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("xdist", reason="pytest-xdist (a dev dependency) runs the parallel runs")

from engine.session import ConformanceSession  # noqa: E402
from engine.workers import receive  # noqa: E402
from tests.child_pytest import environment  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PATHS = ("suite/test_conformance.py", "suite/test_edge_cases.py")
RUN = ("-p", "tests.engine.parallel_run", "--adapter", "tests.fake_adapters:ORACLES",
       "--adapter", "tests.engine.parallel_run:BROKEN", "-k", "float64 and not soft and not scaled and not normalized",
       "-p", "no:cacheprovider", "-p", "no:randomly")
ENTRIES = ("parallel-flipped-gradient", "parallel-fixed-upstream")  # tests/engine/parallel_run.py
VOLATILE = ("run_id", "duration_s")  # what may differ between two runs of one tree


@dataclass
class Run:
    status: int
    output: str
    records: list[dict]  # every line of the results file (each must be JSON)
    outcomes: dict[str, str]  # junit testcase -> passed / failed / skipped / error

    def of_kind(self, kind: str) -> list[dict]:
        return [r for r in self.records if r["kind"] == kind]


def junit_outcomes(path: Path) -> dict[str, str]:
    outcomes = {}
    for case in ElementTree.parse(path).iter("testcase"):
        found = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[f"{case.get('classname')}::{case.get('name')}"] = found[0] if found else "passed"
    return outcomes


def run_pytest(folder: Path, name: str, *extra: str, env: dict | None = None) -> Run:
    results, junit = folder / f"{name}.jsonl", folder / f"{name}.xml"
    done = subprocess.run([sys.executable, "-m", "pytest", *PATHS, *RUN, "--results", str(results),
                           "--junitxml", str(junit), "-q", *extra],
                          cwd=ROOT, capture_output=True, text=True, timeout=900, env=env or environment())
    output = done.stdout + done.stderr
    assert results.exists() and junit.exists(), output[-3000:]
    records = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()]
    return Run(done.returncode, output, records, junit_outcomes(junit))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Run]:
    """The small run serially and in two workers (each worker writes its Hypothesis settings to probe/)."""
    folder = tmp_path_factory.mktemp("parallel")
    probe = folder / "probe"
    probe.mkdir()
    return {
        "serial": run_pytest(folder, "serial"),
        "parallel": run_pytest(folder, "parallel", "-n", "2", env=environment(PARALLEL_PROBE_DIR=str(probe))),
        "probe": probe,
    }


def without(record: dict, *fields: str) -> str:
    return json.dumps({k: v for k, v in record.items() if k not in fields}, sort_keys=True)


def summary(output: str) -> list[str]:
    """The triplet-conformance section of pytest's output, without the line naming the results file."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if "triplet-conformance" in line and line.startswith("="))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("=")), len(lines))
    return [line for line in lines[start + 1:end] if not line.startswith("results: ")]


def test_a_parallel_run_has_the_verdicts_of_a_serial_run(runs):
    serial, parallel = runs["serial"], runs["parallel"]
    assert serial.status == parallel.status == 1, parallel.output[-3000:]  # failures: the broken adapters, an XPASS
    assert parallel.outcomes == serial.outcomes
    assert Counter(serial.outcomes.values())["failure"] > 0 and Counter(serial.outcomes.values())["passed"] > 0


def test_a_parallel_run_writes_one_results_file_with_one_header_and_one_end(runs):
    serial, parallel = runs["serial"], runs["parallel"]
    kinds = [r["kind"] for r in parallel.records]
    assert kinds[0] == "run" and kinds[-1] == "run_end" and kinds.count("run") == kinds.count("run_end") == 1
    assert len({r["run_id"] for r in parallel.records}) == 1
    assert "pytest-xdist: 2 workers" in parallel.records[0]["notes"]
    end, serial_end = parallel.records[-1], serial.records[-1]
    assert end["counts"] == serial_end["counts"] == dict(Counter(r["verdict"] for r in parallel.of_kind("comparison")))
    assert end["exit_status"] == parallel.status and end["interrupted"] is False


def test_a_parallel_run_records_what_a_serial_run_records(runs):
    """Every comparison and edge-case record, field by field (ids and verdicts included), and one divergence
    record per registry entry with the items and outcomes of the whole run."""
    serial, parallel = runs["serial"], runs["parallel"]
    for kind in ("comparison", "edge_case"):
        assert serial.of_kind(kind), kind
        assert sorted(without(r, *VOLATILE) for r in parallel.of_kind(kind)) == \
            sorted(without(r, *VOLATILE) for r in serial.of_kind(kind))
    divergences = {r["id"]: r for r in parallel.of_kind("divergence")}
    assert len(divergences) == len(parallel.of_kind("divergence")) == len(serial.of_kind("divergence"))
    assert divergences == {r["id"]: {**r, "run_id": parallel.records[0]["run_id"]} for r in serial.of_kind("divergence")}
    for entry in ENTRIES:  # the outcomes of the items that ran: one per record naming the entry
        named = [r for r in parallel.records if r["kind"] in ("comparison", "edge_case") and entry in (r["divergence"] or "")]
        assert sum(divergences[entry]["outcomes"].values()) == len(named) > 0, entry
    assert divergences["parallel-fixed-upstream"]["reproduces"] is False
    assert divergences["parallel-flipped-gradient"]["reproduces"] is True


def test_a_parallel_run_prints_the_summary_of_a_serial_run(runs):
    serial, parallel = summary(runs["serial"].output), summary(runs["parallel"].output)
    assert parallel == serial and parallel[0].startswith("comparison cells: 14 (")


def test_the_page_of_a_parallel_run_shows_the_matrix_of_a_serial_run(runs, tmp_path):
    pytest.importorskip("pandas")
    pytest.importorskip("jinja2")
    from reports import page
    from reports.reader import read_results

    def matrix(run: Run) -> list[tuple]:
        path = tmp_path / f"{id(run)}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in run.records), encoding="utf-8")
        _, report = page.render(read_results([path]))
        assert not report.problems, report.problems
        assert [(r.status, r.hypothesis) for r in report.runs] == [("complete", "profile ci · derandomised · at most 40 examples")]
        return [(group.adapter, group.status, row.spec_label, column, variant.label, chip.quantity, chip.verdict)
                for group in report.matrix.groups for row in group.rows
                for column, cell in zip(report.matrix.columns, row.cells) if cell is not None
                for variant in cell.variants for chip in variant.chips]

    # the same chips; the rows of an adapter come in the order its specs first appear in the file, which in a
    # parallel run is the order the workers finished them in
    serial = sorted(matrix(runs["serial"]))
    assert serial and sorted(matrix(runs["parallel"])) == serial
    assert {verdict for *_, verdict in serial} >= {"pass", "fail", "xfail", "xpass"}


def test_every_worker_runs_the_derandomised_profile_under_ci(runs):
    settings = {path.stem: json.loads(path.read_text()) for path in runs["probe"].iterdir()}
    assert set(settings) == {"controller", "gw0", "gw1"}
    for where, found in settings.items():
        assert found == {"profile": "ci", "derandomize": True, "database": None, "max_examples": 40}, where
    assert runs["parallel"].records[0]["hypothesis"]["profile"] == "ci"


# --- regime coverage over the union of the workers' examples -------------------------------------------------

def regime_probe(results: Path, *extra: str, **env: str) -> subprocess.CompletedProcess:
    """tests/engine/regime_probe.py: its two tests in two workers (their xdist groups)."""
    return subprocess.run([sys.executable, "-m", "pytest", "tests/engine/regime_probe.py", "--adapter",
                           "tests.fake_adapters:ORACLES", "-p", "no:cacheprovider", "-v", "--results", str(results),
                           *extra], cwd=ROOT, capture_output=True, text=True, timeout=600, env=environment(**env))


@pytest.fixture(scope="module")
def group_probe(tmp_path_factory) -> dict[str, list[str]]:
    """tests/engine/group_probe.py in two workers (--dist loadgroup): the lines its tests wrote, per file."""
    folder = tmp_path_factory.mktemp("group_probe")
    files = {"setups": folder / "setups", "cells": folder / "cells"}
    done = subprocess.run([sys.executable, "-m", "pytest", "tests/engine/group_probe.py", "-p", "no:cacheprovider",
                           "-q", "-n", "2", "--dist", "loadgroup"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env=without_thread_limits(environment(GROUP_PROBE_FILE=str(files["setups"]),
                                                                             GROUP_PROBE_CELLS=str(files["cells"]))))
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return {name: path.read_text(encoding="utf-8").splitlines() for name, path in files.items()}


def test_tests_sharing_a_module_fixture_run_in_one_worker_which_sets_it_up_once(group_probe):
    """engine/workers.py groups them for --dist loadgroup. pytest 9.2 with pytest-xdist 3.8 drops every group
    without a word (pytest-dev/pytest-xdist#1386): the reason pyproject.toml keeps pytest below 9.2."""
    assert len(group_probe["setups"]) == 1


def without_thread_limits(env: dict[str, str]) -> dict[str, str]:
    """`env` as a user's shell has it: no OMP_NUM_THREADS (the enclosing run's controller may have set one)."""
    return {name: value for name, value in env.items() if name != "OMP_NUM_THREADS"}


def test_each_worker_runs_torch_on_its_share_of_the_cores(group_probe):
    """The controller gives its 2 workers OMP_NUM_THREADS = cores // 2 (engine/workers.py `share_the_cores`)."""
    (line,) = group_probe["setups"]
    threads = int(line.split("OMP_NUM_THREADS=")[1])
    assert 1 <= threads and (threads == 1 or 2 * threads <= len(os.sched_getaffinity(0))), line


def test_a_thread_count_the_user_set_is_kept():
    from engine.workers import share_the_cores

    for workers, environ, threads in ((2, {"OMP_NUM_THREADS": "3"}, "3"), ("auto", {}, None), (0, {}, None)):
        share_the_cores(workers, environ)
        assert environ.get("OMP_NUM_THREADS") == threads


def test_the_conformance_and_property_items_of_a_cell_key_run_in_one_worker(group_probe):
    """So that they reuse the answers on the examples they share (engine/workers.py `work_unit`)."""
    workers = {}
    for line in group_probe["cells"]:
        pid, cell = line.split(" ", 1)
        workers.setdefault(cell.rsplit("|", 1)[0], set()).add(pid)
    assert len(workers) == 12 and sum(len(pids) for pids in workers.values()) == 12, workers


def test_under_loadgroup_the_suites_own_tests_come_before_its_cells():
    """The long child runs first, the short cells fill in at the end of a run (engine/workers.py); a run without
    --dist loadgroup keeps pytest's order."""
    from types import SimpleNamespace

    from engine.workers import pytest_collection_modifyitems

    ids = ["suite/test_conformance.py::a", "tests/engine/test_x.py::b", "suite/test_properties.py::c",
           "tests/faults/test_y.py::d"]
    for loadgroup, expected in ((True, [ids[1], ids[3], ids[0], ids[2]]), (False, ids)):
        items = [SimpleNamespace(nodeid=nodeid, get_closest_marker=lambda name: None, _fixtureinfo=None, module=None)
                 for nodeid in ids]
        pytest_collection_modifyitems(SimpleNamespace(option=SimpleNamespace(loadgroup=loadgroup)), items)
        assert [item.nodeid for item in items] == expected, loadgroup


def test_the_mutation_score_a_worker_measured_is_in_the_summary():
    """tests/mutants runs in one worker; the summary is printed by the controller (tests/conftest.py)."""
    done = subprocess.run([sys.executable, "-m", "pytest", "tests/engine/score_probe.py", "-p", "no:cacheprovider",
                           "-n", "2"], cwd=ROOT, capture_output=True, text=True, timeout=600, env=environment())
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "probe implementations flagged: 3 of 4" in output, output[-3000:]


def test_a_results_file_outside_the_checkout_reaches_every_worker(tmp_path):
    """`--results PATH` as two words, PATH outside the checkout, no test path named: the workers get `--results=PATH`
    (engine/workers.py joined_option_values). As two words, a worker takes the file the controller has just
    created for a test path, finds no pyproject.toml above it, never loads the plugin and dies on --results."""
    results = tmp_path / "elsewhere" / "results.jsonl"
    results.parent.mkdir()
    done = subprocess.run([sys.executable, "-m", "pytest", "--adapter", "tests.fake_adapters:ORACLES", "--results",
                           str(results), "-k", "float64 and batch_hard and loss", "-p", "no:cacheprovider", "-q",
                           "-n", "2"], cwd=ROOT, capture_output=True, text=True, timeout=600, env=environment())
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    end = ends(results)[-1]
    assert end["counts"].get("pass", 0) > 0 and end["exit_status"] == 0


def ends(results: Path) -> list[dict]:
    return [r for r in map(json.loads, results.read_text(encoding="utf-8").splitlines()) if r["kind"] == "run_end"]


def workers_of(output: str) -> dict[str, str]:
    """test name -> the worker that ran it, from xdist's verbose lines ("[gw1] [ 50%] PASSED path::test@group")."""
    return {m.group(2): m.group(1) for m in re.finditer(r"^\[(gw\d+)\] .*?(?:PASSED|FAILED) \S+::(\w+)", output, re.M)}


def test_a_regime_that_only_one_worker_reached_is_not_reported_missing(tmp_path):
    """Neither the run nor either worker's part of it fails: the one run_end says so."""
    done = regime_probe(tmp_path / "results.jsonl", "-n", "2", "--dist", "loadgroup")
    output = done.stdout + done.stderr
    ran = workers_of(output)
    assert len(ran) == 2 and len(set(ran.values())) == 2, output[-3000:]  # the premise: one test per worker
    assert done.returncode == 0, output[-3000:]
    assert "REGIME NOT REACHED" not in output
    assert [end["exit_status"] for end in ends(tmp_path / "results.jsonl")] == [0]


def test_a_regime_that_no_worker_reached_fails_the_parallel_run(tmp_path):
    done = regime_probe(tmp_path / "results.jsonl", "-n", "2", "--dist", "loadgroup", REGIME_PROBE_NONE="1")
    output = done.stdout + done.stderr
    assert len(set(workers_of(output).values())) == 2, output[-3000:]
    assert done.returncode == 1, output[-3000:]
    assert "REGIME NOT REACHED (fails the run): 'semi_hard fallback fired' never occurred in 41 examples" in output
    assert [end["exit_status"] for end in ends(tmp_path / "results.jsonl")] == [1]


def test_the_controller_judges_regimes_over_every_workers_examples():
    """The session's events, as two workers send them: the union has the regime, neither worker alone decides."""
    name = "semi_hard fallback fired"
    controller = ConformanceSession(writer=None, sources={}, timeout=1.0, role="controller")
    without = {"records": [], "events": [["regimes", [[name, f"k{i}"] for i in range(40)], []]]}
    with_it = {"records": [], "events": [["regimes", [[name, "k40"]], [[name, "k40"]]]]}
    receive(controller, without)
    assert controller.regime_coverage()[0]  # required, and missing so far
    receive(controller, with_it)
    assert controller.regime_coverage()[0] == []
    assert controller.regime_applicable[name] == {f"k{i}" for i in range(41)}


def test_the_collection_is_counted_once_and_the_outcomes_summed():
    controller = ConformanceSession(writer=None, sources={}, timeout=1.0, role="controller")
    collected = ["collected", {"divergence_items": {"d": 3}, "adapters": ["a"], "checks": ["grad"]}]
    for outcome in ("xfail", "xpass"):  # two workers: each collected every item, each ran some
        receive(controller, {"records": [], "events": [collected, ["divergence", "d", outcome], ["verdict", outcome, None]]})
    assert controller.divergence_items == {"d": 3}
    assert controller.divergence_outcomes["d"] == {"xfail": 1, "xpass": 1}
    assert controller.verdicts == {"xfail": 1, "xpass": 1}


# --- the main job (./run.sh report) with -n ------------------------------------------------------------------

def test_the_main_job_shows_progress_of_a_parallel_run(runs, tmp_path, monkeypatch):
    """reports.main's run_suite with `-n 2 --dist loadfile`: the conformance cells in one worker, the edge cases in
    the other, so the test-only entry that covers both has outcomes from both workers, summed."""
    from reports import main as job

    for name in [k for k in os.environ if k.startswith("PYTEST_XDIST") or k == "PYTEST_ADDOPTS"]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CI", "true")
    results, log, shown = tmp_path / "run.jsonl", tmp_path / "run.log", io.StringIO()
    status, tally = job.run_suite(list(PATHS), results, log, [*RUN, "-n", "2", "--dist", "loadfile", "-v"],
                                  job.Display(shown), ROOT)
    pytest_log = log.read_text(encoding="utf-8")
    serial = runs["serial"]
    assert status == 1, pytest_log[-3000:]
    assert tally.total == tally.done == len(serial.outcomes), shown.getvalue()
    assert tally.broken == [] and tally.failed == Counter(serial.outcomes.values())["failure"]
    assert tally.verdicts == serial.records[-1]["counts"]
    assert f"collected {tally.total} cells" in shown.getvalue()
    failing = [name.split("::")[-1] for name, outcome in serial.outcomes.items() if outcome == "failure"]
    for line in (line for line in shown.getvalue().splitlines() if "failed: " in line):
        assert any(name in line for name in failing), line  # the failed item, not the one started last
    records = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()]
    assert [r["kind"] for r in records].count("run") == 1 and records[-1]["kind"] == "run_end"
    entry = next(r for r in records if r["kind"] == "divergence" and r["id"] == "parallel-flipped-gradient")
    assert entry == {**next(r for r in serial.of_kind("divergence") if r["id"] == entry["id"]), "run_id": entry["run_id"]}
    workers = {m.group(1) for m in re.finditer(r"^\[(gw\d+)\] .*?(?:XFAIL|FAILED|XPASS)\S* \S+flipped_gradient", pytest_log, re.M)}
    assert workers == {"gw0", "gw1"}, pytest_log[-3000:]  # the premise: the entry's items ran in both workers

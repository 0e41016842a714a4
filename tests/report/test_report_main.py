"""The two commands: `python -m reports RESULTS... -o PAGE` and the main job `python -m reports.main`.

The main job is run end to end against a tiny stand-in suite in a temporary checkout that keeps the
suite's results contract (--results PATH: a run header, records, run_end), so the progress plugin,
the results tail, the exit policy and the merge with committed results are all exercised for real.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from reports import __main__ as cli
from reports import main as job
from reports import synthetic

REPO = Path(__file__).resolve().parents[2]


def test_cli_writes_the_page_and_a_one_line_summary(demo_files, tmp_path, capsys):
    output = tmp_path / "out.html"
    assert cli.main([*map(str, demo_files), "-o", str(output)]) == 0
    printed = capsys.readouterr().out
    assert output.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert "8 implementations: 3 conform, 1 conforms with known divergences, 4 have discrepancies" in printed
    assert "partial run(s): py311-tf213" in printed


@pytest.mark.parametrize("make_unreadable, expected", [
    (lambda path: None, "no such results file"),
    (lambda path: path.mkdir(), "is a directory"),
])
def test_cli_unreadable_path_is_a_clear_error_and_no_page(demo_files, tmp_path, capsys, make_unreadable, expected):
    missing = tmp_path / "results.jsonl"
    make_unreadable(missing)
    output = tmp_path / "out.html"
    assert cli.main([str(demo_files[0]), str(missing), "-o", str(output)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and expected in error and str(missing) in error
    assert "Traceback" not in error
    assert not output.exists()


def test_cli_as_a_module_prints_no_traceback(tmp_path):
    """The real entry point, in a fresh interpreter: a missing file is one line on stderr, exit status 2."""
    finished = subprocess.run([sys.executable, "-m", "reports", str(tmp_path / "nope.jsonl")], cwd=REPO,
                              capture_output=True, text=True, timeout=120)
    assert finished.returncode == 2
    assert finished.stderr.strip() == f"error: {tmp_path / 'nope.jsonl'}: no such results file"


def test_suite_paths_are_listed_once_and_missing_ones_left_out(tmp_path):
    (tmp_path / job.TEST_PATHS[1]).mkdir(parents=True)
    assert job.test_paths(tmp_path) == [job.TEST_PATHS[1]]
    assert job.test_paths(tmp_path / "elsewhere") == []


def test_extra_arguments_after_the_separator_go_to_pytest():
    arguments, extra = job.parse(["--output", "x.html", "--profile", "ci", "--", "-k", "torch", "-x"])
    assert (arguments.output, arguments.profile, extra) == ("x.html", "ci", ["-k", "torch", "-x"])


def test_the_main_job_draws_more_examples_per_cell_than_ci():
    """CI's fixed sample is 3 drawn examples per conformance cell (beside its regression batches and the strategy's
    extremes); the main job's page keeps 20, derandomised as well."""
    from hypothesis import settings

    from engine.profiles import examples_per_cell

    arguments, _ = job.parse([])
    assert arguments.profile == "report"
    current = settings.get_current_profile_name()
    try:
        counts = {}
        for profile in ("ci", "report"):
            settings.load_profile(profile)
            counts[profile] = (examples_per_cell(), settings.default.derandomize)
    finally:
        settings.load_profile(current)
    assert counts == {"ci": (3, True), "report": (20, True)}


STAND_IN_CONFTEST = """
    # The suite's results contract, as tests/conftest.py keeps it: --results PATH gets a "run" header,
    # the records the tests write, and a "run_end" record.
    import pytest
    from hypothesis import settings
    from reports.results import ResultsWriter, now

    settings.register_profile("dev", max_examples=5)

    def pytest_addoption(parser):
        parser.addoption("--results")

    def pytest_configure(config):
        config.stand_in_writer = ResultsWriter(config.getoption("results"))
        config.stand_in_writer.header(hypothesis={"profile": "dev"}, environment="stand-in")

    @pytest.fixture
    def results(pytestconfig):
        return pytestconfig.stand_in_writer

    def pytest_sessionfinish(session, exitstatus):
        session.config.stand_in_writer.write("run_end", finished=now(), duration_s=0.1, exit_status=int(exitstatus),
                                             interrupted=False)
"""

STAND_IN_TESTS = """
    import pytest
    from reference import Spec

    SPEC = Spec(mining="batch_all")

    @pytest.mark.parametrize("spec", [SPEC])
    @pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
    def test_cell(results, spec, dtype):
        verdict = "fail" if dtype == "float16" else "pass"
        results.write("comparison", adapter="stand-in", framework="numpy", spec=SPEC.to_dict(), spec_label=str(SPEC),
                      dtype=dtype, device="cpu", target="cpu", version="numpy 1", quantity="loss", verdict=verdict,
                      examples=3, normalized_error=2.5 if verdict == "fail" else 0.1, errors=[0.1, 2.5, 0.3])
        assert verdict == "pass", "a discrepancy: recorded, and the test fails"
"""

BREAKING_TEST = """
    def test_harness_bug(results):
        raise TypeError("a bug in the test itself: it fails before recording anything")
"""


def stand_in_checkout(root: Path, *test_files: str) -> Path:
    """A checkout whose suite's test paths (the main job's TEST_PATHS, in order) hold `test_files`."""
    (root / "conftest.py").write_text(textwrap.dedent(STAND_IN_CONFTEST))
    for path, source in zip(job.TEST_PATHS, test_files):
        target = root / path if path.endswith(".py") else root / path / "test_stand_in.py"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(source))
    synthetic.write_run(root / job.COMMITTED_RESULTS / "tf215.jsonl", synthetic.demo_runs()["py311-tf215.jsonl"])
    return root


def run_job(root: Path, monkeypatch, capsys, *extra: str) -> tuple[int, str, str]:
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the stand-in suite imports reference, reports, adapters
    monkeypatch.chdir(root)
    status = job.main(["--output", "page.html", "--profile", "dev", *extra], root=root)
    out, err = capsys.readouterr()
    return status, out, err


def test_main_job_runs_shows_progress_merges_committed_results_and_a_discrepancy_is_not_a_crash(
        tmp_path, monkeypatch, capsys):
    root = stand_in_checkout(tmp_path, STAND_IN_TESTS)
    status, out, err = run_job(root, monkeypatch, capsys)
    assert status == 0, err
    assert "collected 3 cells" in out
    failure_line = next(line for line in out.splitlines() if "failed: " in line)  # says which spec and dtype
    assert "float16" in failure_line and str(synthetic.Spec(mining="batch_all")) in failure_line
    assert "[3/3 cells 100%" in out and "fail 1 · pass 2" in out
    assert "report: " + str(root / "page.html") in out
    html = (root / "page.html").read_text(encoding="utf-8")
    assert "stand-in" in html and "tfa.triplet_semihard_loss" in html  # this run and committed results, merged
    results = list((root / "results").glob("run-*.jsonl"))
    assert len(results) == 1 and '"kind": "run_end"' in results[0].read_text()


def test_main_job_fails_when_a_test_breaks_without_a_record(tmp_path, monkeypatch, capsys):
    root = stand_in_checkout(tmp_path, STAND_IN_TESTS, BREAKING_TEST)
    status, out, err = run_job(root, monkeypatch, capsys)
    assert status == 1
    assert "1 test(s) broke without a result record" in err and "test_harness_bug" in err
    assert "TypeError: a bug in the test itself" in err  # the tail of pytest's log says why
    assert (root / "page.html").exists()  # the page is still written from what the run recorded


SESSION_CHECK_CONFTEST = """
    import pytest

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(session, exitstatus):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED  # e.g. a strategy never reached a required regime
"""


def test_main_job_fails_when_the_session_fails_without_a_failing_test(tmp_path, monkeypatch, capsys):
    root = stand_in_checkout(tmp_path, STAND_IN_TESTS.replace('"fail" if dtype == "float16" else ', ""))
    (root / job.TEST_PATHS[0]).with_name("conftest.py").write_text(textwrap.dedent(SESSION_CHECK_CONFTEST))
    status, out, err = run_job(root, monkeypatch, capsys)
    assert status == 1
    assert "pytest failed the session although no test failed" in err


def test_main_job_fails_when_pytest_cannot_run(tmp_path, monkeypatch, capsys):
    root = stand_in_checkout(tmp_path, STAND_IN_TESTS)
    status, out, err = run_job(root, monkeypatch, capsys, "--", "--no-such-option")
    assert status == 4  # pytest's usage error, passed on
    assert "pytest stopped with exit status 4" in err


def test_main_job_without_any_suite_says_so(tmp_path, capsys):
    assert job.main([], root=tmp_path) == 2
    assert "none of the suite's test paths exist" in capsys.readouterr().err

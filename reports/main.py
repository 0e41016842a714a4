"""The main job (`./run.sh report`): run the conformance suite over every installed implementation,
then write the HTML report from this run plus every committed results file under reports/results/.

    python -m reports.main [--output report.html] [--profile report] [-- extra pytest arguments]

Progress (which adapter and spec is running, how many cells are done, verdicts so far) is printed
while pytest runs; pytest's own output goes to a log beside the results file.

The job runs pytest in one process unless the arguments after -- say otherwise: `-- -n 2` runs it in two
pytest-xdist workers (the progress, the results file and the page are the same; engine/progress.py). One process
is the default because the job runs every installed implementation on whatever machine it is given, and each
worker loads TensorFlow and torch: the user decides whether the machine has the memory and cores for more.

A discrepancy is information, not a crash: the exit status is 0 whenever the suite ran to the end
and the page was written, however many cells failed. It is non-zero only when the run itself broke:
pytest stopped early (interrupted, internal or usage error, nothing collected), a test failed in a
fixture's setup or teardown, or a test failed without leaving a result record the page could show.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import page
from .reader import ResultsFileError

ROOT = Path(__file__).resolve().parent.parent
# The suite the main job runs, in one place; a path that does not exist yet is left out.
TEST_PATHS = ("suite/test_conformance.py", "suite/test_edge_cases.py", "suite/robustness")
COMMITTED_RESULTS = "reports/results"
# The pipe the child run's progress plugin (engine/progress.py, `-p engine.progress`) writes to, by descriptor.
PROGRESS_FD = "REPORTS_PROGRESS_FD"
PYTEST_CAN_HAVE_DISCREPANCIES = (0, 1)  # all passed / some tests failed; anything else means the run broke


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    own, extra = (argv[: argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(
        prog="python -m reports.main",
        description="Run the conformance suite, then write the HTML report. Arguments after -- go to pytest.",
    )
    parser.add_argument("-o", "--output", default="report.html", help="the page to write (default: %(default)s)")
    parser.add_argument(
        "--profile", default="report",
        help="Hypothesis profile (default: %(default)s, derandomised, so that two runs of one tree give one page, with "
        "20 examples per conformance cell; ci is the same with 10, dev draws 20 new ones each run, thorough 2000)",
    )
    parser.add_argument("--results-dir", default="results", help="where this run's results and log go (default: %(default)s)")
    return parser.parse_args(own), extra


def test_paths(root: Path = ROOT) -> list[str]:
    return [path for path in TEST_PATHS if (root / path).exists()]


def committed_results(root: Path = ROOT) -> list[Path]:
    return sorted((root / COMMITTED_RESULTS).glob("*.jsonl"))


@dataclass
class Tally:
    """What the progress display knows: items done, verdicts recorded, and the items that broke."""

    total: int | None = None
    done: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    broken: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def line(self, what: str) -> str:
        total = self.total if self.total is not None else "?"
        share = f"{100 * self.done / self.total:3.0f}%" if self.total else "  ?%"
        elapsed = int(time.monotonic() - self.started)
        counts = " · ".join(f"{verdict} {n}" for verdict, n in sorted(self.verdicts.items())) or "no verdicts yet"
        return f"[{self.done}/{total} cells {share} {elapsed // 60}m{elapsed % 60:02d}s] {counts} | {what}"


class ResultsTail:
    """Reads the records the run appends to its results file, as they come."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0

    def new_records(self) -> list[dict]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            data = handle.read()
        complete = data[: data.rfind(b"\n") + 1]  # a line still being written waits for the next read
        self.offset += len(complete)
        records = []
        for line in complete.splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue  # the page lists unreadable lines; progress only counts
        return records


class Display:
    """One line rewritten in place on a terminal; a line every few seconds (and every failure) in a log."""

    def __init__(self, stream=None, interval: float = 10.0):
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty()
        self.interval = interval
        self.last = 0.0

    def show(self, text: str, important: bool = False) -> None:
        if self.live:
            width = os.get_terminal_size(self.stream.fileno()).columns
            self.stream.write("\r\033[K" + text[: width - 1])
        elif important or time.monotonic() - self.last >= self.interval:
            self.stream.write(text + "\n")
            self.last = time.monotonic()
        self.stream.flush()

    def finish(self) -> None:
        if self.live:
            self.stream.write("\n")


def run_suite(paths: list[str], results: Path, log: Path, pytest_args: list[str], display: Display,
              root: Path = ROOT) -> tuple[int, Tally]:
    """Run pytest over `paths`, writing `results`, showing progress; returns pytest's exit status and the tally."""
    reader, writer = os.pipe()
    command = [sys.executable, "-m", "pytest", *paths, "--results", str(results), "-p", "engine.progress", *pytest_args]
    with log.open("w", encoding="utf-8") as log_file:
        process = subprocess.Popen(
            command, cwd=root, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            pass_fds=(writer,), env={**os.environ, PROGRESS_FD: str(writer)},
        )
    os.close(writer)
    tally, tail, running = Tally(), ResultsTail(results), ""
    described: dict[str, str] = {}  # nodeid -> what it checks; under pytest-xdist several items run at once
    with os.fdopen(reader, encoding="utf-8") as events:
        for line in events:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event["event"] == "collected":
                tally.total = event["total"]
                display.show(tally.line(f"collected {tally.total} cells"), important=True)
            elif event["event"] == "start":
                running = described[event["nodeid"]] = event["what"]
                display.show(tally.line(running))
            elif event["event"] == "finish":
                tally.done += 1
                written = tail.new_records()
                for record in written:
                    if record.get("kind") == "comparison":
                        tally.verdicts[record.get("verdict")] = tally.verdicts.get(record.get("verdict"), 0) + 1
                # "recorded" is measured in the child, in step with the test: the tail may lag behind it
                if event["phase_error"] or (event["outcome"] == "failed" and not event["recorded"]):
                    tally.broken.append(event["nodeid"])
                failed = event["outcome"] == "failed"
                tally.failed += failed
                finished = described.pop(event["nodeid"], running)
                display.show(tally.line(("failed: " + finished) if failed else running), important=failed)
    status = process.wait()
    display.finish()
    return status, tally


def log_tail(log: Path, lines: int = 25) -> str:
    return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def main(argv: list[str] | None = None, root: Path = ROOT) -> int:
    arguments, pytest_args = parse(sys.argv[1:] if argv is None else argv)
    paths = test_paths(root)
    if not paths:
        print(f"error: none of the suite's test paths exist under {root}: {', '.join(TEST_PATHS)}", file=sys.stderr)
        return 2
    pytest_args = ["--hypothesis-profile", arguments.profile, *pytest_args]
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    results_dir = Path(arguments.results_dir).resolve()
    results_dir.mkdir(parents=True, exist_ok=True)
    results, log = results_dir / f"run-{stamp}.jsonl", results_dir / f"run-{stamp}.log"
    print(f"running {', '.join(paths)}: results {results}, pytest output {log}")
    status, tally = run_suite(paths, results, log, pytest_args, Display(), root)

    problems = []
    if status not in PYTEST_CAN_HAVE_DISCREPANCIES:
        problems.append(f"pytest stopped with exit status {status}")
    elif status == 1 and not tally.failed:
        problems.append("pytest failed the session although no test failed (a session-wide check; see the log)")
    if tally.broken:
        problems.append(f"{len(tally.broken)} test(s) broke without a result record: " + ", ".join(tally.broken[:5])
                        + (" ..." if len(tally.broken) > 5 else ""))
    if not results.exists():
        problems.append("the run wrote no results file")

    sources = ([results] if results.exists() else []) + committed_results(root)
    output = Path(arguments.output).resolve()
    if not sources:
        problems.append("no results to build a page from")
    else:
        try:
            report = page.build(sources, output)
        except ResultsFileError as exc:  # a committed file that cannot be read at all
            problems.append(str(exc))
        else:
            print(f"report: {output}")
            print(page.one_line(report))
    if problems:
        print("the run broke: " + "; ".join(problems), file=sys.stderr)
        print(f"--- last lines of {log} ---\n{log_tail(log)}", file=sys.stderr)
        return status if status not in PYTEST_CAN_HAVE_DISCREPANCIES else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

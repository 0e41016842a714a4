"""A pytest plugin for the main job (reports.main): tells the parent process what is running.

Loaded with `-p engine.progress`; it does nothing unless REPORTS_PROGRESS_FD (reports.main.PROGRESS_FD) names an inherited pipe.
It writes one JSON object per line to that pipe:
    {"event": "collected", "total": N}
    {"event": "start", "nodeid": ..., "what": "adapter · spec · dtype · device"}
    {"event": "finish", "nodeid": ..., "outcome": "passed" | "failed" | "skipped", "phase_error": bool,
     "recorded": bool}
"phase_error" is a failure outside the test body (fixture setup or teardown): the run broke there.
"recorded" says whether the results file grew while the test ran: measured here, in step with the
test, because the parent reads the pipe and the file later and cannot tell whose records it sees.

Under pytest-xdist (`-- -n 2`) the plugin talks from the controller, which runs no test: "collected" comes when
the first worker has collected, "start" when a worker starts an item (its description follows with the item's
setup report: workers attach it, as they cannot write to the pipe), and "recorded" says whether the worker's
reports of the item brought records, which the controller wrote to the results file (engine/workers.py). In a
worker the plugin never touches the pipe's descriptor: it is not the worker's.
"""
from __future__ import annotations

import json
import os

import pytest

from engine.workers import RECORDS_WRITTEN, xdist_role
from reports.main import PROGRESS_FD


def describe_item(item) -> str:
    """Which adapter and spec the test checks, from its parameters; the test id when it has none."""
    from adapters import Adapter
    from reference import Spec

    params = getattr(getattr(item, "callspec", None), "params", {})
    parts = []
    for value in params.values():
        if isinstance(value, Adapter):
            parts.append(value.name)
        elif isinstance(value, Spec):
            parts.append(str(value))
        elif isinstance(value, (str, int, float)):
            parts.append(str(value))
    return " · ".join(parts) if parts else item.nodeid


DESCRIPTION = "progress_what"  # a worker's report attribute: describe_item(item), for the controller's display


def _size(path: str | None) -> int:
    return os.path.getsize(path) if path and os.path.exists(path) else 0


class Progress:
    def __init__(self, stream, results: str | None, distributed: bool = False):
        self.stream = stream
        self.results = results
        self.distributed = distributed  # the xdist controller: workers run the items
        self.outcomes: dict[str, tuple[str, bool]] = {}
        self.size_at_start = 0
        self.recorded: set[str] = set()  # distributed: items whose reports brought records
        self.total_known = False

    def emit(self, **message) -> None:
        self.stream.write(json.dumps(message) + "\n")
        self.stream.flush()

    def pytest_collection_finish(self, session) -> None:
        self.emit(event="collected", total=len(session.items))

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids) -> None:
        if not self.total_known:  # every worker collects every item
            self.total_known = True
            self.emit(event="collected", total=len(ids))

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item, nextitem) -> None:
        self.size_at_start = _size(self.results)
        self.emit(event="start", nodeid=item.nodeid, what=describe_item(item))

    def pytest_runtest_logstart(self, nodeid, location) -> None:
        if self.distributed:
            self.emit(event="start", nodeid=nodeid, what=nodeid)

    def pytest_runtest_logreport(self, report) -> None:
        if self.distributed:
            if getattr(report, RECORDS_WRITTEN, 0):
                self.recorded.add(report.nodeid)
            if report.when == "setup" and getattr(report, DESCRIPTION, None):
                self.emit(event="start", nodeid=report.nodeid, what=getattr(report, DESCRIPTION))
        outcome, phase_error = self.outcomes.get(report.nodeid, ("passed", False))
        if report.failed:
            outcome, phase_error = "failed", phase_error or report.when != "call"
        elif report.skipped and outcome == "passed":
            outcome = "skipped"
        self.outcomes[report.nodeid] = (outcome, phase_error)
        # xdist reports an item whose worker crashed once, with when "???": it ends there
        if report.when == "teardown" or report.when not in ("setup", "call"):
            if self.distributed:
                recorded = report.nodeid in self.recorded
                self.recorded.discard(report.nodeid)
            else:
                recorded = _size(self.results) > self.size_at_start
            self.outcomes.pop(report.nodeid, None)
            self.emit(event="finish", nodeid=report.nodeid, outcome=outcome, phase_error=phase_error,
                      recorded=recorded)


class Describe:
    """In an xdist worker: each item's description rides on its reports to the controller's Progress."""

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        if call.when == "setup":
            setattr(outcome.get_result(), DESCRIPTION, describe_item(item))


def pytest_configure(config) -> None:
    descriptor = os.environ.get(PROGRESS_FD)
    if not descriptor:
        return
    if hasattr(config, "workerinput"):  # an xdist worker inherits the variable, not the descriptor
        config.pluginmanager.register(Describe(), "conformance-progress-describe")
        return
    fd = int(descriptor)
    os.set_inheritable(fd, False)  # a subprocess a test starts must not hold the parent's pipe open
    progress = Progress(os.fdopen(fd, "w", buffering=1), config.getoption("results", None),
                        xdist_role(config) == "controller")
    config.pluginmanager.register(progress, "conformance-progress")

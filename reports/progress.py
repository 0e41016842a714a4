"""A pytest plugin for the main job (reports.main): tells the parent process what is running.

Loaded with `-p reports.progress`; it does nothing unless REPORTS_PROGRESS_FD names an inherited pipe.
It writes one JSON object per line to that pipe:
    {"event": "collected", "total": N}
    {"event": "start", "nodeid": ..., "what": "adapter · spec · dtype · device"}
    {"event": "finish", "nodeid": ..., "outcome": "passed" | "failed" | "skipped", "phase_error": bool,
     "recorded": bool}
"phase_error" is a failure outside the test body (fixture setup or teardown): the run broke there.
"recorded" says whether the results file grew while the test ran: measured here, in step with the
test, because the parent reads the pipe and the file later and cannot tell whose records it sees.
"""
from __future__ import annotations

import json
import os

import pytest

ENVIRONMENT_VARIABLE = "REPORTS_PROGRESS_FD"


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


def _size(path: str | None) -> int:
    return os.path.getsize(path) if path and os.path.exists(path) else 0


class Progress:
    def __init__(self, stream, results: str | None):
        self.stream = stream
        self.results = results
        self.outcomes: dict[str, tuple[str, bool]] = {}
        self.size_at_start = 0

    def emit(self, **message) -> None:
        self.stream.write(json.dumps(message) + "\n")
        self.stream.flush()

    def pytest_collection_finish(self, session) -> None:
        self.emit(event="collected", total=len(session.items))

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item, nextitem) -> None:
        self.size_at_start = _size(self.results)
        self.emit(event="start", nodeid=item.nodeid, what=describe_item(item))

    def pytest_runtest_logreport(self, report) -> None:
        outcome, phase_error = self.outcomes.get(report.nodeid, ("passed", False))
        if report.failed:
            outcome, phase_error = "failed", phase_error or report.when != "call"
        elif report.skipped and outcome == "passed":
            outcome = "skipped"
        self.outcomes[report.nodeid] = (outcome, phase_error)
        if report.when == "teardown":
            self.emit(event="finish", nodeid=report.nodeid, outcome=outcome, phase_error=phase_error,
                      recorded=_size(self.results) > self.size_at_start)


def pytest_configure(config) -> None:
    descriptor = os.environ.get(ENVIRONMENT_VARIABLE)
    if descriptor:
        fd = int(descriptor)
        os.set_inheritable(fd, False)  # a subprocess a test starts must not hold the parent's pipe open
        progress = Progress(os.fdopen(fd, "w", buffering=1), config.getoption("results", None))
        config.pluginmanager.register(progress, "reports-progress")

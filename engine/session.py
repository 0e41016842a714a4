"""The conformance session: what spans the run, a pytest plugin (registered by engine/pytest_plugin.py) that

- starts each cell's run (engine/cell_run.py: its oracle answers, adapter calls, skips, examples, regimes), sharing
  one cache between the items of one cell key, and has each conformance item's record written once pytest has
  decided it (engine/cell_record.py);
- tracks known divergences: which registry entries matched collected items, and whether they
  reproduced (xfail) or not (xpass); writes one "divergence" record per entry at the end;
- tallies the regimes the strategies reached and fails the session when a regime never occurred in
  enough examples that a correct strategy would have missed it with probability below MISS_PROBABILITY;
- prints a summary: verdict counts, ambiguous cells, regime coverage, stale divergences.

Each change to what the run tallies is an *event* (`_note`), applied here; under pytest-xdist a worker also keeps
it for the controller, which applies every worker's events to its own session and so judges the run as a serial
one does (engine/workers.py: the roles and the hand-over).
"""
from __future__ import annotations

from collections import Counter, defaultdict

import pytest

import registry
from reference import scope_in_words

from .cell_record import comparison_record, verdict_and_reason
from .cell_run import CellCache, CellRun
from .cells import Cell
from .regimes import REGIMES

MISS_PROBABILITY = 1e-6  # a regime is required once missing it by chance would be this unlikely
ROLES = ("serial", "worker", "controller")


class ConformanceSession:
    def __init__(self, writer, sources: dict[str, str], timeout: float, results_path=None, role: str = "serial"):
        if role not in ROLES:
            raise ValueError(f"role {role!r} not in {ROLES}")
        self.role = role
        self.writer = writer  # reports.results.ResultsWriter (RecordBuffer in a worker), or a stand-in that drops
        self.sources = sources  # adapter name -> the --adapter MODULE:ATTR it came from (else a built-in)
        self.timeout = timeout  # per adapter call, seconds
        self.results_path = results_path
        self.runs: dict[str, CellRun] = {}  # nodeid -> the run of an item
        self.verdicts: Counter = Counter()
        self.ambiguous_cells: list[str] = []
        self.availability: dict[tuple[str, str], str | None] = {}  # (adapter, target) -> why not
        self._cache = CellCache("")
        # regime name -> example keys where it applied / where it held, from cells that completed
        self.regime_applicable: dict[str, set] = defaultdict(set)
        self.regime_held: dict[str, set] = defaultdict(set)
        # divergence id -> outcomes of the items it covers
        self.divergence_items: Counter = Counter()
        self.collected_adapters: set[str] = set()  # adapters with a collected conformance/edge/property item
        self.collected_checks: set[str] = set()  # "loss", "grad", "edge:<case>", "property:<name>" ...
        self.divergence_outcomes: dict[str, Counter] = defaultdict(Counter)
        self.collection_known = False  # the collection's tallies are in (a controller takes the first worker's)
        self.unsent: list[list] = []  # a worker's events not yet handed to the controller (engine/workers.py)

    def start(self, cell: Cell, nodeid: str) -> CellRun:
        """The run of the item `nodeid`, on `cell`: the items of one cell key share its cache."""
        if cell.key != self._cache.key:
            self._cache = CellCache(cell.key)
        run = CellRun(cell, self._cache, self.timeout, self.sources.get(cell.adapter.name, "catalog"),
                      self.availability)
        self.runs[nodeid] = run
        return run

    # --- what the run tallies: events, applied here and, in a worker, sent to the controller ------------

    def _note(self, *event) -> None:
        self.apply(list(event))
        if self.role == "worker":
            self.unsent.append(list(event))

    def apply(self, event: list) -> None:
        """One change to the run's tallies: made where it happened, and on the controller when it arrives."""
        kind = event[0]
        if kind == "collected":
            if self.collection_known:  # every worker collected the same items: count them once
                return
            self.collection_known = True
            tallies = event[1]
            self.divergence_items.update(tallies["divergence_items"])
            self.collected_adapters.update(tallies["adapters"])
            self.collected_checks.update(tallies["checks"])
        elif kind == "verdict":  # a comparison record's verdict, and the ambiguous cell's line if it is one
            self.verdicts[event[1]] += 1
            if event[2]:
                self.ambiguous_cells.append(event[2])
        elif kind == "divergence":  # a registry entry's item and its outcome
            self.divergence_outcomes[event[1]][event[2]] += 1
        elif kind == "regimes":  # [regime, example key] pairs: where it applied, where it held
            for name, key in event[1]:
                self.regime_applicable[name].add(key)
            for name, key in event[2]:
                self.regime_held[name].add(key)
        else:
            raise ValueError(f"unknown session event {kind!r}")

    # --- pytest hooks -----------------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, items):
        divergence_items, adapters, checks = Counter(), set(), set()
        for item in items:
            cell = getattr(item, "callspec", None) and item.callspec.params.get("cell")
            if isinstance(cell, Cell):
                adapters.add(cell.adapter.name)
                checks.add(cell.check)
            marker = item.get_closest_marker("divergence")
            for divergence_id in marker.args if marker else ():
                divergence_items[divergence_id] += 1
        self._note("collected", {"divergence_items": dict(divergence_items), "adapters": sorted(adapters),
                                 "checks": sorted(checks)})

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        if report.when == "setup" and report.passed:
            return
        if report.when == "teardown":  # the item is done: its run goes (the next item of its key keeps the cache)
            self.runs.pop(item.nodeid, None)
            return
        verdict = _pytest_verdict(report, call)
        marker = item.get_closest_marker("divergence")
        for divergence_id in marker.args if marker else ():
            self._note("divergence", divergence_id, verdict)
        cell = getattr(item, "callspec", None) and item.callspec.params.get("cell")
        if isinstance(cell, Cell) and cell.check in ("loss", "grad"):
            self._record(item, cell, report, verdict, marker)
        if verdict in ("pass", "xfail"):  # a failed cell's examples include its shrinking: biased
            applicable, held = [], []
            run = self.runs.get(item.nodeid)
            for key, names, reached in run.take_regimes() if run else ():
                # only what is new here: the loss and grad items of a cell share their examples
                applicable += [[name, key] for name in names if key not in self.regime_applicable[name]]
                held += [[name, key] for name in reached if key not in self.regime_held[name]]
            if applicable or held:
                self._note("regimes", applicable, held)

    def _record(self, item, cell: Cell, report, verdict: str, marker) -> None:
        run = self.runs.get(item.nodeid) or CellRun(cell, CellCache(cell.key), self.timeout)
        xfail = item.get_closest_marker("xfail")
        verdict, reason = verdict_and_reason(run, verdict, _reason(report), xfail.kwargs.get("reason", "") if xfail else "")
        self._note("verdict", verdict, f"{cell}: {reason}" if verdict == "ambiguous" else None)
        self.writer.write("comparison", **comparison_record(run, verdict, reason, ", ".join(marker.args) if marker else None,
                                                           item.nodeid, report.duration))

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session, exitstatus):
        if self.role == "worker":  # the controller judges the run (engine/workers.py hands it what is left)
            return
        for entry in registry.REGISTRY:
            outcomes = self.divergence_outcomes.get(entry.id, Counter())
            reproduces = True if outcomes["xfail"] else False if outcomes["xpass"] else None
            self.writer.write(
                "divergence",
                id=entry.id,
                adapter=entry.adapter,
                pattern={"spec": scope_in_words(entry.spec), "dtype": entry.dtype, "device": entry.target,
                         "quantity": entry.check},
                divergence_kind=entry.kind,  # "kind" is the record kind: the schema names clash (see report)
                reason=entry.reason,
                link=entry.link,
                reproduces=reproduces,
                items=self.divergence_items.get(entry.id, 0),
                outcomes=dict(outcomes),
            )
        if self.regime_coverage()[0] and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def regime_coverage(self) -> tuple[list[str], list[str]]:
        """(regimes never reached although a correct strategy would have: they fail the run,
        regimes not reached in too few examples to require them)."""
        required, too_few = [], []
        frequencies = {regime.name: regime.min_frequency for regime in REGIMES}
        for name, keys in sorted(self.regime_applicable.items()):
            if self.regime_held[name]:
                continue
            if (1.0 - frequencies[name]) ** len(keys) < MISS_PROBABILITY:
                required.append(
                    f"{name!r} never occurred in {len(keys)} examples, although the strategy is meant to"
                    f" reach it in at least {frequencies[name]:.0%} of them (engine/regimes.py REGIMES)"
                )
            else:
                too_few.append(f"{name} ({len(keys)} examples)")
        return required, too_few

    def stale_divergences(self) -> tuple[list[str], list[str]]:
        """(entries that matched no collected item although items of their adapter and of their check were
        collected: stale, entries this run had no such items for, e.g. a property entry when only the
        conformance cells ran: not exercised)."""
        stale, absent = [], []
        for entry in registry.REGISTRY:
            if self.divergence_items.get(entry.id):
                continue
            line = f"{entry.id} ({entry.scope_in_words()})"
            exercised = any(registry.matches(name, entry.adapter) for name in self.collected_adapters) and any(
                registry.matches(check, entry.check) for check in self.collected_checks
            )
            (stale if exercised else absent).append(line)
        return stale, absent

    def pytest_terminal_summary(self, terminalreporter, exitstatus, config):
        write = terminalreporter.write_line
        if self.role == "worker" or (not self.verdicts and not registry.REGISTRY):
            return
        terminalreporter.section("triplet-conformance")
        counts = ", ".join(f"{verdict} {n}" for verdict, n in sorted(self.verdicts.items()))
        write(f"comparison cells: {sum(self.verdicts.values())} ({counts or 'none'})")
        for line in self.ambiguous_cells:
            write(f"AMBIGUOUS {line}")
        required, too_few = self.regime_coverage()
        for line in required:
            write(f"REGIME NOT REACHED (fails the run): {line}")
        if too_few:
            write(f"regimes not reached, in too few examples to require them: {', '.join(too_few)}")
        stale, absent = self.stale_divergences()
        for line in stale:
            write(f"STALE DIVERGENCE (matched no collected test): {line}")
        if absent:
            write(f"divergences not exercised (no collected item of their adapter and check): {len(absent)}")
        if self.results_path:
            write(f"results: {self.results_path}")


def _pytest_verdict(report, call) -> str:
    if report.skipped:
        return "xfail" if hasattr(report, "wasxfail") else "skip"
    if report.failed:
        return "xpass" if call.excinfo is None else "fail"
    return "pass"


def _reason(report) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return report.longrepr[2].removeprefix("Skipped: ")
    if report.failed and report.longrepr is not None:
        crash = getattr(report.longrepr, "reprcrash", None)
        return crash.message if crash is not None else str(report.longrepr)[-2000:]
    return ""

"""The conformance session: a pytest plugin (registered by engine/pytest_plugin.py) that

- caches, per cell, the oracle's answers and the adapter's outputs, so the loss and grad items of one
  cell call the adapter once per example, and skips cells that cannot run here with the reason;
- writes one "comparison" record per conformance item, whatever its outcome (pass, fail, xfail,
  xpass, skip, ambiguous, error), once pytest has decided it (so a strict xfail's outcome is known);
- tracks known divergences: which registry entries matched collected items, and whether they
  reproduced (xfail) or not (xpass); writes one "divergence" record per entry at the end;
- tallies the regimes the strategies reached and fails the session when a regime never occurred in
  enough examples that a correct strategy would have missed it with probability below MISS_PROBABILITY;
- prints a summary: verdict counts, ambiguous cells, regime coverage, stale divergences.

Under pytest-xdist (`pytest -n 2`) every process loads the plugin and gets a session, in one of three roles:
- "serial": no xdist; the session does all of the above itself;
- "worker": it runs its share of the items and keeps its caches, but judges and writes nothing for the run:
  each change to what the run tallies is an *event* (`_note`), and the worker's results writer is a
  `reports.results.RecordBuffer`. Both ride on the worker's test reports (`PAYLOAD`, attached when pytest makes
  the report, serialised by xdist with it); what is left when the worker's session ends goes in
  `config.workeroutput`;
- "controller": it runs no item; it writes each report's records to the one results file as they arrive and
  applies its events, so the divergence records, the verdict counts of run_end, regime coverage (over the union
  of every worker's examples), stale divergences and the summary are the run's, as a serial run has them.
Every worker collects the same items (xdist refuses to run otherwise), so the collection's tallies (which items
each registry entry covers, which adapters and checks were collected) are taken once, from the first worker
that reports them; the outcomes are summed, each item having run in one worker.
"""
from __future__ import annotations

from collections import Counter, defaultdict

import pytest

import registry as divergences
from adapters import unavailable
from contract.adapter import Adapter

from reference import scope_in_words

from contract.batch import Batch
from .cells import Cell
from .checks import CellRun
from .harness import AdapterFailure, AdapterUnavailable, call_adapter
from .oracle import Answer, answer
from .regimes import REGIMES, applicable_regimes

MISS_PROBABILITY = 1e-6  # a regime is required once missing it by chance would be this unlikely
PAYLOAD = "conformance_payload"  # a worker's report attribute: {"records": [...], "events": [...]}
RECORDS_WRITTEN = "conformance_records"  # on the controller, after the payload is applied: how many it wrote
ROLES = ("serial", "worker", "controller")


def xdist_role(config) -> str:
    """This process's part in the run: "worker" (an xdist worker), "controller" (xdist's controller, which runs
    no test) or "serial"."""
    if hasattr(config, "workerinput"):
        return "worker"
    distributed = getattr(config.option, "dist", "no") != "no" and bool(getattr(config.option, "tx", None))
    return "controller" if distributed and not config.getoption("collectonly") else "serial"


class ConformanceSession:
    def __init__(self, writer, sources: dict[str, str], timeout: float, results_path=None, role: str = "serial"):
        if role not in ROLES:
            raise ValueError(f"role {role!r} not in {ROLES}")
        self.role = role
        self.writer = writer  # reports.results.ResultsWriter (RecordBuffer in a worker), or a stand-in that drops
        self.sources = sources  # adapter name -> the --adapter MODULE:ATTR it came from (else a built-in)
        self.timeout = timeout  # per adapter call, seconds
        self.results_path = results_path
        self.runs: dict[str, CellRun] = {}  # nodeid -> the run of a conformance item
        self.verdicts: Counter = Counter()
        self.ambiguous_cells: list[str] = []
        self._available: dict[tuple[str, str], str | None] = {}  # (adapter, target) -> why not
        self._current_item = ""
        self._cache_key: str | None = None
        self._answers: dict[str, Answer] = {}
        self._outputs: dict[str, object] = {}
        # regime name -> example keys where it applied / where it held, from cells that completed
        self.regime_applicable: dict[str, set] = defaultdict(set)
        self.regime_held: dict[str, set] = defaultdict(set)
        self._pending_regimes: dict[str, list] = defaultdict(list)  # nodeid -> [(key, applicable, held)]
        # divergence id -> outcomes of the items it covers
        self.divergence_items: Counter = Counter()
        self.collected_adapters: set[str] = set()  # adapters with a collected conformance/edge/property item
        self.collected_checks: set[str] = set()  # "loss", "grad", "edge:<case>", "property:<name>" ...
        self.divergence_outcomes: dict[str, Counter] = defaultdict(Counter)
        self.collection_known = False  # the collection's tallies are in (a controller takes the first worker's)
        self.outbox: list[list] = []  # a worker's events not yet sent to the controller

    @classmethod
    def from_config(cls, config) -> "ConformanceSession":
        return cls(
            writer=config.conformance_results,
            sources=config.conformance_adapter_sources,
            timeout=config.getoption("adapter_timeout"),
            results_path=config.getoption("results"),
            role=xdist_role(config),
        )

    # --- used by the tests and CellRun ------------------------------------------------------------

    def start(self, cell: Cell, nodeid: str) -> CellRun:
        run = CellRun(cell, self)
        self.runs[nodeid] = run
        self._current_item = nodeid
        if cell.key != self._cache_key:
            self._cache_key, self._answers, self._outputs = cell.key, {}, {}
        return run

    def skip_unless_runnable(self, cell: Cell) -> None:
        """pytest.skip with the reason when the adapter, the device or the quantity cannot run here."""
        __tracebackhide__ = True
        adapter = cell.adapter
        key = (adapter.name, cell.device)
        if key not in self._available:
            try:
                self._available[key] = unavailable(adapter, cell.device)
            except Exception as exc:  # an adapter's own check failing is an error, not a skip
                pytest.fail(f"adapter {adapter.name!r}: available() raised {type(exc).__name__}: {exc}")
        reason = self._available[key]
        if reason:
            pytest.skip(reason)
        if cell.check == "grad" and not adapter.gradient:
            pytest.skip("loss only")

    def oracle(self, batch: Batch, spec) -> Answer:
        key = batch.digest()
        if key not in self._answers:
            self._answers[key] = answer(batch.embeddings, batch.labels, spec, batch.triplets)
        return self._answers[key]

    def call(self, cell: Cell, batch: Batch):
        """The adapter's output for this batch (once per cell: the grad item reuses the loss item's);
        pytest.skip when the adapter says this machine lacks what it needs."""
        __tracebackhide__ = True
        key = batch.digest()
        if key not in self._outputs:
            try:
                self._outputs[key] = call_adapter(
                    cell.adapter, batch.embeddings, batch.labels, cell.spec, cell.dtype, cell.device,
                    batch.triplets, timeout=self.timeout, shards=batch.shards,
                )
            except AdapterFailure as failure:
                self._outputs[key] = failure
        found = self._outputs[key]
        if isinstance(found, AdapterUnavailable):
            pytest.skip(found.reason)
        if isinstance(found, AdapterFailure):
            raise AdapterFailure(found.reason)
        return found

    def note_regimes(self, cell: Cell, digest: str, reached: list[str]) -> None:
        applicable = [regime.name for regime in applicable_regimes(cell.spec, cell.dtype)]
        self._pending_regimes[self._current_item].append((f"{digest}|{cell.spec}|{cell.dtype}", applicable, reached))

    def source_of(self, adapter_name: str) -> str:
        return self.sources.get(adapter_name, "catalog")

    # --- what the run tallies: events, applied here and, in a worker, sent to the controller ------------

    def _note(self, *event) -> None:
        self.apply(list(event))
        if self.role == "worker":
            self.outbox.append(list(event))

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

    def payload(self) -> dict | None:
        """A worker's records and events since the last payload (None when there are none); taken once."""
        records = self.writer.take() if hasattr(self.writer, "take") else []
        events, self.outbox = self.outbox, []
        return {"records": records, "events": events} if records or events else None

    def receive(self, payload: dict) -> int:
        """On the controller: write a worker's records to the results file, apply its events; how many records."""
        for record in payload.get("records", ()):
            self.writer.append(record)
        for event in payload.get("events", ()):
            self.apply(event)
        return len(payload.get("records", ()))

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
        if report.when == "teardown":
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
            for key, names, reached in self._pending_regimes.pop(item.nodeid, []):
                # only what is new here: the loss and grad items of a cell share their examples
                applicable += [[name, key] for name in names if key not in self.regime_applicable[name]]
                held += [[name, key] for name in reached if key not in self.regime_held[name]]
            if applicable or held:
                self._note("regimes", applicable, held)

    def _record(self, item, cell: Cell, report, verdict: str, marker) -> None:
        run = self.runs.get(item.nodeid) or CellRun(cell, self)
        reason = _reason(report)
        if verdict == "pass":
            verdict, reason = run.verdict_if_passed()
        elif verdict in ("fail", "xfail") and run.failing is not None:
            reason = run.failing.failure
        elif verdict == "fail":
            verdict = "error"  # the check itself broke: not the adapter's discrepancy
        if verdict in ("xfail", "xpass"):
            reason = f"{item.get_closest_marker('xfail').kwargs.get('reason', '')}" + (f"; observed: {reason}" if reason else "")
        self._note("verdict", verdict, f"{cell}: {reason}" if verdict == "ambiguous" else None)
        adapter: Adapter = cell.adapter
        self.writer.write(
            "comparison",
            adapter=adapter.name,
            framework=adapter.framework,
            spec=cell.spec.to_dict(),
            spec_label=str(cell.spec),
            dtype=cell.dtype,
            device=cell.device,
            target=run.target,
            version=run.version,
            quantity=cell.check,
            verdict=verdict,
            reason=reason,
            precision=cell.precision,
            **run.summary(),
            tolerance=run.tolerance_record(),
            divergence=", ".join(marker.args) if marker else None,
            counterexample=run.counterexample() if run.examples else None,
            nodeid=item.nodeid,
            duration_s=round(report.duration, 3),
        )

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report):
        """On the controller, first of all: a worker's report brings the records and events of its item."""
        if self.role != "controller":
            return
        payload = report.__dict__.pop(PAYLOAD, None)  # applied once; the report lives on in pytest's stats
        if payload:
            setattr(report, RECORDS_WRITTEN, self.receive(payload))

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error):
        """On the controller: what a worker recorded after its last report (config.workeroutput)."""
        payload = (getattr(node, "workeroutput", None) or {}).get(PAYLOAD)
        if self.role == "controller" and payload:
            self.receive(payload)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session, exitstatus):
        if self.role == "worker":  # the controller judges the run; what is still here goes to it
            payload = self.payload()
            if payload and hasattr(session.config, "workeroutput"):
                session.config.workeroutput[PAYLOAD] = payload
            return
        for entry in divergences.REGISTRY:
            outcomes = self.divergence_outcomes.get(entry.id, Counter())
            reproduces = True if outcomes["xfail"] else False if outcomes["xpass"] else None
            self.writer.write(
                "divergence",
                id=entry.id,
                adapter=entry.adapter,
                pattern={"spec": scope_in_words(entry.spec), "dtype": entry.dtype, "device": entry.device,
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
        for entry in divergences.REGISTRY:
            if self.divergence_items.get(entry.id):
                continue
            line = f"{entry.id} ({entry.scope_in_words()})"
            exercised = any(divergences.matches(name, entry.adapter) for name in self.collected_adapters) and any(
                divergences.matches(check, entry.check) for check in self.collected_checks
            )
            (stale if exercised else absent).append(line)
        return stale, absent

    def pytest_terminal_summary(self, terminalreporter, exitstatus, config):
        write = terminalreporter.write_line
        if self.role == "worker" or (not self.verdicts and not divergences.REGISTRY):
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


class Outbox:
    """Registered in an xdist worker: hands the session's payload to each test report as pytest makes it (the
    outermost wrapper, so after the session has written the item's record), before xdist sends the report."""

    def __init__(self, session: ConformanceSession):
        self.session = session

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        payload = self.session.payload()
        if payload:
            setattr(outcome.get_result(), PAYLOAD, payload)


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

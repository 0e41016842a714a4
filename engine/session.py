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
"""
from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from adapters import Adapter, divergences, unavailable

from reference import scope_in_words

from .batch import Batch
from .cells import Cell
from .checks import CellRun
from .harness import AdapterFailure, AdapterUnavailable, call_adapter
from .oracle import Answer, answer
from .regimes import REGIMES, applicable_regimes

MISS_PROBABILITY = 1e-6  # a regime is required once missing it by chance would be this unlikely


class ConformanceSession:
    def __init__(self, writer, sources: dict[str, str], timeout: float, results_path=None):
        self.writer = writer  # reports.results.ResultsWriter, or a stand-in whose write() does nothing
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

    @classmethod
    def from_config(cls, config) -> "ConformanceSession":
        return cls(
            writer=config.conformance_results,
            sources=config.conformance_adapter_sources,
            timeout=config.getoption("adapter_timeout"),
            results_path=config.getoption("results"),
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
                    batch.triplets, timeout=self.timeout,
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

    # --- pytest hooks -----------------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, items):
        for item in items:
            cell = getattr(item, "callspec", None) and item.callspec.params.get("cell")
            if isinstance(cell, Cell):
                self.collected_adapters.add(cell.adapter.name)
                self.collected_checks.add(cell.check)
            marker = item.get_closest_marker("divergence")
            for divergence_id in marker.args if marker else ():
                self.divergence_items[divergence_id] += 1

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
            self.divergence_outcomes[divergence_id][verdict] += 1
        cell = getattr(item, "callspec", None) and item.callspec.params.get("cell")
        if isinstance(cell, Cell) and cell.check in ("loss", "grad"):
            self._record(item, cell, report, verdict, marker)
        if verdict in ("pass", "xfail"):  # a failed cell's examples include its shrinking: biased
            for key, applicable, held in self._pending_regimes.pop(item.nodeid, []):
                for name in applicable:
                    self.regime_applicable[name].add(key)
                for name in held:
                    self.regime_held[name].add(key)

    def _record(self, item, cell: Cell, report, verdict: str, marker) -> None:
        run = self.runs.get(item.nodeid) or CellRun(cell, self)
        reason = _reason(report)
        if verdict == "pass":
            verdict, reason = run.verdict_if_passed()
            if verdict == "ambiguous":
                self.ambiguous_cells.append(f"{cell}: {reason}")
        elif verdict in ("fail", "xfail") and run.failing is not None:
            reason = run.failing.failure
        elif verdict == "fail":
            verdict = "error"  # the check itself broke: not the adapter's discrepancy
        if verdict in ("xfail", "xpass"):
            reason = f"{item.get_closest_marker('xfail').kwargs.get('reason', '')}" + (f"; observed: {reason}" if reason else "")
        self.verdicts[verdict] += 1
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
    def pytest_sessionfinish(self, session, exitstatus):
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
        if not self.verdicts and not divergences.REGISTRY:
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

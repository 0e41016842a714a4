"""What happens to one cell: its oracle answers and adapter calls, its skips, the judgement of each Hypothesis
example, the regimes it reached, and the "comparison" record it leaves.

`CellRun.examine(batch)` is the body of a conformance cell's Hypothesis test: round the batch to the dtype, ask
the oracle, report regimes with event(), call the adapter (once per example: the loss and grad items of one cell
share a `CellCache`), judge one quantity (engine/judge.py `judge_example`), target() the normalised error, and
raise `Discrepancy` (with a reproducer note) when the adapter is wrong. The property and edge-case items use the
same run for their oracle answers, calls and skips. The run keeps what the cell's record needs: counts, error
maxima, every example's normalised error, the worst example, and the last failing one (Hypothesis replays the
shrunk failing example last, so that is the minimal counterexample); engine/cell_record.py writes it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest
from hypothesis import event, example, given, settings, target

from adapters import unavailable
from contract.adapter import Output
from contract.batch import Batch
from contract.targets import matmul_eps
from contract.targets import target as target_facts
from reference import Answer, evaluate

from . import profiles
from .ambiguity import Decisions, decisions
from .cells import Cell
from .compare import Errors, value_jumps
from .harness import AdapterFailure, AdapterUnavailable, call_adapter
from .judge import ORACLE, comparison, judge_example
from .profiles import NO_SHRINK
from .regimes import applicable_regimes, regimes
from .reproducer import reproducer
from .tolerances import Tolerance, tolerance

TARGET_CEILING = 1e12  # target() needs a finite score; a NaN mismatch scores this


class Discrepancy(AssertionError):
    """The adapter disagrees with the oracle (or gave no usable answer) on one example."""


def add_note(exc: BaseException, note: str) -> None:
    """exc.add_note(note) (Python 3.11); on 3.10 (TF-Similarity's environment) the note joins the message."""
    if hasattr(exc, "add_note"):
        exc.add_note(note)
    else:
        exc.args = (f"{exc.args[0] if exc.args else ''}\n{note}", *exc.args[1:])


@dataclass
class CellCache:
    """The oracle's answers and the adapter's outputs for one cell key, by batch digest: the loss and grad items
    (and the property items) of a cell ask once per example."""

    key: str
    answers: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)


@dataclass
class Example:
    batch: Batch
    answer: Answer
    tolerance: Tolerance
    decided: Decisions  # ambiguous decisions, and those the input decides exactly
    output: Output | None = None
    errors: Errors | None = None
    failure: str = ""  # why the example failed, in words


@dataclass
class CellRun:
    """One cell's run: what it asks (through `cache`), and what it has seen so far."""

    cell: Cell
    cache: CellCache
    timeout: float  # per adapter call, seconds
    source: str = "catalog"  # the --adapter MODULE:ATTR the adapter came from, for reproducers
    availability: dict = field(default_factory=dict)  # (adapter, target) -> why not: the run's, shared by its cells
    examples: int = 0
    ambiguous_examples: int = 0  # accepted among admissible outcomes, or gradient not compared
    ambiguous_kinds: dict = field(default_factory=dict)  # decision kind -> those examples it made ambiguous
    compared: int = 0  # examples compared with the oracle's own answer (not ambiguous)
    exact_ties: int = 0  # examples that sit exactly on a decision the spec's own rule decides
    errors: list = field(default_factory=list)  # normalised error of every compared example
    scales: list = field(default_factory=list)  # every example's tolerance scale
    max_abs: float = 0.0
    max_rel: float = 0.0
    max_ulp: float = 0.0
    worst: Example | None = None
    failing: Example | None = None
    ran_on: str = ""  # where the adapter says it ran (Output.target)
    version: str = ""
    regimes: list = field(default_factory=list)  # (example key, regimes that applied, regimes reached)
    # On a target that rounds matmul inputs (cuda-tf32), every output is also judged by the plain dtype's model:
    dtype_model_errors: list = field(default_factory=list)  # normalised errors under it
    dtype_model_beyond: int = 0  # examples beyond it

    @property
    def normalized_error(self) -> float:
        return max(self.errors, default=0.0)

    # --- what the cell asks: skips, the oracle, the adapter ------------------------------------------------------

    def skip_unless_runnable(self) -> None:
        """pytest.skip with the reason when the adapter, the target or the quantity cannot run here."""
        __tracebackhide__ = True
        adapter, device = self.cell.adapter, self.cell.target
        key = (adapter.name, device)
        if key not in self.availability:
            try:
                self.availability[key] = unavailable(adapter, device)
            except Exception as exc:  # an adapter's own check failing is an error, not a skip
                pytest.fail(f"adapter {adapter.name!r}: available() raised {type(exc).__name__}: {exc}")
        reason = self.availability[key]
        if reason:
            pytest.skip(reason)
        if self.cell.check == "grad" and not adapter.gradient:
            pytest.skip("loss only")

    def oracle(self, batch: Batch) -> Answer:
        key = batch.digest()
        if key not in self.cache.answers:
            self.cache.answers[key] = evaluate(batch.embeddings, batch.labels, self.cell.spec, batch.triplets)
        return self.cache.answers[key]

    def call(self, batch: Batch) -> Output:
        """The adapter's output for this batch (once per cell key: the grad item reuses the loss item's);
        pytest.skip when the adapter says this machine lacks what it needs."""
        __tracebackhide__ = True
        key = batch.digest()
        if key not in self.cache.outputs:
            self.cache.outputs[key] = self.call_afresh(batch)
        found = self.cache.outputs[key]
        if isinstance(found, AdapterUnavailable):
            pytest.skip(found.reason)
        if isinstance(found, AdapterFailure):
            raise AdapterFailure(found.reason)
        return found

    def call_afresh(self, batch: Batch) -> Output | AdapterFailure:
        """One call of the adapter, not cached (a property that varies the machine's settings asks again)."""
        cell = self.cell
        try:
            return call_adapter(cell.adapter, batch.embeddings, batch.labels, cell.spec, cell.dtype, cell.target,
                                batch.triplets, timeout=self.timeout, shards=batch.shards)
        except AdapterFailure as failure:
            return failure

    def take_regimes(self) -> list:
        """The regimes noted since the last take (the session tallies them once the item has passed)."""
        taken, self.regimes = self.regimes, []
        return taken

    def note_regimes(self, digest: str, reached: list[str]) -> None:
        cell = self.cell
        applicable = [regime.name for regime in applicable_regimes(cell.spec, cell.dtype)]
        self.regimes.append((f"{digest}|{cell.spec}|{cell.dtype}", applicable, reached))

    # --- one example of a conformance cell -----------------------------------------------------------------------

    def examine(self, batch: Batch) -> None:
        """One Hypothesis example (see the module docstring)."""
        __tracebackhide__ = True
        cell = self.cell
        batch = batch.rounded(cell.dtype)
        answer = self.oracle(batch)
        reached = regimes(batch, answer, cell.dtype)
        for name in reached:
            event(name)
        self.note_regimes(batch.digest(), reached)
        decided = decisions(answer, cell.compute_dtype, cell.precision, cell.target)
        for kind in decided.ambiguous:
            event(f"ambiguous for {cell.compute_dtype}: {kind}")
        for kind in decided.ties:
            event(f"exact tie decided by the spec: {kind}")
        self.exact_ties += bool(decided.ties)
        example = Example(batch, answer, tolerance(cell.check, cell.dtype, answer, cell.compute_dtype, cell.precision,
                                                   cell.target), decided)
        self.examples += 1
        self.scales.append(example.tolerance.scale)
        try:
            example.output = self.call(batch)
        except AdapterFailure as failure:
            self._fail(example, failure.reason)
        self.ran_on, self.version = example.output.target, example.output.version
        example.errors = judge_example(cell, cell.check, self._quantity(example.output), answer, decided=decided,
                                       device=cell.target)
        self._judge_by_dtype_model(example)
        if example.errors is None:  # ambiguous and not comparable: counted, never silently passed
            self._count_ambiguous(example)
            event(f"ambiguous: {cell.check} not compared")
            self._keep_worst(example)
            return
        self.max_abs = max(self.max_abs, example.errors.max_abs)
        self.max_rel = max(self.max_rel, example.errors.max_rel)
        self.max_ulp = max(self.max_ulp, example.errors.max_ulp)
        self.errors.append(example.errors.normalized)
        if comparison(cell.check, decided, answer) != ORACLE:
            self._count_ambiguous(example)
            event(f"ambiguous: {cell.check} within the admissible outcomes")
        else:
            self.compared += 1
        target(min(example.errors.normalized, TARGET_CEILING), label=f"{cell.adapter.name}/{cell.check}")
        self._keep_worst(example)
        if not example.errors.ok:
            self._fail(example, example.errors.mismatch)

    def _quantity(self, output: Output):
        return output.loss if self.cell.check == "loss" else output.grad

    def _judge_by_dtype_model(self, example: Example) -> None:
        """On a target that rounds matmul inputs below the dtype (cuda-tf32), the same output judged by the plain
        dtype's rounding model as well (engine/tolerances.py): whether the implementation kept float32's accuracy."""
        cell = self.cell
        if matmul_eps(cell.target, cell.compute_dtype) is None:
            return
        errors = judge_example(cell, cell.check, self._quantity(example.output), example.answer)
        if errors is not None:
            self.dtype_model_errors.append(errors.normalized)
            self.dtype_model_beyond += not errors.ok

    def _count_ambiguous(self, example: Example) -> None:
        """One more ambiguous example, under each decision kind that kept this quantity from the oracle's own value:
        for the loss those across which it jumps, for the gradient every one (the record's `ambiguous_kinds`)."""
        self.ambiguous_examples += 1
        for kind in example.decided.ambiguous:
            if self.cell.check != "loss" or value_jumps(kind, self.cell.spec):
                self.ambiguous_kinds[kind] = self.ambiguous_kinds.get(kind, 0) + 1

    def _keep_worst(self, example: Example) -> None:
        score = -1.0 if example.errors is None else example.errors.normalized
        best = -1.0 if self.worst is None or self.worst.errors is None else self.worst.errors.normalized
        if self.worst is None or score > best:
            self.worst = example

    def _fail(self, example: Example, reason: str) -> None:
        __tracebackhide__ = True
        example.failure = reason
        self.failing = example
        raise self.discrepancy(example)

    # --- what a failure says -------------------------------------------------------------------------------------

    def reproducer_for(self, batch: Batch) -> str:
        cell = self.cell
        return reproducer(cell.adapter.name, self.source, cell.spec, cell.dtype, cell.target, batch.embeddings,
                          batch.labels, batch.triplets, batch.shards)

    def discrepancy(self, example: Example) -> Discrepancy:
        tol, answer = example.tolerance, example.answer
        lines = [f"{self.cell}: {example.failure}"]
        if example.errors is not None:
            e = example.errors
            lines.append(
                f"  normalised error {e.normalized:.3g}, max abs {e.max_abs:.3g}, max rel {e.max_rel:.3g},"
                f" max ulp {e.max_ulp:.3g} ({self.cell.dtype})"
            )
        lines.append(f"  tolerance atol {tol.atol:.3g} (table x scale {tol.scale:.3g}), rtol {tol.rtol:.3g}: {tol.source}")
        ambiguity = ", ".join(f"{k} gap {g:.3g} < {r:.3g}" for k, (g, r) in example.decided.ambiguous.items())
        ties = ", ".join(sorted(example.decided.ties))
        lines.append(
            f"  {example.batch!r}; oracle loss {answer.loss!r}"
            + ("" if example.output is None else f", implementation loss {example.output.loss!r}")
            + f"; decision gap {answer.gap:.3g}"
            + (f"; ambiguous for {self.cell.compute_dtype}: {ambiguity}" if ambiguity else "")
            + (f"; exact ties decided by the spec's rule (an integer lattice, exact in {self.cell.compute_dtype}): "
               f"{ties}" if ties else "")
        )
        failure = Discrepancy("\n".join(lines))
        add_note(failure, "Reproduce with:\n" + self.reproducer_for(example.batch))
        return failure


# --- running a cell's examples --------------------------------------------------------------------------------

def for_each_batch(cell, check, strategy, regressions=(), max_examples: int | None = None) -> None:
    """Run `check(batch)` as a Hypothesis test over `strategy`, regression batches first.

    Each cell gets its own example database key and, under a derandomised profile, its own seed (the
    digest Hypothesis derives both from includes the cell's key, as its pytest plugin does for
    parametrised tests); the loss and grad items of a cell share the key, hence the same examples.

    With a time box (profiles.CELL_SECONDS, the hunt's --cell-seconds) the examples run in rounds of profiles.ROUND,
    each a fresh search, until max_examples are done or the box is spent: how far a cell searched then depends on the
    machine, which is why the default profiles (dev, ci) run without one.
    """
    __tracebackhide__ = True
    total = max_examples or profiles.examples_per_cell(target_facts(cell.target).processes)
    if profiles.CELL_SECONDS is None:
        _hypothesis_run(cell, check, strategy, regressions, total)
        return
    deadline, done = time.monotonic() + profiles.CELL_SECONDS, 0
    while done < total and time.monotonic() < deadline:
        count = min(profiles.ROUND, total - done)
        _hypothesis_run(cell, check, strategy, regressions if done == 0 else (), count)
        done += count


def _hypothesis_run(cell, check, strategy, regressions, max_examples: int) -> None:
    __tracebackhide__ = True
    expected_to_fail = bool(cell.divergences())

    @settings(max_examples=max_examples, phases=NO_SHRINK if expected_to_fail else settings.default.phases)
    @given(batch=strategy)
    def each_batch(batch):
        check(batch)

    for batch in regressions:
        each_batch = example(batch=batch)(each_batch)
    each_batch.hypothesis.inner_test._hypothesis_internal_add_digest = cell.key.encode()
    each_batch()

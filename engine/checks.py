"""One conformance cell's run: the check of each Hypothesis example, and what the cell's record says.

`CellRun.check(batch)` is the body of the cell's Hypothesis test: round the batch to the dtype, ask
the oracle, report regimes with event(), call the adapter (through the session, which caches answers
so the loss and grad items of one cell call it once per example), compare one quantity, target() the
normalised error, and raise `Discrepancy` (with a reproducer note) when the adapter is wrong.
The run keeps what the cell's "comparison" record needs: counts, error maxima, every example's
normalised error, the worst example, and the last failing one (Hypothesis replays the shrunk
failing example last, so that is the minimal counterexample).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from hypothesis import Phase, event, example, given, settings, target

from contract.adapter import Output

from .ambiguity import Decisions, decisions
from contract.batch import Batch
from .cells import Cell
from .compare import Errors, value_jumps
from .harness import AdapterFailure
from .judge import ORACLE, comparison, judge
from .oracle import Answer
from .regimes import regimes
from .reproducer import reproducer
from contract.targets import matmul_eps, target as target_facts
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
    """What one cell has seen so far; `session` caches oracle and adapter answers and tallies regimes."""

    cell: Cell
    session: object
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
    target: str = ""
    version: str = ""
    # On a target that rounds matmul inputs (cuda-tf32), every output is also judged by the plain dtype's model:
    dtype_model_errors: list = field(default_factory=list)  # normalised errors under it
    dtype_model_beyond: int = 0  # examples beyond it

    @property
    def normalized_error(self) -> float:
        return max(self.errors, default=0.0)

    def check(self, batch: Batch) -> None:
        """One Hypothesis example (see the module docstring)."""
        __tracebackhide__ = True
        cell = self.cell
        batch = batch.rounded(cell.dtype)
        answer = self.session.oracle(batch, cell.spec)
        reached = regimes(batch, answer, cell.dtype)
        for name in reached:
            event(name)
        self.session.note_regimes(cell, batch.digest(), reached)
        decided = decisions(answer, cell.compute_dtype, cell.precision, cell.device)
        for kind in decided.ambiguous:
            event(f"ambiguous for {cell.compute_dtype}: {kind}")
        for kind in decided.ties:
            event(f"exact tie decided by the spec: {kind}")
        self.exact_ties += bool(decided.ties)
        example = Example(batch, answer, tolerance(cell.check, cell.dtype, answer, cell.compute_dtype, cell.precision,
                                                   cell.device), decided)
        self.examples += 1
        self.scales.append(example.tolerance.scale)
        try:
            example.output = self.session.call(cell, batch)
        except AdapterFailure as failure:
            self._fail(example, failure.reason)
        self.target, self.version = example.output.target, example.output.version
        example.errors = self._compare(example)
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
        if self._ambiguous_for_quantity(example):
            self._count_ambiguous(example)
            event(f"ambiguous: {cell.check} within the admissible outcomes")
        else:
            self.compared += 1
        target(min(example.errors.normalized, TARGET_CEILING), label=f"{cell.adapter.name}/{cell.check}")
        self._keep_worst(example)
        if not example.errors.ok:
            self._fail(example, example.errors.mismatch)

    def _judge_by_dtype_model(self, example: Example) -> None:
        """On a target that rounds matmul inputs below the dtype (cuda-tf32), the same output judged by the plain
        dtype's rounding model as well (engine/tolerances.py): whether the implementation kept float32's accuracy."""
        cell = self.cell
        if matmul_eps(cell.device, cell.compute_dtype) is None:
            return
        answer = example.answer
        plain = decisions(answer, cell.compute_dtype, cell.precision)
        allowed = tolerance(cell.check, cell.dtype, answer, cell.compute_dtype, cell.precision)
        impl = example.output.loss if cell.check == "loss" else example.output.grad
        errors = judge(cell.check, impl, answer, plain, allowed, cell.dtype)
        if errors is not None:
            self.dtype_model_errors.append(errors.normalized)
            self.dtype_model_beyond += not errors.ok

    def dtype_model_record(self) -> dict:
        """For the tolerance record on a matmul-rounding target: its bits, and whether the plain model held."""
        bits = target_facts(self.cell.device).matmul_mantissa_bits
        if matmul_eps(self.cell.device, self.cell.compute_dtype) is None:
            return {}
        judged = bool(self.dtype_model_errors)
        return {
            "matmul_mantissa_bits": bits,
            "within_dtype_model": (self.dtype_model_beyond == 0) if judged else None,
            "dtype_model_error": float(f"{max(self.dtype_model_errors):.4g}") if judged else None,
        }

    def _ambiguous_for_quantity(self, example: Example) -> bool:
        return comparison(self.cell.check, example.decided, example.answer) != ORACLE

    def _count_ambiguous(self, example: Example) -> None:
        """One more ambiguous example, under each decision kind that kept this quantity from the oracle's own value:
        for the loss those across which it jumps, for the gradient every one (the record's `ambiguous_kinds`)."""
        self.ambiguous_examples += 1
        for kind in example.decided.ambiguous:
            if self.cell.check != "loss" or value_jumps(kind, self.cell.spec):
                self.ambiguous_kinds[kind] = self.ambiguous_kinds.get(kind, 0) + 1

    def _compare(self, example: Example) -> Errors | None:
        output, cell = example.output, self.cell
        impl = output.loss if cell.check == "loss" else output.grad
        return judge(cell.check, impl, example.answer, example.decided, example.tolerance, cell.dtype)

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

    # --- what the record and the failure message say ---------------------------------------------

    def reproducer(self, example: Example) -> str:
        return self.reproducer_for(example.batch)

    def reproducer_for(self, batch: Batch) -> str:
        cell = self.cell
        return reproducer(
            cell.adapter.name, self.session.source_of(cell.adapter.name), cell.spec, cell.dtype, cell.device,
            batch.embeddings, batch.labels, batch.triplets, batch.shards,
        )

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
            + f"; decision gap {answer.result.gap:.3g}"
            + (f"; ambiguous for {self.cell.compute_dtype}: {ambiguity}" if ambiguity else "")
            + (f"; exact ties decided by the spec's rule (an integer lattice, exact in {self.cell.compute_dtype}): "
               f"{ties}" if ties else "")
        )
        failure = Discrepancy("\n".join(lines))
        add_note(failure, "Reproduce with:\n" + self.reproducer(example))
        return failure

    def counterexample(self) -> dict | None:
        example = self.failing or self.worst
        if example is None:
            return None
        batch, answer, output = example.batch, example.answer, example.output
        return {
            "embeddings": batch.embeddings,
            "labels": batch.labels,
            "triplets": batch.triplets,
            "oracle_loss": answer.loss,
            "impl_loss": None if output is None else output.loss,
            "oracle_grad": answer.grad,
            "impl_grad": None if output is None else output.grad,
            "selection": answer.result.selection,
            "gap": answer.result.gap,
            "gaps": answer.result.gaps,
            "ambiguous": {kind: {"gap": g, "resolution": r} for kind, (g, r) in example.decided.ambiguous.items()},
            "exact_ties": sorted(example.decided.ties),
            "layout": batch.layout,
            "normalized_error": None if example.errors is None else example.errors.normalized,
            "failure": example.failure,
            "reproducer": self.reproducer(example),
        }

    def tolerance_record(self) -> dict:
        """The counterexample's tolerance, and the range of scales the cell's examples needed."""
        example = self.failing or self.worst
        if example is None:
            return {}
        return {
            **example.tolerance.record(),
            "scale_range": [min(self.scales, default=1.0), max(self.scales, default=1.0)],
            "compute_dtype": self.cell.compute_dtype,
            **self.dtype_model_record(),
        }

    def verdict_if_passed(self) -> tuple[str, str]:
        if self.compared == 0 and self.examples > 0:
            return "ambiguous", (
                f"every one of {self.examples} examples was ambiguous for {self.cell.compute_dtype}: "
                f"{self.cell.check} compared only among admissible outcomes or not at all"
            )
        return "pass", ""

    def summary(self) -> dict:
        return {
            "examples": self.examples,
            "ambiguous_examples": self.ambiguous_examples,
            "exact_tie_examples": self.exact_ties,
            "ambiguous_kinds": dict(sorted(self.ambiguous_kinds.items())),
            "max_abs": self.max_abs,
            "max_rel": self.max_rel,
            "max_ulp": self.max_ulp,
            "normalized_error": self.normalized_error,
            "errors": [float(f"{e:.4g}") for e in self.errors],
        }


# --- running a cell's examples --------------------------------------------------------------------

# Examples per conformance cell (after its regression batches), by Hypothesis profile; other profiles (thorough, a
# user's own) use their max_examples. ci is derandomised: its examples are the same on every run, a fixed sample that
# guards against regressions (with the regression batches, which replay what every search found, and each geometry
# of the batch strategy at its extreme, engine/strategies.py `extremes`, 7 fixed examples that every profile runs);
# the search itself is dev's (new examples on every run) and the thorough hunt's (2000 per cell). CI runs ~1500 cells
# on 2 cores within 8 minutes: 3 drawn each beside the 7 extremes cost about what 10 drawn did (measured serially on
# the torch, TF-Addons, PML, sentence-transformers and gloo subsets: +3%, against +18% with 5 drawn) and reach what
# a sample of 10 missed; the mutation zoo (tests/mutants) and the agreement with the hunt
# (tests/engine/test_thorough_agreement.py) are measured at this count, every run.
EXAMPLES_PER_CELL = {"dev": 20, "ci": 3, "report": 20}  # report: the main job's, as deep as dev, derandomised
# On a distributed target (contract/targets.py, processes > 1) an example is a round trip through W processes and their
# collectives: about 15 ms at W = 2 and 30 ms at W = 3 on 2 cores, against well under 1 ms in one process. 10 each
# (ci: 3 beside the 7 extremes, as above) keeps CI's distributed cells (pytest suite -k dist-gloo) within a few
# minutes; the shard layouts and batches still vary across them, and `thorough` runs its full count.
EXAMPLES_PER_DISTRIBUTED_CELL = {"dev": 10, "ci": 3, "report": 10}
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)  # a known divergence needs no minimal example


def examples_per_cell(processes: int = 1) -> int:
    table = EXAMPLES_PER_CELL if processes == 1 else EXAMPLES_PER_DISTRIBUTED_CELL
    return table.get(settings.get_current_profile_name(), settings.default.max_examples)


# A time box per cell for the hunt (--cell-seconds): None runs a cell's examples in one go.
CELL_SECONDS: float | None = None
ROUND = 50  # examples per round of a time-boxed cell


def for_each_batch(cell: Cell, check, strategy, regressions=(), max_examples: int | None = None) -> None:
    """Run `check(batch)` as a Hypothesis test over `strategy`, regression batches first.

    Each cell gets its own example database key and, under a derandomised profile, its own seed (the
    digest Hypothesis derives both from includes the cell's key, as its pytest plugin does for
    parametrised tests); the loss and grad items of a cell share the key, hence the same examples.

    With a time box (CELL_SECONDS, the hunt's --cell-seconds) the examples run in rounds of ROUND, each a
    fresh search, until max_examples are done or the box is spent: how far a cell searched then depends
    on the machine, which is why the default profiles (dev, ci) run without one.
    """
    __tracebackhide__ = True
    total = max_examples or examples_per_cell(target_facts(cell.device).processes)
    if CELL_SECONDS is None:
        _hypothesis_run(cell, check, strategy, regressions, total)
        return
    deadline, done = time.monotonic() + CELL_SECONDS, 0
    while done < total and time.monotonic() < deadline:
        count = min(ROUND, total - done)
        _hypothesis_run(cell, check, strategy, regressions if done == 0 else (), count)
        done += count


def _hypothesis_run(cell: Cell, check, strategy, regressions, max_examples: int) -> None:
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

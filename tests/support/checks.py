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

from dataclasses import dataclass, field

from hypothesis import Phase, event, example, given, settings, target

from adapters import Output

from .batches import Batch, regimes
from .cells import Cell
from .compare import Errors, admissible_losses, measure, measure_loss_against, value_jumps
from .harness import AdapterFailure
from .oracle import Answer
from .reproducer import reproducer
from .tolerances import Tolerance, ambiguous_kinds, tolerance

TARGET_CEILING = 1e12  # target() needs a finite score; a NaN mismatch scores this


class Discrepancy(AssertionError):
    """The adapter disagrees with the oracle (or gave no usable answer) on one example."""


@dataclass
class Example:
    batch: Batch
    answer: Answer
    tolerance: Tolerance
    ambiguous: dict  # kind -> (gap, resolution)
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
    compared: int = 0  # examples compared with the oracle's own answer (not ambiguous)
    errors: list = field(default_factory=list)  # normalised error of every compared example
    scales: list = field(default_factory=list)  # every example's tolerance scale
    max_abs: float = 0.0
    max_rel: float = 0.0
    max_ulp: float = 0.0
    worst: Example | None = None
    failing: Example | None = None
    target: str = ""
    version: str = ""

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
        ambiguous = ambiguous_kinds(answer, cell.compute_dtype)
        for kind in ambiguous:
            event(f"ambiguous for {cell.compute_dtype}: {kind}")
        example = Example(batch, answer, tolerance(cell.quantity, cell.dtype, answer, cell.compute_dtype), ambiguous)
        self.examples += 1
        self.scales.append(example.tolerance.scale)
        try:
            example.output = self.session.call(cell, batch)
        except AdapterFailure as failure:
            self._fail(example, failure.reason)
        self.target, self.version = example.output.target, example.output.version
        example.errors = self._compare(example)
        if example.errors is None:  # ambiguous and not comparable: counted, never silently passed
            self.ambiguous_examples += 1
            event(f"ambiguous: {cell.quantity} not compared")
            self._keep_worst(example)
            return
        self.max_abs = max(self.max_abs, example.errors.max_abs)
        self.max_rel = max(self.max_rel, example.errors.max_rel)
        self.max_ulp = max(self.max_ulp, example.errors.max_ulp)
        self.errors.append(example.errors.normalized)
        if self._ambiguous_for_quantity(example):
            self.ambiguous_examples += 1
            event(f"ambiguous: {cell.quantity} within the admissible outcomes")
        else:
            self.compared += 1
        target(min(example.errors.normalized, TARGET_CEILING), label=f"{cell.adapter.name}/{cell.quantity}")
        self._keep_worst(example)
        if not example.errors.ok:
            self._fail(example, example.errors.mismatch)

    def _ambiguous_for_quantity(self, example: Example) -> bool:
        """The gradient is ambiguous at any ambiguous decision; the loss only where its value jumps
        (elsewhere, e.g. at a tie in a max, every admissible selection gives the same loss)."""
        if self.cell.quantity == "grad":
            return bool(example.ambiguous)
        return any(value_jumps(kind, self.cell.spec) for kind in example.ambiguous)

    def _compare(self, example: Example) -> Errors | None:
        answer, output, cell = example.answer, example.output, self.cell
        if cell.quantity == "loss":
            if not self._ambiguous_for_quantity(example):
                return measure("loss", output.loss, answer.loss, example.tolerance, cell.dtype)
            outcomes = admissible_losses(answer, example.ambiguous)
            if outcomes is None:
                return None
            return measure_loss_against(output.loss, outcomes, example.tolerance, cell.dtype)
        if example.ambiguous:  # a gradient at an ambiguous decision may be any of its one-sided ones
            return None
        return measure("grad", output.grad, answer.grad, example.tolerance, cell.dtype)

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
            batch.embeddings, batch.labels, batch.triplets,
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
        ambiguity = ", ".join(f"{k} gap {g:.3g} < {r:.3g}" for k, (g, r) in example.ambiguous.items())
        lines.append(
            f"  {example.batch!r}; oracle loss {answer.loss!r}"
            + ("" if example.output is None else f", implementation loss {example.output.loss!r}")
            + f"; decision gap {answer.result.gap:.3g}"
            + (f"; ambiguous for {self.cell.compute_dtype}: {ambiguity}" if ambiguity else "")
        )
        failure = Discrepancy("\n".join(lines))
        failure.add_note("Reproduce with:\n" + self.reproducer(example))
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
            "ambiguous": {kind: {"gap": g, "resolution": r} for kind, (g, r) in example.ambiguous.items()},
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
        }

    def verdict_if_passed(self) -> tuple[str, str]:
        if self.compared == 0 and self.examples > 0:
            return "ambiguous", (
                f"every one of {self.examples} examples was ambiguous for {self.cell.compute_dtype}: "
                f"{self.cell.quantity} compared only among admissible outcomes or not at all"
            )
        return "pass", ""

    def summary(self) -> dict:
        return {
            "examples": self.examples,
            "ambiguous_examples": self.ambiguous_examples,
            "max_abs": self.max_abs,
            "max_rel": self.max_rel,
            "max_ulp": self.max_ulp,
            "normalized_error": self.normalized_error,
            "errors": [float(f"{e:.4g}") for e in self.errors],
        }


# --- running a cell's examples --------------------------------------------------------------------

# Examples per conformance cell, by Hypothesis profile; other profiles (thorough, a user's own) use
# their max_examples. CI runs hundreds of cells on 2 cores: 20 each keeps it to a few minutes.
EXAMPLES_PER_CELL = {"dev": 20, "ci": 20}
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)  # a known divergence needs no minimal example


def examples_per_cell() -> int:
    return EXAMPLES_PER_CELL.get(settings._current_profile, settings.default.max_examples)


def for_each_batch(cell: Cell, check, strategy, regressions=(), max_examples: int | None = None) -> None:
    """Run `check(batch)` as a Hypothesis test over `strategy`, regression batches first.

    Each cell gets its own example database key and, under a derandomised profile, its own seed (the
    digest Hypothesis derives both from includes the cell's key, as its pytest plugin does for
    parametrised tests); the loss and grad items of a cell share the key, hence the same examples.
    """
    __tracebackhide__ = True
    expected_to_fail = bool(cell.divergences())

    @settings(
        max_examples=max_examples or examples_per_cell(),
        phases=NO_SHRINK if expected_to_fail else settings.default.phases,
    )
    @given(batch=strategy)
    def each_batch(batch):
        check(batch)

    for batch in regressions:
        each_batch = example(batch=batch)(each_batch)
    each_batch.hypothesis.inner_test._hypothesis_internal_add_digest = cell.key.encode()
    each_batch()

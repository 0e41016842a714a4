"""The judging rule, written once: conformance cells, property checks and edge cases all call `judge_example`
(decisions -> tolerance -> verdict).

Per quantity, on one example, given how the example's decisions stand for the dtype (engine/ambiguity.py
`decisions`):
  loss  compared with the oracle's loss, unless an ambiguous decision is one across which the loss jumps
        (reference/gaps.py `loss_jumps`): then with the admissible outcomes (engine/compare.py), or not at
        all where those cannot be enumerated. A decision the input decides exactly is never ambiguous: at
        an exact tie the spec's own rule (strict >, the window's edges, the > 0 count) gives the loss.
  grad  compared with the oracle's gradient, unless a decision is ambiguous (a gradient there may be any of
        its one-sided ones) or the input sits exactly on a kink or a tie in a max or min (`subgradient`):
        then any of its one-sided gradients is admissible, and it is not compared. `conventions` names
        decision kinds whose convention is itself judged (the edge cases compare the zero-distance gradient,
        which the convention fixes at 0). Where the spec's loss is not finite (empty="nan" with no unit,
        scaled batch_hard at full collapse) the spec defines no gradient: it is not compared, whatever a
        framework's autograd or its rounding makes of 0/0 (TF-Addons' semi-hard gives NaN or 0 by the sign of
        a Gram residue, which differs between CPUs).
Not compared, or compared among admissible outcomes, never means "anything": where every admissible answer
is finite (`every_admissible_answer_is_finite`), a NaN or an infinity is a mismatch (`finite_where_required`).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from reference import GAP_KINDS, Answer

from .ambiguity import Decisions, decisions
from .compare import Errors, admissible_losses, measure, measure_loss_against, overflows, value_jumps
from .tolerances import Tolerance, tolerance

ORACLE, ADMISSIBLE, NOT_COMPARED = "oracle", "admissible", "not compared"


def comparison(quantity: str, decided: Decisions, answer: Answer, conventions: tuple[str, ...] = ()) -> str:
    """How `quantity` is judged on an example: against the ORACLE's value, among the ADMISSIBLE outcomes
    (the loss only), or NOT_COMPARED."""
    if quantity == "grad":
        if not np.isfinite(answer.loss):
            return NOT_COMPARED
        kinks = {kind for kind in decided.ties if GAP_KINDS[kind].subgradient}
        return NOT_COMPARED if (set(decided.ambiguous) | kinks) - set(conventions) else ORACLE
    return ADMISSIBLE if any(value_jumps(kind, answer.spec) for kind in decided.ambiguous) else ORACLE


def every_admissible_answer_is_finite(quantity: str, answer: Answer, decided: Decisions) -> bool:
    """Whether each answer a correct implementation may give on this example is finite: the spec's loss is
    finite, no ambiguous decision is one within whose rounding anything may come out (`unresolved`: a zero norm,
    a division by mean(hn) ~ 0), and no ambiguous decision may empty a batch whose empty loss is NaN (whose
    gradient is then undefined too)."""
    if not np.isfinite(answer.loss) or any(GAP_KINDS[kind].unresolved for kind in decided.ambiguous):
        return False
    return not (answer.spec.empty == "nan" and any(value_jumps(kind, answer.spec) for kind in decided.ambiguous))


def finite_where_required(quantity: str, impl, answer: Answer, decided: Decisions, dtype: str) -> Errors | None:
    """A mismatch where `impl` is NaN or infinite although every admissible answer is finite (an infinity that is
    the dtype's overflow of the oracle's own value excepted); None otherwise."""
    if impl is None or not every_admissible_answer_is_finite(quantity, answer, decided):
        return None
    impl = np.asarray(impl, dtype=np.float64)
    oracle = np.asarray(answer.loss if quantity == "loss" else answer.grad, dtype=np.float64)
    bad = ~np.isfinite(impl) & ~overflows(impl, oracle, dtype)
    if not bad.any():
        return None
    where = tuple(int(i) for i in np.argwhere(bad)[0]) if impl.ndim else ()
    return Errors(
        normalized=float("inf"), max_abs=float("inf"), max_rel=float("inf"), max_ulp=float("inf"),
        mismatch=f"{quantity} is {float(impl[where])!r}" + (f" at {where}" if where else "")
        + f" where every admissible {quantity} is finite (not compared with the oracle's own value, "
        f"{float(oracle[where])!r}, on this input: ambiguous for {dtype} or on an exact kink)",
    )


def judge(quantity: str, impl, answer: Answer, decided: Decisions, tolerance: Tolerance, dtype: str,
          conventions: tuple[str, ...] = ()) -> Errors | None:
    """The errors of `impl` (a loss or a gradient) against the oracle under the rule above; None when the
    example cannot be compared for this quantity and `impl` is admissible."""
    how = comparison(quantity, decided, answer, conventions)
    if how == NOT_COMPARED:
        return finite_where_required(quantity, impl, answer, decided, dtype)
    expected = answer.loss if quantity == "loss" else answer.grad
    if how == ORACLE:
        return measure(quantity, impl, expected, tolerance, dtype)
    outcomes = admissible_losses(answer, decided.ambiguous)
    if outcomes is None:
        return finite_where_required(quantity, impl, answer, decided, dtype)
    return measure_loss_against(impl, outcomes, tolerance, dtype)


def judge_example(cell, quantity: str, impl, answer: Answer, *, decided: Decisions | None = None,
                  device: str | None = None, conventions: tuple[str, ...] = (), held_to=None) -> Errors | None:
    """`impl` (a loss or a gradient the adapter of `cell` gave) judged on one example: how the example's decisions
    stand for the cell's compute dtype and precision on `device` (None: the plain dtype model), the tolerance that
    follows, and the rule above. `decided`, when the caller has it already, saves computing it again.

    `held_to`: another answer of the adapter's that `impl` must equal (a property: two inputs that must give the same
    answer). Neither may be a NaN or an infinity where every admissible answer is finite (the same NaN twice is no
    agreement); then `impl` is held to it where the rule compares with the oracle's value, within twice the tolerance
    (both carry their own rounding), and elsewhere either side of a decision is admissible."""
    if decided is None:
        decided = decisions(answer, cell.compute_dtype, cell.precision, device)
    allowed = tolerance(quantity, cell.dtype, answer, cell.compute_dtype, cell.precision, device)
    if held_to is None:
        return judge(quantity, impl, answer, decided, allowed, cell.dtype, conventions)
    for which, value in (("the answer it is held to", held_to), ("the answer", impl)):
        errors = finite_where_required(quantity, value, answer, decided, cell.dtype)
        if errors is not None:  # a NaN on both sides is no agreement where every admissible answer is finite
            return replace(errors, mismatch=f"{which}: {errors.mismatch}")
    if comparison(quantity, decided, answer, conventions) != ORACLE:
        return None
    doubled = Tolerance(2 * allowed.atol, allowed.rtol, f"2 x ({allowed.source})", allowed.scale)
    return measure(quantity, impl, held_to, doubled, cell.dtype)

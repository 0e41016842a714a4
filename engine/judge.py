"""The judging rule, written once: conformance cells, property checks and edge cases all follow it.

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
        which the convention fixes at 0).
"""
from __future__ import annotations

from reference import GAP_KINDS

from .ambiguity import Decisions
from .compare import Errors, admissible_losses, measure, measure_loss_against, value_jumps
from .oracle import Answer
from .tolerances import Tolerance

ORACLE, ADMISSIBLE, NOT_COMPARED = "oracle", "admissible", "not compared"


def comparison(quantity: str, decided: Decisions, spec, conventions: tuple[str, ...] = ()) -> str:
    """How `quantity` is judged on an example: against the ORACLE's value, among the ADMISSIBLE outcomes
    (the loss only), or NOT_COMPARED."""
    if quantity == "grad":
        kinks = {kind for kind in decided.ties if GAP_KINDS[kind].subgradient}
        return NOT_COMPARED if (set(decided.ambiguous) | kinks) - set(conventions) else ORACLE
    return ADMISSIBLE if any(value_jumps(kind, spec) for kind in decided.ambiguous) else ORACLE


def judge(quantity: str, impl, answer: Answer, decided: Decisions, tolerance: Tolerance, dtype: str,
          conventions: tuple[str, ...] = ()) -> Errors | None:
    """The errors of `impl` (a loss or a gradient) against the oracle under the rule above; None when the
    example cannot be compared for this quantity."""
    how = comparison(quantity, decided, answer.spec, conventions)
    if how == NOT_COMPARED:
        return None
    expected = answer.loss if quantity == "loss" else answer.grad
    if how == ORACLE:
        return measure(quantity, impl, expected, tolerance, dtype)
    outcomes = admissible_losses(answer, decided.ambiguous)
    return None if outcomes is None else measure_loss_against(impl, outcomes, tolerance, dtype)

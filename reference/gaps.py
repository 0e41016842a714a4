"""Decision-gap kinds: the points where a loss or its gradient is discontinuous or ambiguous, declared once.

Every strategy reports, per kind, how far its input is from the nearest decision of that kind (its gap:
0 means *at* the decision). What a comparison does with a gap is read from this table, never from the
kind's name elsewhere:

    loss_jumps      whether the loss value itself (not only its gradient) jumps across the decision
    resolved_at     where the rounding that could flip it is measured: "decisions" (the distances the
                    selected terms read), "gap" (the gap is itself a distance: near 0 it is its own
                    scale), "norm" (an embedding's length: x / |x| is undefined at 0), "value" (the gap is
                    a term's value, not a distance: a soft term is > 0 in exact arithmetic, and what a
                    dtype rounds to 0 is set by its smallest normal number, seen through the rounding of
                    the term's argument; engine/ambiguity.py `underflow_resolution`)
    unresolved      within rounding of it, anything may come out (0/0, an undefined direction)
    exact_when      when an exact tie is decided by the spec's own rule rather than by rounding:
                    "squares"  the decision compares distances, so it is exact wherever the squared
                               distances are computed exactly (integer lattices: IEEE sqrt is monotone
                               and exact on perfect squares, so it keeps every comparison of squares);
                    "values"   the decision compares a distance with the margin, so it needs the distances
                               themselves exact (squared distances on a lattice; euclidean ones that are
                               perfect squares) and the margin on the same lattice;
                    "never"    rounding decides (a zero norm, a division by mean(hn), a soft term's underflow).
    subgradient     at an exact decision the gradient is one of several one-sided ones (a hinge's kink,
                    a tie in a max or min): any of them is admissible. Otherwise the spec's rule picks
                    the terms, and their gradient is defined.

The "squares"/"values" rule: on inputs every implementation computes exactly (small-integer lattices, by
differences or by the Gram expansion alike), a tie is not a rounding accident but a point where the spec's
strict `>`, its window edges and the `> 0` count of mean_nonzero are the semantics. The engine decides which
inputs qualify for which dtype (engine/exactness.py).

The `> 0` count over soft terms is the same rule, with the decision point moved: softplus(x) > 0 for every finite
x, so in exact arithmetic every soft term counts (reference/terms.py `reduce`); a dtype rounds the term to 0 where
x lies below the log of its smallest normal number (-87.3 in float32), and whether an x within the hinge's
resolution of that point counts is the dtype's decision, never an exact one (SOFT_UNDERFLOW).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # only for the annotations: the vocabulary imports the losses, whose gaps these are
    from .spec import Spec



@dataclass(frozen=True)
class GapKind:
    name: str
    meaning: str
    loss_jumps: Callable[[Spec], bool]
    resolved_at: str  # "decisions" | "gap" | "norm" | "value"
    exact_when: str  # "squares" | "values" | "never"
    subgradient: bool
    unresolved: bool = False
    selection: bool = False  # a choice among terms (a tie, semi-hard's >, a window edge), not a kink or a norm


def _always(spec: Spec) -> bool:
    return True


def _never(spec: Spec) -> bool:
    return False


HINGE = "hinge"
TIE_POSITIVE = "tie_positive"
TIE_NEGATIVE = "tie_negative"
SEMI_HARD_SELECTION = "semi_hard_selection"
WINDOW_LOWER = "window_lower"
WINDOW_UPPER = "window_upper"
ZERO_DISTANCE = "zero_distance"
ZERO_NORM = "zero_norm"
COLLAPSE = "collapse"
SOFT_UNDERFLOW = "soft_underflow"
SOFTMAX_ROUNDING = "softmax_rounding"
MINED_POSITIVE = "mined_positive"
MINED_NEGATIVE = "mined_negative"

GAP_KINDS: dict[str, GapKind] = {
    kind.name: kind
    for kind in (
        GapKind(
            HINGE, "a term's hinge argument at 0 (where mean_nonzero's count of terms > 0 changes)",
            loss_jumps=lambda spec: spec.reduction == "mean_nonzero",
            resolved_at="decisions", exact_when="values", subgradient=True,
        ),
        GapKind(
            TIE_POSITIVE, "batch_hard: the farthest positive of an anchor against the runner-up",
            loss_jumps=_never, resolved_at="decisions", exact_when="squares", subgradient=True, selection=True,
        ),
        GapKind(
            TIE_NEGATIVE, "batch_hard, semi_hard: the chosen negative against the runner-up (fallbacks: the farthest)",
            loss_jumps=_never, resolved_at="decisions", exact_when="squares", subgradient=True, selection=True,
        ),
        GapKind(
            SEMI_HARD_SELECTION, "semi_hard: some d_an equal to d_ap (the strict > excludes it)",
            loss_jumps=_always, resolved_at="decisions", exact_when="squares", subgradient=False, selection=True,
        ),
        GapKind(
            WINDOW_LOWER, "semi_hard_all: d_an - d_ap at 0 (the window 0 < d_an - d_ap excludes it)",
            loss_jumps=_always, resolved_at="decisions", exact_when="squares", subgradient=False, selection=True,
        ),
        GapKind(
            WINDOW_UPPER, "semi_hard_all: d_an - d_ap at m (the window includes it; its term is 0 there)",
            loss_jumps=lambda spec: spec.reduction == "mean",  # the term is 0 at the edge; a mean's count moves
            resolved_at="decisions", exact_when="values", subgradient=True, selection=True,
        ),
        GapKind(
            ZERO_DISTANCE, "euclidean: a pair that carries gradient at distance 0 (sqrt's kink; the convention "
            "gives it gradient 0)",
            loss_jumps=_never, resolved_at="gap", exact_when="never", subgradient=True,
        ),
        GapKind(
            ZERO_NORM, "normalize or cosine: the smallest embedding norm (x / |x| undefined at 0); in embedding units",
            loss_jumps=_always, resolved_at="norm", exact_when="never", subgradient=True, unresolved=True,
        ),
        GapKind(
            COLLAPSE, "scaled batch_hard: mean(hn), the divisor (0 at full collapse: 0/0 or +-inf)",
            loss_jumps=_always, resolved_at="gap", exact_when="never", subgradient=True, unresolved=True,
        ),
        GapKind(
            SOFT_UNDERFLOW, "mean_nonzero with soft terms: the smallest term softplus(d_ap - d_an), in value units; "
            "every soft term is > 0 and counts, but a dtype rounds one below its smallest normal number to 0 (TF "
            "flushes subnormals, torch keeps them down to 2^-149 in float32): the hinge's > 0 count, at the dtype's "
            "underflow instead of at 0",
            loss_jumps=lambda spec: spec.reduction == "mean_nonzero",
            resolved_at="value", exact_when="never", subgradient=False,
        ),
        GapKind(
            SOFTMAX_ROUNDING, "mean_nonzero with softmax terms: the smallest term log(sum of e^l) - (target logits), "
            "in value units; every one over two logits or more is > 0 and counts, but a term below the dtype's "
            "rounding of its log-sum-exp (1 + e^-gap rounds to 1 once e^-gap < eps) comes out 0 and drops out of "
            "the count (pytorch-metric-learning's AvgNonZeroReducer)",
            loss_jumps=lambda spec: spec.reduction == "mean_nonzero",
            resolved_at="value", exact_when="never", subgradient=False,
        ),
        GapKind(
            MINED_POSITIVE, "multi_similarity_mined: d_ap + eps against the anchor's nearest negative (the miner's strict "
            "s_ap - eps < max s_an keeps the positive; its term enters or leaves)",
            loss_jumps=_always, resolved_at="decisions", exact_when="values", subgradient=False, selection=True,
        ),
        GapKind(
            MINED_NEGATIVE, "multi_similarity_mined: d_an - eps against the anchor's farthest positive (the miner's strict "
            "s_an + eps > min s_ap keeps the negative; its term enters or leaves)",
            loss_jumps=_always, resolved_at="decisions", exact_when="values", subgradient=False, selection=True,
        ),
    )
}


def in_distance_units(name: str) -> bool:
    """Whether a kind's gap is measured in the embedding space (a distance, or a norm), where a move of the rows
    can cross it; a soft term's value is not, and no move crosses it in exact arithmetic."""
    return GAP_KINDS[name].resolved_at != "value"


def gap_kind(name: str) -> GapKind:
    try:
        return GAP_KINDS[name]
    except KeyError:
        raise KeyError(f"unknown decision-gap kind {name!r}; reference/gaps.py declares {', '.join(GAP_KINDS)}")

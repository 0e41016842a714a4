"""Regimes: the cases the batch strategies are meant to reach, computed from the oracle's answer.

Each example's regimes (`regimes`) are reported with hypothesis.event(). `REGIMES` says which regimes
each spec's strategy is meant to reach and how often at least; the session fails a run in which one
never occurred in enough examples to be sure (engine/session.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from contract.batch import Batch
from reference import GAP_KINDS, LOSSES, Answer, Spec, label_masks
from reference.gaps import SEMI_HARD_SELECTION, TIE_NEGATIVE, TIE_POSITIVE, WINDOW_LOWER, WINDOW_UPPER

from .draws import TRIPLET_MININGS


@dataclass(frozen=True)
class Regime:
    """A case the strategy is meant to reach, for the cells `applies` accepts, in at least
    `min_frequency` of the examples (the session's regime coverage holds every run to it)."""

    name: str
    applies: Callable[[Spec, str], bool]  # (spec, dtype)
    holds: Callable[[Batch, Answer], bool]
    min_frequency: float


# The decision kinds of a selection (a max or min, semi-hard's strict >, a window's edges), not of a term's value
SELECTION_KINDS = {TIE_POSITIVE, TIE_NEGATIVE, SEMI_HARD_SELECTION, WINDOW_LOWER, WINDOW_UPPER}


def _always(spec: Spec, dtype: str) -> bool:
    return True


def _labelled(spec: Spec, dtype: str) -> bool:
    return LOSSES[spec.mining].layout == "labels"


def _paired(spec: Spec, dtype: str) -> bool:
    return LOSSES[spec.mining].layout == "pairs"


def _pair_labels(batch: Batch) -> np.ndarray:
    return batch.labels[: len(batch.labels) // 2]


def _hinged(spec: Spec, dtype: str) -> bool:
    return spec.mining in TRIPLET_MININGS and not spec.soft


def _selects(spec: Spec, dtype: str) -> bool:
    """Minings whose selection can tie: a max/min, semi-hard's strict >, the window's edges."""
    return bool(SELECTION_KINDS & set(LOSSES[spec.mining].gaps))


def _mining(name: str) -> Callable[[Spec, str], bool]:
    return lambda spec, dtype: spec.mining == name


def _class_sizes(batch: Batch) -> np.ndarray:
    return np.unique(batch.labels, return_counts=True)[1]


def _selection_gaps(answer: Answer) -> list[float]:
    return [gap for kind, gap in answer.gaps.items() if GAP_KINDS[kind].selection]


def _all_triplet_kinds(batch: Batch, answer: Answer) -> bool:
    """Hard (d_an < d_ap), semi-hard (d_ap < d_an < d_ap + m) and easy (d_an > d_ap + m) triplets."""
    positive, negative = label_masks(answer.labels)
    dist = answer.distances
    excess = (dist[:, None, :] - dist[:, :, None])[positive[:, :, None] & negative[:, None, :]]  # d_an - d_ap
    margin = answer.spec.margin
    return bool((excess < 0).any() and ((excess > 0) & (excess < margin)).any() and (excess > margin).any())


def _positive_pairs_with_farther_negative(answer: Answer) -> np.ndarray:
    """Per positive pair (a, p) of an anchor that has negatives: is some negative farther than p?"""
    positive, negative = label_masks(answer.labels)
    a, p = np.nonzero(positive & negative.any(axis=1)[:, None])
    dist = answer.distances
    return (negative[a] & (dist[a] > dist[a, p][:, None])).any(axis=1)


def _negative_pair_margins(answer: Answer) -> np.ndarray:
    i, j = answer.selection.T
    different = answer.labels[i] != answer.labels[j]
    return answer.distances[i, j][different] - answer.spec.margin


def _offset_ratio(batch: Batch, answer: Answer) -> float:
    centroid = np.linalg.norm(batch.embeddings.mean(axis=0))
    return centroid / max(float(answer.distances.max()), 1e-300)


def _has_duplicate_rows(batch: Batch) -> bool:
    rows = batch.embeddings[np.lexsort(batch.embeddings.T)]  # equal rows end up next to each other
    return bool((rows[1:] == rows[:-1]).all(axis=1).any())


def _near_tie_in_a_selection(answer: Answer) -> bool:
    width = 1e-3 * np.median(answer.distances)
    return any(0 < gap < width for gap in _selection_gaps(answer))


def _unit_norm(batch: Batch) -> bool:
    return bool((np.abs(np.linalg.norm(batch.embeddings, axis=1) - 1.0) <= 1e-2).all())


def _repeats_an_index(batch: Batch, answer: Answer) -> bool:
    a, p, n = batch.triplets.T
    return bool(((a == p) | (a == n)).any())


REGIMES: tuple[Regime, ...] = (
    Regime("small batch (N <= 4)", _always, lambda b, a: len(b.labels) <= 4, 0.2),
    Regime("moderate batch (N > 16)", _always, lambda b, a: len(b.labels) > 16, 0.15),
    Regime("one class", _labelled, lambda b, a: len(_class_sizes(b)) == 1, 0.05),
    Regime("no positive pair", _labelled, lambda b, a: _class_sizes(b).max() == 1, 0.05),
    Regime("singleton class", _labelled, lambda b, a: bool((_class_sizes(b) == 1).any() and (_class_sizes(b) > 1).any()), 0.1),
    Regime("exact duplicate points", _always, lambda b, a: _has_duplicate_rows(b), 0.1),
    Regime("exact tie in a selection", _selects, lambda b, a: 0.0 in _selection_gaps(a), 0.05),
    Regime(
        "near tie in a selection",
        _selects,
        lambda b, a: _near_tie_in_a_selection(a),
        0.02,
    ),
    Regime("unit-norm embeddings", _always, lambda b, a: _unit_norm(b), 0.05),
    # float16 and bfloat16 resolve distances only near the origin: their offsets stay below ~2 x scale
    Regime("large offset", lambda s, dtype: dtype in ("float32", "float64"), lambda b, a: _offset_ratio(b, a) > 3.0, 0.05),
    Regime("hinge active", _hinged, lambda b, a: bool((a.values > 0).any()), 0.3),
    Regime(
        "hinge inactive",
        lambda s, dtype: _hinged(s, dtype) and s.mining != "semi_hard_all",  # its window keeps every term active
        lambda b, a: bool((a.values == 0).any()),
        0.05,
    ),
    Regime(
        "easy, semi-hard and hard triplets together",
        lambda s, dtype: s.mining in TRIPLET_MININGS and _labelled(s, dtype) and s.margin > 0,
        _all_triplet_kinds,
        0.1,
    ),
    Regime("semi_hard fallback fired", _mining("semi_hard"), lambda b, a: bool((~_positive_pairs_with_farther_negative(a)).any()), 0.5),
    Regime("semi-hard negative found", _mining("semi_hard"), lambda b, a: bool(_positive_pairs_with_farther_negative(a).any()), 0.5),
    Regime("tie in the hardest negative", _mining("batch_hard"), lambda b, a: a.gaps.get(TIE_NEGATIVE) == 0.0, 0.05),
    Regime(
        "anchor without a positive",
        lambda s, dtype: s.mining == "batch_hard" and s.anchors == "all",
        lambda b, a: bool((a.selection[:, 1] < 0).any()),
        0.2,
    ),
    Regime("window non-empty", _mining("semi_hard_all"), lambda b, a: len(a.selection) > 0, 0.2),
    Regime("window empty", _mining("semi_hard_all"), lambda b, a: len(a.selection) == 0, 0.1),
    Regime("negative pair inside the margin", _mining("contrastive"), lambda b, a: bool((_negative_pair_margins(a) < 0).any()), 0.2),
    Regime("negative pair beyond the margin", _mining("contrastive"), lambda b, a: bool((_negative_pair_margins(a) > 0).any()), 0.2),
    Regime("index repeated inside a triplet", _mining("triplets"), _repeats_an_index, 0.1),
    Regime("pairs sharing a class", _paired, lambda b, a: len(np.unique(_pair_labels(b))) < len(_pair_labels(b)), 0.2),
    Regime("every pair its own class", _paired,
           lambda b, a: len(_pair_labels(b)) > 1 and len(np.unique(_pair_labels(b))) == len(_pair_labels(b)), 0.05),
)


def applicable_regimes(spec: Spec, dtype: str) -> list[Regime]:
    return [regime for regime in REGIMES if regime.applies(spec, dtype)]


def regimes(batch: Batch, answer: Answer, dtype: str) -> list[str]:
    """The names of the regimes this example reached."""
    return [regime.name for regime in applicable_regimes(answer.spec, dtype) if regime.holds(batch, answer)]



"""The oracle: what each triplet-mining loss means, in readable float64 NumPy.

    >>> import numpy as np, reference
    >>> r = reference.evaluate(np.eye(3), [0, 0, 1], reference.Spec(mining="batch_all", margin=0.5))
    >>> round(r.loss, 6), r.grad.shape
    (0.5, (3, 3))
"""
from .evaluate import Answer, evaluate, evaluate_distances
from .gaps import GAP_KINDS, GapKind, gap_kind
from .losses import LOSSES, Loss, minings_of, minings_taking
from .spec import (
    ANCHORS,
    ANCHORS_MININGS,
    DISTANCES,
    MARGIN_MININGS,
    EMPTIES,
    LOGIT_SCALES,
    MININGS,
    REDUCTIONS,
    SCALED_MININGS,
    SOFT_MININGS,
    SYMMETRIC_MININGS,
    TEMPERATURE_MININGS,
    OracleError,
    Scope,
    Spec,
    SpecError,
    check_scope,
    in_scope,
    scope_in_words,
)
from .strategies import label_masks, valid_triplets
from .terms import Terms

__all__ = [
    "ANCHORS",
    "Answer",
    "ANCHORS_MININGS",
    "DISTANCES",
    "EMPTIES",
    "LOGIT_SCALES",
    "GAP_KINDS",
    "GapKind",
    "LOSSES",
    "Loss",
    "MARGIN_MININGS",
    "MININGS",
    "REDUCTIONS",
    "SCALED_MININGS",
    "SOFT_MININGS",
    "SYMMETRIC_MININGS",
    "TEMPERATURE_MININGS",
    "OracleError",
    "Terms",
    "Scope",
    "Spec",
    "SpecError",
    "check_scope",
    "evaluate",
    "evaluate_distances",
    "gap_kind",
    "in_scope",
    "label_masks",
    "minings_of",
    "minings_taking",
    "scope_in_words",
    "valid_triplets",
]

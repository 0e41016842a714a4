"""The oracle: what each triplet-mining loss means, in readable float64 NumPy.

    >>> import numpy as np, reference
    >>> r = reference.evaluate(np.eye(3), [0, 0, 1], reference.Spec(mining="batch_all", margin=0.5))
    >>> round(r.loss, 6), r.grad.shape
    (0.5, (3, 3))
"""
from .evaluate import Result, evaluate
from .spec import (
    ANCHORS,
    DISTANCES,
    EMPTIES,
    MININGS,
    REDUCTIONS,
    OracleError,
    Spec,
    SpecError,
)

__all__ = [
    "ANCHORS",
    "DISTANCES",
    "EMPTIES",
    "MININGS",
    "REDUCTIONS",
    "OracleError",
    "Result",
    "Spec",
    "SpecError",
    "evaluate",
]

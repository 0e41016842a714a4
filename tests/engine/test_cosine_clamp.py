"""A clamp of 1 - u_i.u_j at 0 (TF-Addons' angular_distance) passes no gradient where the cosine of near-parallel rows
rounds to 1, though 1 - cos is not 0 there: such a pair is within the dtype's rounding of the clamp, so the gradient's
tolerance (engine/tolerances.py `grad_rounding`) admits its whole share, sin(angle) / |x| times its slope, either way.
The batch is the regression the dev profile found (engine/regressions.py): rows 4 and 5 are 8e-9 apart in angle."""
import numpy as np
import pytest

import reference
from engine.ambiguity import decisions
from engine.judge import judge
from engine.regressions import OWN
from engine.tolerances import tolerance
from reference.distances import normalize_backward

NEAR_PARALLEL = next(r for r in OWN if r.layout.startswith("near-parallel rows"))
SPEC = reference.Spec(mining="circle", distance="cosine", normalize=True, margin=0.25, gamma=256.0,
                      reduction="mean_nonzero")
ANSWER = reference.evaluate(NEAR_PARALLEL.embeddings, NEAR_PARALLEL.labels, SPEC)


def clamped_gradient(answer) -> np.ndarray:
    """The gradient of an implementation that measures 1 - u.u and clamps it at 0, with the oracle's slopes dL/dD: it
    cuts every pair whose 1 - cos is below float64's eps (where 1 - u.u rounds to 0 or below; whether it does for a
    given pair depends on the machine's summation order, so the model cuts them all)."""
    unit = answer.measured
    passed = np.where(answer.distances > np.finfo(np.float64).eps, answer.grad_dist + answer.grad_dist.T, 0.0)
    return normalize_backward(unit, answer.norms, -passed @ unit)  # normalize's projection and cosine's: P P = P


def test_the_clamp_cuts_a_share_the_oracle_keeps():
    cut = np.abs(clamped_gradient(ANSWER) - ANSWER.grad)
    assert cut[4].max() > 1e-5 and cut[5].max() > 1e-4  # rows 4 and 5: the pair's share, beyond the floor of 1e-5


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_clamped_gradient_is_admissible(dtype):
    errors = judge("grad", clamped_gradient(ANSWER), ANSWER, decisions(ANSWER, dtype), tolerance("grad", dtype, ANSWER),
                   dtype)
    assert errors is not None and errors.normalized <= 1.0, errors

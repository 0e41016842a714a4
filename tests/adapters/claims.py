"""What the adapter tests share: an adapter's claim checked against the oracle on one batch far from every decision
(ties, hinges, zero distances), where any correct implementation agrees to its dtype's rounding."""
import numpy as np
import pytest

import reference

EXACT = {"float64": (1e-12, 1e-10), "float32": (2e-6, 1e-4)}  # (loss rtol, gradient atol)


def assert_conforms(adapter, spec, x, y, dtype):
    """The adapter's loss and gradient equal the oracle's on x rounded to `dtype`; returns the oracle's result."""
    x = x.astype(dtype).astype(np.float64)
    oracle = reference.evaluate(x, y, spec)
    out = adapter.run(x, y, spec, dtype, "cpu")
    rtol, atol = EXACT[dtype]
    assert out.loss == pytest.approx(oracle.loss, rel=rtol, abs=rtol), (spec, dtype)
    assert np.allclose(out.grad, oracle.grad, atol=atol, rtol=0), (spec, dtype, np.abs(out.grad - oracle.grad).max())
    return oracle

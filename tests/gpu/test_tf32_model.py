"""The cuda-tf32 execution target and its rounding model (contract/targets.py, engine/tolerances.py): TF32 keeps 10
explicit mantissa bits of a matmul's float32 inputs and accumulates in float32, so u = (D + 2) eps + 2 x 2^-10.

Checked on the CPU: the target's declarations and cells, torch's switches around a call, and that the model
accepts a TF32 Gram expansion (emulated bit for bit: tests/gpu/tf32_adapters.py) while the plain float32
model does not, and keeps a computation without matmuls within float32's."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from engine.ambiguity import decisions
from engine.cells import conformance_cells
from engine.judge import judge
from reference import evaluate
from engine.draws import batches
from contract.targets import TARGETS, applies, matmul_eps
from engine.tolerances import tolerance, unit_roundoff


def test_the_tf32_target_is_declared_once_with_its_mantissa_bits():
    tf32 = TARGETS["cuda-tf32"]
    assert (tf32.device, tf32.matmul_mantissa_bits, tf32.dtypes) == ("cuda", 10, ("float32",))
    assert TARGETS["cuda"].matmul_mantissa_bits is None and "TF32 off" in TARGETS["cuda"].meaning
    assert matmul_eps("cuda-tf32", "float32") == 2.0**-10
    # float16 and bfloat16 hold no more than 10 bits: TF32 changes nothing for them; nor does plain cuda
    assert matmul_eps("cuda-tf32", "float16") is None and matmul_eps("cuda", "float32") is None
    assert applies("cuda-tf32", "float32") and not applies("cuda-tf32", "float64") and applies("cuda", "float16")


def test_tf32_cells_exist_for_float32_only():
    pytest.importorskip("torch")
    from adapters import torch_native

    cells = conformance_cells(torch_native.ADAPTERS)
    tf32 = {(c.adapter.name, c.dtype) for c in cells if c.target == "cuda-tf32"}
    assert tf32 and {dtype for _, dtype in tf32} == {"float32"}
    assert {c.dtype for c in cells if c.target == "cuda" and c.adapter.name == "torch.TripletMarginLoss"} == {
        "float64", "float32", "float16", "bfloat16"}


def _answer():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 6)).astype(np.float32).astype(np.float64)
    from tests.gpu.tf32_adapters import SPEC

    return evaluate(x, np.arange(8) % 3, SPEC)


def test_unit_roundoff_adds_two_tf32_input_roundings_to_float32s():
    found = _answer()
    plain = unit_roundoff(found, "float32")
    assert plain == (6 + 2) * 2.0**-23
    assert unit_roundoff(found, "float32", "cuda") == plain
    assert unit_roundoff(found, "float32", "cuda-tf32") == plain + 2 * 2.0**-10
    wide = tolerance("loss", "float32", found, precision="gram", target="cuda-tf32")
    assert wide.atol > tolerance("loss", "float32", found, precision="gram").atol
    assert "cuda-tf32" in wide.source and "2^-10" in wide.source


def test_matmul_precision_switches_tf32_for_the_call_and_restores_it():
    torch = pytest.importorskip("torch")
    from adapters._torch import matmul_precision

    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    before = (matmul.allow_tf32, cudnn.allow_tf32)
    try:
        matmul.allow_tf32 = cudnn.allow_tf32 = True
        with matmul_precision("cuda"):  # plain cuda: TF32 off, explicitly, whatever the process had
            assert (matmul.allow_tf32, cudnn.allow_tf32) == (False, False)
        assert (matmul.allow_tf32, cudnn.allow_tf32) == (True, True)
        matmul.allow_tf32 = cudnn.allow_tf32 = False
        with matmul_precision("cuda-tf32"):
            assert (matmul.allow_tf32, cudnn.allow_tf32) == (True, True)
        assert (matmul.allow_tf32, cudnn.allow_tf32) == (False, False)
        with matmul_precision("cpu"):
            assert (matmul.allow_tf32, cudnn.allow_tf32) == (False, False)
    finally:
        matmul.allow_tf32, cudnn.allow_tf32 = before


def _judged(adapter, batch, target):
    """(errors of loss and grad under the target's model) for one batch, rounded to float32."""
    batch = batch.rounded("float32")
    found = evaluate(batch.embeddings, batch.labels, adapter.specs[0], batch.triplets)
    out = adapter.run(batch.embeddings, batch.labels, adapter.specs[0], "float32", "cuda-tf32")
    decided = decisions(found, "float32", adapter.precision, target)
    return [judge(q, out.loss if q == "loss" else out.grad, found, decided,
                  tolerance(q, "float32", found, "float32", adapter.precision, target), "float32")
            for q in ("loss", "grad")]


def test_the_tf32_model_holds_a_tf32_gram_expansion_that_the_float32_model_does_not():
    pytest.importorskip("torch")
    from tests.gpu.tf32_adapters import ADAPTERS

    gram = ADAPTERS[0]
    beyond_float32 = []

    @settings(max_examples=60, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(batch=batches(gram.specs[0], "float32", "gram"))
    def within_tf32(batch):
        for errors in _judged(gram, batch, "cuda-tf32"):
            assert errors is None or errors.ok, errors.mismatch
        beyond_float32.append(any(e is not None and not e.ok for e in _judged(gram, batch, None)))

    within_tf32()
    assert any(beyond_float32), "a TF32 Gram expansion should leave float32's model on some batch"


def test_a_computation_without_matmuls_stays_within_the_float32_model_on_the_tf32_target():
    pytest.importorskip("torch")
    from tests.gpu.tf32_adapters import ADAPTERS

    direct = ADAPTERS[1]

    @settings(max_examples=30, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(batch=batches(direct.specs[0], "float32", "direct"))
    def within_float32(batch):
        for errors in _judged(direct, batch, None):
            assert errors is None or errors.ok, errors.mismatch

    within_float32()

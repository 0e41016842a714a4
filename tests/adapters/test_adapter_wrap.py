"""wrap_torch / wrap_numpy: argument validation, the checks on what the wrapped function returns, and
skipping with a reason when a framework or device is missing. (wrap_tensorflow: test_adapter_tfa.py.)"""
import subprocess
import sys

import numpy as np
import pytest

from adapters import Unavailable, pml, seeds, tfa, torch_native, wrap_numpy, wrap_torch
from reference import Spec

torch = pytest.importorskip("torch")

HARD = Spec(mining="batch_hard")
TRIPLETS = Spec(mining="triplets")
X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]])
Y = np.array([0, 0, 1])


def total_distance(embeddings, labels):
    return torch.cdist(embeddings, embeddings).sum()


# --- arguments ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"fn": 3}, TypeError, "wrap_torch: fn must be callable, got int"),
        ({"name": ""}, ValueError, "an adapter needs a non-empty name"),
        ({"spec": "batch_hard"}, TypeError, "spec must be a reference.Spec or a non-empty list of them"),
        ({"spec": []}, TypeError, "spec must be a reference.Spec or a non-empty list of them"),
        ({"dtypes": ("float33",)}, ValueError, "dtypes ['float33'] not supported for torch"),
        ({"dtypes": ()}, ValueError, "dtypes () not supported for torch"),
        ({"targets": ("tpu",)}, ValueError, "targets ['tpu'] not supported for torch"),
        ({"notes": 3}, TypeError, "notes must be a string"),
        ({"fn": lambda embeddings: embeddings.sum()}, TypeError, "cannot be called as fn(embeddings, labels)"),
        ({"spec": TRIPLETS}, TypeError, "cannot be called as fn(embeddings, labels, triplets)"),
        ({"free_fields": ("temprature",)}, ValueError, "free_fields ['temprature'] are not Spec fields"),
        ({"free_fields": ("mining",)}, ValueError, "free_fields ['mining'] are not Spec fields a run can read"),
    ],
)
def test_wrap_torch_validates_its_arguments(kwargs, error, message):
    arguments = {"fn": total_distance, "name": "user-loss", "spec": HARD, **kwargs}
    with pytest.raises(error) as raised:
        wrap_torch(**arguments)
    assert message in str(raised.value)


def test_wrap_numpy_rejects_bfloat16_and_other_devices():
    with pytest.raises(ValueError, match=r"dtypes \['bfloat16'\] not supported for numpy"):
        wrap_numpy(lambda e, y: 0.0, name="np", spec=HARD, dtypes=("bfloat16",))
    with pytest.raises(TypeError, match="grad must be callable"):
        wrap_numpy(lambda e, y: 0.0, grad="not a function", name="np", spec=HARD)


# --- what the wrapped function returns ------------------------------------------------------------


@pytest.mark.parametrize(
    "returned, message",
    [
        (lambda e: 1.5, "returned a float, expected a scalar torch.Tensor"),
        (lambda e: e.sum(dim=1), "returned a tensor of shape (3,), expected a scalar"),
        (lambda e: e.sum().reshape(1), "returned a tensor of shape (1,), expected a scalar"),
        (lambda e: e.sum().double(), "returned a torch.float64 tensor for torch.float32 embeddings"),
        (lambda e: (e.sum() > 0), "returned a torch.bool tensor for torch.float32 embeddings"),
    ],
)
def test_wrap_torch_checks_the_output(returned, message):
    adapter = wrap_torch(lambda e, y: returned(e), name="bad-output", spec=HARD)
    with pytest.raises(TypeError) as raised:
        adapter.run(X, Y, HARD, "float32", "cpu")
    assert str(raised.value).startswith("adapter 'bad-output': the loss function ")
    assert message in str(raised.value)


@pytest.mark.parametrize(
    "loss, grad, message",
    [
        (lambda e, y: [1.0], None, "returned a list, expected a real number"),
        (lambda e, y: np.ones(2), None, "returned a ndarray of shape (2,), expected a real number"),
        (lambda e, y: True, None, "returned a bool, expected a real number"),
        (lambda e, y: 1.0, lambda e, y: np.ones(3), "gradient function returned a float64 array of shape (3,)"),
        (lambda e, y: 1.0, lambda e, y: None, "gradient function returned a NoneType"),
    ],
)
def test_wrap_numpy_checks_the_output(loss, grad, message):
    adapter = wrap_numpy(loss, grad, name="bad-numpy", spec=HARD)
    with pytest.raises(TypeError) as raised:
        adapter.run(X, Y, HARD, "float64", "cpu")
    assert message in str(raised.value)


# --- calling conventions --------------------------------------------------------------------------


def test_triplets_reach_the_function_as_a_long_tensor_and_spec_when_asked():
    seen = {}

    def loss(embeddings, labels, triplets, spec):
        seen.update(triplets=triplets, spec=spec)
        a, p, n = embeddings[triplets].unbind(dim=1)
        return torch.relu((a - p).norm(dim=1) - (a - n).norm(dim=1) + spec.margin).mean()

    specs = [Spec(mining="triplets", margin=m) for m in (1.0, 0.5)]
    adapter = wrap_torch(loss, name="explicit", spec=specs, dtypes=("float64",))
    out = adapter.run(X, Y, specs[1], "float64", "cpu", triplets=np.array([[0, 1, 2]]))
    assert seen["triplets"].dtype == torch.int64 and seen["triplets"].shape == (1, 3)
    assert seen["spec"] is specs[1]
    assert out.loss == pytest.approx(max(np.sqrt(2) - np.sqrt(4 + 1) + 0.5, 0.0))
    assert out.target == "cpu" and out.version.startswith("torch ")


def test_a_loss_that_ignores_the_embeddings_has_zero_gradient():
    adapter = wrap_torch(lambda e, y: torch.zeros((), dtype=e.dtype), name="constant", spec=HARD)
    out = adapter.run(X, Y, HARD, "float32", "cpu")
    assert out.loss == 0.0 and np.array_equal(out.grad, np.zeros_like(X))


def test_wrap_numpy_without_grad_is_loss_only_and_casts_to_the_dtype():
    dtypes = []
    adapter = wrap_numpy(lambda e, y: dtypes.append(e.dtype) or float(e.sum()), name="np-loss", spec=HARD,
                         dtypes=("float16",))
    out = adapter.run(X, Y, HARD, "float16", "cpu")
    assert adapter.gradient is False and out.grad is None and out.loss == 6.0
    assert dtypes == [np.float16] and out.version.startswith("numpy ")


def test_run_refuses_what_the_adapter_does_not_claim():
    adapter = wrap_torch(total_distance, name="claims-little", spec=HARD)
    with pytest.raises(ValueError, match="does not claim triplets"):
        adapter.run(X, Y, TRIPLETS, "float32", "cpu")
    with pytest.raises(ValueError, match="not float64 on cpu"):
        adapter.run(X, Y, HARD, "float64", "cpu")


def test_a_free_field_may_take_any_value_and_every_other_field_stays_claimed():
    """free_fields: the fields the function reads from its `spec` (the temperature sweep asks for other temperatures
    than those claimed); any other field must still be a claimed value."""
    claimed = Spec(mining="multiple_negatives", distance="cosine", temperature=0.05)
    seen = []

    def loss(embeddings, labels, spec):
        seen.append(spec.temperature)
        return embeddings.sum() / spec.temperature

    pairs = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [0.8, 0.6]]), np.array([0, 1, 0, 1])
    free = wrap_torch(loss, name="reads-its-temperature", spec=claimed, free_fields=("temperature",))
    assert free.run(*pairs, claimed.at_temperature(1e-3), "float32", "cpu").loss == pytest.approx(4800.0, rel=1e-6)
    assert seen == [1e-3]
    with pytest.raises(ValueError, match=r"does not claim .* \(any temperature\)"):
        free.run(*pairs, Spec(mining="multiple_negatives", distance="euclidean", temperature=0.05), "float32", "cpu")
    fixed = wrap_torch(loss, name="fixed-temperature", spec=claimed)
    with pytest.raises(ValueError, match="does not claim multiple_negatives cosine t=0.001"):
        fixed.run(*pairs, claimed.at_temperature(1e-3), "float32", "cpu")


# --- missing framework or device: a skip with a reason ---------------------------------------------


def test_cuda_absent_is_a_reason_not_an_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    adapter = wrap_torch(total_distance, name="gpu-too", spec=HARD, targets=("cpu", "cuda"))
    assert adapter.available() is None
    assert "no CUDA device" in adapter.available("cuda")
    with pytest.raises(Unavailable, match="no CUDA device"):
        adapter.run(X, Y, HARD, "float32", "cuda")


def test_torch_absent_is_a_reason_not_an_error(monkeypatch):
    adapter = wrap_torch(total_distance, name="needs-torch", spec=HARD)
    monkeypatch.setitem(sys.modules, "torch", None)
    assert adapter.available().startswith("torch is not installed")
    with pytest.raises(Unavailable, match="torch is not installed"):
        adapter.run(X, Y, HARD, "float32", "cpu")


BLOCKED = """
import sys
for name in ("torch", "tensorflow", "tensorflow_addons", "pytorch_metric_learning"):
    sys.modules[name] = None  # an import of any of them now fails, as on a machine without them
from adapters import Unavailable, torch_native, pml, tfa, seeds
import numpy as np
x, y = np.eye(3), np.array([0, 0, 1])
for family in (torch_native, pml, tfa, seeds):
    for adapter in family.ADAPTERS:
        reason = adapter.available()
        try:
            adapter.run(x, y, adapter.specs[0], adapter.dtypes[0], "cpu", np.array([[0, 1, 2]])
                        if adapter.specs[0].mining == "triplets" else None)
            outcome = "ran"
        except Unavailable as exc:
            outcome = "unavailable"
        print(adapter.name, "|", reason, "|", outcome)
"""


def test_every_builtin_adapter_skips_with_a_reason_without_its_framework():
    result = subprocess.run([sys.executable, "-c", BLOCKED], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    rows = [line.split(" | ") for line in result.stdout.strip().splitlines()]
    assert len(rows) == sum(len(family.ADAPTERS) for family in (torch_native, pml, tfa, seeds))
    for name, reason, outcome in rows:
        if name.startswith("seed002"):  # plain NumPy: nothing to miss
            assert (reason, outcome) == ("None", "ran")
        else:
            assert " is not installed " in reason and outcome == "unavailable", (name, reason, outcome)

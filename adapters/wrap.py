"""Build an `Adapter` from a plain loss function, without editing the suite.

    import adapters, reference

    def my_loss(embeddings, labels):          # torch.Tensor [N, D], torch.Tensor [N] -> scalar Tensor
        ...

    ADAPTER = adapters.wrap_torch(my_loss, name="my-batch-hard", spec=reference.Spec(mining="batch_hard"))

and then `pytest --adapter my_module:ADAPTER`. `wrap_tensorflow` is the same with TensorFlow tensors
(gradient by `tf.GradientTape`); `wrap_numpy(fn, grad=...)` takes NumPy arrays and an optional
gradient function (without one the adapter is loss-only).

The function's arguments:
  * (embeddings, labels), plus the index triples [T, 3] as a third argument for mining="triplets";
  * a parameter named `spec`, if it has one, receives the `reference.Spec` being checked, so that one
    function can claim several specs (margins, distances).
It must return a 0-d floating tensor in the embeddings' dtype (NumPy: a real number); anything else
raises a TypeError whose message says what came back, and the harness records it.

The built-in adapters are made with these helpers as well, so every adapter runs through one code path.
"""
from __future__ import annotations

import functools
import inspect
import numbers
from collections.abc import Callable

import numpy as np

from reference import Spec

from . import _tf, _torch
from .contract import DEVICES, Adapter, Output


class Unavailable(RuntimeError):
    """`run` was asked for something this machine lacks (the framework, or a CUDA device): a skip, not a failure."""


def wrap_torch(
    fn: Callable,
    name: str,
    spec,
    dtypes=("float32",),
    devices=("cpu",),
    notes: str = "",
    source: str = "",
    requires: tuple[str, ...] = (),
) -> Adapter:
    """An adapter around fn(embeddings: Tensor[N, D], labels: Tensor[N]) -> scalar Tensor; the gradient
    comes from autograd. `requires` names further modules the function imports (a skip when absent)."""
    helper = "wrap_torch"
    specs = _specs(helper, spec)
    return _build(
        helper, "torch", _caller(helper, fn, specs), name, specs, dtypes, devices, _torch.DTYPES, DEVICES, notes,
        source, requires, plumbing=_torch, execute=_torch.run_autograd,
    )


def wrap_tensorflow(
    fn: Callable,
    name: str,
    spec,
    dtypes=("float32",),
    devices=("cpu",),
    notes: str = "",
    source: str = "",
    requires: tuple[str, ...] = (),
    graph: bool = False,
) -> Adapter:
    """An adapter around fn(embeddings: tf.Tensor[N, D], labels: tf.Tensor[N] int64) -> scalar tf.Tensor;
    the gradient comes from tf.GradientTape. graph=False runs `tf.function`s eagerly (fast when every batch
    has a new shape); graph=True runs them as graphs, as training does (slow: a retrace per new shape)."""
    helper = "wrap_tensorflow"
    specs = _specs(helper, spec)
    return _build(
        helper, "tensorflow", _caller(helper, fn, specs), name, specs, dtypes, devices, _tf.DTYPES, DEVICES, notes,
        source, requires, plumbing=_tf, execute=functools.partial(_tf.run_tape, graph=_flag(helper, "graph", graph)),
        extra={"mode": "graph" if graph else "eager"},
    )


def wrap_numpy(
    fn: Callable,
    grad: Callable | None = None,
    *,
    name: str,
    spec,
    dtypes=("float64",),
    notes: str = "",
    source: str = "",
) -> Adapter:
    """An adapter around fn(embeddings: ndarray [N, D], labels: ndarray [N]) -> float and, optionally,
    grad(same arguments) -> ndarray [N, D]; loss-only when grad is None. Runs on the CPU."""
    helper = "wrap_numpy"
    specs = _specs(helper, spec)
    loss_call = _caller(helper, fn, specs)
    grad_call = None if grad is None else _caller(helper, grad, specs, what="grad")

    def call(x, y, t, spec):
        return loss_call(x, y, t, spec), (None if grad_call is None else grad_call(x, y, t, spec))

    return _build(
        helper, "numpy", call, name, specs, dtypes, ("cpu",), ("float64", "float32", "float16"), ("cpu",), notes,
        source, (), plumbing=_NumpyPlumbing, execute=functools.partial(_run_numpy, gradient=grad_call is not None),
        gradient=grad_call is not None,
    )


# --- shared construction -----------------------------------------------------------------------------


def _build(
    helper, framework, call, name, specs, dtypes, devices, framework_dtypes, framework_devices, notes, source,
    requires, plumbing, execute, gradient=True, extra=None,
) -> Adapter:
    """The Adapter around call(x, labels, triplets, spec); `plumbing` is the framework's helper module
    (missing, device_problem, version, target) and `execute` runs the call in that framework."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{helper}: name must be a non-empty string, got {name!r}")
    dtypes = _names(helper, "dtypes", dtypes, framework_dtypes, framework)
    devices = _names(helper, "devices", devices, framework_devices, framework)
    requires = _names(helper, "requires", requires, None, framework)
    for text, what in ((notes, "notes"), (source, "source")):
        if not isinstance(text, str):
            raise TypeError(f"{helper}: {what} must be a string, got {type(text).__name__}")
    who = f"adapter {name!r}"

    def available(device: str | None = None) -> str | None:
        """None when the adapter can run here (on `device`, when given), else the reason it cannot."""
        return plumbing.missing(requires) or (plumbing.device_problem(device) if device else None)

    def run(embeddings, labels, spec, dtype, device, triplets=None) -> Output:
        if spec not in specs:
            raise ValueError(f"{who} does not claim {spec}; it claims: {'; '.join(map(str, specs))}")
        if dtype not in dtypes or device not in devices:
            raise ValueError(f"{who} claims dtypes {dtypes} and devices {devices}, not {dtype} on {device}")
        reason = available(device)
        if reason:
            raise Unavailable(f"{who}: {reason}")
        loss, grad = execute(
            lambda x, y, t: call(x, y, t, spec), who, np.asarray(embeddings, dtype=np.float64),
            np.asarray(labels), triplets, dtype, device,
        )
        return Output(loss=loss, grad=grad, version=plumbing.version(requires), target=plumbing.target(device))

    return Adapter(
        name=name, framework=framework, specs=specs, run=run, available=available, dtypes=dtypes,
        devices=devices, gradient=gradient, notes=notes, source=source, extra=dict(extra or {}),
    )


def _specs(helper: str, spec) -> tuple[Spec, ...]:
    specs = (spec,) if isinstance(spec, Spec) else tuple(spec) if isinstance(spec, (list, tuple)) else None
    if not specs or not all(isinstance(s, Spec) for s in specs):
        raise TypeError(f"{helper}: spec must be a reference.Spec or a non-empty list of them, got {spec!r}")
    return specs


def _names(helper: str, what: str, value, allowed, framework: str) -> tuple[str, ...]:
    names = (value,) if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(v, str) for v in names):
        raise TypeError(f"{helper}: {what} must be a tuple of names, got {value!r}")
    if allowed is not None:
        unknown = [v for v in names if v not in allowed]
        if unknown or not names:
            raise ValueError(f"{helper}: {what} {unknown or '()'} not supported for {framework}; choose from {allowed}")
    return tuple(names)


def _flag(helper: str, what: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{helper}: {what} must be True or False, got {value!r}")
    return value


def _caller(helper: str, fn, specs: tuple[Spec, ...], what: str = "fn") -> Callable:
    """call(x, labels, triplets, spec): passes the triplets only for mining="triplets", and the spec only to a
    function with a `spec` parameter. Checks up front that `fn` can be called that way."""
    if not callable(fn):
        raise TypeError(f"{helper}: {what} must be callable, got {type(fn).__name__}")
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # some callables (C functions) expose no signature: trust the docs
        signature = None
    takes_spec = signature is not None and "spec" in signature.parameters
    if signature is not None:
        for with_triplets in sorted({s.mining == "triplets" for s in specs}):
            args = ("embeddings", "labels", "triplets") if with_triplets else ("embeddings", "labels")
            try:
                signature.bind(*args, **({"spec": None} if takes_spec else {}))
            except TypeError as exc:
                raise TypeError(f"{helper}: {what}{signature} cannot be called as {what}({', '.join(args)}): {exc}")

    def call(x, y, t, spec):
        args = (x, y, t) if spec.mining == "triplets" else (x, y)
        return fn(*args, spec=spec) if takes_spec else fn(*args)

    return call


# --- NumPy: no framework, CPU only --------------------------------------------------------------------


class _NumpyPlumbing:
    """The same plumbing functions as `_torch` and `_tf`, for functions written in NumPy."""

    @staticmethod
    def missing(modules=()) -> str | None:
        return None

    @staticmethod
    def device_problem(device: str) -> str | None:
        return None

    @staticmethod
    def version(modules=()) -> str:
        return f"numpy {np.__version__}"

    @staticmethod
    def target(device: str) -> str:
        return "cpu"


def _run_numpy(call, who, embeddings, labels, triplets, dtype, device, gradient):
    x = embeddings.astype(dtype)
    loss, grad = call(x, labels, triplets)
    if isinstance(loss, np.ndarray) and loss.ndim == 0:
        loss = loss[()]
    if isinstance(loss, (bool, np.bool_)) or not isinstance(loss, numbers.Real):
        shape = f" of shape {loss.shape}" if isinstance(loss, np.ndarray) else ""
        raise TypeError(f"{who}: the loss function returned a {type(loss).__name__}{shape}, expected a real number")
    if not gradient:
        return float(loss), None
    if not isinstance(grad, np.ndarray) or grad.shape != x.shape or grad.dtype.kind != "f":
        got = f"{grad.dtype} array of shape {grad.shape}" if isinstance(grad, np.ndarray) else type(grad).__name__
        raise TypeError(f"{who}: the gradient function returned a {got}, expected a floating array of shape {x.shape}")
    return float(loss), grad.astype(np.float64)

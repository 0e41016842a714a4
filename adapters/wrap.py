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

On a distributed target (targets=("dist-gloo-2", ...), wrap_torch only) the engine shards the batch and each rank, a
process of its own, runs the function on its shard (the adapter's rank_call, contract/adapter.py; engine/distributed.py;
docs/distributed.md): it must be a module-level function of an importable module, and do its own all-gather, as it
would under DDP (examples/my_distributed_loss.py).

The built-in adapters are made with these helpers as well, so every adapter runs through one code path.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import pickle
from collections.abc import Callable

import numpy as np

from contract.adapter import Adapter, Output, Unavailable, claims
from contract.targets import processes
from reference import LOSSES
from reference.evaluate import read_labels

from . import _numpy, _tf, _torch


def wrap_torch(fn: Callable, name: str, spec, dtypes=("float32",), targets=("cpu",), notes: str = "",
               source: str = "", requires: tuple[str, ...] = (), **declared) -> Adapter:
    """An adapter around fn(embeddings: Tensor[N, D], labels: Tensor[N]) -> scalar Tensor; the gradient
    comes from autograd. `requires` names further modules the function imports (a skip when absent);
    `declared` are further Adapter fields: precision="gram" (contract/precision.py), compute_dtype={...},
    free_fields=reference.LOGIT_SCALES (the Spec fields fn reads from its `spec` parameter, at any value)."""
    return _build(_torch, _caller("wrap_torch", fn, spec), _torch.execute, name=name, spec=spec, dtypes=dtypes,
                  targets=targets, notes=notes, source=source, requires=requires, **declared)


def wrap_tensorflow(fn: Callable, name: str, spec, dtypes=("float32",), targets=("cpu",), notes: str = "",
                    source: str = "", requires: tuple[str, ...] = (), graph: bool = False, **declared) -> Adapter:
    """An adapter around fn(embeddings: tf.Tensor[N, D], labels: tf.Tensor[N] int64) -> scalar tf.Tensor;
    the gradient comes from tf.GradientTape. graph=False runs it eagerly, `tf.function`s inside it too; graph=True
    traces it and its gradient into one tf.function with reduce_retracing, as Keras's fit does (adapters/_tf.py)."""
    if not isinstance(graph, bool):
        raise TypeError(f"wrap_tensorflow: graph must be True or False, got {graph!r}")
    return _build(_tf, _caller("wrap_tensorflow", fn, spec), functools.partial(_tf.execute, graph=graph), name=name,
                  spec=spec, dtypes=dtypes, targets=targets, notes=notes, source=source, requires=requires,
                  extra={"mode": "graph" if graph else "eager"}, **declared)


def wrap_numpy(fn: Callable, grad: Callable | None = None, *, name: str, spec, dtypes=("float64",),
               notes: str = "", source: str = "", **declared) -> Adapter:
    """An adapter around fn(embeddings: ndarray [N, D], labels: ndarray [N]) -> float and, optionally,
    grad(same arguments) -> ndarray [N, D]; loss-only when grad is None. Runs on the CPU."""
    loss_call = _caller("wrap_numpy", fn, spec)
    grad_call = None if grad is None else _caller("wrap_numpy", grad, spec, what="grad")

    def call(x, y, t, spec):
        return loss_call(x, y, t, spec), (None if grad_call is None else grad_call(x, y, t, spec))

    return _build(_numpy, call, functools.partial(_numpy.execute, gradient=grad_call is not None), name=name,
                  spec=spec, dtypes=dtypes, targets=("cpu",), notes=notes, source=source,
                  gradient=grad_call is not None, **declared)


# --- shared construction -----------------------------------------------------------------------------


def _build(plumbing, call: Callable, execute: Callable, *, name, spec, dtypes, targets, notes, source,
           requires=(), gradient=True, extra=None, precision="direct", compute_dtype=None, free_fields=()) -> Adapter:
    """The Adapter around call(x, labels, triplets, spec): `plumbing` is the framework's module (_torch, _tf,
    _numpy: missing, device_problem, version, target) and `execute` runs the call in that framework. The
    Adapter validates the fields; `requires` is checked here, the one field the Adapter does not hold."""
    if isinstance(requires, str) or not all(isinstance(module, str) for module in requires):
        raise TypeError(f"adapter {name!r}: requires must be a tuple of module names, got {requires!r}")
    requires, who = tuple(requires), f"adapter {name!r}"

    def available(device: str | None = None) -> str | None:
        """None when the adapter can run here (on `device`, when given), else the reason it cannot."""
        return plumbing.missing(requires) or (plumbing.device_problem(device) if device else None)

    def checked(spec, dtype, device) -> None:
        """What run and rank_call check first, in the caller's process: the call's claims, then this machine."""
        if not claims(adapter, spec):
            free = f" (any {', '.join(adapter.free_fields)})" if adapter.free_fields else ""
            raise ValueError(f"{who} does not claim {spec}; it claims: {'; '.join(map(str, adapter.specs))}{free}")
        if dtype not in adapter.dtypes or device not in adapter.targets:
            raise ValueError(f"{who} claims dtypes {adapter.dtypes} and targets {adapter.targets}, "
                             f"not {dtype} on {device}")
        reason = available(device)
        if reason:
            raise Unavailable(f"{who}: {reason}")

    def run(embeddings, labels, spec, dtype, device, triplets=None) -> Output:
        checked(spec, dtype, device)
        if processes(device) > 1:
            raise ValueError(f"{who}: {device!r} is a distributed target, whose ranks run rank_call's function "
                             "(engine.harness.call_adapter shards the batch), not run")
        x = np.asarray(embeddings, dtype=np.float64)
        if LOSSES[spec.mining].layout == "pairs":  # the layout's own mistakes, said here rather than from inside
            read_labels(labels, len(x), spec)
        loss, grad = execute(functools.partial(call, spec=spec), who, x, np.asarray(labels), triplets, dtype, device)
        return Output(loss=loss, grad=grad, version=plumbing.version(requires), target=plumbing.target(device))

    def rank_call(spec, dtype, device) -> _OnRank:
        checked(spec, dtype, device)
        # a partial, not a lambda: it travels to the ranks by pickle
        return _OnRank(execute, functools.partial(call, spec=spec), who, dtype, device,
                       version=plumbing.version(requires), target=plumbing.target(device))

    adapter = Adapter(name=name, framework=plumbing.FRAMEWORK, specs=spec, run=run, available=available,
                      dtypes=dtypes, targets=targets, gradient=gradient, notes=notes, source=source,
                      precision=precision, compute_dtype=dict(compute_dtype or {}), extra=dict(extra or {}),
                      rank_call=rank_call, free_fields=tuple(free_fields))
    _check_distributed(adapter, call)
    return adapter


def _check_distributed(adapter: Adapter, call: Callable) -> None:
    """On a distributed target the ranks are processes of their own that receive the loss function by pickle, that is
    by its module and name, and shard the batch by rows: say so at construction, not on the first call."""
    distributed = [device for device in adapter.targets if processes(device) > 1]
    if not distributed:
        return
    who = f"adapter {adapter.name!r}"
    try:
        pickle.dumps(call)
    except Exception as exc:
        raise TypeError(f"{who}: on {', '.join(distributed)} each rank is a process of its own that imports the loss "
                        f"function by its module and name, so it must be a module-level function of an importable "
                        f"module (not a lambda, closure or local function): {type(exc).__name__}: {exc}") from None
    triplets = [str(s) for s in adapter.specs if s.mining == "triplets"]
    if triplets:
        raise ValueError(f"{who}: mining='triplets' has no meaning on {', '.join(distributed)}: index triples name "
                         f"rows of the whole batch, a rank holds a shard ({'; '.join(triplets)})")


def _caller(helper: str, fn, spec, what: str = "fn") -> Callable:
    """call(x, labels, triplets, spec): passes the triplets only for mining="triplets", and the spec only to a
    function with a `spec` parameter. Checks up front that `fn` can be called that way for the claimed specs."""
    if not callable(fn):
        raise TypeError(f"{helper}: {what} must be callable, got {type(fn).__name__}")
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # some callables (C functions) expose no signature: trust the docs
        signature = None
    takes_spec = signature is not None and "spec" in signature.parameters
    specs = spec if isinstance(spec, (list, tuple)) else [spec]
    if signature is not None:
        for with_triplets in sorted({getattr(s, "mining", None) == "triplets" for s in specs}):
            args = ("embeddings", "labels", "triplets") if with_triplets else ("embeddings", "labels")
            try:
                signature.bind(*args, **({"spec": None} if takes_spec else {}))
            except TypeError as exc:
                raise TypeError(f"{helper}: {what}{signature} cannot be called as {what}({', '.join(args)}): {exc}")

    return _Caller(fn, takes_spec)


@dataclasses.dataclass(frozen=True)
class _OnRank:
    """on_rank(x_r, labels_r) -> Output, a rank's call on its own rows (contract/adapter.py rank_call): an object of
    module-level parts rather than a closure, so that it reaches the ranks by pickle."""

    execute: Callable
    call: Callable
    who: str
    dtype: str
    device: str
    version: str
    target: str

    def __call__(self, embeddings, labels) -> Output:
        loss, grad = self.execute(self.call, self.who, embeddings, labels, None, self.dtype, self.device)
        return Output(loss=loss, grad=grad, version=self.version, target=self.target)


@dataclasses.dataclass(frozen=True)
class _Caller:
    """call(x, labels, triplets, spec) -> fn(...): an object rather than a closure, so that the ranks of a
    distributed target (engine/distributed.py) can receive it by pickle when `fn` is a module-level function."""

    fn: Callable
    takes_spec: bool

    def __call__(self, x, y, t, spec):
        args = (x, y, t) if spec.mining == "triplets" else (x, y)
        return self.fn(*args, spec=spec) if self.takes_spec else self.fn(*args)

"""TensorFlow plumbing shared by every TensorFlow-based adapter: imports, dtype and device mapping, the
version and execution-target strings, and running a loss function under `tf.GradientTape`.

Nothing here imports TensorFlow at module import time. When torch is installed too it is imported
first: the project's measurements (docs/upstream/measured.md) were taken with that order in one process.
"""
from __future__ import annotations

import atexit
import functools
import importlib
import os
import warnings
from collections.abc import Callable

import numpy as np

from contract.dtypes import dtype as dtype_facts
from contract.targets import target as target_facts

FRAMEWORK = "tensorflow"


def import_torch_first() -> None:
    """Import torch, where it is installed, before TensorFlow comes into the process: the other order can crash at
    import (Keras's conftest). Here for scripts; in a pytest run, engine/pytest_plugin.py's import hook calls it."""
    try:
        importlib.import_module("torch")
    except ImportError:
        pass


def load(module: str):
    """Import `module` quietly: TF's C++ start-up log, and TF-Addons' end-of-life UserWarning, say nothing
    a conformance run needs (the warning is silenced for that import only)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import_torch_first()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"tensorflow_addons(\.|$)")
        return importlib.import_module(module)


def missing(modules: tuple[str, ...] = ()) -> str | None:
    """Why TensorFlow (or one of the extra `modules` an adapter needs) cannot be imported here, else None."""
    for module in ("tensorflow", *modules):
        try:
            load(module)
        except ImportError as exc:
            return f"{module} is not installed ({type(exc).__name__}: {exc})"
    return None


def device_problem(device: str) -> str | None:
    """Why the execution target `device` cannot be used here, else None."""
    tf = load("tensorflow")
    if target_facts(device).device == "cuda" and not tf.config.list_physical_devices("GPU"):
        return f"no GPU visible to tensorflow {tf.__version__}"
    return None


def version(modules: tuple[str, ...] = ()) -> str:
    """e.g. "tensorflow 2.15.1 + tensorflow_addons 0.23.0"."""
    return " + ".join(f"{m} {load(m).__version__}" for m in ("tensorflow", *modules))


def _device_name(device: str) -> str:
    return "/CPU:0" if target_facts(device).device == "cpu" else "/GPU:0"


def target(device: str) -> str:
    """The execution target as the results record it: "cpu" or e.g. "cuda:0 NVIDIA H200"."""
    if target_facts(device).device == "cpu":
        return "cpu"
    tf = load("tensorflow")
    details = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0])
    return f"cuda:0 {details.get('device_name', 'GPU')}"


def check_loss(loss, dtype, who: str) -> None:
    """The wrapped function must return a 0-d floating tensor in the embeddings' dtype."""
    tf = load("tensorflow")
    if not isinstance(loss, tf.Tensor):
        raise TypeError(f"{who}: the loss function returned a {type(loss).__name__}, expected a scalar tf.Tensor")
    if loss.shape.rank != 0:
        raise TypeError(
            f"{who}: the loss function returned a tensor of shape {loss.shape.as_list()}, expected a scalar "
            "(reduce it, e.g. tf.reduce_mean)"
        )
    if loss.dtype != dtype:
        raise TypeError(
            f"{who}: the loss function returned a {loss.dtype.name} tensor for {dtype.name} embeddings; return the "
            "loss in the embeddings' dtype (cast it back if you compute in another)"
        )


def _loss_and_gradient(call: Callable, x, y, t, who: str):
    """call(x, y, t) and its gradient by x, checked (check_loss); a loss that does not depend on x (a constant 0, say)
    has a zero gradient, and a gather's gradient (IndexedSlices) comes back dense."""
    tf = load("tensorflow")
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = call(x, y, t)
    check_loss(loss, x.dtype, who)
    grad = tape.gradient(loss, x)
    return loss, tf.zeros_like(x) if grad is None else tf.convert_to_tensor(grad)


_GRAPHS: dict = {}
atexit.register(_GRAPHS.clear)  # while TensorFlow is whole: its functions' finalizers fail once it is torn down


def _graph(call: Callable, who: str):
    """`_loss_and_gradient` of `call` as one tf.function with reduce_retracing, as Keras's fit builds its train
    function: a batch of a new size is traced once more with the batch dimension unknown, and that graph serves
    every later size. One per function and bound arguments (the adapter binds its spec anew for every call)."""
    bound = (call.func, call.args, tuple(call.keywords.items())) if isinstance(call, functools.partial) else (call,)
    key = (who, *bound)
    if key not in _GRAPHS:
        tf = load("tensorflow")
        _GRAPHS[key] = tf.function(functools.partial(_loss_and_gradient, call, who=who), reduce_retracing=True)
    return _GRAPHS[key]


def execute(
    call: Callable, who: str, embeddings: np.ndarray, labels: np.ndarray, triplets, dtype: str, device: str,
    graph: bool = False,
):
    """Cast the float64 inputs to `dtype` on `device`, call `call(x, labels, triplets)` under a GradientTape,
    and return (loss, dL/dx) as float64 NumPy.

    graph=False forces `tf.function`s to run eagerly (tf.config.run_functions_eagerly): a tf.function of its own
    would trace a graph for every new batch shape (163 ms a call against 10 ms eagerly, docs/upstream/measured.md).
    graph=True runs the call and its gradient as one graph, as training with Keras does (`_graph`); tf.functions
    inside it are traced into it. The previous setting is restored afterwards.
    """
    tf = load("tensorflow")
    tf_dtype = tf.as_dtype(dtype_facts(dtype).tensorflow)
    eager_before = tf.config.functions_run_eagerly()
    tf.config.run_functions_eagerly(not graph)
    try:
        with tf.device(_device_name(device)):
            x = tf.cast(tf.constant(embeddings, dtype=tf.float64), tf_dtype)
            y = tf.constant(labels, dtype=tf.int64)
            t = None if triplets is None else tf.constant(triplets, dtype=tf.int64)
            loss, grad = (_graph(call, who) if graph else functools.partial(_loss_and_gradient, call, who=who))(x, y, t)
    finally:
        tf.config.run_functions_eagerly(eager_before)
    return float(tf.cast(loss, tf.float64).numpy()), tf.cast(grad, tf.float64).numpy()

"""NumPy plumbing, the same functions as adapters/_torch.py and adapters/_tf.py, for loss functions written
in NumPy: no framework to import, the CPU only, and the gradient from a function the user gives (or none)."""
from __future__ import annotations

import numbers
from collections.abc import Callable

import numpy as np

from contract.dtypes import dtype as dtype_facts

FRAMEWORK = "numpy"


def missing(modules: tuple[str, ...] = ()) -> str | None:
    return None


def device_problem(device: str) -> str | None:
    return None


def version(modules: tuple[str, ...] = ()) -> str:
    return f"numpy {np.__version__}"


def target(device: str) -> str:
    return "cpu"


def execute(call: Callable, who: str, embeddings: np.ndarray, labels: np.ndarray, triplets, dtype: str, device: str,
            gradient: bool = True):
    """Cast to `dtype`, call `call(x, labels, triplets)` -> (loss, grad or None), check both, return them as float64."""
    x = embeddings.astype(dtype_facts(dtype).numpy)
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

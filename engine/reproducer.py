"""Copy-paste Python that rebuilds a batch exactly and runs both the oracle and the adapter on it, in the kernels
the run loaded."""
from __future__ import annotations

import os

import numpy as np

from contract.targets import processes
from reference import Spec

from .machine import KERNEL_VARIABLES

CATALOG = "catalog"  # the adapter is a built-in: adapters.catalog() finds it


def _literal(value) -> str:
    """Python source for a nested list of numbers; repr of a float round-trips, NaN and inf are spelt out."""
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, float) and not np.isfinite(value):
        return f"float({str(value)!r})"
    return repr(value)


def _array(values: np.ndarray) -> str:
    """np.array(...) source that rebuilds `values` bit for bit."""
    values = np.asarray(values)
    if values.ndim < 2:
        return f"np.array({_literal(values.tolist())})"
    rows = ",\n    ".join(_literal(row) for row in values.tolist())
    return f"np.array([\n    {rows},\n])"


def _finder(adapter_name: str, source: str) -> list[str]:
    if source == CATALOG:
        return [
            "from adapters import catalog",
            "",
            f"adapter = next(a for a in catalog() if a.name == {adapter_name!r})",
        ]
    module, _, attr = source.partition(":")
    return [
        "import importlib",
        "",
        f"found = getattr(importlib.import_module({module!r}), {attr!r})  # from --adapter {source}",
        f"adapter = next(a for a in (found if isinstance(found, (list, tuple)) else [found]) if a.name == {adapter_name!r})",
    ]


def _kernels() -> list[str]:
    """Lines that load the kernels this run loaded, where a variable chose them (the narrowest kernels of
    engine/machine_variation.py, TensorFlow's oneDNN switch): a library reads them when it loads, so they come first."""
    chosen = {name: os.environ[name] for name in KERNEL_VARIABLES if name in os.environ}
    if not chosen:
        return []
    return ["import os", "", f"os.environ.update({chosen!r})  # this run's kernels, before any library loads"]


def reproducer(
    adapter_name: str,
    source: str,
    spec: Spec,
    dtype: str,
    device: str,
    embeddings: np.ndarray,
    labels: np.ndarray,
    triplets: np.ndarray | None,
    shards: tuple[int, ...] | None = None,
) -> str:
    """The source; `source` is CATALOG for a built-in adapter, else the --adapter MODULE:ATTR it came from.
    On a distributed target the script calls engine.harness.call_adapter, whose engine/distributed.py shards the batch
    and starts the ranks: processes of their own (forkserver or spawn), which import the script's main module again,
    hence the `if __name__ == "__main__":` guard."""
    call = f"adapter.run(embeddings, labels, spec, {dtype!r}, {device!r}, triplets)"
    run = [
        "oracle = reference.evaluate(embeddings, labels, spec, triplets)",
        f"output = {call}",
        'print("loss: oracle", oracle.loss, "implementation", output.loss)',
        "if output.grad is not None:",
        '    print("grad: max |implementation - oracle|", np.max(np.abs(output.grad - oracle.grad)))',
    ]
    sharding = []
    if processes(device) > 1:
        sharding = ["from engine.harness import call_adapter  # the engine shards the batch over the ranks",
                    f"shards = {tuple(shards) if shards is not None else None!r}  # rows per rank; None: the even split"]
        run[1] = (f"output = call_adapter(adapter, embeddings, labels, spec, {dtype!r}, {device!r}, triplets, "
                  f"shards=shards)  # starts {processes(device)} processes")
        run = ['if __name__ == "__main__":  # the ranks re-import this module', *("    " + line for line in run)]
    lines = [
        f"# {adapter_name} vs the oracle: {spec}, {dtype}, {device}. Run from the repository root.",
        *_kernels(),
        "import sys",
        "",
        'sys.path[:0] = [".", "tests"]',
        "import numpy as np",
        "",
        "import reference",
        *_finder(adapter_name, source),
        "",
        f"embeddings = {_array(embeddings)}",
        f"labels = {_array(labels)}",
        f"triplets = {'None' if triplets is None else _array(triplets)}",
        f"spec = reference.{spec!r}",
        *sharding,
        "",
        *run,
    ]
    return "\n".join(lines) + "\n"

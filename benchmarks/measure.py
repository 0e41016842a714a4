"""One measurement in a fresh process, so that its peak memory is its own and frameworks never mix.

    python -m benchmarks.measure '{"implementation": "inhouse.torch", "task": "semi_hard", "n": 1024,
                                   "d": 64, "device": "cpu", "seed": 0, "repeats": 3, "time_cap": 60}'

Prints JSON lines on stdout: {"event": "calling", "n": N} just before the first call (the parent's time cap
starts there, after the imports), then {"event": "result", "n": N, ...}. The first call includes warm-up
(tracing, compilation, allocator growth); `seconds` is the fastest of the repeats that follow: at least
`repeats` of them, more for fast calls (up to `min_timed_seconds`, default a second, of them), while they fit
in half the time cap (the first call's time when none fits).

A job with "sizes": [N, ...] instead of "n" measures them in this one process, in that order, and stops after
the first that is not "ok" (benchmarks/run.py --process-per implementation: on CUDA, where peak memory is reset
per measurement, it saves a process start per N; the CPU's peak RSS cannot be reset, so there each N gets its own).

Peak memory: on CUDA, torch.cuda.max_memory_allocated minus what was allocated before the first call;
on the CPU, the process's peak RSS (getrusage ru_maxrss) minus its RSS just before the first call.
"""
from __future__ import annotations

import gc
import json
import resource
import sys
import time

from benchmarks.implementations import IMPLEMENTATIONS
from benchmarks.tasks import batch

MIN_TIMED_SECONDS = 1.0
MAX_REPEATS = 200
OOM_MESSAGES = ("out of memory", "can't allocate memory", "cannot allocate memory", "oom when allocating")


def _emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def _memory_probe(device: str):
    """(method, start(), peak_since_start())"""
    if device == "cuda":
        import torch

        def start():
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            return torch.cuda.memory_allocated()

        return "cuda max_memory_allocated - allocated before", start, lambda base: torch.cuda.max_memory_allocated() - base
    peak = lambda base: max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base)  # noqa: E731
    return "cpu peak RSS (ru_maxrss) - RSS before the first call", _resident_bytes, peak


def _version(framework: str) -> str:
    import importlib

    names = {"numpy": ("numpy",), "torch": ("torch",), "triton": ("torch", "triton"),
             "tensorflow": ("tensorflow", "tensorflow_addons"),
             "sentence-transformers": ("torch", "sentence_transformers")}[framework]
    return " + ".join(f"{name} {importlib.import_module(name).__version__}" for name in names)


def _target(device: str) -> str:
    if device != "cuda":
        return "cpu"
    import torch

    return f"cuda:{torch.cuda.current_device()} {torch.cuda.get_device_name()}"


def _another(first: float, repeats: list[float], job: dict) -> bool:
    """Whether to time one more call: while it fits in half the time cap, at least job["repeats"] calls, and
    fast calls for MIN_TIMED_SECONDS (or the job's min_timed_seconds) in all, so that the fastest is not a
    scheduler hiccup on a busy machine."""
    if first + sum(repeats) + first > job["time_cap"] / 2:
        return False
    enough = job.get("min_timed_seconds", MIN_TIMED_SECONDS)
    return len(repeats) < job["repeats"] or (sum(repeats) < enough and len(repeats) < MAX_REPEATS)


def run(job: dict) -> dict:
    implementation = IMPLEMENTATIONS[job["implementation"]]
    x, labels = batch(job["task"], job["n"], job["d"], job["seed"])
    step = implementation.prepare(job["task"], x, labels, job["device"])
    method, start, peak = _memory_probe(job["device"])
    base = start()
    _emit(event="calling", n=job["n"])
    began = time.perf_counter()
    step()
    first = time.perf_counter() - began
    repeats = []
    while _another(first, repeats, job):
        began = time.perf_counter()
        step()
        repeats.append(time.perf_counter() - began)
    return {
        "status": "ok",
        "seconds": min(repeats) if repeats else first,
        "first_seconds": first,
        "repeats": len(repeats),
        "peak_bytes": int(peak(base)),
        "memory_method": method,
        "version": _version(implementation.framework),
        "target": _target(job["device"]),
    }


def measured(job: dict) -> dict:
    """run(job), with a failure turned into its result."""
    try:
        return run(job)
    except MemoryError as exc:
        return {"status": "oom", "reason": f"MemoryError: {exc}"}
    except Exception as exc:  # any framework's failure is a recorded result, not a crash of the sweep
        text = f"{type(exc).__name__}: {exc}"
        return {"status": "oom" if any(m in text.lower() for m in OOM_MESSAGES) else "error", "reason": text[:2000]}


def _release(device: str) -> None:
    """Between two sizes in one process: the last one's tensors gone, and CUDA's cache handed back."""
    gc.collect()
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()


def main(argv: list[str]) -> int:
    job = json.loads(argv[1])
    for n in job.pop("sizes", None) or [job["n"]]:
        result = measured({**job, "n": n})
        _emit(event="result", n=n, **result)
        if result["status"] != "ok":
            break
        _release(job["device"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

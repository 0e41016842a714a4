"""What a benchmark run is asked to do and where it runs: the command line of benchmarks/run.py (its defaults, the
quick smoke test, the options) and the machine, as the results' "run" header describes it."""
from __future__ import annotations

import argparse
import importlib.metadata
import os
import socket
from pathlib import Path

from adapters import families
from benchmarks.implementations import IMPLEMENTATIONS
from benchmarks.tasks import TASKS
from engine.machine import cpu_words
from reports.schema import MATMUL

ROOT = Path(__file__).resolve().parent.parent

COMMIT_SIZES = (1024, 4096)  # the sizes of the committed figures (issue 25: 5x at 1024, 10x at 4096)
FULL_SIZES = (256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)
FULL = {
    "sizes": FULL_SIZES,
    "dims": (64, 128),
    "tasks": tuple(TASKS),
    "implementations": tuple(n for n in IMPLEMENTATIONS if n != MATMUL),
    "time_cap": 60.0,
}
# The smoke test: the implementations on numpy, torch and Triton alone (no TensorFlow, no sentence-transformers).
QUICK_FRAMEWORKS = ("numpy", "torch", "triton")
QUICK = {
    "sizes": (128, 256),
    "dims": (64,),
    "tasks": ("batch_hard", "semi_hard"),
    "implementations": tuple(n for n, impl in IMPLEMENTATIONS.items()
                             if n != MATMUL and impl.framework in QUICK_FRAMEWORKS),
    "time_cap": 10.0,
}
STATUSES = """statuses recorded per measurement:
  ok        timed: the fastest of the repeats (forward + backward), peak memory above the pre-call baseline
  timeout   the first call ran past --time-cap (counted from the first call, after imports)
  oom       past --memory-cap-gb of resident memory (CPU), or the framework's own out-of-memory error
  error     any other exception (its text is in "reason")
  skipped   not run: its library is not installed, a smaller N of the same implementation already hit
            timeout or oom (or, measured in one process, an error), or a time box was spent (the reason
            says which)"""


def _cuda_visible() -> bool:
    import torch

    return torch.cuda.is_available()


def parse(argv=None, description: str | None = None):
    """benchmarks/run.py's options (`description`: its --help text), the defaults of --quick or the full run filled in."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=description, epilog=STATUSES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test in seconds: N = {' '.join(map(str, QUICK['sizes']))}, D = {QUICK['dims'][0]}, "
                             f"tasks {' '.join(QUICK['tasks'])}, no TensorFlow, a {QUICK['time_cap']:g} s cap; "
                             "the options below still override it")
    parser.add_argument("--sizes", type=int, nargs="+", metavar="N", help=f"batch sizes (default {' '.join(map(str, FULL_SIZES))})")
    parser.add_argument("--dims", type=int, nargs="+", metavar="D", help="embedding dimensions (default 64 128)")
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), metavar="TASK",
                        help=f"losses to measure, from: {', '.join(TASKS)} (default all)")
    parser.add_argument("--implementations", nargs="+", choices=[n for n in IMPLEMENTATIONS if n != MATMUL],
                        metavar="NAME", help="from: " + ", ".join(n for n in IMPLEMENTATIONS if n != MATMUL)
                        + " (default all; each runs only the tasks and devices it supports; the matmul always runs)")
    parser.add_argument("--devices", nargs="+", choices=("cpu", "cuda"), help="default: cpu, and cuda if visible")
    parser.add_argument("--time-cap", type=float, metavar="SECONDS",
                        help="per measurement, from its first call (default 60)")
    parser.add_argument("--memory-cap-gb", type=float, default=8.0, metavar="GIB",
                        help="resident memory per measurement on the CPU (default 8)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls after the first at least (more for fast "
                        "calls, up to 1 s of them), while they fit in half the time cap; the fastest counts (default 3)")
    parser.add_argument("--threads", type=int, help="CPU threads per framework (OMP, MKL, TensorFlow's pools); default: "
                        "theirs. On a shared machine 1 gives stable times: a thread pool waiting for a descheduled "
                        "thread can cost more than the work")
    parser.add_argument("--max-n", nargs="+", metavar="TASK=N", type=_task_limit,
                        help="per task, the largest N measured (e.g. semi_hard=16384); default: every --sizes")
    parser.add_argument("--implementation-cap", type=float, metavar="SECONDS",
                        help="wall time for all the N of one implementation x task; past it the running measurement "
                        "is stopped and recorded as a timeout, the larger N skipped (default: none)")
    parser.add_argument("--budget", type=float, metavar="SECONDS",
                        help="wall time for the whole sweep; past it the running measurement is stopped (timeout) "
                        "and every one left is recorded as skipped, with the reason (default: none)")
    parser.add_argument("--process-per", choices=("auto", "measurement", "implementation"), default="auto",
                        help="a fresh child per measurement, or one per implementation x task measuring its N in "
                        "turn (auto, the default: one per implementation on CUDA, per measurement on the CPU, whose "
                        "peak RSS cannot be reset)")
    parser.add_argument("--min-timed-seconds", type=float, default=1.0, metavar="SECONDS",
                        help="fast calls are repeated until this much of them is timed (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="of the random batch (default 0)")
    parser.add_argument("--check", action="store_true",
                        help="measure the committed speedups again (benchmarks/committed.json: inhouse.torch over the "
                        "fastest peer and the matmul, side by side in one run) and exit 1 when one falls below its "
                        "committed figure by more than the noise; run it after any change to inhouse/")
    parser.add_argument("--commit", type=int, metavar="RUNS", help="measure the figures --check guards, RUNS times "
                        "(inhouse.torch, every peer and the matmul, side by side, 1 thread, D = 64, --sizes, default "
                        f"{' '.join(map(str, COMMIT_SIZES))}), and write them to the --check-file in place of its "
                        "figures for --tasks (default all); run it on a quiet machine")
    parser.add_argument("--check-file", type=Path, metavar="FILE.json", help="committed figures for --check and "
                        "--commit (default benchmarks/committed.json)")
    parser.add_argument("--output", type=Path, metavar="FILE.jsonl",
                        help="JSON-lines file, appended to (default reports/results/benchmarks-<host>-<devices>.jsonl)")
    args = parser.parse_args(argv)
    args.max_n = dict(args.max_n or [])
    if args.commit and args.sizes is None:
        args.sizes = COMMIT_SIZES
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.devices is None:
        args.devices = ("cpu", "cuda") if _cuda_visible() else ("cpu",)
    if args.output is None:
        args.output = ROOT / "reports" / "results" / f"benchmarks-{socket.gethostname()}-{'+'.join(args.devices)}.jsonl"
    return args


def _task_limit(text: str) -> tuple[str, int]:
    task, sep, n = text.partition("=")
    if not sep or task not in TASKS or not n.isdigit():
        raise argparse.ArgumentTypeError(f"expected TASK=N with TASK one of {', '.join(TASKS)}, got {text!r}")
    return task, int(n)


def device_names(devices) -> list[str]:
    """The header's devices: "cpu", and CUDA as torch names it ("cuda:0 NVIDIA H100 80GB HBM3")."""
    names = []
    for device in devices:
        if device == "cuda":
            import torch

            index = torch.cuda.current_device()
            names.append(f"cuda:{index} {torch.cuda.get_device_name(index)}")
        else:
            names.append(device)
    return names


def machine(devices) -> str:
    """The machine in words: CPU model and its widest vector instructions (engine/machine.py `cpu_words`), cores,
    memory, and the GPU when CUDA is measured."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    words = f"{cpu_words()}, {len(os.sched_getaffinity(0))} cores usable, {memory:.0f} GiB memory"
    if "cuda" in devices:
        import torch

        words += f", {torch.cuda.get_device_name()}"
    return words


def frameworks() -> dict:
    """The versions of numpy, torch, Triton and what the benchmarked families require (their records'
    `requires`), as installed here."""
    found = {}
    for name in dict.fromkeys(("numpy", "torch", "triton", *(package for family in families() if family.benchmarks
                                                               for package in family.requires))):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found

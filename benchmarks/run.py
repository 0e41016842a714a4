"""Time and peak memory of every implementation that computes a task, over batch sizes, beside one matmul.

    python -m benchmarks.run --quick                 # smoke test: N = 128, 256, D = 64, no TensorFlow, seconds
    python -m benchmarks.run                         # N = 256 ... 65536, D = 64 and 128, CPU (+ CUDA if visible)
    python -m benchmarks.run --sizes 1024 16384 --tasks semi_hard --implementations tf-addons inhouse.torch
    python -m benchmarks.run --tasks semi_hard --implementations inhouse.torch sentence-transformers \
        --sizes 1024 2048 4096 --dims 64 --devices cpu --threads 1
    python -m benchmarks.run --devices cuda --sizes 1024 8192 65536 --max-n semi_hard=16384 \
        --implementation-cap 60 --budget 230       # what the GPU command (gpu/) runs, in a time box
    python -m benchmarks.run --check                 # the committed speedups still hold here (benchmarks/check.py)
    python -m benchmarks.run --commit 3 --tasks npairs circle   # measure those tasks' figures for --check, 3 runs

Each measurement (forward + backward) runs in a fresh child process (benchmarks/measure.py); on CUDA one child
measures every N of an implementation in turn (--process-per, peak memory reset per N). A measurement past the
time cap (counted from its first call, after the imports) or past the memory cap (resident memory, polled) is
killed and recorded as "timeout" or "oom"; an exception is recorded as "error". After a timeout or an
out-of-memory, the larger N of that implementation are recorded as "skipped" without running, and so is every
N of an implementation whose library is not installed (the reason says so). Two time boxes bound a whole sweep:
--implementation-cap (the N of one implementation x task together: a slow peer is stopped and recorded as a
timeout, not waited for) and --budget (the whole run: what it leaves is recorded as skipped, with the reason).
Records are JSON lines of kind "benchmark" (reports/schema.py), each with `reference_seconds`, the time of
one N x N x D matmul on the same device, after a "run" header that names the machine; a table of the ratios
is printed at the end. `python -m reports FILE.jsonl -o report.html` draws them.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python benchmarks/run.py` as well as `python -m benchmarks.run`
    sys.path.insert(0, str(ROOT))

from adapters import family  # noqa: E402
from benchmarks.check import run_check, run_commit  # noqa: E402
from benchmarks.implementations import IMPLEMENTATIONS  # noqa: E402
from benchmarks.settings import FULL, FULL_SIZES, QUICK, STATUSES, device_names, frameworks, machine  # noqa: E402
from benchmarks.settings import parse as _parse  # noqa: E402
from benchmarks.sweep import measure, measure_series, plan, sizes_for, sweep  # noqa: E402
from benchmarks.tasks import TASKS  # noqa: E402
from reports.results import ResultsWriter  # noqa: E402
from reports.schema import MATMUL  # noqa: E402

# What benchmarks/run.py offers beside its command: the options, the sweep and its parts, the table.
__all__ = ["FULL", "FULL_SIZES", "IMPLEMENTATIONS", "QUICK", "STATUSES", "ResultsWriter", "device_names", "machine",
           "main", "measure", "measure_series", "parse", "plan", "sizes_for", "sweep", "table"]
OURS = family("inhouse").benchmarks  # the table sets every peer's time over each of these


def parse(argv=None):
    return _parse(argv, description=__doc__)


def table(records: list[dict]) -> str:
    """Seconds per implementation and N, then each peer's time over ours, per (device, D, task)."""
    out = []
    reference = {(r["device"], r["d"], r["n"]): r for r in records if r["implementation"] == MATMUL}
    groups = sorted({(r["device"], r["d"], r["task"]) for r in records if r["implementation"] != MATMUL})
    for device, d, task in groups:
        rows = [r for r in records if (r["device"], r["d"], r["task"]) == (device, d, task)]
        names = list(dict.fromkeys(r["implementation"] for r in rows))
        ours = [n for n in OURS if n in names]
        peers = [n for n in names if n not in OURS]
        cell = {(r["implementation"], r["n"]): r for r in rows}
        out.append(f"\n{task} on {device}, D = {d}: {TASKS[task]}")
        header = ["N", *names, "matmul"] + [f"{p}/{o}" for o in ours for p in peers] + [f"{o}/matmul" for o in ours]
        out.append(" | ".join(f"{h:>14s}" for h in header))
        for n in sorted({r["n"] for r in rows}):
            def seconds(name):
                r = cell.get((name, n)) if name != MATMUL else reference.get((device, d, n))
                return r["seconds"] if r and r["status"] == "ok" else None

            def shown(name):
                r = cell.get((name, n)) if name != MATMUL else reference.get((device, d, n))
                return "-" if r is None else (f"{r['seconds']:.4g}" if r["status"] == "ok" else r["status"])

            def ratio(top, bottom):
                a, b = seconds(top), seconds(bottom)
                return f"{a / b:.3g}x" if a and b else "-"

            values = [str(n), *map(shown, names), shown(MATMUL)]
            values += [ratio(p, o) for o in ours for p in peers] + [ratio(o, MATMUL) for o in ours]
            out.append(" | ".join(f"{v:>14s}" for v in values))
    return "\n".join(out)


def main(argv=None) -> int:
    args = parse(argv)
    if args.check:
        return run_check(args, sweep)
    if args.commit:
        return run_commit(args, sweep, recorded)
    records = recorded(args, lambda writer: sweep(args, writer))
    print(table(records))
    return 0


def recorded(args, measure_all) -> list[dict]:
    """One run in the results file args.output: a header with the settings as args has them now, the records that
    measure_all(writer) writes (and returns), the run's end."""
    writer = ResultsWriter(args.output)
    settings = {k: list(v) if isinstance(v, tuple) else str(v) if isinstance(v, Path) else v
                for k, v in vars(args).items() if k != "output"}
    writer.header(benchmark=settings, machine=machine(args.devices), devices=device_names(args.devices),
                  frameworks=frameworks(), notes="benchmarks/run.py: forward + backward per measurement, fresh process each")
    began = time.time()
    print(f"writing {args.output}", flush=True)
    records = measure_all(writer)
    writer.write("run_end", finished=time.strftime("%Y-%m-%dT%H:%M:%S"), duration_s=round(time.time() - began, 3),
                 exit_status=0, interrupted=False)
    writer.close()
    return records


if __name__ == "__main__":
    sys.exit(main())

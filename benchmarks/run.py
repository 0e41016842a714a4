"""Time and peak memory of every implementation that computes a task, over batch sizes, beside one matmul.

    python -m benchmarks.run --quick                 # smoke test: N = 128, 256, D = 64, no TensorFlow, seconds
    python -m benchmarks.run                         # N = 256 ... 65536, D = 64 and 128, CPU (+ CUDA if visible)
    python -m benchmarks.run --sizes 1024 16384 --tasks semi_hard --implementations tf-addons inhouse.torch
    python -m benchmarks.run --tasks semi_hard --implementations inhouse.torch sentence-transformers \
        --sizes 1024 2048 4096 --dims 64 --devices cpu --threads 1
    python -m benchmarks.run --devices cuda --sizes 1024 8192 65536 --max-n semi_hard=16384 \
        --implementation-cap 60 --budget 230       # what the GPU command (gpu/) runs, in a time box

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

import argparse
import importlib.metadata
import json
import os
import platform
import queue
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python benchmarks/run.py` as well as `python -m benchmarks.run`
    sys.path.insert(0, str(ROOT))

from benchmarks.implementations import IMPLEMENTATIONS, MATMUL, TASKS  # noqa: E402
from reports.results import ResultsWriter  # noqa: E402

FULL_SIZES = (256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)
FULL = {
    "sizes": FULL_SIZES,
    "dims": (64, 128),
    "tasks": tuple(TASKS),
    "implementations": tuple(n for n in IMPLEMENTATIONS if n != MATMUL),
    "time_cap": 60.0,
}
QUICK = {
    "sizes": (128, 256),
    "dims": (64,),
    "tasks": ("batch_hard", "semi_hard"),
    "implementations": ("oracle", "torch.naive", "pytorch-metric-learning", "inhouse.torch", "inhouse.triton"),
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
OURS = ("inhouse.torch", "inhouse.triton")
STARTUP_CAP = 180.0  # seconds a child may spend importing and preparing before its first call
POLL = 0.02


def _resident_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _lines(stream, into: queue.Queue) -> None:
    for line in stream:
        into.put(line)
    into.put(None)


def _child_environment(threads: int | None) -> dict:
    """The child's environment: with `threads`, every framework's thread pools limited to that many."""
    if threads is None:
        return dict(os.environ)
    names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
    return {**os.environ, **{name: str(threads) for name in names}}


def measure_series(job: dict, sizes: list[int], time_cap: float, memory_cap: int, threads: int | None = None,
                   deadline: tuple[float, str] | None = None):
    """One child measuring `sizes` in turn: yields (n, result) for each N it measured or had to be stopped at,
    and none after the first that is not "ok". `deadline` = (time.monotonic() value, why): past it the running
    measurement is stopped and recorded as a timeout, with that reason."""
    child = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.measure", json.dumps({**job, "sizes": list(sizes)})],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_child_environment(threads),
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(child.stdout, lines), daemon=True).start()
    pending = list(sizes)
    waiting_since, calling = time.monotonic(), None
    try:
        while pending:
            verdict = None
            try:
                line = lines.get(timeout=POLL)
            except queue.Empty:
                line = ""
            if line is None:  # the child closed stdout without a result: it died
                child.wait()
                verdict = {"status": "error", "reason": f"child exited {child.returncode}: {child.stderr.read()[-2000:]}"}
            elif line:
                message = json.loads(line)
                if message["event"] == "calling":
                    calling = time.monotonic()
                else:
                    verdict = {k: v for k, v in message.items() if k not in ("event", "n")}
                    if verdict["status"] == "ok" and verdict["first_seconds"] > time_cap:
                        verdict = {"status": "timeout", "reason": f"first call took {verdict['first_seconds']:.3g} s"}
            now = time.monotonic()
            if verdict is not None:
                pass
            elif calling is not None and now - calling > time_cap:
                verdict = {"status": "timeout", "reason": f"still running {time_cap:g} s after its first call began"}
            elif calling is None and now - waiting_since > STARTUP_CAP:
                verdict = {"status": "error", "reason": f"no first call within {STARTUP_CAP:g} s of starting"}
            elif deadline is not None and now > deadline[0]:
                verdict = {"status": "timeout", "reason": f"stopped: {deadline[1]}"}
            elif (_resident_bytes(child.pid) or 0) > memory_cap:
                verdict = {"status": "oom", "reason": f"resident memory passed the cap of {memory_cap / 2**30:.3g} GiB"}
            if verdict is None:
                continue
            yield pending.pop(0), verdict
            if verdict["status"] != "ok":
                return
            waiting_since, calling = time.monotonic(), None
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()


def measure(job: dict, time_cap: float, memory_cap: int, threads: int | None = None) -> dict:
    """Run one child for one N; its result, or a timeout / oom / error result when it had to be stopped."""
    return next(measure_series(job, [job["n"]], time_cap, memory_cap, threads))[1]


def _cuda_visible() -> bool:
    import torch

    return torch.cuda.is_available()


def plan(args) -> list[tuple[str, int, str, str]]:
    """(device, d, task, implementation) in the order they run; the matmul reference first per (device, d)."""
    rows = []
    for device in args.devices:
        for d in args.dims:
            rows.append((device, d, "", MATMUL))
            for task in args.tasks:
                for name in args.implementations:
                    impl = IMPLEMENTATIONS[name]
                    if task in impl.specs and device in impl.devices:
                        rows.append((device, d, task, name))
    return rows


def sizes_for(args, task: str) -> list[int]:
    """The batch sizes of a task: --sizes, up to its --max-n (the matmul reference: every size)."""
    limit = (args.max_n or {}).get(task) if task else None
    return [n for n in args.sizes if limit is None or n <= limit]


def one_process(args, device: str) -> bool:
    """Whether one child measures every N of an implementation (--process-per; auto: on CUDA only)."""
    return args.process_per == "implementation" or (args.process_per == "auto" and device == "cuda")


def _stop(result: dict, n: int, deadline) -> tuple:
    """Why the larger N of an implementation are skipped: the deadline that stopped it, or its status at N."""
    if deadline is not None and deadline[1] in result.get("reason", ""):
        return ("deadline", deadline[1])
    return (result["status"], n)


def sweep(args, writer) -> list[dict]:
    records, reference = [], {}
    started = time.monotonic()
    budget = None if args.budget is None else (started + args.budget, f"the run's budget of {args.budget:g} s was spent")
    memory_cap = int(args.memory_cap_gb * 2**30)

    def write(base: dict, label: str, result: dict) -> None:
        device, d, n, task = base["device"], base["d"], base["n"], base["task"]
        if task == MATMUL and result["status"] == "ok":
            reference[(device, d, n)] = result["seconds"]
        record = {
            **base, "spec_label": label, "seconds": result.get("seconds"), "peak_bytes": result.get("peak_bytes"),
            "status": result["status"], "reference_seconds": reference.get((device, d, n)),
            **{k: v for k, v in result.items() if k not in ("seconds", "peak_bytes", "status")},
            "time_cap_s": args.time_cap, "memory_cap_bytes": memory_cap, "threads": args.threads,
        }
        writer.write("benchmark", **record)
        records.append(record)
        shown = f"{record['seconds']:.4g} s" if record["seconds"] is not None else result.get("reason", "")
        print(f"  {device} D={d} {task:13s} {base['implementation']:24s} N={n:6d} {result['status']:8s} {shown}",
              flush=True)

    for device, d, task, name in plan(args):
        impl = IMPLEMENTATIONS[name]
        label = str(impl.specs[task]) if task else "[N x D] @ [D x N]"
        sizes = sizes_for(args, task)
        bases = {n: {"implementation": name, "task": task or MATMUL, "device": device, "n": n, "d": d} for n in sizes}
        # the deadline of this implementation's sizes: its own cap, or the run's budget if that ends first
        deadline = budget
        if args.implementation_cap is not None:
            own = (time.monotonic() + args.implementation_cap,
                   f"the implementation cap of {args.implementation_cap:g} s (its sizes together) was spent")
            deadline = own if budget is None or own[0] < budget[0] else budget
        done: dict[int, dict] = {}
        missing = impl.unavailable()
        if missing:
            done = {n: {"status": "skipped", "reason": missing} for n in sizes}
        elif budget is not None and time.monotonic() > budget[0]:
            done = {n: {"status": "skipped", "reason": budget[1]} for n in sizes}
        job = {"implementation": name, "task": task, "device": device, "d": d, "seed": args.seed,
               "repeats": args.repeats, "time_cap": args.time_cap, "min_timed_seconds": args.min_timed_seconds}
        stopped = None  # why the rest of this implementation's sizes are not measured
        if not done and one_process(args, device):
            for n, result in measure_series(job, sizes, args.time_cap, memory_cap, args.threads, deadline):
                write(bases[n], label, result)
                done[n] = result
                if result["status"] != "ok":
                    stopped = _stop(result, n, deadline)
        elif not done:
            for n in sizes:
                if deadline is not None and time.monotonic() > deadline[0]:
                    stopped = ("deadline", deadline[1])
                    break
                cap = args.time_cap
                if deadline is not None:  # the measurement must end by the deadline too: its cap is cut to it
                    cap = max(1.0, min(cap, deadline[0] - time.monotonic()))
                result = measure({**job, "n": n}, cap, memory_cap, args.threads)
                if result["status"] == "timeout" and cap < args.time_cap:
                    result = {**result, "reason": f"{result.get('reason', '')}; stopped: {deadline[1]}"}
                write(bases[n], label, result)
                done[n] = result
                if result["status"] in ("timeout", "oom"):
                    stopped = _stop(result, n, deadline)
                    break
        else:
            for n in sizes:
                write(bases[n], label, done[n])
        for n in sizes:
            if n in done:
                continue
            if stopped and stopped[0] == "deadline":
                reason = stopped[1]
            elif stopped:
                reason = f"{stopped[0]} at N = {stopped[1]}"
            else:  # the series ended without a word about this N (cannot happen unless the child broke off)
                reason = "not measured: its process ended before this N"
            write(bases[n], label, {"status": "skipped", "reason": reason})
    return records


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


def parse(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__, epilog=STATUSES,
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
    parser.add_argument("--output", type=Path, metavar="FILE.jsonl",
                        help="JSON-lines file, appended to (default reports/results/benchmarks-<host>-<devices>.jsonl)")
    args = parser.parse_args(argv)
    args.max_n = dict(args.max_n or [])
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
    """The machine in words: CPU model, cores, memory, and the GPU when CUDA is measured."""
    model = platform.processor() or platform.machine()
    with open("/proc/cpuinfo") as cpuinfo:
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), model)
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    words = f"{model}, {len(os.sched_getaffinity(0))} cores usable, {memory:.0f} GiB memory"
    if "cuda" in devices:
        import torch

        words += f", {torch.cuda.get_device_name()}"
    return words


def _frameworks() -> dict:
    found = {}
    for name in ("numpy", "torch", "triton", "pytorch-metric-learning", "tensorflow", "tensorflow-addons",
                 "sentence-transformers"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def main(argv=None) -> int:
    args = parse(argv)
    writer = ResultsWriter(args.output)
    settings = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items() if k != "output"}
    writer.header(benchmark=settings, machine=machine(args.devices), devices=device_names(args.devices),
                  frameworks=_frameworks(), notes="benchmarks/run.py: forward + backward per measurement, fresh process each")
    began = time.time()
    print(f"writing {args.output}", flush=True)
    records = sweep(args, writer)
    writer.write("run_end", finished=time.strftime("%Y-%m-%dT%H:%M:%S"), duration_s=round(time.time() - began, 3),
                 exit_status=0, interrupted=False)
    writer.close()
    print(table(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The measurement loop of benchmarks/run.py: the plan of (device, D, task, implementation) rows, and for each the
children (benchmarks/measure.py) that measure its batch sizes, within the time cap, the memory cap, the
implementation cap and the run's budget; every measurement, or why it was not made, is one "benchmark" record."""
from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchmarks.implementations import IMPLEMENTATIONS
from reports.schema import MATMUL

ROOT = Path(__file__).resolve().parent.parent
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

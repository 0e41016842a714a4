"""The benchmark part of the GPU command: benchmarks/run.py in its time box (OUTDIR/benchmarks-<mode>.jsonl), and
its summary line with the two targets in numbers."""
from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from gpu.context import ROOT, Context
from reports.results import ResultsWriter, now


def benchmarks(ctx: Context, budget: float) -> None:
    output, log = ctx.out / f"benchmarks-{ctx.mode.name}.jsonl", ctx.out / "benchmarks.log"
    output.unlink(missing_ok=True)
    args = list(ctx.mode.benchmark_args)
    if "cuda" in args and ctx.no_cuda:  # nothing to measure: a run that says why
        writer = ResultsWriter(output)
        writer.header(machine=ctx.machine, devices=[], notes=f"gpu/ command: benchmarks not run: {ctx.no_cuda}")
        writer.write("run_end", finished=now(), duration_s=0.0, exit_status=0, interrupted=False)
        writer.close()
        log.write_text(f"not run: {ctx.no_cuda}\n")
        ctx.summary.append(f"benchmarks: not run: {ctx.no_cuda} -> {output}")
        return
    command = [sys.executable, "-m", "benchmarks.run", *args, "--budget", f"{budget:g}", "--output", str(output)]
    ctx.say(f"benchmarks: budget {budget:.0f} s")
    began = time.monotonic()
    with open(log, "w") as handle:
        handle.write(" ".join(command) + "\n")
        handle.flush()
        try:  # the sweep keeps to its budget; this is the backstop
            status = subprocess.run(command, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, env=ctx.env,
                                    timeout=budget + 60).returncode
        except subprocess.TimeoutExpired:
            status = "killed at its budget + 60 s"
    wall = time.monotonic() - began
    records = []
    if output.exists():
        for line in output.read_text().splitlines():
            with contextlib.suppress(ValueError):
                records.append(json.loads(line))
    ctx.summary.append(benchmark_line(records, wall, status, output))


def benchmark_line(records: list[dict], wall: float, status, output: Path) -> str:
    measured = [r for r in records if r.get("kind") == "benchmark"]
    if not measured:
        return f"benchmarks: no measurements (benchmarks/run.py exit status {status}; see benchmarks.log) -> {output}"
    statuses = Counter(r["status"] for r in measured)
    device = next((d for r in records if r.get("kind") == "run" for d in r.get("devices") or []), "?")
    return (f"benchmarks: {len(measured)} measurements on {device} in {wall:.0f} s ("
            + ", ".join(f"{s} {n}" for s, n in sorted(statuses.items())) + "); "
            + "; ".join(benchmark_targets(measured)) + f" -> {output}")


def benchmark_targets(measured: list[dict]) -> list[str]:
    """The two targets in numbers: fused batch_hard at the largest N against one N x N x D float32 matmul, with
    its peak memory in units of the embeddings' N·D·4 bytes; pytorch-metric-learning over it at N = 8192 (or
    the largest N both have)."""
    ok = {(r["implementation"], r["task"], r["n"]): r for r in measured if r["status"] == "ok"}
    lines = []
    fused = [r for r in measured if r["implementation"] == "inhouse.triton" and r["task"] == "batch_hard"]
    if fused:
        top = max(fused, key=lambda r: r["n"])
        n, d = top["n"], top["d"]
        if top["status"] == "ok":
            floor = top.get("reference_seconds")
            ratio = f"{top['seconds'] / floor:.2f}x the matmul (target <= 2x)" if floor else "no matmul to compare"
            memory = top["peak_bytes"] / (n * d * 4)
            lines.append(f"fused batch_hard N={n} D={d}: {top['seconds']:.4g} s = {ratio}, peak {memory:.1f} x N·D·4 B")
        else:
            lines.append(f"fused batch_hard N={n} D={d}: {top['status']} ({top.get('reason', '')[:80]})")
    for task in ("batch_hard", "batch_all"):
        both = sorted(n for (name, t, n) in ok if name == "pytorch-metric-learning" and t == task
                      and ("inhouse.triton", task, n) in ok)
        if both:
            n = 8192 if 8192 in both else both[-1]
            ratio = ok[("pytorch-metric-learning", task, n)]["seconds"] / ok[("inhouse.triton", task, n)]["seconds"]
            lines.append(f"pml/fused {task} N={n}: {ratio:.3g}x (target >= 10x)")
    return lines or ["no fused-kernel measurement"]

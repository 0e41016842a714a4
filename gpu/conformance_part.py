"""The conformance part of the GPU command: the cells in pytest shards that share the GPU, stopped at their budget
and merged into one run (OUTDIR/conformance-<mode>.jsonl), and its summary line."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from engine.workers import cores_per_process
from gpu.context import GRACE_S, ROOT, Context
from reports.results import ResultsWriter, now
from reports.schema import ENVELOPE, check


def _stop(processes: dict, grace: float) -> list[int]:
    """SIGINT to the shards still running (pytest then writes its run_end), a kill after `grace` seconds."""
    stopped = [index for index, process in processes.items() if process.poll() is None]
    for index in stopped:
        processes[index].send_signal(signal.SIGINT)
    limit = time.monotonic() + grace
    for index in stopped:
        try:
            processes[index].wait(timeout=max(0.1, limit - time.monotonic()))
        except subprocess.TimeoutExpired:
            processes[index].kill()
            processes[index].wait()
    return stopped


def conformance(ctx: Context, adapters: list[str], shards: int, budget: float, adapter_timeout: float) -> None:
    mode, output = ctx.mode, ctx.out / f"conformance-{ctx.mode.name}.jsonl"
    output.unlink(missing_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gpu-conformance-"))
    env = dict(ctx.env)
    if shards > 1:  # the shards share the CPU: keep each framework's thread pool to its slice
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = str(cores_per_process(shards))
    adapter_args = [arg for spec in adapters for arg in ("--adapter", spec)]
    processes, logs = {}, {}
    began = time.monotonic()
    for index in range(shards):
        command = [sys.executable, "-m", "pytest", "suite/test_conformance.py", "-p", "gpu.plugin",
                   "-p", "no:cacheprovider", "-q", "--gpu-targets", *mode.targets, "--gpu-shard", f"{index}/{shards}",
                   "--hypothesis-profile", mode.profile, "--adapter-timeout", f"{adapter_timeout:g}",
                   "--results", str(work / f"shard-{index}.jsonl"), *adapter_args]
        if mode.name == "dry":
            command.append("--gpu-dry")
        logs[index] = open(work / f"shard-{index}.log", "w")
        processes[index] = subprocess.Popen(command, cwd=ROOT, stdout=logs[index], stderr=subprocess.STDOUT, env=env)
    ctx.say(f"conformance: {shards} pytest shard(s) on {', '.join(mode.targets)}, budget {budget:.0f} s")
    while any(p.poll() is None for p in processes.values()) and time.monotonic() - began < budget:
        time.sleep(0.5)
    stopped = _stop(processes, GRACE_S)
    wall = time.monotonic() - began
    for handle in logs.values():
        handle.close()
    with open(ctx.out / "conformance.log", "w") as log:
        for index in range(shards):
            log.write(f"===== shard {index}/{shards}: exit status {processes[index].returncode}"
                      f"{' (stopped at the budget)' if index in stopped else ''}\n")
            log.write((work / f"shard-{index}.log").read_text(errors="replace"))
    notes = (f"gpu/ command ({mode.name}): {shards} pytest shard(s) merged into one run, targets "
             f"{', '.join(mode.targets)}, budget {budget:.0f} s"
             + (f"; shards {', '.join(map(str, stopped))} stopped at the budget (their records are partial)"
                if stopped else "") + f"; wheels: {ctx.wheels}")
    stamp = {"devices": [ctx.device] if ctx.device else list(mode.targets), "machine": ctx.machine, "notes": notes}
    records = merge_shards([work / f"shard-{i}.jsonl" for i in range(shards)], output, stamp, wall,
                           {i: processes[i].returncode for i in range(shards)}, stopped)
    shutil.rmtree(work, ignore_errors=True)
    ctx.summary.append(conformance_line(records, mode.targets, wall, shards, stopped, output))


def merge_shards(paths: list[Path], output: Path, stamp: dict, wall: float, statuses: dict[int, int],
                 stopped: list[int]) -> list[dict]:
    """The shards' records as one run: the first header (stamped with the device and the notes), every record
    under its run id, the known-divergence records summed per entry, and one run_end. Each record is checked
    against the schema before it is written; returns what was written."""
    records, unreadable = [], 0
    for path in paths:
        for line in path.read_text(errors="replace").splitlines() if path.exists() else []:
            try:
                records.append(json.loads(line))
            except ValueError:
                unreadable += 1
    headers = [r for r in records if r.get("kind") == "run"]
    if headers:
        run_id = headers[0]["run_id"]
        header = {**headers[0], **stamp}
    else:  # no shard got as far as its header: a header of our own, saying so
        writer = ResultsWriter(output)
        header = writer.header(**{**stamp, "notes": stamp["notes"] + "; no shard wrote results: see conformance.log"})
        writer.close()
        output.unlink()
        run_id = header["run_id"]
    if unreadable:
        header["notes"] += f"; {unreadable} unreadable line(s) left out"
    body = [r for r in records if r.get("kind") not in ("run", "run_end", "divergence")]
    ends = [r for r in records if r.get("kind") == "run_end"]
    counts: Counter = Counter()
    for end in ends:
        counts.update(end.get("counts") or {})
    end = {"schema": header["schema"], "schema_version": header["schema_version"], "kind": "run_end",
           "run_id": run_id, "finished": now(), "duration_s": round(wall, 3),
           "exit_status": max([*statuses.values(), *(e.get("exit_status", 0) for e in ends)], default=0),
           "interrupted": bool(stopped) or len(ends) < len(paths) or any(e.get("interrupted") for e in ends),
           "counts": dict(counts)}
    written = []
    with open(output, "w") as out:
        for record in [header, *body, *merged_divergences(records), end]:
            record = {**record, "run_id": run_id}
            fields = {k: v for k, v in record.items() if k not in ENVELOPE.names}
            try:
                check(record["kind"], fields)
            except (KeyError, ValueError):
                continue
            out.write(json.dumps(record, allow_nan=False) + "\n")
            written.append(record)
    return written


def merged_divergences(records: list[dict]) -> list[dict]:
    """One "divergence" record per registry entry: its items and outcomes summed over the shards; reproduces
    if any shard saw it reproduce (xfail), stale if one saw it pass (xpass) and none reproduce it."""
    merged: dict[str, dict] = {}
    for record in (r for r in records if r.get("kind") == "divergence"):
        entry = merged.setdefault(record["id"], {**record, "items": 0, "outcomes": {}, "reproduces": None})
        entry["items"] += record.get("items") or 0
        for verdict, count in (record.get("outcomes") or {}).items():
            entry["outcomes"][verdict] = entry["outcomes"].get(verdict, 0) + count
        if record.get("reproduces") is True or (record.get("reproduces") is False and entry["reproduces"] is None):
            entry["reproduces"] = record["reproduces"]
    return list(merged.values())


def tf32_standing(records: list[dict]) -> dict[str, str]:
    """Per adapter with cells on a matmul-rounding target: whether it stayed within the plain float32 model."""
    standing: dict[str, set] = {}
    for record in records:
        tolerance = record.get("tolerance") or {}
        if record.get("kind") != "comparison" or "matmul_mantissa_bits" not in tolerance:
            continue
        within = tolerance.get("within_dtype_model")
        standing.setdefault(record["adapter"], set()).add(
            "beyond" if within is False else "within" if within is True else "not judged")
    return {adapter: ("beyond" if "beyond" in seen else "within" if "within" in seen else "not judged")
            for adapter, seen in standing.items()}


def conformance_line(records: list[dict], targets, wall: float, shards: int, stopped: list[int], output: Path) -> str:
    comparisons = [r for r in records if r.get("kind") == "comparison"]
    per_target = []
    for target in targets:
        verdicts = Counter(r["verdict"] for r in comparisons if r["device"] == target)
        if verdicts:
            per_target.append(f"{target} " + ", ".join(f"{v} {n}" for v, n in sorted(verdicts.items())))
    standing = tf32_standing(records)
    tf32 = ""
    if standing:
        groups = {key: sorted(a for a, s in standing.items() if s == key) for key in ("within", "beyond", "not judged")}
        tf32 = ("; TF32 within the float32 model: " + (", ".join(groups["within"]) or "none")
                + "; beyond it (within the TF32 model or failing): " + (", ".join(groups["beyond"]) or "none")
                + (f"; not judged: {', '.join(groups['not judged'])}" if groups["not judged"] else ""))
    cut = f", stopped at the budget: shard(s) {', '.join(map(str, stopped))}" if stopped else ""
    return (f"conformance: {len(comparisons)} cells in {wall:.0f} s ({shards} shard(s){cut}): "
            + ("; ".join(per_target) or "no cells ran") + tf32 + f" -> {output}")

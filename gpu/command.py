"""The GPU command: everything the suite checks and measures on one NVIDIA GPU, in one time-boxed run.

    python -m gpu --prepare                 # here, with a network: the wheels the GPU machine lacks (.gpu-wheels/)
    python3 -m gpu OUTDIR                   # on the GPU machine, from the repository root: <= 8 minutes
    python -m gpu OUTDIR --dry              # anywhere, on the CPU: the same steps at toy sizes (CI runs it)

Parts, in order (--parts picks some), each in its own time box; a part that cannot run says why and the next
one runs:
  wheels       installs every wheel in --wheels (pytorch-metric-learning) into a temporary folder put on the
               children's PYTHONPATH, with pip --no-index (the GPU machine has no network)
  conformance  the conformance cells of the torch-based adapters (torch natives, pytorch-metric-learning,
               inhouse.torch, inhouse.triton compiled for the GPU, and every --adapter) on the targets cuda
               (float32 matmuls in float32, TF32 off) and cuda-tf32 (TF32 on, judged by the TF32 rounding model,
               engine/targets.py); float64, float32, float16, bfloat16. Pytest runs in --shards processes that
               share the GPU, each a slice of the cells (gpu/plugin.py); they are stopped (SIGINT: each keeps
               every record it wrote) at --conformance-budget, and merged into one run:
               OUTDIR/conformance-cuda.jsonl, whose header names the device
  benchmarks   benchmarks/run.py on cuda at D = 128: batch_hard and batch_all up to N = 65536, semi_hard (and
               pytorch-metric-learning's semi-hard, semi_hard_all) up to N = 16384; inhouse.triton,
               inhouse.torch, pytorch-metric-learning and torch.naive beside one N x N x D float32 matmul, peak
               device memory; a time cap per measurement and per implementation, the whole within
               --benchmark-budget: OUTDIR/benchmarks-cuda.jsonl
  report       python -m reports over both files and the committed reports/results/ (the CPU's): OUTDIR/report.html

Logs: OUTDIR/conformance.log, OUTDIR/benchmarks.log; one summary line per part, printed and in OUTDIR/summary.txt.
The exit status is 0 whenever the command ran to its end, whatever the parts found or could not do; 2 for a
usage error.

The dry mode (--dry) runs the same steps on the CPU at toy sizes: the cells of the targets cpu, cuda and
cuda-tf32 (the CUDA ones skip, saying why, unless an --adapter runs them elsewhere), one spec per adapter in
float32, two examples each; benchmarks at N = 32 and 64 under Triton's interpreter; its files are named -dry,
never -cuda. tests/gpu/test_gpu_command.py runs it, so the command cannot rot without a GPU.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python gpu/command.py` as well as `python -m gpu`
    sys.path.insert(0, str(ROOT))

from reports.results import ResultsWriter, now  # noqa: E402
from reports.schema import ENVELOPE, check  # noqa: E402

WHEELS = ".gpu-wheels"  # ignored (.gitignore); the device run carries it
WHEEL_PACKAGES = ("pytorch-metric-learning",)  # pure Python; everything it needs is on the GPU machine
# The torch-based built-in adapters judged on the GPU (their modules' ADAPTERS, as --adapter gives them).
BUILT_IN = ("adapters.torch_native:ADAPTERS", "adapters.pml:ADAPTERS", "adapters.inhouse:ADAPTERS")
PARTS = ("conformance", "benchmarks", "report")
GRACE_S = 15.0  # after SIGINT, how long a shard may take to write its last records


@dataclass(frozen=True)
class Mode:
    name: str  # "cuda" or "dry": the suffix of the files it writes
    targets: tuple[str, ...]
    profile: str  # gpu/plugin.py's Hypothesis profile
    shards: int
    conformance_budget: float
    benchmark_budget: float
    report_budget: float
    total_budget: float
    benchmark_args: tuple[str, ...]


# The real run on one GPU, budgeted for an H100: conformance ~3 min, benchmarks ~4 min, the report under 1.
GPU = Mode(
    name="cuda",
    targets=("cuda", "cuda-tf32"),
    profile="gpu",
    shards=8,
    conformance_budget=180.0,
    benchmark_budget=220.0,
    report_budget=45.0,
    total_budget=470.0,
    benchmark_args=(
        "--devices", "cuda", "--dims", "128",
        "--sizes", "1024", "2048", "4096", "8192", "16384", "32768", "65536",
        "--tasks", "batch_hard", "batch_all", "semi_hard", "semi_hard_all",
        "--max-n", "semi_hard=16384", "semi_hard_all=16384",
        "--implementations", "inhouse.triton", "inhouse.torch", "pytorch-metric-learning", "torch.naive",
        "--time-cap", "30", "--implementation-cap", "45", "--min-timed-seconds", "0.25", "--memory-cap-gb", "48",
    ),
)
DRY = Mode(
    name="dry",
    targets=("cpu", "cuda", "cuda-tf32"),
    profile="gpu-dry",
    shards=1,
    conformance_budget=120.0,
    benchmark_budget=60.0,
    report_budget=60.0,
    total_budget=300.0,
    benchmark_args=(
        "--devices", "cpu", "--dims", "16", "--sizes", "32", "64", "--tasks", "batch_hard",
        "--implementations", "inhouse.triton", "pytorch-metric-learning",
        "--time-cap", "30", "--implementation-cap", "40", "--process-per", "implementation",
        "--min-timed-seconds", "0.02", "--repeats", "1",
    ),
)


@dataclass
class Context:
    mode: Mode
    out: Path
    started: float
    env: dict
    device: str = ""  # "cuda:0 NVIDIA H100 80GB HBM3", or "" without CUDA
    no_cuda: str = ""  # why there is no CUDA device, or ""
    machine: str = ""
    wheels: str = "not asked for"
    site: Path | None = None  # the temporary folder the wheels went into
    summary: list[str] = field(default_factory=list)

    def left(self) -> float:
        return self.mode.total_budget - (time.monotonic() - self.started)

    def say(self, line: str) -> None:
        print(f"[gpu {time.monotonic() - self.started:6.1f}s] {line}", flush=True)


# --- the facts of this machine --------------------------------------------------------------------------------


def probe(ctx: Context) -> None:
    """torch's version and the CUDA device, without holding CUDA in this process (the children measure memory)."""
    code = ("import json, torch\n"
            "cuda = torch.cuda.is_available()\n"
            "print(json.dumps({'torch': torch.__version__, 'cuda': cuda, 'name': torch.cuda.get_device_name(0) if cuda else '',"
            " 'cuda_version': torch.version.cuda}))\n")
    try:
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                              env=ctx.env)
        facts = json.loads(done.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError) as exc:
        ctx.no_cuda = f"torch could not be asked ({type(exc).__name__}: {exc})"
        facts = {}
    if facts.get("cuda"):
        ctx.device = f"cuda:0 {facts['name']}"
    elif not ctx.no_cuda:
        ctx.no_cuda = f"no CUDA device visible to torch {facts.get('torch', '?')}"
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), cpu)
    ctx.machine = (f"{cpu}, {os.cpu_count()} cores; " + (ctx.device or ctx.no_cuda)
                   + f"; torch {facts.get('torch', '?')} (CUDA {facts.get('cuda_version') or '-'})")


# --- wheels ---------------------------------------------------------------------------------------------------


def prepare(wheels: Path) -> int:
    """Download the wheels the GPU machine lacks into `wheels` (here, with a network): the version this
    environment has, so that the CPU and CUDA columns compare one release."""
    wheels.mkdir(parents=True, exist_ok=True)
    status = 0
    for package in WHEEL_PACKAGES:
        try:
            pinned = f"{package}=={importlib.metadata.version(package)}"
        except importlib.metadata.PackageNotFoundError:
            pinned = package
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(wheels), pinned]
        print(" ".join(command), flush=True)
        status = status or subprocess.run(command, cwd=ROOT).returncode
    print(f"{wheels}: {', '.join(sorted(p.name for p in wheels.glob('*.whl'))) or 'no wheels'}; the device run "
          f"carries it: run(..., carry=['{WHEELS}'])")
    return status


def install_wheels(ctx: Context, wheels: Path) -> None:
    """pip install --no-index --no-deps --target a temporary folder, put on the children's PYTHONPATH."""
    found = sorted(wheels.glob("*.whl")) if wheels.is_dir() else []
    if not found:
        ctx.wheels = f"no wheels in {wheels} (run `python -m gpu --prepare` where there is a network)"
        ctx.say(f"wheels: {ctx.wheels}")
        return
    site = ctx.site = Path(tempfile.mkdtemp(prefix="gpu-site-"))
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
               "--no-cache-dir", "--disable-pip-version-check", "--target", str(site), *map(str, found)]
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired:
        ctx.wheels = "pip install timed out after 180 s"
    else:
        if done.returncode:
            ctx.wheels = f"pip install failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-500:]}"
        else:
            ctx.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), ctx.env.get("PYTHONPATH", "")]))
            ctx.wheels = f"installed {', '.join(p.name for p in found)} into {site}"
    ctx.say(f"wheels: {ctx.wheels}")


# --- conformance ----------------------------------------------------------------------------------------------


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
            env[name] = str(max(1, (os.cpu_count() or shards) // shards))
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


# --- benchmarks -----------------------------------------------------------------------------------------------


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


# --- the report -----------------------------------------------------------------------------------------------


def report(ctx: Context, budget: float) -> None:
    output = ctx.out / "report.html"
    mine = [ctx.out / f"{part}-{ctx.mode.name}.jsonl" for part in ("conformance", "benchmarks")]
    committed = sorted((ROOT / "reports" / "results").glob("*.jsonl"))
    command = [sys.executable, "-m", "reports", *map(str, [p for p in mine if p.exists()] + committed), "-o", str(output)]
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=budget, env=ctx.env)
        line = (done.stdout.strip().splitlines() or [""])[-1] if done.returncode == 0 else \
            f"failed ({done.returncode}): {done.stderr.strip()[-300:]}"
    except subprocess.TimeoutExpired:
        line = f"not written within {budget:.0f} s"
    ctx.summary.append(f"report: {line} (merged with {len(committed)} committed file(s) from reports/results/)")


# --- the command ----------------------------------------------------------------------------------------------


def parse(argv: list[str] | None):
    parser = argparse.ArgumentParser(prog="python -m gpu", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("outdir", nargs="?", type=Path, help="the folder the results, logs and page are written to")
    parser.add_argument("--dry", action="store_true", help="the dry mode: CPU, toy sizes, Triton's interpreter")
    parser.add_argument("--prepare", action="store_true", help="download the wheels into --wheels (needs a network)")
    parser.add_argument("--wheels", type=Path, default=ROOT / WHEELS, help=f"wheels to install first (default {WHEELS})")
    parser.add_argument("--adapter", action="append", default=[], metavar="MODULE:ATTR",
                        help="judge these adapters too (as pytest --adapter; repeatable)")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="default: all")
    parser.add_argument("--shards", type=int, help="pytest processes for the conformance cells (default 8; dry 1)")
    parser.add_argument("--conformance-budget", type=float, metavar="S", help="default 180 s (dry 120)")
    parser.add_argument("--benchmark-budget", type=float, metavar="S", help="default 220 s (dry 60)")
    parser.add_argument("--total-budget", type=float, metavar="S",
                        help="the whole command; each part gets at most what is left (default 470 s; dry 300)")
    parser.add_argument("--adapter-timeout", type=float, default=30.0, metavar="S", help="per adapter call (default 30)")
    args = parser.parse_args(argv)
    if not args.prepare and args.outdir is None:
        parser.error("OUTDIR is required (or --prepare)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.prepare:
        return prepare(args.wheels)
    mode = DRY if args.dry else GPU
    if args.total_budget is not None:
        mode = dataclasses.replace(mode, total_budget=args.total_budget)
    args.outdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    ctx = Context(mode=mode, out=args.outdir.resolve(), started=time.monotonic(), env=env)
    probe(ctx)
    ctx.say(f"{ctx.machine}; mode {mode.name}; parts {', '.join(args.parts)}; budget {mode.total_budget:.0f} s")
    install_wheels(ctx, args.wheels)

    def budget(own: float | None, default: float, reserve: float) -> float:
        """A part's time box: its own, but no more than what the total leaves after `reserve` for what follows."""
        return max(5.0, min(own if own is not None else default, ctx.left() - reserve))

    def part(name: str, run) -> None:
        """One part; whatever breaks in it is its summary line, and the next part runs."""
        if name not in args.parts:
            return
        try:
            run()
        except Exception as exc:  # the command records a broken part and goes on
            ctx.summary.append(f"{name}: broke: {type(exc).__name__}: {exc}")
            ctx.say(ctx.summary[-1])

    later_benchmarks = mode.benchmark_budget if "benchmarks" in args.parts else 0.0
    later_report = mode.report_budget if "report" in args.parts else 0.0
    part("conformance", lambda: conformance(
        ctx, [*BUILT_IN, *args.adapter], args.shards or mode.shards,
        budget(args.conformance_budget, mode.conformance_budget, later_benchmarks + later_report + GRACE_S),
        args.adapter_timeout))
    part("benchmarks", lambda: benchmarks(ctx, budget(args.benchmark_budget, mode.benchmark_budget, later_report)))
    part("report", lambda: report(ctx, budget(None, mode.report_budget, 0.0)))
    lines = [f"{mode.name} run on {ctx.machine}; wheels: {ctx.wheels}", *ctx.summary,
             f"total: {time.monotonic() - ctx.started:.0f} s"]
    (ctx.out / "summary.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)
    if ctx.site is not None:
        shutil.rmtree(ctx.site, ignore_errors=True)
    return 0

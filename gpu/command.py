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
               contract/targets.py); float64, float32, float16, bfloat16. Pytest runs in --shards processes that
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
import dataclasses
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # `python gpu/command.py` as well as `python -m gpu`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters import families  # noqa: E402
from engine.machine import cpu_words  # noqa: E402
from gpu.benchmark_part import benchmarks  # noqa: E402
from gpu.conformance_part import conformance  # noqa: E402
from gpu.context import DRY, GPU, GRACE_S, ROOT, Context  # noqa: E402

WHEELS = ".gpu-wheels"  # ignored (.gitignore); the device run carries it
# The built-in adapters judged on the GPU (their modules' ADAPTERS, as --adapter gives them): the families whose
# records say gpu=True (contract/family.py).
BUILT_IN = tuple(f"adapters.{f.module}:ADAPTERS" for f in families() if f.gpu)
# What those families require beyond numpy and torch, brought as wheels (pure Python; everything they need is on
# the GPU machine).
WHEEL_PACKAGES = tuple(dict.fromkeys(package for f in families() if f.gpu for package in f.requires))
PARTS = ("conformance", "benchmarks", "report")


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
    ctx.machine = (f"{cpu_words()}, {os.cpu_count()} cores; " + (ctx.device or ctx.no_cuda)
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

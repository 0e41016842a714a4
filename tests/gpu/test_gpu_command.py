"""The GPU command (gpu/): its dry mode end to end on the CPU, so that the command a GPU machine runs cannot rot
here; the merge of its pytest shards into one run; its budget; and the page that shows CPU and CUDA side by side.

What only a GPU can check (compiled Triton kernels, TF32 on cuBLAS, the times and peak memory) is left to the real
run: `python3 -m gpu OUTDIR` on the machine (README.md, "On a GPU machine")."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gpu import benchmark_part, conformance_part, context
from gpu.plugin import keep, shard_of
from reports.results import ResultsWriter

ROOT = Path(__file__).resolve().parents[2]


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    """One dry run of the command: conformance and benchmarks (the report part is the page's own tests' business),
    with the TF32-emulating adapters, which judge cells of the cuda-tf32 target on the CPU."""
    pytest.importorskip("torch", reason="the dry run runs the torch adapters")
    pytest.importorskip("triton", reason="the dry run runs the Triton kernels under the interpreter")
    out = tmp_path_factory.mktemp("gpu-dry")
    # The dry mode's time boxes fit an idle 2-core machine; under load a part stopped at its box would make this
    # test depend on the machine's speed, so the boxes here are far beyond any run (the budgets have their own test).
    done = subprocess.run(
        [sys.executable, "-m", "gpu", str(out), "--dry", "--parts", "conformance", "benchmarks",
         "--adapter", "tests.gpu.tf32_adapters:ADAPTERS",
         "--total-budget", "3000", "--conformance-budget", "1800", "--benchmark-budget", "1000"],
        cwd=ROOT, capture_output=True, text=True, timeout=3600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out, done.stdout


def test_the_dry_run_prints_one_summary_line_per_part_and_writes_its_files(dry_run):
    out, stdout = dry_run
    summary = (out / "summary.txt").read_text().splitlines()
    assert [line.split(":")[0] for line in summary[1:-1]] == ["conformance", "benchmarks"]
    assert summary[-1].startswith("total: ")
    assert all(line in stdout for line in summary)
    assert {p.name for p in out.iterdir()} == {"conformance-dry.jsonl", "benchmarks-dry.jsonl", "conformance.log",
                                               "benchmarks.log", "summary.txt"}


def test_the_dry_conformance_run_is_one_run_that_records_every_target(dry_run):
    out, _ = dry_run
    records = _records(out / "conformance-dry.jsonl")
    kinds = [r["kind"] for r in records]
    assert kinds[0] == "run" and kinds[-1] == "run_end" and kinds.count("run") == kinds.count("run_end") == 1
    assert len({r["run_id"] for r in records}) == 1
    header = records[0]
    assert header["hypothesis"]["profile"] == "gpu-dry" and header["devices"] and "gpu/ command" in header["notes"]
    comparisons = [r for r in records if r["kind"] == "comparison"]
    by = {(r["adapter"], r["device"], r["quantity"]): r for r in comparisons}
    # the fused kernels under the interpreter, on the CPU, one spec in float32
    triton = by[("inhouse.triton", "cpu", "loss")]
    assert triton["dtype"] == "float32" and triton["verdict"] != "skip" and "Triton interpreter" in triton["target"]
    assert by[("pml.TripletMarginLoss", "cpu", "loss")]["verdict"] != "skip"
    # CUDA cells skip here, saying why; TF32 cells exist for float32 only
    for target in ("cuda", "cuda-tf32"):
        skipped = by[("inhouse.triton", target, "loss")]
        assert skipped["verdict"] == "skip" and "CUDA" in skipped["reason"]
    assert {r["dtype"] for r in comparisons if r["device"] == "cuda-tf32"} == {"float32"}
    # the emulated TF32 adapters are judged on cuda-tf32 by TF32's model, with the plain float32 model beside it
    for name in ("tf32-emulated.gram", "tf32-emulated.direct"):
        for quantity in ("loss", "grad"):
            record = by[(name, "cuda-tf32", quantity)]
            assert record["verdict"] in ("pass", "ambiguous"), record["reason"]
            tolerance = record["tolerance"]
            assert tolerance["matmul_mantissa_bits"] == 10 and "within_dtype_model" in tolerance
            assert "cuda-tf32" in tolerance["source"]
    assert by[("tf32-emulated.direct", "cuda-tf32", "loss")]["tolerance"]["within_dtype_model"] in (True, None)
    assert conformance_part.tf32_standing(records)["tf32-emulated.direct"] in ("within", "not judged")


def test_the_dry_benchmarks_measure_the_fused_kernels_and_the_wheel_peer_in_one_process_each(dry_run):
    out, _ = dry_run
    records = _records(out / "benchmarks-dry.jsonl")
    assert records[0]["kind"] == "run" and records[-1]["kind"] == "run_end"
    assert records[0]["benchmark"]["budget"] > 0 and records[0]["benchmark"]["process_per"] == "implementation"
    measured = {(r["implementation"], r["n"]): r for r in records if r["kind"] == "benchmark"}
    assert set(measured) == {(name, n) for name in ("matmul", "inhouse.triton", "pytorch-metric-learning")
                             for n in (32, 64)}
    assert all(r["status"] == "ok" and r["reference_seconds"] for r in measured.values()), measured


def test_the_results_read_back_without_problems(dry_run):
    pytest.importorskip("pandas")
    from reports.reader import read_results

    out, _ = dry_run
    loaded = read_results([out / "conformance-dry.jsonl", out / "benchmarks-dry.jsonl"])
    assert not loaded.problems, loaded.problems


# --- pieces of the command, without running it ------------------------------------------------------------------


def _shard(path: Path, comparisons: int, divergence: dict, finished: bool) -> Path:
    writer = ResultsWriter(path)
    writer.header(adapters=["a"])
    for index in range(comparisons):
        writer.write("comparison", adapter="a", framework="torch", spec={}, spec_label=f"s{index}", dtype="float32",
                     device="cuda", quantity="loss", verdict="pass")
    writer.write("divergence", id="d1", adapter="a", pattern="*", divergence_kind="bug", reason="r", link="l",
                 **divergence)
    if finished:
        writer.write("run_end", finished="now", duration_s=1.0, exit_status=1, interrupted=False,
                     counts={"pass": comparisons})
    writer.close()
    return path


def test_shards_merge_into_one_run_with_the_device_in_its_header(tmp_path):
    first = _shard(tmp_path / "0.jsonl", 2, {"reproduces": True, "items": 2, "outcomes": {"xfail": 2}}, True)
    second = _shard(tmp_path / "1.jsonl", 1, {"reproduces": None, "items": 0, "outcomes": {}}, False)
    stamp = {"devices": ["cuda:0 NVIDIA H100 80GB HBM3"], "machine": "m", "notes": "gpu/ command"}
    merged = conformance_part.merge_shards([first, second], tmp_path / "out.jsonl", stamp, 12.0, {0: 1, 1: 2}, [1])
    assert [r["kind"] for r in merged] == ["run", "comparison", "comparison", "comparison", "divergence", "run_end"]
    assert len({r["run_id"] for r in merged}) == 1 and merged[0]["devices"] == stamp["devices"]
    divergence, end = merged[-2], merged[-1]
    assert (divergence["items"], divergence["outcomes"], divergence["reproduces"]) == (2, {"xfail": 2}, True)
    assert end["interrupted"] and end["exit_status"] == 2 and end["counts"] == {"pass": 2}
    assert _records(tmp_path / "out.jsonl") == merged


def test_each_cell_runs_in_exactly_one_shard_with_its_loss_and_grad_together():
    pytest.importorskip("torch")
    from adapters import inhouse
    from engine.cells import conformance_cells

    cells = [c for c in conformance_cells(inhouse.ADAPTERS) if c.target in ("cuda", "cuda-tf32")]
    for cell in cells:
        owners = [i for i in range(8) if keep(cell, ("cuda", "cuda-tf32"), (i, 8), dry=False)]
        assert owners == [shard_of(cell.key, 8)]
    assert not any(keep(c, ("cuda",), (0, 1), dry=False) for c in cells if c.target == "cuda-tf32")
    dry = [c for c in cells if keep(c, ("cuda", "cuda-tf32"), (0, 1), dry=True)]
    assert {(c.adapter.name, c.spec, c.dtype) for c in dry} == {(a.name, a.specs[0], "float32") for a in inhouse.ADAPTERS}


def test_the_gpu_run_is_budgeted_within_eight_minutes_and_measures_what_the_targets_need():
    mode = context.GPU
    startup = 15.0  # torch's import and the wheel's install, before the first part
    assert startup + mode.conformance_budget + context.GRACE_S + mode.benchmark_budget + mode.report_budget <= 480
    assert mode.total_budget <= 480 and mode.targets == ("cuda", "cuda-tf32")
    args = list(mode.benchmark_args)
    sizes = args[args.index("--sizes") + 1: args.index("--tasks")]
    assert {"8192", "16384", "65536"} <= set(sizes) and args[args.index("--dims") + 1] == "128"
    assert "semi_hard=16384" in args and {"torch.naive", "pytorch-metric-learning", "inhouse.triton"} <= set(args)
    assert "--implementation-cap" in args and "--time-cap" in args


def test_the_benchmark_summary_reads_the_two_targets():
    records = [
        {"implementation": "inhouse.triton", "task": "batch_hard", "n": 8192, "d": 128, "status": "ok",
         "seconds": 0.01, "peak_bytes": 0, "reference_seconds": 0.005},
        {"implementation": "inhouse.triton", "task": "batch_hard", "n": 65536, "d": 128, "status": "ok",
         "seconds": 0.3, "peak_bytes": 3 * 65536 * 128 * 4, "reference_seconds": 0.2},
        {"implementation": "pytorch-metric-learning", "task": "batch_hard", "n": 8192, "d": 128, "status": "ok",
         "seconds": 0.25, "peak_bytes": 1, "reference_seconds": 0.005},
        {"implementation": "pytorch-metric-learning", "task": "batch_hard", "n": 65536, "d": 128, "status": "oom",
         "seconds": None, "peak_bytes": None, "reference_seconds": 0.2},
    ]
    lines = benchmark_part.benchmark_targets(records)
    assert lines == ["fused batch_hard N=65536 D=128: 0.3 s = 1.50x the matmul (target <= 2x), peak 3.0 x N·D·4 B",
                     "pml/fused batch_hard N=8192: 25x (target >= 10x)"]


def test_without_cuda_the_gpu_benchmarks_are_a_run_that_says_why(tmp_path):
    ctx = context.Context(mode=context.GPU, out=tmp_path, started=0.0, env={}, no_cuda="no CUDA device visible",
                          machine="m")
    benchmark_part.benchmarks(ctx, 10.0)
    records = _records(tmp_path / "benchmarks-cuda.jsonl")
    assert [r["kind"] for r in records] == ["run", "run_end"] and "no CUDA device visible" in records[0]["notes"]
    assert ctx.summary == [f"benchmarks: not run: no CUDA device visible -> {tmp_path / 'benchmarks-cuda.jsonl'}"]

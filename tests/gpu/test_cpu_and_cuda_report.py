"""A CPU run and the GPU command's CUDA results (fabricated here: never under reports/results/) merge into one page
that shows them side by side: matrix columns per dtype x target (cpu, cuda, cuda-tf32), one benchmark chart per
device, and, on cuda-tf32, whether a cell stayed within the plain float32 model."""
from __future__ import annotations

import pytest

pytest.importorskip("pandas", reason="the page needs pandas")
pytest.importorskip("matplotlib", reason="the page draws its charts with matplotlib")

from reference import Spec  # noqa: E402
from reports import page, plots, synthetic  # noqa: E402
from reports.reader import read_results  # noqa: E402
from reports.results import ResultsWriter  # noqa: E402

SPEC = Spec(mining="batch_hard")
H100 = "cuda:0 NVIDIA H100 80GB HBM3"


def _cuda_results(path):
    writer = ResultsWriter(path)
    writer.header(devices=[H100], machine="16 cores; " + H100, notes="gpu/ command (cuda), fabricated for a test",
                  hypothesis={"profile": "gpu", "seed": None, "max_examples": 20, "derandomize": True})
    for device, target, within, worst in (("cuda", H100, None, None),
                                          ("cuda-tf32", H100 + " (TF32 matmuls)", False, 37.5)):
        tolerance = {"atol": 1e-5, "rtol": 1.3e-6, "source": "torch.testing float32; on cuda-tf32: 2^-10"}
        if device == "cuda-tf32":
            tolerance.update(matmul_mantissa_bits=10, within_dtype_model=within, dtype_model_error=worst)
        for quantity in ("loss", "grad"):
            writer.write("comparison", adapter="inhouse.triton", framework="torch", spec=SPEC.to_dict(),
                         spec_label=str(SPEC), dtype="float32", device=device, target=target,
                         version="torch 2.11.0 + triton 3.6.0", quantity=quantity, verdict="pass", reason="",
                         examples=20, ambiguous_examples=0, max_abs=1e-6, max_rel=1e-6, max_ulp=8.0,
                         normalized_error=0.2, errors=[0.1, 0.2], tolerance=tolerance, divergence=None,
                         counterexample=None)
    for record in synthetic.benchmark_series("inhouse.triton", "cuda", 1e-12, 1.0):
        writer.write("benchmark", **record)
    writer.write("run_end", finished="2026-11-28T00:00:00+00:00", duration_s=420.0, exit_status=0, interrupted=False)
    writer.close()
    return path


def _cpu_results(path):
    run = synthetic.Run(
        environment="torch-pml", framework="torch", version="torch 2.13.0", targets={"cpu": "cpu x86_64"},
        cells=[synthetic.Cell("inhouse.triton", SPEC, "float32", "cpu", quantity) for quantity in ("loss", "grad")],
        benchmarks=synthetic.benchmark_series("inhouse.triton", "cpu", 1e-9, 1.0),
    )
    return synthetic.write_run(path, run)


def test_cpu_and_cuda_results_show_side_by_side(tmp_path):
    loaded = read_results([_cpu_results(tmp_path / "cpu.jsonl"), _cuda_results(tmp_path / "conformance-cuda.jsonl")])
    assert not loaded.problems, loaded.problems
    html, report = page.render(loaded)
    assert [c for c in report.matrix.columns if c[0] == "float32"] == [
        ("float32", "cpu"), ("float32", "cuda"), ("float32", "cuda-tf32")]
    row = next(group for group in report.matrix.groups if group.adapter == "inhouse.triton").rows[0]
    assert all(cell is not None for cell in row.cells)
    assert "beyond the plain float32 model (worst 38× its tolerance)" in html
    charts = plots.benchmark_charts(report.benchmarks)
    assert sorted(title for title, _ in charts) == ["cpu", "cuda"]
    assert H100 in html

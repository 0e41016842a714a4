"""Realistic results files without running any framework: for the report's tests and for previews.

The records go through `ResultsWriter`, so they are exactly what a real run writes; counterexamples
carry the oracle's true loss, gradient and selection for their batch, and the "implementation"
values are the oracle's perturbed by the discrepancy being staged.

    python -m reports.synthetic DIR      # writes DIR/*.jsonl, then: python -m reports DIR/*.jsonl -o demo.html
"""
from __future__ import annotations

import json
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import reference
from reference import Spec

from .results import ResultsWriter

TOLERANCES = {  # (atol, rtol) per dtype, as the conformance tests' table might hold them
    "float64": (1e-7, 1e-7),
    "float32": (1e-5, 1.3e-6),
    "float16": (1e-3, 1e-3),
    "bfloat16": (1e-2, 1.6e-2),
}

BATCH_HARD = Spec(mining="batch_hard")
SEMI_HARD = Spec(mining="semi_hard", empty="nan")
BATCH_ALL_PML = Spec(mining="batch_all", normalize=True, margin=0.05, reduction="mean_nonzero")
TRIPLETS = Spec(mining="triplets")


@dataclass
class Cell:
    """One adapter x spec x dtype x device x quantity outcome to stage."""

    adapter: str
    spec: Spec
    dtype: str
    device: str
    quantity: str = "loss"
    verdict: str = "pass"
    error: float = 0.05  # the worst normalised error of the cell
    reason: str = ""
    divergence: str | None = None
    examples: int = 40
    ambiguous_examples: int = 0


@dataclass
class Run:
    """One staged run: what a `pytest --results FILE` invocation would have written."""

    environment: str
    framework: str
    version: str  # the adapter-reported version string
    targets: dict  # device -> execution target string
    cells: list[Cell]
    profile: str = "ci"
    seed: int | None = None
    finished: bool = True
    edge_cases: list[dict] = field(default_factory=list)
    divergences: list[dict] = field(default_factory=list)
    robustness: list[dict] = field(default_factory=list)
    benchmarks: list[dict] = field(default_factory=list)


def batch(seed: int = 0, n: int = 6, d: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A small clustered batch: three classes, so positives, negatives and hard triplets all occur."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    centres = rng.normal(size=(3, d))
    return centres[labels] + 0.6 * rng.normal(size=(n, d)), labels


def reproducer(adapter: str, spec: Spec, dtype: str, device: str, embeddings, labels, triplets) -> str:
    """The copy-paste Python a failing cell carries: rebuild the arrays, call the oracle and the adapter."""
    arguments = ", ".join(f"{k}={v!r}" for k, v in spec.to_dict().items() if v != getattr(Spec(), k))
    return textwrap.dedent(f"""\
        import numpy as np
        import reference
        from adapters import catalog

        embeddings = np.array({np.asarray(embeddings).tolist()!r})
        labels = np.array({np.asarray(labels).tolist()!r})
        triplets = {None if triplets is None else np.asarray(triplets).tolist()!r}
        spec = reference.Spec({arguments})

        oracle = reference.evaluate(embeddings, labels, spec, triplets)
        adapter = next(a for a in catalog() if a.name == {adapter!r})
        out = adapter.run(embeddings, labels, spec, {dtype!r}, {device!r}, triplets)
        print("oracle", oracle.loss, "implementation", out.loss)
        print("max |grad difference|", np.abs(out.grad - oracle.grad).max())
        """)


def counterexample(cell: Cell, seed: int) -> dict:
    embeddings, labels = batch(seed)
    triplets = np.array([[0, 3, 1], [1, 4, 2], [2, 5, 0]]) if cell.spec.mining == "triplets" else None
    oracle = reference.evaluate(embeddings, labels, cell.spec, triplets)
    atol, rtol = TOLERANCES[cell.dtype]
    impl_loss, impl_grad = oracle.loss, oracle.grad.copy()
    if cell.quantity == "loss":
        impl_loss = oracle.loss + cell.error * (atol + rtol * abs(oracle.loss))
    else:
        impl_grad[1, 0] += cell.error * (atol + rtol * abs(oracle.grad[1, 0]))
    return {
        "embeddings": embeddings, "labels": labels, "triplets": triplets,
        "oracle_loss": oracle.loss, "impl_loss": impl_loss, "oracle_grad": oracle.grad, "impl_grad": impl_grad,
        "selection": oracle.selection, "gap": oracle.gap,
        "reproducer": reproducer(cell.adapter, cell.spec, cell.dtype, cell.device, embeddings, labels, triplets),
    }


def comparison_fields(run: Run, cell: Cell, seed: int) -> dict:
    atol, rtol = TOLERANCES[cell.dtype]
    checked = cell.verdict not in ("skip", "error")
    rng = np.random.default_rng(seed)
    # A spread of per-example errors below the worst, the worst last: what a Hypothesis run produces.
    errors = list(cell.error * rng.uniform(0.0, 1.0, size=cell.examples - 1) ** 3) + [cell.error] if checked else []
    scale = atol + rtol
    staged_failure = cell.verdict in ("fail", "xfail", "error")
    return dict(
        adapter=cell.adapter, framework=run.framework, spec=cell.spec.to_dict(), spec_label=str(cell.spec),
        dtype=cell.dtype, device=cell.device, target=run.targets[cell.device], version=run.version,
        quantity=cell.quantity, verdict=cell.verdict, reason=cell.reason,
        examples=cell.examples if checked else 0, ambiguous_examples=cell.ambiguous_examples,
        max_abs=cell.error * scale if checked else None, max_rel=cell.error * rtol if checked else None,
        max_ulp=cell.error * 8 if checked else None, normalized_error=cell.error if checked else None,
        errors=errors, tolerance={"atol": atol, "rtol": rtol, "source": "torch.testing default (float32 row)"},
        divergence=cell.divergence,
        counterexample=counterexample(cell, seed) if staged_failure and cell.verdict != "error" else None,
    )


def write_run(path: Path, run: Run) -> Path:
    writer = ResultsWriter(path)
    writer.header(
        hypothesis={"profile": run.profile, "seed": run.seed, "max_examples": 40, "derandomize": run.seed is None},
        frameworks=dict(part.rsplit(" ", 1) for part in run.version.split(" + ")),
        devices=sorted(set(run.targets.values())),
        environment=run.environment,
    )
    for seed, cell in enumerate(run.cells):
        writer.write("comparison", **comparison_fields(run, cell, seed))
    for kind, records in (("edge_case", run.edge_cases), ("divergence", run.divergences),
                          ("robustness", run.robustness), ("benchmark", run.benchmarks)):
        for record in records:
            writer.write(kind, **record)
    if run.finished:
        writer.write("run_end", finished="2024-05-01T12:00:00+00:00", duration_s=93.5, exit_status=1,
                     interrupted=False)
    writer.close()
    return path


def edge_case(adapter: str, spec: Spec, case: str, outcome: str, loss=None, oracle_loss=0.0, error="") -> dict:
    matches = (outcome == "nan" and oracle_loss != oracle_loss) or (
        outcome == "value" and loss is not None and abs(loss - oracle_loss) < 1e-6)
    return dict(adapter=adapter, spec=spec.to_dict(), spec_label=str(spec), dtype="float32", device="cpu",
                case=case, outcome=outcome, loss=loss, grad_finite=outcome == "value", error=error,
                oracle_loss=oracle_loss, matches_oracle=matches)


def robustness_sweep(adapter: str, dtype: str, growth: float) -> list[dict]:
    """Error vs far-from-origin offset: the Gram expansion loses precision as offset^2 / distance."""
    bound = TOLERANCES[dtype][1]
    records = []
    for level in (1.0, 10.0, 100.0, 1e3, 1e4, 1e5):
        loss_error = bound * 0.05 * level ** growth
        records.append(dict(adapter=adapter, spec_label=str(BATCH_HARD), dtype=dtype, device="cpu", sweep="offset",
                            level=level, loss_error=loss_error, grad_error=loss_error * 3,
                            nonfinite=False, bound=bound * 100, grad_bound=bound * 300,
                            within_bound=loss_error <= bound * 100))
    return records


def benchmark_series(implementation: str, device: str, per_pair: float, memory_power: float,
                     oom_at: int | None = None) -> list[dict]:
    records = []
    for n in (64, 256, 1024, 4096, 16384):
        status = "oom" if oom_at is not None and n >= oom_at else "ok"
        matmul = 2e-11 * n * n * 128 * (0.05 if device == "cuda" else 1)
        records.append(dict(
            implementation=implementation, spec_label=str(BATCH_HARD), device=device, n=n, d=128,
            seconds=per_pair * n * n + 2e-5 if status == "ok" else None,
            peak_bytes=4.0 * n ** memory_power if status == "ok" else None,
            status=status, reference_seconds=matmul,
        ))
    return records


def demo_runs() -> dict[str, Run]:
    """A torch CPU run, a GPU box, and TF-Addons under TF 2.13 (interrupted) and 2.15 (with drift)."""
    cpu = {"cpu": "cpu x86_64"}
    torch_cells = [
        Cell("torch.TripletMarginLoss", TRIPLETS, "float32", "cpu", "loss", "xfail", 40.0,
             reason="torch adds eps=1e-6 inside the norm", divergence="torch-eps-in-norm"),
        Cell("torch.TripletMarginLoss", TRIPLETS, "float32", "cpu", "grad", "pass", 0.2),
        Cell("torch.TripletMarginLoss", TRIPLETS, "float64", "cpu", "loss", "xfail", 9e3,
             reason="torch adds eps=1e-6 inside the norm", divergence="torch-eps-in-norm"),
        Cell("torch.TripletMarginLoss", TRIPLETS, "float64", "cpu", "grad", "pass", 0.01),
        Cell("pml.TripletMarginLoss", BATCH_ALL_PML, "float32", "cpu", "loss", "pass", 0.3),
        Cell("pml.TripletMarginLoss", BATCH_ALL_PML, "float32", "cpu", "grad", "ambiguous", 0.0, examples=12,
             ambiguous_examples=12, reason="every drawn batch sat on a hinge within float32 resolution"),
        Cell("pml.TripletMarginLoss", BATCH_ALL_PML, "float16", "cpu", "loss", "xpass", 0.6,
             reason="registered divergence did not reproduce: strict xfail passed", divergence="pml-fp16-overflow"),
        Cell("pml.TripletMarginLoss", BATCH_ALL_PML, "float16", "cpu", "grad", "fail", 37.5,
             reason="gradient differs from the oracle beyond tolerance"),
        Cell("pml.TripletMarginLoss", BATCH_ALL_PML, "bfloat16", "cpu", "loss", "skip",
             reason="pytorch-metric-learning casts bfloat16 to float32 internally; nothing to compare"),
        Cell("pml.TripletMarginLoss", BATCH_ALL_PML, "bfloat16", "cpu", "grad", "skip",
             reason="pytorch-metric-learning casts bfloat16 to float32 internally; nothing to compare"),
        Cell("seed003.semihard-loop", SEMI_HARD, "float64", "cpu", "loss", "pass", 0.3),
        Cell("seed003.semihard-loop", SEMI_HARD, "float64", "cpu", "grad", "skip",
             reason="loss-only implementation (plain Python loop)"),
        Cell("my-batch-hard", BATCH_HARD, "float32", "cpu", "loss", "error",
             reason="RuntimeError: expected scalar type Float but found Double"),
        Cell("my-batch-hard", BATCH_HARD, "float32", "cpu", "grad", "error",
             reason="RuntimeError: expected scalar type Float but found Double"),
    ]
    gpu_cells = [
        Cell(adapter, BATCH_HARD, dtype, device, quantity, "pass", error)
        for adapter in ("inhouse.torch", "inhouse.triton")
        for dtype, error in (("float32", 0.04), ("float16", 0.3))
        for device in ("cpu", "cuda")
        for quantity in ("loss", "grad")
    ]
    gpu_cells[-1] = Cell("inhouse.triton", BATCH_HARD, "float16", "cuda", "grad", "fail", 1.9e3,
                         reason="gradient differs from the oracle beyond tolerance")
    tf_cells = [
        Cell("tfa.triplet_semihard_loss", SEMI_HARD, "float32", "cpu", "loss", "pass", 0.4),
        Cell("tfa.triplet_semihard_loss", SEMI_HARD, "float32", "cpu", "grad", "pass", 0.5),
        Cell("tfa.triplet_semihard_loss", SEMI_HARD, "float16", "cpu", "loss", "pass", 0.7),
        Cell("tfa.triplet_semihard_loss", SEMI_HARD, "float64", "cpu", "loss", "xfail", float("inf"),
             reason="TF-Addons rejects float64", divergence="tfa-no-float64"),
        Cell("tfa.triplet_hard_loss", BATCH_HARD, "float32", "cpu", "loss", "pass", 0.2),
        Cell("tfa.triplet_hard_loss", BATCH_HARD, "float32", "cpu", "grad", "pass", 0.3),
    ]
    tf215_cells = [Cell(**{**c.__dict__}) for c in tf_cells]
    tf215_cells[1] = Cell("tfa.triplet_semihard_loss", SEMI_HARD, "float32", "cpu", "grad", "fail", 6.2,
                          reason="gradient differs from the oracle beyond tolerance")
    divergences = [
        dict(id="torch-eps-in-norm", adapter="torch.TripletMarginLoss", pattern="triplets * / * / * / loss",
             divergence_kind="semantics", reason="torch.nn.TripletMarginLoss adds eps=1e-6 inside the norm: |a - p + eps|",
             link="https://github.com/pytorch/pytorch/issues/24529", reproduces=True),
        dict(id="tfa-no-float64", adapter="tfa.triplet_*", pattern="* / float64 / * / *", divergence_kind="unsupported",
             reason="TF-Addons triplet losses reject float64 input", link="https://github.com/tensorflow/addons",
             reproduces=True),
        dict(id="pml-fp16-overflow", adapter="pml.*", pattern="* / float16 / * / loss", divergence_kind="precision",
             reason="fp16 pairwise distances overflowed before pml 2.4",
             link="https://github.com/KevinMusgrave/pytorch-metric-learning/issues/1", reproduces=False),
        dict(id="quaterion-collapse", adapter="quaterion.*", pattern="*", divergence_kind="edge_case",
             reason="Quaterion divides by mean(hn): NaN at full collapse", link="", reproduces=None),
    ]
    edge = [
        edge_case("pml.TripletMarginLoss", BATCH_ALL_PML, "no_positive", "value", 0.0, 0.0),
        edge_case("pml.TripletMarginLoss", BATCH_ALL_PML, "no_negative", "value", 0.0, 0.0),
        edge_case("pml.TripletMarginLoss", BATCH_ALL_PML, "singletons", "value", 0.0, 0.0),
        edge_case("pml.TripletMarginLoss", BATCH_ALL_PML, "full_collapse", "value", 0.05, 0.05),
        edge_case("pml.TripletMarginLoss", BATCH_ALL_PML, "duplicates", "value", 0.05, 0.05),
        edge_case("pml.TripletMarginLoss", BATCH_ALL_PML, "nan_input", "nan", None, float("nan")),
        edge_case("torch.TripletMarginLoss", TRIPLETS, "full_collapse", "value", 0.999998, 1.0),
        edge_case("torch.TripletMarginLoss", TRIPLETS, "nan_input", "error", None, float("nan"),
                  error="ValueError: embeddings must be finite"),
    ]
    tf_edge = [
        edge_case("tfa.triplet_semihard_loss", SEMI_HARD, "no_positive", "nan", None, float("nan")),
        edge_case("tfa.triplet_semihard_loss", SEMI_HARD, "singletons", "value", 0.0, float("nan")),
        edge_case("tfa.triplet_hard_loss", BATCH_HARD, "full_collapse", "value", 1.0, 1.0),
    ]
    return {
        "py311-torch.jsonl": Run("py311-torch", "torch", "torch 2.13.0", cpu, torch_cells, seed=12345,
                                 edge_cases=edge, divergences=divergences[:1] + divergences[2:]),
        "gpu-h100.jsonl": Run(
            "gpu-h100", "torch", "torch 2.13.0 + triton 3.1.0",
            {"cpu": "cpu x86_64", "cuda": "cuda:0 NVIDIA H100 80GB HBM3"}, gpu_cells, profile="thorough",
            robustness=robustness_sweep("inhouse.torch", "float32", 2.0) + robustness_sweep("inhouse.triton", "float32", 1.0),
            benchmarks=benchmark_series("inhouse.torch", "cuda", 2e-10, 2.0)
            + benchmark_series("inhouse.triton", "cuda", 6e-11, 1.0)
            + benchmark_series("tfa.triplet_semihard_loss", "cpu", 5e-8, 3.0, oom_at=4096),
        ),
        "py311-tf213.jsonl": Run("py311-tf213", "tensorflow", "tensorflow 2.13.1 + tensorflow-addons 0.23.0", cpu,
                                 tf_cells, finished=False, edge_cases=tf_edge),
        "py311-tf215.jsonl": Run("py311-tf215", "tensorflow", "tensorflow 2.15.1 + tensorflow-addons 0.23.0", cpu,
                                 tf215_cells, edge_cases=tf_edge, divergences=divergences[1:2]),
    }


# Markup where an implementation or a user supplies text: the page must show it, never run it.
# Markup where an implementation or a user supplies text: the page must show it, never run it.
SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '"><img src=x onerror=alert(1)>'  # breaks out of an attribute if one is written unescaped
HOSTILE = SCRIPT + ATTRIBUTE


def write_hostile(path: Path) -> Path:
    """A run where every text an implementation or a user controls carries markup."""
    spec = BATCH_HARD
    run = Run(
        environment=HOSTILE, framework=HOSTILE, version=HOSTILE, targets={"cpu": ATTRIBUTE},
        cells=[
            Cell(HOSTILE, spec, "float32", "cpu", "loss", "error", reason="RuntimeError: " + HOSTILE),
            Cell(HOSTILE, spec, "float32", "cpu", "grad", "skip", reason=HOSTILE),
            Cell(HOSTILE, spec, "float16", "cpu", "grad", "fail", 3.0, reason=HOSTILE),
            Cell(HOSTILE, spec, "float16", "cpu", "loss", "xfail", 2.0, divergence=HOSTILE),
        ],
        edge_cases=[{**edge_case(HOSTILE, spec, "nan_input", "error", error="ValueError: " + HOSTILE),
                     "case": HOSTILE}],
        divergences=[dict(id=HOSTILE, adapter=HOSTILE, pattern=HOSTILE, divergence_kind=HOSTILE, reason=HOSTILE,
                          link="javascript:alert(1)", reproduces=None)],
        robustness=[{**r, "adapter": HOSTILE, "sweep": HOSTILE} for r in robustness_sweep("x", "float32", 1)],
        benchmarks=[{**b, "implementation": HOSTILE, "spec_label": HOSTILE, "device": HOSTILE}
                    for b in benchmark_series("x", "cpu", 1e-9, 2.0)],
    )
    write_run(path, run)
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for record in records:  # the spec label and the header's host are user-controlled too
        if "spec_label" in record:
            record["spec_label"] = HOSTILE
        if record["kind"] == "run":
            record["hostname"] = HOSTILE
    records.append({**records[1], "kind": HOSTILE})  # an unknown kind: its name appears in the warning banner
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def write_demo(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    return [write_run(directory / name, run) for name, run in demo_runs().items()]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m reports.synthetic DIR")
    for written in write_demo(Path(sys.argv[1])):
        print(written)

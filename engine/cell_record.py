"""The "comparison" record one conformance item leaves, whatever its outcome (pass, fail, xfail, xpass, skip,
ambiguous, error), once pytest has decided it (so a strict xfail's outcome is known): what the cell's run saw
(engine/cell_run.py), in the fields of the results schema (reports/schema.py)."""
from __future__ import annotations

from contract.targets import matmul_eps
from contract.targets import target as target_facts

from .cell_run import CellRun


def verdict_and_reason(run: CellRun, verdict: str, reason: str, xfail_reason: str) -> tuple[str, str]:
    """The record's verdict from pytest's (`pass`, `fail`, `xfail`, `xpass`, `skip`): a pass where no example was
    compared with the oracle's own value is "ambiguous"; a failure without a discrepancy is the check's own "error"."""
    if verdict == "pass":
        verdict, reason = verdict_if_passed(run)
    elif verdict in ("fail", "xfail") and run.failing is not None:
        reason = run.failing.failure
    elif verdict == "fail":
        verdict = "error"  # the check itself broke: not the adapter's discrepancy
    if verdict in ("xfail", "xpass"):
        reason = xfail_reason + (f"; observed: {reason}" if reason else "")
    return verdict, reason


def comparison_record(run: CellRun, verdict: str, reason: str, divergence: str | None, nodeid: str,
                      duration_s: float) -> dict:
    cell = run.cell
    adapter = cell.adapter
    return dict(
        adapter=adapter.name,
        framework=adapter.framework,
        spec=cell.spec.to_dict(),
        spec_label=str(cell.spec),
        dtype=cell.dtype,
        device=cell.target,
        target=run.ran_on,
        version=run.version,
        quantity=cell.check,
        verdict=verdict,
        reason=reason,
        precision=cell.precision,
        **summary(run),
        tolerance=_tolerance_record(run),
        divergence=divergence,
        counterexample=counterexample(run) if run.examples else None,
        nodeid=nodeid,
        duration_s=round(duration_s, 3),
    )


def verdict_if_passed(run: CellRun) -> tuple[str, str]:
    if run.compared == 0 and run.examples > 0:
        return "ambiguous", (
            f"every one of {run.examples} examples was ambiguous for {run.cell.compute_dtype}: "
            f"{run.cell.check} compared only among admissible outcomes or not at all"
        )
    return "pass", ""


def summary(run: CellRun) -> dict:
    return {
        "examples": run.examples,
        "ambiguous_examples": run.ambiguous_examples,
        "exact_tie_examples": run.exact_ties,
        "ambiguous_kinds": dict(sorted(run.ambiguous_kinds.items())),
        "max_abs": run.max_abs,
        "max_rel": run.max_rel,
        "max_ulp": run.max_ulp,
        "normalized_error": run.normalized_error,
        "errors": [float(f"{e:.4g}") for e in run.errors],
    }


def counterexample(run: CellRun) -> dict | None:
    example = run.failing or run.worst
    if example is None:
        return None
    batch, answer, output = example.batch, example.answer, example.output
    return {
        "embeddings": batch.embeddings,
        "labels": batch.labels,
        "triplets": batch.triplets,
        "oracle_loss": answer.loss,
        "impl_loss": None if output is None else output.loss,
        "oracle_grad": answer.grad,
        "impl_grad": None if output is None else output.grad,
        "selection": answer.selection,
        "gap": answer.gap,
        "gaps": answer.gaps,
        "ambiguous": {kind: {"gap": g, "resolution": r} for kind, (g, r) in example.decided.ambiguous.items()},
        "exact_ties": sorted(example.decided.ties),
        "layout": batch.layout,
        "normalized_error": None if example.errors is None else example.errors.normalized,
        "failure": example.failure,
        "reproducer": run.reproducer_for(batch),
    }


def _tolerance_record(run: CellRun) -> dict:
    """The counterexample's tolerance, and the range of scales the cell's examples needed."""
    example = run.failing or run.worst
    if example is None:
        return {}
    return {
        **example.tolerance.record(),
        "scale_range": [min(run.scales, default=1.0), max(run.scales, default=1.0)],
        "compute_dtype": run.cell.compute_dtype,
        **_dtype_model_record(run),
    }


def _dtype_model_record(run: CellRun) -> dict:
    """For the tolerance record on a matmul-rounding target: its bits, and whether the plain dtype's model held."""
    cell = run.cell
    if matmul_eps(cell.target, cell.compute_dtype) is None:
        return {}
    judged = bool(run.dtype_model_errors)
    return {
        "matmul_mantissa_bits": target_facts(cell.target).matmul_mantissa_bits,
        "within_dtype_model": (run.dtype_model_beyond == 0) if judged else None,
        "dtype_model_error": float(f"{max(run.dtype_model_errors):.4g}") if judged else None,
    }

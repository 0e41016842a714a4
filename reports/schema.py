"""The results schema: JSON lines, one record per line, each with "schema" and "kind".

Version 1. Every record carries
    schema          "triplet-conformance/results"
    schema_version  1
    kind            one of KINDS below
    run_id          the run that wrote it (a header record opens each run)

kind="run" (the header, first line of a run)
    started (ISO 8601 UTC), git_revision, python, platform, hostname, argv,
    hypothesis {profile, seed, max_examples}, frameworks {name: version}, devices [execution targets],
    environment (e.g. the tox env name), notes
kind="run_end" (last line; a run without it was interrupted)
    finished, duration_s, exit_status, interrupted (bool), counts {verdict: n}
kind="comparison" (one per adapter x spec x dtype x device x quantity)
    adapter, framework, spec (Spec.to_dict()), spec_label (str(Spec)), dtype, device, target, version,
    quantity ("loss" | "grad"), verdict (VERDICTS), reason (text; why it failed, skipped or xfailed),
    examples (how many drawn), ambiguous_examples (accepted as ambiguous), max_abs, max_rel, max_ulp,
    normalized_error (max |impl - oracle| / (atol + rtol |oracle|): below 1 passes), errors (the
    normalized error of every example, for the distribution plot), tolerance {atol, rtol, source},
    divergence (registry id, for xfail / xpass), counterexample (or null):
        {embeddings, labels, triplets, oracle_loss, impl_loss, oracle_grad, impl_grad,
         selection (the oracle's selected terms), gap, reproducer (Python source)}
kind="edge_case" (one per adapter x spec x case)
    adapter, spec, spec_label, dtype, device, case (EDGE_CASES), outcome ("value" | "nan" | "inf" | "error"),
    loss, grad_finite (bool or null), error (exception text), oracle_loss, matches_oracle (bool)
kind="divergence" (one per registry entry known to the run)
    id, adapter, pattern, kind, reason, link, reproduces (bool or null: not exercised)
kind="robustness" (one per adapter x dtype x sweep x level)
    adapter, spec_label, dtype, device, sweep ("offset" | "near_duplicate" | "scale" | "tf32"), level,
    loss_error, grad_error, nonfinite (bool), bound (the documented expectation), within_bound (bool)
kind="benchmark" (one per implementation x spec x N x D x device)
    implementation, spec_label, device, n, d, seconds, peak_bytes, status ("ok" | "oom" | "timeout" | "error"),
    reference_seconds (one N x N x D matmul on the same device)
"""
from __future__ import annotations

SCHEMA = "triplet-conformance/results"
SCHEMA_VERSION = 1
KINDS = ("run", "run_end", "comparison", "edge_case", "divergence", "robustness", "benchmark")
VERDICTS = ("pass", "fail", "xfail", "xpass", "skip", "ambiguous", "error")
EDGE_CASES = ("no_positive", "no_negative", "singletons", "full_collapse", "duplicates", "nan_input")

"""The engine: what judges an implementation against the oracle. The core of the product, run by the
checks in suite/ (what `pytest --adapter MODULE:ATTR` collects); its own tests live in tests/.

dtypes        every dtype the suite knows, declared once (eps, range, exact integers, framework names)
targets       every execution target (cpu, cuda, ...), declared once
batch         one input (Batch) and a regression batch that pins a known behaviour (Regression)
oracle        the oracle's answer for a batch, with what the comparisons derive from it
tolerances    per-dtype tolerance tables with sources, and the rounding model that scales them to a batch
ambiguity     which decisions of a batch a dtype cannot resolve, and which the spec decides exactly
compare       error measures, NaN rules, admissible outcomes on ambiguous inputs
judge         the one judging rule: conformance cells, property checks and edge cases all call it
strategies    Hypothesis strategies for structured batches
regimes       the cases the strategies are meant to reach, and how often
regressions   the regression batches every cell runs first (the registry's and the engine's own)
harness       call_adapter: the one place an adapter is called (errors, bad outputs, timeouts, isolation)
distributed   a call on a dist-gloo-W target: W ranks each run the loss on their shard; loss L_0, G = (1/W) concat dL_r/dX_r
cells         the conformance matrix: adapter x spec x dtype x target x quantity, ids, known divergences
checks        one cell's Hypothesis run: per-example checks, aggregation, counterexamples, reproducers
reproducer    copy-paste Python that reruns one example
session       the pytest plugin's state: results records, divergence outcomes, regime coverage, summary
pytest_plugin options (--adapter, --results, ...), Hypothesis profiles, what a user's run collects
"""

"""The conformance harness, shared by tests/conformance, tests/properties and tests/edge_cases.

tolerances   per-dtype tolerance tables (values, gradients) with sources, and the rounding model that
             scales them to a batch and says when an input is ambiguous for a dtype
batches      Hypothesis strategies for structured batches, and the regimes they are meant to reach
compare      the oracle's answer for a batch, error measures, NaN rules, admissible outcomes
harness      call_adapter: the one place an adapter is called (errors, bad outputs, timeouts)
cells        the conformance matrix: adapter x spec x dtype x device x quantity, ids, known divergences
checks       one cell's Hypothesis run: per-example checks, aggregation, counterexamples, reproducers
plugin       the pytest plugin: results records, divergence outcomes, regime coverage, terminal summary
fake_adapters  test-only adapters: the oracle itself, and deliberately broken ones for meta tests

tests/ is on sys.path (pytest inserts a rootless conftest's directory), so modules import `support`.
"""

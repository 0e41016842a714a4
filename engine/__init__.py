"""The engine: what judges an implementation against the oracle. The core of the product, run by the
checks in suite/ (what `pytest --adapter MODULE:ATTR` collects); its own tests live in tests/. It sits on top of
the layers below it (reference, contract, inhouse, adapters, registry, reports) and reads the catalog of adapters
and the registry of known divergences as data; nothing below imports it (tests/engine/test_layers.py).

Glossary (one meaning each, in code and in prose):
  cell        one adapter x claimed spec x dtype x target, judged by one item per check (engine/cells.py `Cell`);
              its key, without the check, is shared by the items that ask the same examples
  check       what an item checks about a cell: a quantity ("loss", "grad"), "edge:<case>", "property:<name>" or
              "robustness:<sweep>" (`Cell.check`; a registry entry's `check` pattern matches it)
  target      where a call runs: cpu, cuda, cuda-tf32, dist-gloo-W (contract/targets.py); an adapter claims targets
              (`Adapter.targets`); the results schema keeps the field name `device` for the target a cell ran on
  precision   how an implementation declares it computes distances: direct or gram (contract/precision.py)
  answer      the oracle's reply for one batch (`reference.Answer`): loss, gradient, the strategy's terms, the gaps;
              `reference.Terms` is the mining strategy's part of it, at given distances
  strategy    a mining strategy of the vocabulary (batch_hard, semi_hard, ...): reference/strategies.py; the
              Hypothesis strategies that draw batches are "draws" (engine/draws.py)
  regime      a kind of batch the draws are meant to reach, and how often (engine/regimes.py)
  gap         how far an input is from a decision (a tie, a hinge, a zero distance): reference/gaps.py; a decision
              within the dtype's rounding is ambiguous (engine/ambiguity.py)
  divergence  an accepted, declared difference between an implementation and the oracle: one registry entry
              (registry/), which makes the items it covers strict xfails

Modules:
oracle answers  reference.evaluate (no wrapper here)
tolerances      per-dtype tolerance tables with sources, and the rounding model that scales them to a batch
ambiguity       which decisions of a batch a dtype cannot resolve, and which the spec decides exactly
exactness       which decisions an integer-lattice batch decides exactly in a dtype
compare         error measures, NaN rules, admissible outcomes on ambiguous inputs
judge           the one judging rule, `judge_example`: conformance cells, property checks and edge cases call it
draws           Hypothesis strategies for structured batches, and each geometry at its extreme
regimes         the cases the draws are meant to reach, and how often
regressions     the regression batches every cell runs first (the registry's and the engine's own)
harness         call_adapter: the one place an adapter is called (errors, bad outputs, timeouts, isolation, ranks)
distributed     a call on a dist-gloo-W target: W ranks each run the loss on their shard; loss L_0, G = (1/W) concat dL_r/dX_r
cells           the conformance matrix: adapter x spec x dtype x target x check, ids, known divergences
cell_run        what happens to one cell: oracle, calls, skips, each example's judgement, regimes
cell_record     the "comparison" record a conformance item leaves
profiles        the Hypothesis profiles, examples per item, and the loop that runs a cell's examples
reproducer      copy-paste Python that reruns one example
session         what spans the run: starting each cell's run, tallies, divergence records, regime coverage, summary
workers         pytest-xdist: each process's role, how items are shared out, how a worker's records reach the controller
pytest_plugin   options (--adapter, --results, ...), what a user's run collects
progress        the main job's progress plugin (reports/main.py loads it)
machine         the machine settings a verdict must not depend on; machine_variation runs them
"""

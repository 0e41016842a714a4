"""The page's sections, one module each, computed from the merged records (reports/model.py assembles them):

    common          the verdict vocabulary, canonical orders, and the helpers every section shares
    runs            "What ran": one header per run (environment, settings, frameworks, whether it finished)
    matrix          the conformance matrix, and drift: one cell's verdicts differing between runs
    discrepancies   each discrepancy with its counterexample and reproducer
    edge_cases      the edge-case table
    divergences     the known divergences and whether each reproduced
    summary         the sentence at the top of the page
    robustness      the robustness sweeps: points for the charts, the table under them
    benchmarks      the benchmark tables under the charts
"""

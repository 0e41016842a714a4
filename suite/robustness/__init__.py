"""Numerical robustness: where each implementation breaks down, measured as sweeps and judged against
bounds derived from the dtype's epsilon.

bounds     the documented expectation of every sweep and its derivation (read its docstring first)
sweeps     the batch, the transformations (offset, near-duplicates, scale, TF32), one record per level

test_robustness_sweeps.py writes one "robustness" record per adapter x spec x dtype x device x sweep x level
through the `results` fixture. The reference lines that show the bounds mean something (NumPy float32: the
Gram expansion as is, re-centred, and from differences) are the suite's own tests, in tests/robustness.
See README.md in this folder.
"""

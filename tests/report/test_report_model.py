"""What the page says, from the synthetic demo (a torch CPU run, a GPU box, TF-Addons under TF 2.13,
interrupted, and TF 2.15 with drift): summary, conformance, matrix, drift, discrepancies, edge cases,
known divergences, and that the page shows every record it read."""
from __future__ import annotations

import pytest

from reports import model, synthetic
from reports.schema import EDGE_CASES
from reports.reader import read_results


@pytest.fixture(scope="module")
def report(demo_files) -> model.Report:
    return model.build_report(read_results(demo_files))


def group(report, adapter: str) -> model.MatrixGroup:
    return next(g for g in report.matrix.groups if g.adapter == adapter)


def cell(report, adapter: str, dtype: str, device: str, row: int = 0) -> model.MatrixCell:
    return group(report, adapter).rows[row].cells[report.matrix.columns.index((dtype, device))]


def test_summary_counts_implementations_and_names_the_worst_discrepancy(report):
    summary = report.summary
    assert (summary.implementations, summary.conform, summary.conform_known, summary.discrepant,
            summary.unchecked) == (8, 3, 1, 4, 0)
    assert summary.discrepancies == 5
    assert summary.sentence.startswith(
        "8 implementations: 3 conform, 1 conforms with known divergences, 4 have discrepancies. 5 discrepancies; ")
    assert ("the worst is inhouse.triton on “batch_hard euclidean m=1 mean anchors=all empty=zero” "
            "(float16, cuda, gradient): 1.9e3× its tolerance.") in summary.sentence


@pytest.mark.parametrize("verdicts, known, status", [
    (["pass", "pass", "skip"], 0, "conforms"),
    (["xfail", "pass", "ambiguous"], 1, "conforms, with 1 known divergence"),  # registered: accepted, and said
    (["pass", "pass"], 2, "conforms, with 2 known divergences"),  # e.g. an entry and a declared precision
    (["xpass", "pass"], 0, "conforms"),  # matches the oracle; the stale registry entry is reported elsewhere
    (["pass", "fail"], 1, "discrepant"),
    (["error", "skip"], 0, "discrepant"),
    (["skip", "ambiguous"], 0, "not checked"),  # nothing decided either way
])
def test_conforms_means_no_discrepancy_and_something_decided(verdicts, known, status):
    assert model.implementation_status(verdicts, known) == status


def test_a_declared_precision_counts_as_a_known_divergence_and_is_named():
    import pandas as pd

    cells = pd.DataFrame({"divergence": [None, "tfa-x, tfa-y", "tfa-x"], "precision": ["gram"] * 3})
    assert model.known_divergences(cells) == (["tfa-x", "tfa-y", "precision: gram"], "gram")


def test_matrix_has_one_chip_per_comparison_record(report):
    """Merging never loses a record: each comparison of each run is a chip of its own in the matrix."""
    chips = [chip for g in report.matrix.groups for row in g.rows for c in row.cells if c
             for variant in c.variants for chip in variant.chips if chip.verdict != "missing"]
    assert len(chips) == len(report.comparisons)
    assert {chip.verdict for chip in chips} == set(model.SEVERITY)


def test_columns_put_cpu_and_cuda_of_a_dtype_side_by_side(report):
    columns = report.matrix.columns
    assert columns == [("float64", "cpu"), ("float32", "cpu"), ("float32", "cuda"), ("float16", "cpu"),
                       ("float16", "cuda"), ("bfloat16", "cpu")]
    assert report.matrix.dtype_spans == [("float64", 1), ("float32", 2), ("float16", 2), ("bfloat16", 1)]
    gpu = cell(report, "inhouse.triton", "float16", "cuda").variants[0].chips
    cpu = cell(report, "inhouse.triton", "float16", "cpu").variants[0].chips
    assert [c.verdict for c in cpu] == ["pass", "pass"] and [c.verdict for c in gpu] == ["pass", "fail"]


def test_two_framework_versions_of_one_cell_are_stacked_with_what_differs_and_drift_is_flagged(report):
    drifting = cell(report, "tfa.triplet_semihard_loss", "float32", "cpu")
    assert drifting.drift
    assert [v.label for v in drifting.variants] == ["tensorflow 2.13.1", "tensorflow 2.15.1"]
    assert [[c.verdict for c in v.chips] for v in drifting.variants] == [["pass", "pass"], ["pass", "fail"]]
    steady = cell(report, "tfa.triplet_hard_loss", "float32", "cpu")
    assert len(steady.variants) == 2 and not steady.drift
    [item] = report.drift
    assert (item.adapter, item.quantity) == ("tfa.triplet_semihard_loss", "grad")
    assert [(verdict, error) for _, verdict, error in item.variants] == [("pass", "0.5"), ("fail", "6.2")]


def test_chips_show_the_error_as_a_multiple_of_tolerance_and_link_failures(report):
    [loss, grad] = cell(report, "pml.TripletMarginLoss", "float16", "cpu").variants[0].chips
    assert (loss.text, grad.text) == ("! 0.6×", "✗ 38×")
    assert grad.href == next(d.anchor for d in report.discrepancies if d.adapter == "pml.TripletMarginLoss")
    assert "worst error 38× tolerance (atol 0.001, rtol 0.001)" in grad.title


def test_skip_reasons_become_numbered_footnotes_and_hover_text(report):
    reason = "pytorch-metric-learning casts bfloat16 to float32 internally; nothing to compare"
    chips = cell(report, "pml.TripletMarginLoss", "bfloat16", "cpu").variants[0].chips
    assert {c.footnote for c in chips} == {report.matrix.footnotes.index(reason) + 1}
    assert all(reason in c.title for c in chips)


def test_discrepancies_carry_the_counterexample_worst_first(report):
    assert [(d.adapter, d.verdict) for d in report.discrepancies] == [
        ("inhouse.triton", "fail"), ("pml.TripletMarginLoss", "fail"), ("tfa.triplet_semihard_loss", "fail"),
        ("my-batch-hard", "error"), ("my-batch-hard", "error")]
    worst = report.discrepancies[0]
    embeddings, labels = synthetic.batch(seed=15)  # the cell's index in the GPU run is its seed
    assert worst.inputs[0].name == "embeddings" and repr(float(embeddings[0, 0])) in worst.inputs[0].text
    assert worst.spec_words.startswith("Per anchor, its farthest positive and its nearest negative (batch-hard)")
    assert worst.worst_element.startswith("largest difference at [1, 0]")
    assert worst.selection.startswith("(0, ")
    assert "adapter = next(a for a in catalog() if a.name == 'inhouse.triton')" in worst.reproducer
    assert (worst.error, worst.max_ulp) == ("1.9e3", "1.52e+04")
    error = report.discrepancies[-1]
    assert error.reason == "RuntimeError: expected scalar type Float but found Double" and error.inputs == []


def test_the_reproducer_runs_the_oracle_on_the_counterexample(report):
    """The copy-paste code rebuilds the arrays exactly: its oracle loss is the one on the page."""
    import reference

    worst = report.discrepancies[1]
    namespace: dict = {}
    setup = worst.reproducer.split("adapter = ")[0]  # everything but the adapter call (no torch needed here)
    exec(setup, namespace)  # noqa: S102 (the test runs code this suite generated)
    assert repr(float(namespace["oracle"].loss)) == worst.oracle_value
    assert isinstance(namespace["spec"], reference.Spec)


def test_edge_case_table_marks_differences_from_the_oracle(report):
    table = report.edge_cases
    assert table.cases == list(EDGE_CASES)
    row = next(r for r in table.rows if r.adapter == "torch.TripletMarginLoss")
    collapse, nan_input = row.cells[table.cases.index("full_collapse")], row.cells[table.cases.index("nan_input")]
    assert [(v.text, v.oracle, v.mismatch) for v in collapse] == [("1", "1", True)]
    assert [(v.outcome, v.text, v.mismatch) for v in nan_input] == [("error", "error: ValueError", True)]
    assert "ValueError: embeddings must be finite" in nan_input[0].title
    assert table.mismatches == 4
    shown = sum(len(variants) for r in table.rows for variants in r.cells)
    assert shown == sum(len(run.edge_cases) for run in synthetic.demo_runs().values())


def test_known_divergences_say_whether_they_still_reproduce_and_flag_stale_ones(report):
    states = {d.id: (d.state, d.stale, d.cells) for d in report.divergences}
    assert states == {
        "torch-eps-in-norm": ("reproduces", False, 2),
        "tfa-no-float64": ("reproduces", False, 2),
        "pml-fp16-overflow": ("no longer reproduces", True, 1),
        "quaterion-collapse": ("not exercised", False, 0),  # a partial run: not a stale entry
    }
    assert next(d for d in report.divergences if d.id == "torch-eps-in-norm").link.startswith("https://github.com/")


@pytest.mark.parametrize("text, link", [
    ("https://github.com/pytorch/pytorch/issues/1", "https://github.com/pytorch/pytorch/issues/1"),
    ("see http://example.org/x; and more", "http://example.org/x"),
    ("pytorch/pytorch#61538; aten/src/ATen/native/Distance.cpp", "https://github.com/pytorch/pytorch/issues/61538"),
    ("tensorflow/addons tensorflow_addons/losses/triplet.py", None),
    ("javascript:alert(1)", None),
    ("javascript:alert('https://x.org')", "https://x.org"),  # the URL inside, never the script
    ("data:text/html,<script>alert(1)</script>", None),
    (None, None),
])
def test_only_web_links_become_clickable(text, link):
    assert model.safe_link(text) == link


def test_runs_say_what_ran_and_which_did_not_finish(report):
    runs = {run.label: run for run in report.runs}
    assert set(runs) == {"py311-torch", "gpu-h100", "py311-tf213", "py311-tf215"}
    gpu = runs["gpu-h100"]
    assert gpu.frameworks == ["torch 2.13.0", "triton 3.1.0"]
    assert gpu.targets == ["cpu x86_64", "cuda:0 NVIDIA H100 80GB HBM3"]
    assert (gpu.dtypes, gpu.examples, gpu.status) == (["float32", "float16"], "40", "complete")
    assert runs["py311-torch"].hypothesis == "profile ci · seed 12345 · at most 40 examples"
    assert runs["py311-tf213"].status == "interrupted"
    assert [run.label for run in report.runs if run.partial] == ["py311-tf213"]


@pytest.mark.parametrize("value, text", [
    (None, ""), (0.0, "0"), (0.004, "<0.01"), (0.31, "0.31"), (6.2, "6.2"), (37.5, "38"), (1900.0, "1.9e3"),
    (float("inf"), "∞"), ("nan", "NaN"),
])
def test_error_multiples_are_short(value, text):
    from reports import describe

    assert describe.multiple(value) == text


def test_the_ratio_table_sets_the_fastest_peer_against_inhouse_and_against_the_least_work():
    """peer / least work: the most any implementation doing the loss's least work could be ahead of the peer; a task
    without a measured least work shows "—" there, and the least work is never taken for a peer."""
    import pandas as pd

    from reports.sections.benchmarks import ratio_table

    def row(implementation, task, seconds):
        return {"implementation": implementation, "task": task, "d": 64, "n": 1024, "status": "ok",
                "seconds": seconds, "reference_seconds": 0.002}

    rows = pd.DataFrame([row("inhouse.torch", "supcon", 0.01), row("pytorch-metric-learning", "supcon", 0.03),
                         row("least-work", "supcon", 0.006), row("inhouse.torch", "batch_hard", 0.004),
                         row("torch.naive", "batch_hard", 0.02)])
    header, table = ratio_table(rows)
    shown = {line[0]: dict(zip(header, line)) for line in table}
    assert shown["supcon"]["fastest peer"] == "pytorch-metric-learning 30 ms"
    assert (shown["supcon"]["peer / in-house"], shown["supcon"]["least work"], shown["supcon"]["peer / least work"]) \
        == ("3x", "6 ms", "5x")
    assert (shown["batch_hard"]["peer / in-house"], shown["batch_hard"]["peer / least work"]) == ("5x", "—")
    assert shown["supcon"]["in-house / matmul"] == "5x"

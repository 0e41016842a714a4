"""`python -m benchmarks.run` works end to end and writes records the report reads and draws.

A smoke test of the command, not a benchmark: it asserts what was written, never how fast anything was; and
that each torch peer computes the spec it states it computes.
"""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the quick run measures the torch implementations")
pytest.importorskip("pandas", reason="the report that draws the records needs pandas")

from benchmarks import run, sweep  # noqa: E402
from benchmarks.tasks import LEAST_WORK_BLOCKS, TASKS, batch  # noqa: E402
from reports.page import render  # noqa: E402
from reports.reader import read_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_writes_benchmark_records_the_report_draws(tmp_path):
    output = tmp_path / "benchmarks.jsonl"
    command = [sys.executable, "-m", "benchmarks.run", "--quick", "--sizes", "64", "--tasks", "batch_hard",
               "--implementations", "oracle", "inhouse.torch", "--devices", "cpu", "--output", str(output)]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]

    loaded = read_results([output])
    assert not loaded.problems
    kinds = [entry.kind for entry in loaded.entries]
    assert kinds[0] == "run" and kinds[-1] == "run_end"
    assert loaded.entries[0].record["machine"]
    measured = [entry.record for entry in loaded.entries if entry.kind == "benchmark"]
    assert {(r["implementation"], r["status"]) for r in measured} == {
        ("matmul", "ok"), ("oracle", "ok"), ("inhouse.torch", "ok")}
    for record in measured:
        assert record["n"] == 64 and record["d"] == 64 and record["device"] == "cpu"
        assert record["seconds"] > 0 and record["peak_bytes"] >= 0 and record["reference_seconds"] > 0

    html, report = render(loaded)
    assert len(report.benchmarks) == 3
    assert "inhouse.torch" in html


def test_a_failed_measurement_is_a_record_and_ends_that_implementation(tmp_path, monkeypatch):
    """An out-of-memory at one N is recorded, and the larger N of that implementation are skipped, not run."""
    verdicts = iter([{"status": "ok", "seconds": 1e-3, "peak_bytes": 0}, {"status": "oom", "reason": "cap"}])
    monkeypatch.setattr(sweep, "measure", lambda job, time_cap, memory_cap, threads: next(verdicts))
    monkeypatch.setattr(sweep, "plan", lambda args: [("cpu", 64, "batch_hard", "inhouse.torch")])
    args = run.parse(["--quick", "--sizes", "64", "128", "256", "--output", str(tmp_path / "out.jsonl")])
    writer = run.ResultsWriter(args.output)
    records = sweep.sweep(args, writer)
    writer.close()
    assert [(r["n"], r["status"]) for r in records] == [(64, "ok"), (128, "oom"), (256, "skipped")]
    lines = args.output.read_text().splitlines()
    assert [json.loads(line)["status"] for line in lines] == ["ok", "oom", "skipped"]


def test_an_implementation_whose_library_is_missing_is_skipped_with_its_reason(tmp_path, monkeypatch):
    """Every N is recorded as skipped, with the missing module named, and no child is started."""
    from benchmarks import implementations

    absent = dataclasses.replace(implementations.IMPLEMENTATIONS["inhouse.torch"], name="absent",
                                 requires=("torch", "no_such_module_for_the_benchmark"))
    monkeypatch.setitem(sweep.IMPLEMENTATIONS, "absent", absent)
    monkeypatch.setattr(sweep, "measure", lambda *args: pytest.fail("a child was started"))
    monkeypatch.setattr(sweep, "plan", lambda args: [("cpu", 64, "semi_hard", "absent")])
    args = run.parse(["--quick", "--sizes", "64", "128", "--output", str(tmp_path / "out.jsonl")])
    writer = run.ResultsWriter(args.output)
    records = sweep.sweep(args, writer)
    writer.close()
    assert [(r["n"], r["status"], r["reason"]) for r in records] == [
        (64, "skipped", "no_such_module_for_the_benchmark not installed"),
        (128, "skipped", "no_such_module_for_the_benchmark not installed")]


def _small_batch(task: str):
    """A clustered batch of 36 rows in 6 classes, or the task's own batch where its loss reads pairs."""
    import numpy as np

    from benchmarks.tasks import batch, reads_pairs

    if reads_pairs(task):
        return batch(task, 36, 8, seed=4)
    rng = np.random.default_rng(4)
    x = (np.repeat(rng.normal(size=(6, 8)), 6, axis=0) + 0.7 * rng.normal(size=(36, 8))).astype(np.float32)
    return x, rng.permutation(np.repeat(np.arange(6), 6))


def _peer_matches_its_spec(loss_fn, spec, task):
    """The loss of a torch peer on a small batch equals the oracle's for the spec it states, and, where that is the
    task's spec, inhouse.torch's: like is compared with like."""
    import numpy as np
    import torch

    import reference
    from benchmarks.tasks import TASKS
    from inhouse.torch_losses import metric_loss

    x, y = _small_batch(task)
    loss = loss_fn(torch.tensor(x), torch.tensor(y)).item()
    assert loss == pytest.approx(reference.evaluate(x.astype(np.float64), y, spec).loss, rel=1e-4, abs=1e-5)
    if spec == TASKS[task]:
        assert loss == pytest.approx(metric_loss(torch.tensor(x), torch.tensor(y), spec).item(), rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("task", ["batch_hard", "semi_hard"])
def test_the_naive_baselines_compute_the_spec_they_state(task):
    from adapters.torch_native import cdist_batch_hard
    from benchmarks.implementations import IMPLEMENTATIONS
    from benchmarks.naive import tiled_semi_hard

    spec = IMPLEMENTATIONS["torch.naive"].specs[task]
    loss = {"batch_hard": cdist_batch_hard, "semi_hard": tiled_semi_hard}[task]
    _peer_matches_its_spec(lambda e, y: loss(e, y, spec), spec, task)


def test_sentence_transformers_computes_the_spec_it_states():
    pytest.importorskip("sentence_transformers", reason="the sentence-transformers peer is not installed")
    from benchmarks.implementations import IMPLEMENTATIONS
    from benchmarks.peers import sentence_transformers_loss

    for task, spec in IMPLEMENTATIONS["sentence-transformers"].specs.items():
        _peer_matches_its_spec(sentence_transformers_loss(task), spec, task)


def test_pytorch_metric_learning_computes_the_spec_it_states():
    pytest.importorskip("pytorch_metric_learning", reason="the pytorch-metric-learning peer is not installed")
    from benchmarks.implementations import IMPLEMENTATIONS
    from benchmarks.peers import pml_loss

    for task, spec in IMPLEMENTATIONS["pytorch-metric-learning"].specs.items():
        _peer_matches_its_spec(pml_loss(task), spec, task)


TF_NPAIRS = """
import json, sys
import numpy as np
import tensorflow as tf
from adapters import tfa
from benchmarks.tasks import TASKS, batch
x, y = batch("npairs", 36, 8, seed=4)
print(json.dumps(float(tfa.npairs_loss(tf.constant(x), tf.constant(y), TASKS["npairs"]))))
"""


def test_tf_addons_npairs_computes_the_task():
    """In a child process, as the benchmark runs TensorFlow: npairs_loss on the porter's cosine logits."""
    pytest.importorskip("tensorflow_addons", reason="the TF-Addons peer is not installed")
    import numpy as np

    import reference
    from benchmarks.implementations import IMPLEMENTATIONS
    from benchmarks.tasks import TASKS, batch

    assert IMPLEMENTATIONS["tf-addons"].specs["npairs"] == TASKS["npairs"]
    completed = subprocess.run([sys.executable, "-c", TF_NPAIRS], cwd=ROOT, capture_output=True, text=True,
                               timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    x, y = batch("npairs", 36, 8, seed=4)
    expected = reference.evaluate(x.astype(np.float64), y, TASKS["npairs"]).loss
    assert json.loads(completed.stdout.splitlines()[-1]) == pytest.approx(expected, rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("n", [8, 64, 1024])
def test_each_task_gets_a_batch_in_its_losses_layout(n):
    """Pairs-layout tasks: rows 0..B-1 anchors, row B + i the positive of anchor i with its label, every pair its own
    class (where PML's NPairsLoss and TF-Addons' npairs_loss agree); the others N // 8 classes of 8."""
    import numpy as np

    from benchmarks.tasks import TASKS, batch, reads_pairs
    from reference import LOSSES
    from reference.validation import as_layout

    assert {task for task in TASKS if reads_pairs(task)} == {"npairs", "multiple_negatives"}
    for task, spec in TASKS.items():
        x, labels = batch(task, n, 16, seed=1)
        assert x.shape == (n, 16) and x.dtype == np.float32 and labels.shape == (n,)
        as_layout(labels, LOSSES[spec.mining])  # raises where the layout is wrong
        if reads_pairs(task):
            assert np.array_equal(labels[: n // 2], labels[n // 2:]) and len(set(labels)) == n // 2
        else:
            assert sorted(np.bincount(labels)) == [8] * (n // 8)


# --- the guard: python -m benchmarks.run --check ------------------------------------------------------------


def _records(ours: float, peer: float, matmul: float, task="batch_hard", n=1024) -> list[dict]:
    base = {"task": task, "n": n, "d": 64, "device": "cpu", "status": "ok"}
    return [{**base, "task": "matmul", "implementation": "matmul", "seconds": matmul},
            {**base, "implementation": "inhouse.torch", "seconds": ours},
            {**base, "implementation": "pytorch-metric-learning", "seconds": peer},
            {**base, "implementation": "sentence-transformers", "seconds": 2 * peer}]


COMMITTED = {"min_noise": 0.05, "setting": {"d": 64, "threads": 1, "time_cap": 150},
             "figures": [{"task": "batch_hard", "n": 1024, "of": "peer", "speedup": 10.0, "noise": 0.2,
                          "peer": "pytorch-metric-learning"},
                         {"task": "batch_hard", "n": 1024, "of": "matmul", "speedup": 0.5, "noise": 0.01}]}


def _on_machine(there: str) -> dict:
    return {**COMMITTED, "setting": {**COMMITTED["setting"], "machine": there}}


def test_the_check_reads_speedups_over_the_fastest_peer_and_the_matmul():
    from benchmarks import check

    figures = {(f.of, f.peer): f.speedup for f in check.speedups(_records(ours=1.0, peer=10.0, matmul=0.5))}
    assert figures == {("peer", "pytorch-metric-learning"): 10.0, ("matmul", None): 0.5}


def test_the_least_work_is_a_reference_never_the_fastest_peer():
    """The least work runs faster than any implementation of the loss: a speedup over it is no speedup over a peer."""
    from benchmarks import check

    least = {**_records(1.0, 1.0, 1.0)[1], "implementation": "least-work", "seconds": 0.1}
    figures = {(f.of, f.peer): f.speedup for f in check.speedups([*_records(ours=1.0, peer=10.0, matmul=0.5), least])}
    assert figures == {("peer", "pytorch-metric-learning"): 10.0, ("matmul", None): 0.5}
    assert all("least-work" not in check.peers_of(task) for task in TASKS)


def test_our_triton_kernels_are_never_a_peer():
    """inhouse.triton is ours too: on a GPU, where it may be the fastest of the rest, a figure against it would
    measure us against ourselves."""
    from benchmarks import check

    records = _records(ours=1.0, peer=10.0, matmul=0.5)
    triton = {**records[1], "implementation": "inhouse.triton", "seconds": 0.5}
    figures = {(f.of, f.peer): f.speedup for f in check.speedups([*records, triton])}
    assert figures == {("peer", "pytorch-metric-learning"): 10.0, ("matmul", None): 0.5}
    assert all("inhouse.triton" not in check.peers_of(task) for task in TASKS)


def _least_work(task: str, monkeypatch) -> tuple[int, int]:
    """(multiply-adds, float64 exponentials) of one call of the task's least work at N = 16, D = 8."""
    import torch

    from benchmarks.implementations import IMPLEMENTATIONS
    from inhouse import distance_rows
    from tests.inhouse.products import MultiplyAdds

    exponentials, exp_ = [], distance_rows.exp_

    def counting(t):
        exponentials.append(t.numel() if t.dtype == torch.float64 else 0)
        return exp_(t)

    monkeypatch.setattr(distance_rows, "exp_", counting)
    x, labels = batch(task, 16, 8, seed=0)
    step = IMPLEMENTATIONS["least-work"].prepare(task, x, labels, "cpu")
    with MultiplyAdds() as products:
        step()
    return products.count, sum(exponentials)


@pytest.mark.parametrize("task", sorted(LEAST_WORK_BLOCKS))
def test_the_least_work_runs_its_products_and_exponentials_over_the_block_its_loss_reads(task, monkeypatch):
    """The products over the block (anchors x positives for the pairs layout, N x N otherwise: three, or two where
    inhouse.torch keeps the square block whole) and a float64 exponential per entry of it, whatever the chunks of
    rows."""
    from inhouse import distance_rows

    monkeypatch.setattr(distance_rows, "ROW_ELEMENTS", 3 * 16)  # a few rows per chunk
    pairs = LEAST_WORK_BLOCKS[task] == "pairs"
    block, gradient_products = (8 * 8, 2) if pairs else (16 * 16, 1)  # N = 16: the square block kept whole
    assert _least_work(task, monkeypatch) == ((1 + gradient_products) * block * 8, block)


@pytest.mark.parametrize("task", sorted(task for task, block in LEAST_WORK_BLOCKS.items() if block == "square"))
def test_a_square_block_read_by_its_triangle_takes_half_of_each_product(task, monkeypatch):
    """Where inhouse.torch reads the square block by its upper triangle (strips of 4 rows at N = 16): (N^2 + 4 N) / 2
    pairs measured, pulled back to their rows and to their columns, and still an exponential per entry of N x N."""
    from inhouse import triangle

    monkeypatch.setattr(triangle, "TRIANGLE_FROM", 0)
    monkeypatch.setattr(triangle, "STRIP_ROWS", 4)
    assert _least_work(task, monkeypatch) == (3 * (16 * 16 + 16 * 4) // 2 * 8, 16 * 16)


@pytest.mark.parametrize("ours, passes", [(1.0, True), (1.2, True), (1.3, False), (0.5, True)])
def test_the_check_fails_only_below_the_committed_figure_less_its_noise(ours, passes):
    """Committed 10x over the peer with 20% noise: 10 / 1.2 = 8.3x passes, 10 / 1.3 = 7.7x < 8x fails; the matmul
    figure (0.5x, its own noise 1% under the floor of 5%) holds as the matmul scales with ours."""
    from benchmarks import check

    failures = check.judge(COMMITTED, check.speedups(_records(ours=ours, peer=10.0, matmul=0.5 * ours)))
    assert (failures == []) == passes, failures
    if not passes:
        assert len(failures) == 1 and "batch_hard N=1024 peer" in failures[0] and "8x" in failures[0]


def test_a_committed_figure_that_was_not_measured_fails_the_check():
    from benchmarks import check

    records = [r for r in _records(ours=1.0, peer=10.0, matmul=0.5) if r["implementation"] == "inhouse.torch"]
    assert check.judge(COMMITTED, check.speedups(records)) == [
        "batch_hard N=1024 peer: not measured", "batch_hard N=1024 matmul: not measured"]


@pytest.mark.parametrize("ours, status", [(1.0, 0), (2.0, 1)])
def test_run_check_exits_non_zero_when_a_figure_falls_short(tmp_path, monkeypatch, capsys, ours, status):
    """The command measures the committed tasks and sizes in one sweep and sets its exit status by judge()."""
    committed = tmp_path / "committed.json"
    committed.write_text(json.dumps(COMMITTED))
    asked = {}

    def fake_sweep(args, writer):
        asked.update(tasks=args.tasks, sizes=args.sizes, threads=args.threads, impls=args.implementations)
        return _records(ours=ours, peer=10.0, matmul=0.5 * ours)

    monkeypatch.setattr(run, "sweep", fake_sweep)
    assert run.main(["--check", "--check-file", str(committed)]) == status
    assert asked == {"tasks": ["batch_hard"], "sizes": [1024], "threads": 1,
                     "impls": ["inhouse.torch", "pytorch-metric-learning"]}
    assert ("FAILED batch_hard N=1024 peer" in capsys.readouterr().out) == bool(status)


@pytest.mark.parametrize("second, status", [(1.0, 0), (2.0, 1)])
def test_a_figure_fails_the_check_only_if_it_falls_short_twice(tmp_path, monkeypatch, capsys, second, status):
    """A figure below its floor sends its task to be measured once more, and the better of the two values is judged:
    a burst of noise passes on the second try, a regression fails both."""
    committed = tmp_path / "committed.json"
    committed.write_text(json.dumps({**COMMITTED, "figures": [*COMMITTED["figures"], {
        "task": "npairs", "n": 1024, "of": "matmul", "speedup": 0.5, "noise": 0.01, "peer": None}]}))
    times = {"batch_hard": iter([2.0, second]), "npairs": iter([1.0])}
    asked = []

    def fake_sweep(args, writer):
        task = args.tasks[0]
        asked.append(task)
        return _records(ours=next(times[task]), peer=10.0, matmul=0.5, task=task)

    monkeypatch.setattr(run, "sweep", fake_sweep)
    assert run.main(["--check", "--check-file", str(committed)]) == status
    assert asked == ["batch_hard", "npairs", "batch_hard"]  # npairs held: measured once
    out = capsys.readouterr().out
    assert "measuring batch_hard once more" in out and ("FAILED batch_hard N=1024 peer" in out) == bool(status)


def test_the_check_says_when_the_figures_were_committed_on_another_machine(tmp_path, monkeypatch, capsys):
    from benchmarks import check

    monkeypatch.setattr(run, "sweep", lambda args, writer: _records(ours=1.0, peer=10.0, matmul=0.5))
    committed = tmp_path / "committed.json"
    for there, told in (("a CPU of another make, 2 cores usable, 24 GiB memory", True), (check.machine(["cpu"]), False)):
        committed.write_text(json.dumps(_on_machine(there)))
        assert run.main(["--check", "--check-file", str(committed)]) == 0
        assert (f"measured on {there}; this is {check.machine(['cpu'])}" in capsys.readouterr().out) == told


def test_commit_refuses_to_mix_two_machines_figures_in_one_file(tmp_path, monkeypatch, capsys):
    """The file's setting names one machine for every figure: committing some tasks on another CPU model would keep
    the rest under this machine's name. Refused before anything is measured, the file untouched; every task may."""
    from benchmarks import check

    committed = tmp_path / "committed.json"
    text = json.dumps(_on_machine("a CPU of another make"))
    committed.write_text(text)
    measured = []
    monkeypatch.setattr(run, "sweep", lambda args, writer: measured.append(args.tasks) or [])
    assert run.main(["--commit", "1", "--tasks", "npairs", "--check-file", str(committed),
                     "--output", str(tmp_path / "records.jsonl")]) == 2
    assert "would leave batch_hard under this machine's name" in capsys.readouterr().err
    assert measured == [] and committed.read_text() == text
    assert check.mixed_machines(json.loads(text), ["batch_hard"], check.machine(["cpu"])) is None  # every task: replaced


def test_the_check_judges_against_this_machines_own_figures(tmp_path, monkeypatch, capsys):
    """Without --check-file: the committed-*.json whose setting names this machine, or else committed.json (with the
    note), or a clear error where neither exists."""
    from benchmarks import check

    monkeypatch.setattr(check, "COMMITTED", tmp_path / "committed.json")
    monkeypatch.setattr(run, "sweep", lambda args, writer: _records(ours=1.0, peer=10.0, matmul=0.5))
    assert run.main(["--check"]) == 2
    assert "no committed figures at" in capsys.readouterr().err
    (tmp_path / "committed.json").write_text(json.dumps(_on_machine("a CPU of another make")))
    assert run.main(["--check"]) == 0
    assert "measured on a CPU of another make" in capsys.readouterr().out
    (tmp_path / "committed-this-cpu.json").write_text(json.dumps(_on_machine(check.machine(["cpu"]))))
    assert run.main(["--check"]) == 0
    out = capsys.readouterr().out
    assert f"judging against {tmp_path / 'committed-this-cpu.json'}" in out and "another make" not in out


def test_commit_on_a_machine_without_figures_of_its_own_starts_its_own_file(tmp_path, monkeypatch):
    """`--commit` never writes over another machine's figures: it starts committed-<machine>.json, which is then
    this machine's file."""
    from benchmarks import check

    monkeypatch.setattr(check, "COMMITTED", tmp_path / "committed.json")
    monkeypatch.setattr(check, "machine", lambda devices: "Some CPU(R) 9000, 2 cores usable, 24 GiB memory")
    text = json.dumps(_on_machine("a CPU of another make"))
    (tmp_path / "committed.json").write_text(text)

    def fake_sweep(args, writer):
        return _records(ours=1.0, peer=10.0, matmul=0.5, task=args.tasks[0])

    monkeypatch.setattr(run, "sweep", fake_sweep)
    assert run.main(["--commit", "1", "--tasks", "batch_hard", "--output", str(tmp_path / "records.jsonl")]) == 0
    own = tmp_path / "committed-some-cpu-r-9000-2-cores-usable-24-gib-memory.json"
    assert (tmp_path / "committed.json").read_text() == text
    assert check.load(own)["setting"]["machine"] == "Some CPU(R) 9000, 2 cores usable, 24 GiB memory"
    assert check.own_figures("Some CPU(R) 9000, 2 cores usable, 24 GiB memory") == own


def test_the_committed_figures_name_measured_tasks_and_a_noise():
    from benchmarks import check
    from benchmarks.implementations import TASKS

    machines = []
    for path in sorted(check.COMMITTED.parent.glob("committed*.json")):
        committed = check.load(path)
        assert 0 < committed["min_noise"] < 1 and all(0 <= e["noise"] < 1 for e in committed["figures"]), path
        assert {e["task"] for e in committed["figures"]} <= set(TASKS), path
        assert {e["of"] for e in committed["figures"]} == {"peer", "matmul"}, path
        machines.append(committed["setting"]["machine"])
    assert len(machines) == len(set(machines)) >= 1  # one file per machine


def test_the_noise_floor_applies_below_a_figures_own_noise():
    """The matmul figure: committed 0.5x with its own noise 1% under the floor of 5%; 0.48x passes, 0.47x fails."""
    from benchmarks import check

    for ours, passes in ((1.0 / 0.48, True), (1.0 / 0.47, False)):
        failures = check.judge(COMMITTED, check.speedups(_records(ours=ours, peer=100.0, matmul=1.0)))
        assert (failures == []) == passes, failures


def test_committed_figures_keep_the_lowest_value_and_each_figures_spread():
    from benchmarks import check

    runs = [check.speedups(_records(ours=ours, peer=10.0, matmul=0.5)) for ours in (1.0, 1.25)]
    committed = check.committed_figures(runs[0], runs, min_noise=0.05)
    peer = next(e for e in committed["figures"] if e["of"] == "peer")
    assert (peer["speedup"], peer["noise"], committed["min_noise"]) == (8.0, 0.2, 0.05)


def test_commit_measures_every_peer_and_replaces_only_the_measured_tasks(tmp_path, monkeypatch):
    """`--commit RUNS`: RUNS sweeps per task (ours, every peer, the least work where the task has one, the matmul),
    each figure its lowest value over the runs and its spread; the figures of tasks not measured are kept."""
    from benchmarks import check

    committed = tmp_path / "committed.json"
    committed.write_text(json.dumps({**COMMITTED, "figures": [*COMMITTED["figures"], {
        "task": "lifted", "n": 1024, "of": "matmul", "speedup": 0.01, "noise": 0.1, "peer": None}]}))
    asked, ours = [], iter([1.0, 1.0, 1.25, 1.25])

    def fake_sweep(args, writer):
        asked.append((tuple(args.tasks), tuple(args.implementations), tuple(args.sizes), args.threads))
        records = _records(ours=next(ours), peer=10.0, matmul=0.5, task=args.tasks[0])
        for record in records:
            writer.write("benchmark", **record, spec_label="", peak_bytes=None, reference_seconds=None)
        return records

    monkeypatch.setattr(run, "sweep", fake_sweep)
    results = tmp_path / "records.jsonl"
    assert run.main(["--commit", "2", "--tasks", "batch_hard", "npairs", "--check-file", str(committed),
                     "--output", str(results)]) == 0
    written = [json.loads(line) for line in results.read_text().splitlines()]
    headers = [r for r in written if r["kind"] == "run"]
    assert len(headers) == 2 and headers[0]["benchmark"]["tasks"] == ["batch_hard", "npairs"]
    assert sum(r["kind"] == "benchmark" for r in written) == 4 * len(_records(1.0, 1.0, 1.0))
    assert asked[:2] == [(("batch_hard",), ("inhouse.torch", *check.peers_of("batch_hard")), (1024, 4096), 1),
                         (("npairs",), ("inhouse.torch", *check.peers_of("npairs"), "least-work"), (1024, 4096), 1)]
    assert len(asked) == 4
    assert set(check.peers_of("npairs")) == {"pytorch-metric-learning", "tf-addons"}
    assert check.peers_of("multiple_negatives") == ["sentence-transformers"]
    written = check.load(committed)
    assert written["setting"]["runs"] == 2 and written["min_noise"] == COMMITTED["min_noise"]
    figures = {(e["task"], e["of"]): e for e in written["figures"]}
    assert set(figures) == {("lifted", "matmul"), ("batch_hard", "peer"), ("batch_hard", "matmul"),
                            ("npairs", "peer"), ("npairs", "matmul")}
    assert (figures[("npairs", "peer")]["speedup"], figures[("npairs", "peer")]["noise"]) == (8.0, 0.2)

"""The distributed targets (engine/distributed.py): G's assembly, shard layouts, a rank that hangs or dies, the
groups' shutdown, construction errors, the cells and the strategy, the reproducer, and a user's distributed loss
checked through a child `pytest --adapter` (examples/my_distributed_loss.py)."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import find, given, settings

import reference
from adapters import Adapter, wrap_tensorflow, wrap_torch
from engine import distributed
from engine.cells import conformance_cells
from engine.harness import AdapterFailure, call_adapter
from engine.workers import PROCESS_GROUPS
from engine.reproducer import reproducer
from engine.draws import batches

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.xdist_group(PROCESS_GROUPS)  # the worker that starts the cells' groups too
from tests import distributed_losses as losses  # noqa: E402  (after the skip: it imports torch)
from examples.my_distributed_loss import ADAPTER as EXAMPLE  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
X = np.random.default_rng(7).normal(size=(7, 3))
Y = np.array([0, 0, 1, 1, 2, 2, 0])


def test_the_gradient_is_the_ranks_gradients_averaged_in_the_global_row_order():
    shards = (1, 4, 2)
    out = call_adapter(losses.ASSEMBLY, X, Y, losses.SPEC, "float64", "dist-gloo-3", shards=shards)
    owner = np.repeat(np.arange(3), shards)  # the rank of each row
    np.testing.assert_allclose(out.grad, 2 * (owner + 1)[:, None] * X / 3, rtol=1e-15)
    assert out.loss == pytest.approx(np.sum(X[:1] ** 2))  # rank 0's loss
    assert distributed.last_call().rank_losses == pytest.approx(
        [(r + 1) * np.sum(X[owner == r] ** 2) for r in range(3)])
    assert out.target == "cpu, 3 processes (torch.distributed gloo)"


@pytest.mark.parametrize("device, shards", [("dist-gloo-2", None), ("dist-gloo-2", (1, 6)), ("dist-gloo-2", (4, 3)),
                                            ("dist-gloo-3", (1, 1, 5)), ("dist-gloo-3", (3, 1, 3))])
def test_uneven_shards_and_a_one_row_rank_match_the_oracle_on_the_whole_batch(device, shards):
    """A rank with one row has no pair of its own: only the gathered batch gives its row a loss term."""
    spec = EXAMPLE.specs[0]
    oracle = reference.evaluate(X, Y, spec)
    out = call_adapter(EXAMPLE, X, Y, spec, "float64", device, shards=shards)
    assert out.loss == pytest.approx(oracle.loss, rel=1e-12)
    np.testing.assert_allclose(out.grad, oracle.grad, atol=1e-12)
    assert len(set(distributed.last_call().rank_losses)) == 1  # every rank computes the whole-batch loss


def test_a_layout_that_is_not_one_row_per_rank_at_least_is_refused():
    for shards in ((7, 0), (3, 3), (1, 2, 4)):
        with pytest.raises(AdapterFailure, match="not a layout of 7 rows over 2 ranks"):
            call_adapter(EXAMPLE, X, Y, EXAMPLE.specs[0], "float64", "dist-gloo-2", shards=shards)
    with pytest.raises(ValueError, match="single-process target"):
        call_adapter(EXAMPLE, X, Y, EXAMPLE.specs[0], "float64", "cpu", shards=(3, 4))


def _labels_on_rank_one(label: int) -> np.ndarray:
    return np.concatenate([Y[:-1], [label]])  # the last row: rank 1's at W = 2


def test_a_hung_rank_fails_its_call_within_the_timeout_and_the_next_call_works():
    with pytest.raises(AdapterFailure, match=r"rank 1 of 2 gave no answer with its loss and gradient within the "
                                             r"per-call timeout of 3 s; the process group was shut down"):
        call_adapter(losses.MISBEHAVING, X, _labels_on_rank_one(losses.HANG), losses.SPEC, "float64", "dist-gloo-2",
                     timeout=3)
    out = call_adapter(losses.MISBEHAVING, X, Y, losses.SPEC, "float64", "dist-gloo-2", timeout=60)
    np.testing.assert_allclose(out.grad, X)  # d(sum x^2)/dx = 2x, averaged over 2 ranks: not quarantined


def test_a_rank_that_dies_fails_its_call_and_the_next_call_works():
    with pytest.raises(AdapterFailure, match="rank 1 of 2 exited with exit code 3 before it answered"):
        call_adapter(losses.MISBEHAVING, X, _labels_on_rank_one(losses.CRASH), losses.SPEC, "float64", "dist-gloo-2")
    out = call_adapter(losses.MISBEHAVING, X, Y, losses.SPEC, "float64", "dist-gloo-2")
    np.testing.assert_allclose(out.grad, X)


def test_a_rank_that_raises_names_itself_and_the_exception():
    with pytest.raises(AdapterFailure, match=r"rank \d of 2 raised TypeError: .*returned a float"):
        call_adapter(wrap_torch(_returns_a_float, name="float", spec=losses.SPEC, dtypes=("float64",),
                                targets=("dist-gloo-2",)), X, Y, losses.SPEC, "float64", "dist-gloo-2")


def _returns_a_float(embeddings, labels):
    return 1.0


def test_shutdown_stops_every_rank_and_an_exiting_process_leaves_none_behind():
    call_adapter(EXAMPLE, X, Y, EXAMPLE.specs[0], "float64", "dist-gloo-2")
    pids = distributed.rank_pids()
    assert len(pids) >= 2
    distributed.shutdown()
    assert distributed.rank_pids() == [] and not any(Path(f"/proc/{pid}").exists() for pid in pids)
    script = """
        import numpy as np
        from engine import distributed
        from engine.harness import call_adapter
        from examples.my_distributed_loss import ADAPTER
        if __name__ == "__main__":
            x = np.arange(8.0).reshape(4, 2)
            call_adapter(ADAPTER, x, np.array([0, 0, 1, 1]), ADAPTER.specs[0], "float64", "dist-gloo-2")
            print(distributed.rank_pids())
    """  # no shutdown(): atexit does it
    run = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    pids = json.loads(run.stdout.strip().splitlines()[-1])
    assert len(pids) == 2 and not any(Path(f"/proc/{pid}").exists() for pid in pids)


def test_ranks_fork_from_the_clean_server_that_has_imported_torch_once():
    """Not spawned interpreters that each import torch again (2-3 s of CPU a rank): the ranks are forked from
    engine/harness.py's forkserver, a process started clean, whose preload holds torch."""
    import multiprocessing

    from engine.harness import CHILD_CONTEXT

    if "forkserver" not in multiprocessing.get_all_start_methods():
        pytest.skip("no forkserver on this platform: the ranks are spawned")
    call_adapter(EXAMPLE, X, Y, EXAMPLE.specs[0], "float64", "dist-gloo-2")
    parents = {int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]) for pid in distributed.rank_pids()}
    (server,) = parents
    assert server != os.getpid() and CHILD_CONTEXT.get_start_method() == "forkserver"
    assert "libtorch" in Path(f"/proc/{server}/maps").read_text()  # the server has torch loaded


def test_bad_claims_are_refused_when_the_adapter_is_made():
    spec = losses.SPEC
    with pytest.raises(TypeError, match="must be a module-level function"):
        wrap_torch(lambda x, y: x.sum(), name="lambda", spec=spec, targets=("dist-gloo-2",))
    with pytest.raises(ValueError, match=r"targets \['dist-gloo-2'\] not supported for tensorflow"):
        wrap_tensorflow(_returns_a_float, name="tf", spec=spec, targets=("cpu", "dist-gloo-2"))
    with pytest.raises(ValueError, match=r"targets \['dist-gloo-9'\] not supported"):
        wrap_torch(losses.rank_weighted_squares, name="unknown", spec=spec, targets=("dist-gloo-9",))
    with pytest.raises(ValueError, match="mining='triplets' has no meaning on dist-gloo-2"):
        wrap_torch(losses.with_triplets, name="triplets", spec=reference.Spec(mining="triplets"),
                   targets=("dist-gloo-2",))
    with pytest.raises(ValueError, match=r"targets \['dist-gloo-2'\] are distributed: .* gives none"):
        Adapter(name="no rank call", framework="torch", specs=spec, run=EXAMPLE.run, targets=("cpu", "dist-gloo-2"))
    with pytest.raises(TypeError, match="rank_call must be callable or None"):
        Adapter(name="bad rank call", framework="torch", specs=spec, run=EXAMPLE.run, rank_call="not a function")


def test_on_a_distributed_target_the_engine_shards_and_run_refuses_the_call():
    with pytest.raises(ValueError, match=r"'dist-gloo-2' is a distributed target, whose ranks run rank_call"):
        EXAMPLE.run(X, Y, EXAMPLE.specs[0], "float64", "dist-gloo-2")


def _engine_imports(source: str) -> list[str]:
    """Every import of `engine` (or a submodule) in `source`, the ones inside functions included."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            continue
        found += [f"line {node.lineno}: {name}" for name in names if name.split(".")[0] == "engine"]
    return found


def test_adapters_import_nothing_from_the_engine():
    """The layers: adapters/ lies below engine/, which shards a distributed call itself (the adapter gives only
    its rank_call), so no adapter reaches up into the engine, not even inside a function."""
    found = {path.relative_to(ROOT).as_posix(): _engine_imports(path.read_text())
             for path in sorted((ROOT / "adapters").rglob("*.py"))}
    assert {path: lines for path, lines in found.items() if lines} == {}
    assert _engine_imports("def f():\n    from engine.distributed import run_sharded\n") != []  # the check checks


def test_distributed_cells_exist_only_for_adapters_that_claim_the_targets():
    single = wrap_torch(losses.rank_weighted_squares, name="cpu only", spec=losses.SPEC)
    assert {cell.target for cell in conformance_cells([single])} == {"cpu"}
    assert {cell.target for cell in conformance_cells([EXAMPLE])} == {"dist-gloo-2", "dist-gloo-3"}


def test_the_strategy_draws_each_shard_layout_and_none_on_a_single_process_target():
    spec = EXAMPLE.specs[0]
    for layout in ("even", "uneven", "one row"):
        found = find(batches(spec, "float64", processes=3), lambda b, layout=layout: f"{layout} shards" in b.layout)
        assert len(found.shards) == 3 and sum(found.shards) == len(found.labels) and min(found.shards) >= 1
    one_row = find(batches(spec, "float64", processes=3), lambda b: "one row shards" in b.layout)
    assert 1 in one_row.shards

    @settings(max_examples=30)
    @given(batch=batches(spec, "float64", processes=3, equal_shards=True), single=batches(spec, "float64"))
    def layouts(batch, single):
        assert len(set(batch.shards)) == 1 and single.shards is None

    layouts()


def test_the_digest_tells_layouts_apart():
    from contract.batch import Batch

    plain = Batch(X, Y)
    assert plain.digest() != Batch(X, Y, shards=(1, 6)).digest() != Batch(X, Y, shards=(4, 3)).digest()
    assert plain.digest() == Batch(X.copy(), Y.copy()).digest()


def test_the_reproducer_names_the_layout_and_runs_as_a_pasted_script(tmp_path):
    spec = EXAMPLE.specs[0]
    source = reproducer(EXAMPLE.name, "examples.my_distributed_loss:ADAPTER", spec, "float64", "dist-gloo-3", X, Y,
                        None, (1, 4, 2))
    assert "shards = (1, 4, 2)" in source and 'if __name__ == "__main__":' in source
    script = tmp_path / "reproduce.py"
    script.write_text(source)
    run = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    oracle = reference.evaluate(X, Y, spec).loss
    assert f"loss: oracle {oracle!r}" in run.stdout and "grad: max |implementation - oracle|" in run.stdout


def test_a_users_distributed_loss_conforms_through_pytest_adapter(tmp_path):
    results = tmp_path / "results.jsonl"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "--adapter", "examples.my_distributed_loss:ADAPTER", "suite/test_conformance.py",
         "-p", "no:cacheprovider", "-q", "--results", str(results)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "CI": "true"},
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    records = [json.loads(line) for line in results.read_text().splitlines()]
    comparisons = [r for r in records if r.get("kind") == "comparison"]
    # 1 spec x 2 dtypes x 2 targets x (loss, grad), every one judged against the oracle and passed
    assert len(comparisons) == 8 and {r["verdict"] for r in comparisons} == {"pass"}
    assert {r["device"] for r in comparisons} == {"dist-gloo-2", "dist-gloo-3"}
    assert all(r["examples"] >= 10 for r in comparisons)


@pytest.mark.parametrize("device", ["dist-gloo-2", "dist-gloo-3"])
def test_an_all_gather_without_gradient_is_told_from_one_with(device):
    """The softmax family's DDP fault: NT-Xent on rows gathered without gradient keeps the loss and loses each rank's
    terms as another's candidate, so G is off (here by far more than the float64 gradient tolerance); the in-house
    all-gather with gradient (inhouse.torch.distributed) gives the oracle's G."""
    from adapters import distributed as distributed_adapters

    x = np.random.default_rng(3).normal(size=(12, 4))
    y = np.tile(np.arange(4), 3)
    oracle = reference.evaluate(x, y, losses.NTXENT)
    faulty = call_adapter(losses.GATHERED_WITHOUT_GRADIENT, x, y, losses.NTXENT, "float64", device)
    assert faulty.loss == pytest.approx(oracle.loss, rel=1e-12)
    assert np.abs(faulty.grad - oracle.grad).max() > 100 * 1e-5
    inhouse = next(a for a in distributed_adapters.ADAPTERS if a.name == "inhouse.torch.distributed")
    spec = next(s for s in inhouse.specs if s.mining == "ntxent")
    answer = reference.evaluate(x, y, spec)
    right = call_adapter(inhouse, x, y, spec, "float64", device)
    np.testing.assert_allclose(right.grad, answer.grad, rtol=1e-9, atol=1e-12)

"""Running a loss over a batch sharded across processes (torch.distributed, gloo), judged as DDP trains.

A call on a target with `processes` W > 1 (contract/targets.py, dist-gloo-2 and dist-gloo-3; engine/harness.py
`call_adapter` comes here for it) splits the global batch X, y into W contiguous shards (`shards`: rows per rank, in
the global row order; the even split by default), and rank r runs the function the adapter's `rank_call` gives
(contract/adapter.py; a wrap_torch adapter's loss through its own cast/backward code, adapters/_torch.execute) on its
shard, returning L_r and dL_r/dX_r for its own rows. DDP averages gradients across ranks, so training follows
G = (1/W) concat_r dL_r/dX_r; the call returns Output(loss = L_0, grad = G), which the cell judges against the
oracle's loss and gradient on the whole batch (docs/distributed.md).

One process group per world size, started on the first call that needs it (processes forked from the clean
forkserver of engine/harness.py, which has imported torch once, so no framework state of this process is inherited
and no rank imports torch again; "spawn" where there is no forkserver; init_process_group("gloo") on a free localhost
port), each rank waiting on its own queue for jobs. A job is the adapter's per-rank function (pickled by reference:
the rank imports its module, as harness isolation does) and the rank's shard. A rank that raises, dies or gives no
answer within the per-call timeout (the harness's, passed to `run_sharded`) fails the call with a `RankFailure`
naming the rank (the harness records it as the cell's AdapterFailure); the group is then shut down, and the next
call starts a fresh one. Groups are shut down at interpreter exit (atexit) or by `shutdown()`.
"""
from __future__ import annotations

import atexit
import contextlib
import datetime
import pickle
import queue
import socket
import time
from dataclasses import dataclass

import numpy as np

from contract.adapter import Output, Unavailable
from contract.targets import processes as processes_of

from .harness import CHILD_CONTEXT, process_death

START_TIMEOUT_S = 120.0  # a first forkserver importing torch, or W spawned ranks each importing it, on a loaded machine
CLOSE_S = 10.0  # how long a rank may take to leave the group when asked, before it is killed
POLL_S = 0.1  # how often the parent looks for dead ranks while it waits


class RankFailure(RuntimeError):
    """A rank raised, died or hung: the call failed, and the group was shut down."""


@dataclass(frozen=True)
class Sharded:
    """What one sharded call returned, in float64: rank 0's loss, G, and every rank's loss (do the ranks agree?)."""

    loss: float
    grad: np.ndarray
    rank_losses: tuple[float, ...]


# --- the shard layout -------------------------------------------------------------------------------------------

def even_shards(rows: int, world_size: int) -> tuple[int, ...]:
    """np.array_split's sizes (what DistributedSampler-style splitting gives): the first rows % W ranks hold one
    row more."""
    return tuple(len(part) for part in np.array_split(np.arange(rows), world_size))


def check_shards(shards, rows: int, world_size: int) -> tuple[int, ...]:
    """`shards` as a tuple, or a ValueError saying why it is not a layout of `rows` rows over `world_size` ranks."""
    shards = tuple(int(s) for s in shards)
    if len(shards) != world_size or sum(shards) != rows or min(shards) < 1:
        raise ValueError(f"shards {shards} is not a layout of {rows} rows over {world_size} ranks: one positive row "
                         f"count per rank, summing to {rows} (every rank holds a row, as under DDP)")
    return shards


# --- one sharded call ---------------------------------------------------------------------------------------------

def run_sharded(on_rank, who: str, embeddings: np.ndarray, labels: np.ndarray, device: str, shards=None, *,
                timeout: float, equal_shards: bool = False) -> Output:
    """Rank r runs on_rank(X_r, y_r) -> Output(L_r, dL_r/dX_r) (the adapter's rank_call gave on_rank), within
    `timeout` seconds; returns Output(L_0, G) with rank 0's version and target. `on_rank` travels by pickle, that is
    by reference: module-level code, or an instance or partial of it. `equal_shards`: the adapter declares it
    (Adapter.extra), and a layout whose ranks hold different row counts is refused."""
    world_size = processes_of(device)
    embeddings, labels = np.asarray(embeddings, dtype=np.float64), np.asarray(labels)
    if equal_shards and shards is not None and len(set(shards)) > 1:
        raise ValueError(f"{who} declares equal_shards: every rank must hold as many rows, not {tuple(shards)}")
    rows = len(labels)
    shards = check_shards(even_shards(rows, world_size) if shards is None else shards, rows, world_size)
    bounds = np.cumsum((0, *shards))
    jobs = [(on_rank, embeddings[a:b], labels[a:b]) for a, b in zip(bounds, bounds[1:])]
    try:
        payloads = [pickle.dumps(job) for job in jobs]
    except Exception as exc:
        raise TypeError(f"{who}: its loss function cannot be sent to the ranks ({type(exc).__name__}: {exc}); "
                        "make it a module-level function of an importable module") from exc
    group = _group(world_size)
    try:
        answers = group.run(payloads, timeout)
    except BaseException:  # a rank failed, or lacks the adapter's module: the others may be stuck in a collective
        _discard(world_size)
        raise
    losses = tuple(float(answer.loss) for answer in answers)
    grad = np.concatenate([np.asarray(a.grad, dtype=np.float64) for a in answers]) / world_size  # DDP's averaging
    _last[0] = Sharded(loss=losses[0], grad=grad, rank_losses=losses)
    return Output(loss=losses[0], grad=grad, version=answers[0].version, target=answers[0].target)


_last: list[Sharded | None] = [None]


def last_call() -> Sharded | None:
    """The last sharded call of this process, every rank's loss with it (do the ranks agree? Output has rank 0's)."""
    return _last[0]


# --- the process groups -------------------------------------------------------------------------------------------

_GROUPS: dict[int, "_Group"] = {}
_AT_EXIT: list = []  # shutdown, once it is registered with atexit


def _group(world_size: int) -> "_Group":
    if world_size not in _GROUPS:
        if not _AT_EXIT:
            atexit.register(shutdown)  # registered after multiprocessing's own handler, so it runs before it
            _AT_EXIT.append(shutdown)
        try:
            _GROUPS[world_size] = _Group(world_size)
        except RankFailure:  # most likely the free port was taken between choosing and binding it: once more
            _GROUPS[world_size] = _Group(world_size)
    return _GROUPS[world_size]


def _discard(world_size: int) -> None:
    group = _GROUPS.pop(world_size, None)
    if group is not None:
        group.close(graceful=False)


def shutdown() -> None:
    """Stop every process group (each rank leaves its group and exits; a rank that does not is killed)."""
    while _GROUPS:
        _GROUPS.popitem()[1].close()


def rank_pids() -> list[int]:
    """The process ids of every live rank (for the tests: after shutdown() there are none)."""
    return [p.pid for group in _GROUPS.values() for p in group.ranks if p.is_alive()]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Group:
    def __init__(self, world_size: int):
        self.world_size = world_size
        self.job_id = 0
        self.results = CHILD_CONTEXT.Queue()
        self.jobs = [CHILD_CONTEXT.Queue() for _ in range(world_size)]
        port = _free_port()
        self.ranks = [
            CHILD_CONTEXT.Process(target=_rank_main, args=(rank, world_size, port, self.jobs[rank], self.results),
                                  name=f"rank {rank} of {world_size}", daemon=True)
            for rank in range(world_size)
        ]
        for process in self.ranks:
            process.start()
        try:
            self._answers(0, START_TIMEOUT_S, "to join the gloo process group")
        except RankFailure:
            self.close(graceful=False)
            raise

    def run(self, payloads: list[bytes], timeout: float) -> list:
        self.job_id += 1
        for jobs, payload in zip(self.jobs, payloads):
            jobs.put((self.job_id, payload))
        return self._answers(self.job_id, timeout, "with its loss and gradient")

    def _answers(self, job_id: int, timeout: float, doing: str) -> list:
        """Every rank's answer to job `job_id`, in rank order; RankFailure on the first error, death or timeout."""
        deadline, answers = time.monotonic() + timeout, {}
        while len(answers) < self.world_size:
            try:
                answered, rank, kind, value = self.results.get(timeout=POLL_S)
            except queue.Empty:
                dead = self._deaths(answers)
                if dead:
                    raise RankFailure(dead)
                if time.monotonic() > deadline:
                    silent = [r for r in range(self.world_size) if r not in answers]
                    raise RankFailure(f"{_ranks(silent, self.world_size)} gave no answer {doing} within the per-call "
                                      f"timeout of {timeout:g} s; the process group was shut down")
                continue
            if answered != job_id:  # cannot happen: a failed job's group is shut down; ignored all the same
                continue
            if kind == "unavailable":  # the rank lacks what the adapter needs: a skip, as in one process
                raise Unavailable(value)
            if kind == "error":
                time.sleep(CLOSE_S / 20)  # a peer that died is the cause, and the others' errors the consequence
                raise RankFailure("; ".join(filter(None, (self._deaths(answers), f"rank {rank} of {self.world_size} "
                                                          f"{value}"))) + "; the process group was shut down")
            answers[rank] = value
        return [answers[r] for r in range(self.world_size)]

    def _deaths(self, answered) -> str:
        return "; ".join(f"rank {r} of {self.world_size} {process_death(p.exitcode)}"
                         for r, p in enumerate(self.ranks) if r not in answered and p.exitcode is not None)

    def close(self, graceful: bool = True) -> None:
        if graceful:
            for jobs in self.jobs:
                with contextlib.suppress(Exception):
                    jobs.put(None)
            deadline = time.monotonic() + CLOSE_S
            for process in self.ranks:
                process.join(max(0.0, deadline - time.monotonic()))
        for process in self.ranks:
            if process.is_alive():
                process.kill()
            process.join()
        for channel in (*self.jobs, self.results):
            channel.cancel_join_thread()  # a killed reader leaves items behind: do not wait to flush them
            channel.close()


def _ranks(ranks: list[int], world_size: int) -> str:
    return f"rank{'s' if len(ranks) > 1 else ''} {', '.join(map(str, ranks))} of {world_size}"


# --- a rank -------------------------------------------------------------------------------------------------------

def _rank_main(rank: int, world_size: int, port: int, jobs, results) -> None:
    """Join the group, then run jobs until None arrives: (job id, pickled (on_rank, x, y))."""
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)  # W ranks on a few cores: one thread each, or they fight over the cores
    try:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size,
                                timeout=datetime.timedelta(seconds=START_TIMEOUT_S))
    except BaseException as exc:
        results.put((0, rank, "error", _described(exc)))
        return
    results.put((0, rank, "ready", None))
    while (job := jobs.get()) is not None:
        job_id, payload = job
        try:
            on_rank, x, y = pickle.loads(payload)
            answer = ("value", on_rank(x, y))
        except BaseException as exc:  # the loss may raise anything; the parent decides what it means
            answer = ("unavailable", str(exc)) if isinstance(exc, Unavailable) else ("error", _described(exc))
        results.put((job_id, rank, *answer))
    with contextlib.suppress(Exception):
        dist.destroy_process_group()


def _described(exc: BaseException) -> str:
    from .harness import _described as described  # the harness's wording: type, message, innermost frame

    return described(exc)


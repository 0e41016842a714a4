"""A Ctrl-C never cuts a results line: a SIGINT that arrives while a record is being written is delivered right
after the record is on disk, as the KeyboardInterrupt it always was.

A child process writes large records in a loop and catches each KeyboardInterrupt (writing a marker record
for it); the parent sends SIGINT again and again, each time only after the child has acknowledged the last
one, so that no signal is lost or merged with another. Nothing waits on time: every step waits for something
the other process did (a line on a pipe, bytes on a FIFO). The deadline only turns a hang into a failure.
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from reports.reader import read_results

REPO = Path(__file__).resolve().parents[2]
INTERRUPTS = 12
LINE = 1 << 20  # bytes of text per large record: many times a pipe's capacity (64 KiB)
DEADLINE = 120.0  # seconds one wait may take before the test fails instead of hanging

CHILD = textwrap.dedent("""
    import sys
    from reports.results import ResultsWriter

    path, interrupts, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    writer = ResultsWriter(path)  # a FIFO: opening waits for the parent to open it for reading
    fields = dict(adapter="bulk", framework="numpy", spec={}, spec_label="bulk", dtype="float32", device="cpu",
                  quantity="loss", verdict="pass")
    writer.header(notes="interrupted on purpose")
    handled, acknowledged, written = 0, -1, 0
    while True:
        try:  # every SIGINT lands in here: the next is sent only once this one is acknowledged, from in here
            while True:
                if acknowledged < handled:
                    acknowledged = handled
                    writer.write("comparison", **fields, reason=f"interrupt {handled}")
                    print(f"ack {handled}", flush=True)
                if handled == interrupts:
                    break
                written += 1
                writer.write("comparison", **fields, reason=str(written % 10) * size)
            break
        except KeyboardInterrupt:
            handled += 1
    writer.close()
""")


def start_child(path: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(INTERRUPTS), str(LINE)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})


def wait_readable(fd: int) -> None:
    if not select.select([fd], [], [], DEADLINE)[0]:
        raise AssertionError(f"nothing from the child within {DEADLINE:g} s")


def read_ack(child: subprocess.Popen) -> str:
    wait_readable(child.stdout.fileno())
    return child.stdout.readline().strip()


def finish(child: subprocess.Popen) -> None:
    try:
        status = child.wait(timeout=DEADLINE)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert status == 0, child.stderr.read()[-3000:]


def check_lines(lines: list[bytes]) -> list[dict]:
    """Every line a whole record; the markers 0..INTERRUPTS in order, each large record complete."""
    records = [json.loads(line) for line in lines]  # raises on any cut or mixed line
    assert records[0]["kind"] == "run"
    records = records[1:]
    markers = [r["reason"] for r in records if r["reason"].startswith("interrupt")]
    assert markers == [f"interrupt {i}" for i in range(INTERRUPTS + 1)]
    assert all(len(r["reason"]) == LINE for r in records if not r["reason"].startswith("interrupt"))
    return records


def test_sigint_while_writing_to_a_file_never_leaves_a_partial_line(tmp_path):
    path = tmp_path / "results.jsonl"
    child = start_child(path)
    try:
        for sent in range(INTERRUPTS + 1):
            assert read_ack(child) == f"ack {sent}"
            if sent < INTERRUPTS:
                child.send_signal(signal.SIGINT)
    finally:
        finish(child)
    data = path.read_bytes()
    assert data.endswith(b"\n")
    check_lines(data.splitlines())
    loaded = read_results([path])
    assert loaded.problems == [] and len(loaded.entries) == data.count(b"\n")


def test_sigint_in_the_middle_of_a_line_is_delivered_right_after_it(tmp_path):
    """Through a FIFO the parent sees how far a line has got: it interrupts each large line while less than half
    of it has arrived, so that the child is still inside the write, and the marker must come next."""
    path = tmp_path / "results.fifo"
    os.mkfifo(path)
    fifo = os.open(path, os.O_RDWR)  # opens at once (a reader and a writer): a child that dies cannot hang it
    child = start_child(path)
    lines, pieces, sent, handled, interrupted_at = [], [], 0, 0, []  # pieces: the line still arriving
    try:
        while not lines or b'"reason": "interrupt %d"' % INTERRUPTS not in lines[-1]:  # the child's last record
            wait_readable(fifo)
            *complete, rest = os.read(fifo, 1 << 16).split(b"\n")
            if complete:
                complete[0] = b"".join([*pieces, complete[0]])
                pieces = []
            pieces.append(rest)
            lines += complete
            # Each read touches only what it brought: on a loaded machine reads come in small pieces, and
            # rescanning every 1 MiB line so far at each one made this test quadratic, minutes long.
            handled += sum(line.count(b'"reason": "interrupt ') for line in complete)
            assert len(lines) < 8 * (INTERRUPTS + 1), f"the child wrote {len(lines)} lines and handled {handled - 1} " \
                f"of the {sent} SIGINTs sent: does it ignore SIGINT?"
            if sent < INTERRUPTS and handled == sent + 1 and 0 < sum(map(len, pieces)) < LINE // 2 \
                    and b'"interrupt ' not in b"".join(pieces):
                child.send_signal(signal.SIGINT)  # the rest of this line has not left the child yet
                interrupted_at.append(len(lines))
                sent += 1
    finally:
        os.close(fifo)
        finish(child)
    assert b"".join(pieces) == b"" and sent == INTERRUPTS
    records = check_lines(lines)
    for number, at in enumerate(interrupted_at, start=1):
        assert len(records[at - 1]["reason"]) == LINE  # the line the SIGINT arrived in, whole (after the header)
        assert records[at]["reason"] == f"interrupt {number}"  # and the interrupt right after it


@pytest.mark.parametrize("previous", [signal.SIG_IGN, "custom"])
def test_a_signal_during_a_write_reaches_the_handler_that_was_installed(tmp_path, previous):
    """In the main thread, whatever handler was installed gets the deferred signal, and is installed again."""
    from reports.results import _sigint_deferred

    seen = []
    handler = (lambda signum, frame: seen.append(signum)) if previous == "custom" else previous
    before = signal.signal(signal.SIGINT, handler)
    try:
        with _sigint_deferred():
            signal.raise_signal(signal.SIGINT)  # delivered at once, to the deferring handler
            assert seen == []
        assert signal.getsignal(signal.SIGINT) is handler
        assert seen == ([signal.SIGINT] if previous == "custom" else [])
    finally:
        signal.signal(signal.SIGINT, before)


def test_a_writer_used_from_another_thread_writes_as_well(tmp_path):
    """Only the main thread runs signal handlers: elsewhere the writer leaves them alone."""
    import threading

    from reports.results import ResultsWriter

    writer = ResultsWriter(tmp_path / "threaded.jsonl")
    failures = []

    def write():
        try:
            writer.write("run_end", finished="2024-05-01T12:00:00+00:00", duration_s=1.0, exit_status=0,
                         interrupted=False)
        except Exception as exc:  # noqa: BLE001 (reported below, in the main thread)
            failures.append(exc)

    worker = threading.Thread(target=write)
    worker.start()
    worker.join()
    writer.close()
    assert failures == [] and len(read_results([writer.path]).entries) == 1

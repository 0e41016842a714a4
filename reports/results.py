"""Writing results: every record is checked against the schema (reports/schema.py), then appended as one
line and flushed to disk at once, so an interrupted run keeps every record it had, each whole.

A Ctrl-C never cuts a line: the main thread writes each line with SIGINT deferred (`_sigint_deferred`), so a
KeyboardInterrupt that arrives mid-write is raised right after the line is on disk, never between two
chunks of it (PEP 475 retries an interrupted write(2) only when the signal handler does not raise).

Under pytest-xdist one process writes the file: the controller. A worker's records go into a `RecordBuffer`
(checked there, as the writer checks them), travel to the controller with the worker's test reports, and the
controller's `ResultsWriter.append` writes them, so a run has one file, one header and one run_end whatever its
number of workers (engine/workers.py says how).
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import numpy as np

from .schema import ENVELOPE, SCHEMA, SCHEMA_VERSION, check


def jsonable(value):
    """NumPy arrays and scalars as lists and numbers; NaN and infinities as the strings JSON lacks."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def git_revision(cwd: Path | None = None) -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if out.returncode:
        return "unknown"
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@contextlib.contextmanager
def _sigint_deferred():
    """Within the block, a SIGINT is noted instead of handled; on leaving it, the handler gets it once.

    Python runs signal handlers only in the main thread, between bytecodes and when a system call is
    interrupted; elsewhere this does nothing (no KeyboardInterrupt can reach another thread). Where the
    handler was installed outside Python (signal.getsignal gives None) it cannot be restored: the signal is
    blocked for the block instead, and the kernel delivers it when it is unblocked.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is None:
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        return
    received = []
    signal.signal(signal.SIGINT, lambda signum, frame: received.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received and callable(previous):
            previous(signal.SIGINT, received[0])  # default_int_handler raises KeyboardInterrupt here
        elif received and previous == signal.SIG_DFL:
            signal.raise_signal(signal.SIGINT)


def _write_all(fd: int, data: bytes) -> None:
    """Every byte of `data`: a write to a pipe may take only part of it."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _sync(fd: int) -> None:
    try:
        os.fsync(fd)
    except OSError as exc:  # a pipe or a terminal (--results /dev/stdout) holds nothing to sync
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise


def build_record(kind: str, run_id: str, fields: dict) -> dict:
    """The record a writer appends: the envelope and `fields` made JSON-able; ValueError (naming the kind and the
    field) when the fields do not match the schema's record for `kind`."""
    fields = jsonable(fields)
    check(kind, fields)
    record = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "kind": kind, "run_id": run_id}
    record.update(fields)
    return record


class RecordBuffer:
    """The writer of a pytest-xdist worker: the same checks as ResultsWriter.write, the records kept in order until
    `take()` hands them over (with a test report) to the controller, whose writer appends them to the file."""

    def __init__(self, run_id: str):
        self.run_id = run_id  # the controller's: every record of the run carries it
        self.records: list[dict] = []

    def write(self, kind: str, /, **fields) -> dict:
        record = build_record(kind, self.run_id, fields)
        self.records.append(record)
        return record

    def take(self) -> list[dict]:
        taken, self.records = self.records, []
        return taken

    def close(self) -> None:
        return None


class ResultsWriter:
    """Appends records to a JSON-lines file, one whole, fsynced line per record."""

    def __init__(self, path: str | os.PathLike, run_id: str | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)

    def write(self, kind: str, /, **fields) -> dict:
        """Append one `kind` record; ValueError (naming the kind and the field) when the fields do not match
        the schema's record for `kind`, and then nothing is written."""
        record = build_record(kind, self.run_id, fields)
        line = (json.dumps(record, allow_nan=False) + "\n").encode("utf-8")
        if self._fd is None:
            raise ValueError(f"{self.path}: the results writer is closed")
        with _sigint_deferred():
            _write_all(self._fd, line)
            _sync(self._fd)
        return record

    def append(self, record: dict) -> dict:
        """Append a record another process built (a RecordBuffer's), checked again and under this writer's run."""
        fields = {name: value for name, value in record.items() if name not in ENVELOPE.names}
        return self.write(record.get("kind", ""), **fields)

    def header(self, **fields) -> dict:
        base = {
            "started": now(),
            "git_revision": git_revision(Path(__file__).resolve().parent.parent),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "hostname": socket.gethostname(),
            "argv": sys.argv,
            "environment": os.environ.get("TOX_ENV_NAME", ""),
        }
        base.update(fields)
        return self.write("run", **base)

    def close(self) -> None:
        fd, self._fd = getattr(self, "_fd", None), None
        if fd is not None:
            os.close(fd)

    __del__ = close  # a writer nobody closed gives its descriptor back when it goes

"""Writing results: every record is appended and flushed at once, so an interrupted run keeps what it had."""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np

from .schema import KINDS, SCHEMA, SCHEMA_VERSION


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


class ResultsWriter:
    """Appends records to a JSON-lines file, one flushed line per record."""

    def __init__(self, path: str | os.PathLike, run_id: str | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self._file = open(self.path, "a", encoding="utf-8")

    def write(self, kind: str, **fields) -> dict:
        if kind not in KINDS:
            raise ValueError(f"unknown record kind {kind!r}; known: {', '.join(KINDS)}")
        record = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "kind": kind, "run_id": self.run_id}
        record.update(jsonable(fields))
        self._file.write(json.dumps(record, allow_nan=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        return record

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
        if not self._file.closed:
            self._file.close()

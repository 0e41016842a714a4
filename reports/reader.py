"""Reading results files back for the report.

Every non-blank line of every file ends up in exactly one place: a record the report shows, a
problem the page lists with its file:line (a line that is not a record this report understands),
or a duplicate of a line already read (the same file given twice). `FileTally` counts the three, so
a test can check that merging never loses a record. Only a path that cannot be read at all is an
error (`ResultsFileError`): the caller says so and builds no page.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from .schema import KINDS, RECORDS, SCHEMA, SCHEMA_VERSION, Field

# Fields without a value for which a record cannot be placed on the page (the schema's key fields); the rest
# are optional here and shown when present. The writer checks every field (schema.check); the reader is lenient,
# so that a file from another writer, or damaged by hand, shows what it can.
REQUIRED_FIELDS = {kind: record.keys for kind, record in RECORDS.items()}
# Fields whose values form a closed set (the schema's choices): another value is listed, not shown.
CLOSED_FIELDS: dict[str, tuple[Field, ...]] = {
    kind: tuple(f for f in record.fields if f.choices) for kind, record in RECORDS.items()}


class ResultsFileError(Exception):
    """A results path that cannot be read at all (missing, a directory, no permission)."""


@dataclass(frozen=True)
class Problem:
    """One thing the reader could not show, and why, where a reader of the page can find it."""

    source: str
    line: int | None  # 1-based; None when the problem concerns a whole file or the whole merge
    category: str  # short, groups the banner: "not valid JSON", "truncated", "unknown kind", ...
    message: str

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}" if self.line is not None else self.source


@dataclass(frozen=True)
class Entry:
    """A record the report shows, with the file and line it came from."""

    record: dict
    source: str
    line: int

    @property
    def kind(self) -> str:
        return self.record["kind"]


@dataclass
class FileTally:
    """What became of one file's lines: lines == shown + rejected + duplicates."""

    source: str
    lines: int = 0
    shown: int = 0
    rejected: int = 0
    duplicates: int = 0


@dataclass
class Loaded:
    entries: list[Entry] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    tallies: list[FileTally] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[dict]:
        return [e.record for e in self.entries if e.kind == kind]


def number(value) -> float | None:
    """A numeric field as written by `results.jsonable` (NaN and infinities as strings), or None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value in ("nan", "inf", "-inf"):
        return float(value)
    return None


def _problem_with(record, kind_known: bool) -> tuple[str, str] | None:
    """(category, message) when the decoded line is not a record this report can show, else None."""
    if not isinstance(record, dict):
        return "not a record", f"a JSON {type(record).__name__}, not an object"
    if record.get("schema") != SCHEMA:
        return "not a results record", f"schema is {record.get('schema')!r}, expected {SCHEMA!r}"
    version = record.get("schema_version")
    if version != SCHEMA_VERSION:
        return "unknown schema version", f"schema_version {version!r}: this report reads version {SCHEMA_VERSION}"
    if not kind_known:
        return "unknown kind", f"record kind {record.get('kind')!r} is not one of {', '.join(KINDS)}"
    missing = [name for name in ("run_id",) + REQUIRED_FIELDS[record["kind"]] if record.get(name) in (None, "")]
    if missing:
        return "missing fields", f"{record['kind']} record without {', '.join(missing)}"
    for closed in CLOSED_FIELDS[record["kind"]]:
        value = record.get(closed.name)
        if value is not None and value not in closed.choices:
            return (f"unknown {closed.name}",
                    f"{closed.name} {value!r} is not one of {', '.join(map(str, closed.choices))}")
    return None


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ResultsFileError(f"{path}: no such results file") from None
    except IsADirectoryError:
        raise ResultsFileError(f"{path}: is a directory; pass the results files inside it (e.g. {path}/*.jsonl)") from None
    except OSError as exc:
        raise ResultsFileError(f"{path}: cannot read results file: {exc.strerror or exc}") from None


def read_results(paths: list[str | os.PathLike]) -> Loaded:
    """Read and merge JSON-lines results files; raises `ResultsFileError` for a path that cannot be read."""
    contents = [(str(path), _read_bytes(Path(path))) for path in paths]  # every path readable before any work
    loaded = Loaded()
    first_seen: dict[bytes, tuple[str, int]] = {}
    versions: dict[object, list[str]] = {}
    for source, data in contents:
        tally = FileTally(source)
        loaded.tallies.append(tally)
        lines = data.split(b"\n")
        ends_cleanly = data.endswith(b"\n")
        repeated_from: dict[str, tuple[int, int]] = {}  # earlier file -> (its first repeated line, count)
        for number_, raw in enumerate(lines, start=1):
            text = raw.strip()
            if not text:
                continue
            tally.lines += 1
            if text in first_seen:
                tally.duplicates += 1
                earlier = first_seen[text]
                repeated_from.setdefault(earlier[0], (earlier[1], 0))
                repeated_from[earlier[0]] = (repeated_from[earlier[0]][0], repeated_from[earlier[0]][1] + 1)
                continue
            first_seen[text] = (source, number_)
            problem = None
            try:
                record = json.loads(text.decode("utf-8"))
            except UnicodeDecodeError as exc:
                problem = ("not UTF-8 text", f"byte {exc.start} is not UTF-8")
            except json.JSONDecodeError as exc:
                if number_ == len(lines) and not ends_cleanly:
                    problem = ("truncated", f"the last line is cut mid-record ({len(text)} bytes; the run was "
                                            "probably stopped while writing)")
                else:
                    problem = ("not valid JSON", exc.msg + f" at column {exc.colno}")
            else:
                if isinstance(record, dict) and record.get("schema") == SCHEMA:
                    versions.setdefault(record.get("schema_version"), []).append(source)
                problem = _problem_with(record, isinstance(record, dict) and record.get("kind") in KINDS)
            if problem:
                tally.rejected += 1
                loaded.problems.append(Problem(source, number_, *problem))
            else:
                tally.shown += 1
                loaded.entries.append(Entry(_numbers_restored(record), source, number_))
        for earlier, (line, count) in repeated_from.items():
            loaded.problems.append(Problem(
                source, None, "repeated records",
                f"{count} line(s) repeat records already read from {earlier} (the first at {earlier}:{line}); "
                "each record is shown once",
            ))
        if tally.lines == 0:
            loaded.problems.append(Problem(source, None, "empty file", "holds no records"))
    if len(versions) > 1:
        described = "; ".join(f"version {v!r} in {', '.join(sorted(set(files)))}" for v, files in versions.items())
        loaded.problems.append(Problem(
            "(merge)", None, "mixed schema versions",
            f"the files mix schema versions ({described}); only version {SCHEMA_VERSION} records are shown",
        ))
    loaded.problems.extend(_orphans(loaded.entries))
    return loaded


def _numeric(field: Field) -> bool:
    return "number" in field.types


# Per kind, the numeric fields (and arrays of numbers) that `jsonable` may have written as "nan"/"inf"/"-inf":
# read back as floats.
_NUMERIC_FIELDS = {kind: tuple(f.name for f in record.fields if _numeric(f)) for kind, record in RECORDS.items()}
_NUMERIC_ARRAYS = {kind: tuple(f.name for f in record.fields if "number" in f.items) for kind, record in RECORDS.items()}


def _numbers_restored(record: dict) -> dict:
    restored = dict(record)
    for name in _NUMERIC_FIELDS[record["kind"]]:
        if isinstance(restored.get(name), str):
            value = number(restored[name])
            if value is not None:
                restored[name] = value
    for name in _NUMERIC_ARRAYS[record["kind"]]:
        if isinstance(restored.get(name), list):
            restored[name] = [number(v) for v in restored[name]]
    return restored


def _orphans(entries: list[Entry]) -> list[Problem]:
    """Records of a run whose "run" header was not read: shown, under a run the page marks as headerless."""
    headed = {e.record["run_id"] for e in entries if e.kind == "run"}
    orphans: dict[tuple[str, str], int] = {}
    for entry in entries:
        run_id = entry.record["run_id"]
        if run_id not in headed:
            orphans[(entry.source, run_id)] = orphans.get((entry.source, run_id), 0) + 1
    return [
        Problem(source, None, "run without header",
                f"{count} record(s) of run {run_id!r} have no 'run' header record; shown with the run details unknown")
        for (source, run_id), count in orphans.items()
    ]


def finite(value) -> bool:
    """True for a real, finite number (after `number`)."""
    return value is not None and math.isfinite(value)

"""docs/results-schema.md, generated from the declarations in reports/schema.py: every kind of record and every
field, with its type, whether it is required, and what it means. tests/report/test_schema_doc.py fails when
the committed file no longer matches the schema.

    python -m reports.schema_doc            rewrite docs/results-schema.md
    python -m reports.schema_doc --check    exit 1 when the committed file is out of date
"""
from __future__ import annotations

import sys

from . import generated
from .generated import cell
from .schema import ENVELOPE, KINDS, NESTED, NON_FINITE, RECORDS, SCHEMA, SCHEMA_VERSION, Field, Record

DOCUMENT = generated.DOCS / "results-schema.md"
COMMAND = "python -m reports.schema_doc"


def type_text(field: Field) -> str:
    """The field's types in words, a nested record as a link to its table."""
    words = []
    for kind in field.types:
        if isinstance(kind, Record):
            words.append(f"[{kind.name}](#{kind.name})")
        elif kind == "array" and field.items:
            words.append("array of " + " or ".join(field.items))
        else:
            words.append(kind)
    return " or ".join(words)


def presence(field: Field) -> str:
    return "key" if field.key else "required" if field.required else "optional"


def meaning_text(field: Field) -> str:
    text = field.meaning
    if field.choices:
        text += "; one of " + ", ".join(f"`{value}`" for value in field.choices)
    elif field.known:
        text += "; written today: " + ", ".join(f"`{value}`" for value in field.known)
    return cell(text)


def table(record: Record, heading: str) -> list[str]:
    lines = [heading, "", cell(record.meaning)]
    if record.empty_allowed:
        lines[-1] += f" An empty object `{{}}` when {record.empty_allowed}."
    lines += ["", "| field | type | | meaning |", "|---|---|---|---|"]
    lines += [f"| `{f.name}` | {type_text(f)} | {presence(f)} | {meaning_text(f)} |" for f in record.fields]
    return lines + [""]


def render() -> str:
    lines = [
        "# Results schema",
        "",
        f"<!-- Generated from reports/schema.py by `{COMMAND}`. Do not edit by hand. -->",
        "",
        f"`{SCHEMA}`, version {SCHEMA_VERSION}. A results file is JSON lines: one record per line, appended and "
        "flushed as it is written (`reports.results.ResultsWriter`), so an interrupted run keeps every record it "
        "wrote, each line whole. A run opens with a `run` header and closes with `run_end`; a run without "
        "`run_end` was interrupted. `python -m reports FILE... -o report.html` merges files from any number of "
        "runs and machines.",
        "",
        "The writer checks every record against this schema and refuses (ValueError, naming the kind and the "
        "field) an unknown field, a missing required field, or a value of the wrong type. The reader is "
        "lenient: it shows a record with its key fields, keeps fields it does not know, and lists every line it "
        "cannot show, with its file and line, at the top of the page.",
        "",
        "- **key**: required, never null or empty; the report places the record by it.",
        "- **required**: always written (null only where its type allows it).",
        "- **optional**: written where the writer has it; the page shows it when present.",
        "- *one of*: a closed set, checked by writer and reader. *written today*: an open set, documented.",
        "- **number**: an integer or a float; NaN and the infinities are written as the strings "
        + ", ".join(f'`"{value}"`' for value in NON_FINITE) + " (JSON has no such numbers).",
        "- A change of what a field means or of its type is a new schema version; a new optional field is not.",
        "",
        "Kinds: " + ", ".join(f"[`{kind}`](#{kind})" for kind in KINDS) + ". Nested records: "
        + ", ".join(f"[`{record.name}`](#{record.name})" for record in NESTED) + ".",
        "",
        *table(ENVELOPE, "## The envelope"),
        "## Kinds",
        "",
    ]
    for kind in KINDS:
        lines += table(RECORDS[kind], f"### {kind}")
    lines += ["## Nested records", ""]
    for record in NESTED:
        lines += table(record, f"### {record.name}")
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    return generated.main(argv, document=DOCUMENT, render=render, command=COMMAND, source="reports/schema.py",
                          description=__doc__.split("\n\n")[0], summary=lambda: f"{len(RECORDS)} kinds, {sum(len(r.fields) for r in RECORDS.values())} fields")


if __name__ == "__main__":
    sys.exit(main())

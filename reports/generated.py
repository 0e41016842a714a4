"""What every generated document shares (docs/*.md, each rendered from declarations in the code and committed):
Markdown table cells, and the command that rewrites the file or checks that it is current."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

DOCS = Path(__file__).resolve().parent.parent / "docs"


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell: a pipe would end the cell, a newline the row."""
    return " ".join(str(text).split()).replace("|", "\\|")


def main(argv: list[str] | None, *, document: Path, render: Callable[[], str], command: str, source: str,
         description: str, summary: Callable[[], str]) -> int:
    """`command` rewrites `document` from `render()`; `command --check` exits 1 when the committed one is stale."""
    parser = argparse.ArgumentParser(prog=command, description=description)
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed file is out of date")
    args = parser.parse_args(argv)
    current = render()
    if args.check:
        stale = not document.exists() or document.read_text(encoding="utf-8") != current
        if stale:
            print(f"{document} is out of date with {source}; run: {command}", file=sys.stderr)
        return int(stale)
    document.parent.mkdir(parents=True, exist_ok=True)
    document.write_text(current, encoding="utf-8")
    print(f"wrote {document} ({summary()})")
    return 0

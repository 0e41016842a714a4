"""python -m reports RESULTS... -o report.html: merge results files into one self-contained HTML page.

Exit status: 0 when the page was written (reading problems are listed in the page, not fatal),
2 when a results path cannot be read at all (no page is written).
"""
from __future__ import annotations

import argparse
import sys

from . import page
from .reader import ResultsFileError


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m reports",
        description="Merge JSON-lines results files (tox environments, a GPU machine, yesterday's run) "
        "into one self-contained HTML discrepancy report.",
    )
    parser.add_argument("results", nargs="+", metavar="RESULTS", help="results files written by pytest --results")
    parser.add_argument("-o", "--output", default="report.html", help="where to write the page (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse(argv)
    try:
        report = page.build(arguments.results, arguments.output)
    except ResultsFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {arguments.output}: {page.one_line(report)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

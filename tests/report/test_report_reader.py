"""Reading and merging results files: every line is shown, listed as a problem with its file:line, or
counted as a repeat, whatever state the files are in; nothing raises but an unreadable path."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reports import page
from reports.reader import ResultsFileError, read_results
from reports.schema import SCHEMA_VERSION


def lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def write_lines(path: Path, lines: list[str], final_newline: bool = True) -> Path:
    path.write_text("\n".join(lines) + ("\n" if final_newline else ""), encoding="utf-8")
    return path


def edited(line: str, **changes) -> str:
    record = json.loads(line)
    record.update(changes)
    return json.dumps(record)


def assert_nothing_lost(loaded) -> None:
    """Every non-blank line is shown, listed as a problem with its line, or a counted repeat."""
    for tally in loaded.tallies:
        assert tally.lines == tally.shown + tally.rejected + tally.duplicates, tally
    for source in {tally.source for tally in loaded.tallies}:  # a path given twice has two tallies
        tallies = [tally for tally in loaded.tallies if tally.source == source]
        listed = [p.line for p in loaded.problems if p.source == source and p.line is not None]
        assert len(listed) == len(set(listed)) == sum(t.rejected for t in tallies), (tallies, listed)
        assert sum(1 for e in loaded.entries if e.source == source) == sum(t.shown for t in tallies)


@pytest.fixture
def torch_run(demo_files) -> Path:
    return next(path for path in demo_files if path.name == "py311-torch.jsonl")


def test_clean_files_merge_every_record(demo_files):
    loaded = read_results(demo_files)
    assert loaded.problems == [p for p in loaded.problems if p.category == "run without header"] == []
    assert len(loaded.entries) == sum(len(lines_of(path)) for path in demo_files)
    assert_nothing_lost(loaded)


def test_corrupt_line_is_listed_with_file_and_line_and_the_rest_is_kept(torch_run, tmp_path):
    lines = lines_of(torch_run)
    lines[3] = lines[3][:40] + "}{oops"
    path = write_lines(tmp_path / "corrupt.jsonl", lines)
    loaded = read_results([path])
    [problem] = loaded.problems
    assert (problem.where, problem.category) == (f"{path}:4", "not valid JSON")
    assert len(loaded.entries) == len(lines) - 1
    assert_nothing_lost(loaded)


def test_truncated_last_line_is_called_truncated(torch_run, tmp_path):
    lines = lines_of(torch_run)
    lines[-1] = lines[-1][: len(lines[-1]) // 2]
    path = write_lines(tmp_path / "cut.jsonl", lines, final_newline=False)
    [problem] = read_results([path]).problems
    assert (problem.line, problem.category) == (len(lines), "truncated")
    assert "cut mid-record" in problem.message


def test_a_complete_last_line_without_newline_is_kept(torch_run, tmp_path):
    path = write_lines(tmp_path / "no-newline.jsonl", lines_of(torch_run), final_newline=False)
    loaded = read_results([path])
    assert loaded.problems == [] and len(loaded.entries) == len(lines_of(torch_run))


@pytest.mark.parametrize("change, category", [
    ({"schema_version": SCHEMA_VERSION + 1}, "unknown schema version"),
    ({"schema": "someone-else/results"}, "not a results record"),
    ({"kind": "telemetry"}, "unknown kind"),
    ({"verdict": "maybe"}, "unknown verdict"),
    ({"adapter": None}, "missing fields"),
    ({"run_id": ""}, "missing fields"),
])
def test_records_this_report_cannot_show_are_listed(torch_run, tmp_path, change, category):
    lines = lines_of(torch_run)
    comparison = next(i for i, line in enumerate(lines) if '"kind": "comparison"' in line)
    lines[comparison] = edited(lines[comparison], **change)
    loaded = read_results([write_lines(tmp_path / "odd.jsonl", lines)])
    listed = [p for p in loaded.problems if p.line is not None]
    assert [(p.line, p.category) for p in listed] == [(comparison + 1, category)]
    assert_nothing_lost(loaded)


def test_non_records_and_bad_bytes_are_listed(torch_run, tmp_path):
    lines = lines_of(torch_run) + ["[1, 2, 3]", '"just a string"']
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(("\n".join(lines) + "\n").encode() + b'{"bad": "\xff\xfe"}\n')
    loaded = read_results([path])
    assert [p.category for p in loaded.problems] == ["not a record", "not a record", "not UTF-8 text"]
    assert [p.line for p in loaded.problems] == [len(lines) - 1, len(lines), len(lines) + 1]


def test_mixed_schema_versions_across_files_are_flagged(torch_run, tmp_path):
    newer = write_lines(tmp_path / "newer.jsonl", [edited(line, schema_version=2) for line in lines_of(torch_run)])
    loaded = read_results([torch_run, newer])
    [mixed] = [p for p in loaded.problems if p.category == "mixed schema versions"]
    assert str(torch_run) in mixed.message and str(newer) in mixed.message
    assert sum(p.category == "unknown schema version" for p in loaded.problems) == len(lines_of(torch_run))
    assert_nothing_lost(loaded)


def test_the_same_file_twice_is_counted_as_repeats_not_shown_twice(torch_run):
    loaded = read_results([torch_run, torch_run])
    first, second = loaded.tallies
    assert (first.shown, second.shown, second.duplicates) == (first.lines, 0, first.lines)
    [repeat] = loaded.problems
    assert repeat.category == "repeated records" and f"{torch_run}:1" in repeat.message
    assert_nothing_lost(loaded)


def test_records_whose_header_is_lost_are_kept_under_a_headerless_run(torch_run, tmp_path):
    path = write_lines(tmp_path / "headless.jsonl", lines_of(torch_run)[1:])
    loaded = read_results([path])
    [problem] = loaded.problems
    assert problem.category == "run without header" and problem.line is None
    assert len(loaded.entries) == len(lines_of(torch_run)) - 1


def test_empty_file_is_reported(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n")
    [problem] = read_results([path]).problems
    assert problem.category == "empty file"


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_unreadable_path_is_an_error_naming_it(tmp_path, kind):
    path = tmp_path / "results.jsonl"
    if kind == "directory":
        path.mkdir()
    with pytest.raises(ResultsFileError, match=str(path)):
        read_results([path])


# One random edit of a line: what a killed run, a bad merge or a hand edit leaves behind.
EDITS = st.sampled_from(["cut", "garbage", "newer", "alien kind", "no verdict", "repeat", "blank", "keep"])


@settings(max_examples=40, deadline=None)
@given(edits=st.lists(EDITS, min_size=1, max_size=30), cut_last=st.booleans(), split=st.integers(0, 30))
def test_any_damage_is_accounted_for_line_by_line(demo_files, tmp_path_factory, edits, cut_last, split):
    source = lines_of(demo_files[0])
    lines = []
    for line, edit in zip(source, edits + ["keep"] * len(source)):
        lines.append({
            "cut": line[: len(line) // 3], "garbage": "\x00not json", "newer": edited(line, schema_version=9),
            "alien kind": edited(line, kind="alien"), "no verdict": edited(line, verdict=None),
            "repeat": lines[-1] if lines else line, "blank": "", "keep": line,
        }[edit])
    if cut_last:
        lines[-1] = lines[-1][:-5]
    directory = tmp_path_factory.mktemp("damaged")
    files = [write_lines(directory / "a.jsonl", lines[:split]), write_lines(directory / "b.jsonl", lines[split:],
                                                                              final_newline=not cut_last)]
    loaded = read_results(files)
    assert_nothing_lost(loaded)
    assert sum(t.lines for t in loaded.tallies) == sum(1 for line in lines if line.strip())


def test_the_page_lists_every_problem_in_a_visible_banner(torch_run, tmp_path):
    lines = lines_of(torch_run)
    lines[2] = "{broken"
    lines[5] = edited(lines[5], schema_version=7)
    lines[-1] = lines[-1][:30]
    damaged = write_lines(tmp_path / "damaged.jsonl", lines, final_newline=False)
    html, report = page.render(read_results([damaged]))
    assert 'class="banner warn" id="problems" role="alert"' in html
    assert "4 problems reading the results files" in html
    for line, category in ((3, "not valid JSON"), (6, "unknown schema version"), (len(lines), "truncated")):
        assert f"<code>{damaged}:{line}</code> — {category}" in html
    assert "<code>(merge)</code> — mixed schema versions" in html
    clean_html, _ = page.render(read_results([torch_run]))
    assert 'id="problems"' not in clean_html


def test_a_run_without_run_end_is_marked_interrupted_in_the_page(torch_run, tmp_path):
    lines = [line for line in lines_of(torch_run) if '"kind": "run_end"' not in line]
    html, report = page.render(read_results([write_lines(tmp_path / "stopped.jsonl", lines)]))
    [run] = report.runs
    assert run.status == "interrupted" and "no run_end record" in run.status_detail
    assert '1 run did not finish' in html and 'class="badge interrupted"' in html

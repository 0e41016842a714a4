"""The HTML page: everything an implementation or a user supplies is escaped, nothing is loaded from
elsewhere, and the robustness and benchmark sections appear exactly when their records do."""
from __future__ import annotations

import re

from reference import Spec
from reports import page
from reports.results import ResultsWriter
from reports.synthetic import ATTRIBUTE, SCRIPT
from reports.reader import read_results


def test_markup_from_records_is_shown_escaped_and_never_as_markup(hostile_page):
    _, html, report = hostile_page
    assert SCRIPT not in html and ATTRIBUTE not in html
    assert html.count("<script") == 1  # the page's own copy-button script, nothing else
    assert "<img" not in html
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    # Shown, escaped, in the matrix, the error's message, the skip footnote, the edge-case table, the
    # divergence table, the run header, the charts (SVG text) and the warning banner.
    assert html.count(escaped) >= 20
    for shown_in in ('<th>' + escaped, 'skipped: ' + escaped, "RuntimeError: " + escaped, "record kind &#39;" + escaped):
        assert shown_in in html, shown_in
    assert re.search(r"<text[^>]*>[^<]*" + re.escape(escaped), html), "chart labels are escaped by the SVG writer"


def test_a_javascript_link_is_shown_as_text_not_as_a_link(hostile_page):
    _, html, _ = hostile_page
    assert "javascript:alert(1)" in html
    assert not re.search(r"href\s*=\s*[\"']?\s*javascript:", html, re.IGNORECASE)


def test_the_page_loads_nothing_from_anywhere(demo_page):
    _, html, _ = demo_page
    assert not re.search(r"<link\b|@import|url\(\s*['\"]?(https?:|//)", html, re.IGNORECASE)
    assert not re.search(r"\bsrc\s*=", html, re.IGNORECASE)  # no images, scripts or frames by reference
    # Every href is an in-page anchor or a plain link to an upstream issue (a navigation, not a load).
    for target in re.findall(r'href="([^"]*)"', html):
        assert target.startswith("#") or target.startswith("https://"), target


def test_charts_are_inline_svg_with_ids_no_other_chart_shares(demo_page):
    _, html, _ = demo_page
    assert html.count("<svg") == 4  # error distribution, one robustness sweep, two benchmark devices
    clip_ids = re.findall(r'<clipPath id="([^"]+)"', html)
    assert clip_ids and len(clip_ids) == len(set(clip_ids))


def test_robustness_and_benchmark_sections_appear_only_with_their_records(demo_files, demo_page):
    _, html, _ = demo_page
    assert 'id="robustness"' in html and 'id="benchmarks"' in html
    assert "2 of 2 curves leave their bound; the other 0 stay within it at every level measured" in html
    assert "✗ oom" in html and "N×N×D matmul" in html
    torch_only, _ = page.render(read_results([next(p for p in demo_files if p.name == "py311-torch.jsonl")]))
    assert 'id="robustness"' not in torch_only and 'id="benchmarks"' not in torch_only


def test_a_discrepancy_is_laid_out_with_its_counterexample_and_copyable_reproducer(demo_page):
    _, html, report = demo_page
    worst = report.discrepancies[0]
    article = html[html.index(f'<article class="discrepancy" id="{worst.anchor}">'):]
    article = article[: article.index("</article>")]
    for expected in (worst.spec_words, "oracle loss", "implementation loss", "max ULP", "embeddings (6 rows)",
                     "oracle gradient", "implementation gradient", "selected terms", '<button class="copy"',
                     "import reference"):
        assert expected in article, expected
    assert f'href="#{worst.anchor}"' in html  # the matrix chip links to it


def test_page_size_stays_small(demo_page):
    path, _, _ = demo_page
    assert path.stat().st_size < 600_000


def test_a_cell_says_which_decisions_it_took_within_the_dtypes_rounding(tmp_path):
    """ambiguous_kinds (an optional field: a record without it still reads) names, per decision kind, the examples
    it made ambiguous: a smooth-loss cell whose soft terms float32 rounded to 0 says soft_underflow on its chip."""
    spec = Spec(mining="batch_all", soft=True, reduction="mean_nonzero")
    writer = ResultsWriter(tmp_path / "run.jsonl")
    writer.header()
    common = dict(adapter="pml.TripletMarginLoss(smooth_loss=True)", framework="torch", spec=spec.to_dict(),
                  spec_label=str(spec), device="cpu", verdict="pass", examples=20, ambiguous_examples=3)
    writer.write("comparison", **common, dtype="float32", quantity="loss", ambiguous_kinds={"soft_underflow": 3})
    writer.write("comparison", **common, dtype="float64", quantity="loss")  # written before the field existed
    writer.close()
    html, _ = page.render(read_results([tmp_path / "run.jsonl"]))
    lines = re.findall(r"20 examples[^\n\"]*", html)  # a line of each chip's hover text
    assert sorted(lines) == ["20 examples, 3 ambiguous", "20 examples, 3 ambiguous (soft_underflow 3)"]

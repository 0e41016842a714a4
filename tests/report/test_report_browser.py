"""The page in a real browser (headless Chromium over the DevTools protocol, see conftest.py): it loads
with no console error and no request beyond itself, the matrix and a discrepancy are in the rendered
DOM, the links and the copy button work, markup from records never runs, and a screenshot is taken."""
from __future__ import annotations

import struct

import pytest

from reports.synthetic import SCRIPT

pytestmark = pytest.mark.browser


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_the_report_renders_cleanly_with_matrix_and_discrepancies(browser, demo_page, tmp_path):
    path, _, report = demo_page
    browser.open(path)
    assert browser.console_errors() == []
    assert browser.requested_urls() == [path.resolve().as_uri()]  # self-contained: nothing else is fetched

    chips = sum(len(v.chips) for g in report.matrix.groups for r in g.rows for c in r.cells if c for v in c.variants)
    assert browser.evaluate("document.querySelectorAll('table.matrix td .chip').length") == chips
    assert browser.evaluate("document.querySelectorAll('table.matrix tr.adapter').length") == len(report.matrix.groups)
    assert browser.evaluate("document.querySelectorAll('article.discrepancy').length") == len(report.discrepancies)
    worst = report.discrepancies[0]
    text = browser.evaluate(f"document.getElementById('{worst.anchor}').innerText")
    assert worst.adapter in text and "Copy" in text and "embeddings (6 rows)" in text and "import reference" in text
    assert browser.evaluate("document.querySelector('#summary .lead').innerText") == report.summary.sentence

    # The header stays in view while the matrix scrolls.
    assert browser.evaluate("getComputedStyle(document.querySelector('table.matrix thead')).position") == "sticky"

    screenshot = browser.screenshot(tmp_path / "report.png")
    assert png_size(screenshot) == (1400, 2000)
    print(f"screenshot: {screenshot}")


def test_a_failed_chip_leads_to_its_counterexample_and_the_copy_button_works(browser, demo_page):
    path, _, report = demo_page
    browser.open(path)
    anchor = report.discrepancies[0].anchor
    browser.evaluate(f"document.querySelector('table.matrix a.chip[href=\"#{anchor}\"]').click()")
    assert browser.evaluate("location.hash") == f"#{anchor}"
    label = browser.evaluate(f"""(() => {{
        const button = document.querySelector('#{anchor} button.copy');
        button.click();
        return new Promise(resolve => setTimeout(() => resolve(button.textContent), 100));
    }})()""")
    assert label in ("Copied", "Selected: press Ctrl+C")  # the clipboard may be refused headless; never an error
    copied = browser.evaluate("window.getSelection().toString() || 'clipboard'")
    assert copied == "clipboard" or "import reference" in copied
    assert browser.console_errors() == []


def test_markup_in_records_is_shown_as_text_and_never_runs(browser, hostile_page):
    path, _, _ = hostile_page
    browser.open(path)
    assert browser.console_errors() == []
    assert not [e for e in browser.events if e.get("method") == "Page.javascriptDialogOpening"], "alert() ran"
    assert browser.evaluate("document.scripts.length") == 1
    assert browser.evaluate("document.images.length") == 0
    assert SCRIPT in browser.evaluate("document.querySelector('table.matrix').innerText")
    assert SCRIPT in browser.evaluate("document.getElementById('problems').innerText")
    assert browser.requested_urls() == [path.resolve().as_uri()]

"""The robustness section: one log-log chart per sweep, every curve normalised by its bound, every point
beyond its bound or not finite visible in the SVG, and the table of where each implementation first
leaves its bound."""
from __future__ import annotations

import re

import pytest

from reports import page, synthetic
from reports.reader import read_results

OFFSETS = (1.0, 1e2, 1e4, 1e6)


def point(adapter: str, sweep: str, level: float, loss_error: float, *, nonfinite: bool = False,
          dtype: str = "float32") -> dict:
    """A sweep record with loss bound 1e-5 and gradient bound 1e-4: the errors below are multiples of them."""
    return dict(adapter=adapter, framework="torch", spec={"mining": "batch_hard", "distance": "euclidean"},
                spec_label="batch_hard euclidean m=1 mean", dtype=dtype, device="cpu", sweep=sweep, level=level,
                loss_error=None if nonfinite else loss_error, grad_error=None if nonfinite else 1e-6,
                bound=1e-5, grad_bound=1e-4, nonfinite=nonfinite, error=None, divergence=None,
                within_bound=not nonfinite and loss_error <= 1e-5)


# The careless curve leaves its bound at 10^2 and 10^4 (two flagged points) and is NaN at 10^6.
CARELESS = [point("gram.careless", "offset", level, error)
            for level, error in zip(OFFSETS[:3], (1e-7, 3e-4, 2e-2))] + [point("gram.careless", "offset", 1e6, 0,
                                                                              nonfinite=True)]
CAREFUL = [point("inhouse.torch", "offset", level, 2e-7) for level in OFFSETS]
NEAR = [point("inhouse.torch", "near_duplicate", level, 1e-7) for level in (1e-2, 1e-5, 1e-8)]


@pytest.fixture(scope="module")
def robustness_page(tmp_path_factory):
    run = synthetic.Run("robust", "torch", "torch 2.13.0", {"cpu": "cpu x86_64"}, cells=[],
                        robustness=CARELESS + CAREFUL + NEAR)
    path = synthetic.write_run(tmp_path_factory.mktemp("robust") / "robust.jsonl", run)
    html, report = page.render(read_results([path]))
    return html, report


def section(html: str) -> str:
    assert '<section class="panel" id="robustness">' in html, "the robustness section is missing"
    start = html.index('id="robustness"')
    return html[start:html.index("</section>", start)]


def markers(svg: str, gid: str) -> int:
    """How many markers the group with SVG id `gid` draws (matplotlib writes each as a <use> element)."""
    found = re.search(rf'<g id="{re.escape(gid)}">(.*?)</g>\s*</g>', svg, re.DOTALL)
    return len(re.findall(r"<use ", found.group(1))) if found else 0


def test_one_inline_svg_chart_per_sweep(robustness_page):
    html, _ = robustness_page
    shown = section(html)
    assert shown.count("<svg") == 2
    assert "sweep: offset" in shown and "sweep: near_duplicate" in shown
    assert "loss error ÷ bound" in shown and "gradient error ÷ bound" in shown


def test_every_flagged_and_every_non_finite_point_is_drawn(robustness_page):
    html, _ = robustness_page
    shown = section(html)
    # Curves are numbered in sorted order within the offset chart (chart 1: near_duplicate sorts first).
    careless = "robustness-1-0"
    assert markers(shown, f"{careless}-loss-flagged") == 2
    assert markers(shown, f"{careless}-loss-broken") == 1 and markers(shown, f"{careless}-grad-broken") == 1
    assert markers(shown, f"{careless}-grad-flagged") == 0  # its gradient stayed within its bound
    assert "robustness-1-1-loss-flagged" not in shown  # the careful curve has nothing to flag


def test_the_table_says_where_each_implementation_first_leaves_its_bound(robustness_page):
    html, report = robustness_page
    shown = section(html)
    assert "1 of 3 curves leave their bound; the other 2 stay within it at every level measured" in shown
    row = re.search(r"<tr><td>offset</td><td>gram\.careless</td>(.*?)</tr>", shown).group(1)
    cells = re.findall(r"<td>(.*?)</td>", row)
    assert cells[4:8] == ["100", "1e+06", "100, 1e+04, 1e+06", "2e+03×"]  # (after the loss) first beyond, first non-finite, all, worst
    assert "inhouse.torch" not in re.sub(r"<svg.*?</svg>", "", shown, flags=re.DOTALL).split("<table")[1]


def test_records_with_and_without_a_spec_share_a_sweep_chart(demo_files, tmp_path):
    """`spec` is optional in a robustness record (the demo's have none): merged with records that carry one, the
    sweep is still drawn, the records without it under no distance."""
    run = synthetic.Run("robust", "torch", "torch 2.13.0", {"cpu": "cpu x86_64"}, cells=[], robustness=CAREFUL)
    html, report = page.render(read_results([*demo_files, synthetic.write_run(tmp_path / "robust.jsonl", run)]))
    assert set(report.robustness["distance"]) == {None, "euclidean"}
    assert "sweep: offset" in section(html)

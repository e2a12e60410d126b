"""The report in a real browser: headless Chromium (Debian's `chromium`, installed by .ci/run) driven by
playwright. Skipped when no Chromium is found, except under CI=true, where that is a failure."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from llara_bench.harness.runner import RunConfig, run_suite
from llara_bench.harness.suites import parse_suite
from llara_bench.models.tiny_llama import tiny_llama_path
from llara_bench.reports import write_report
from test_reports import skeleton

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parent.parent
ARTEFACTS = Path(os.environ.get("LLARA_BENCH_ARTEFACTS", ROOT / "artefacts"))


def _missing(what: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what}: CI must run the browser tests (.ci/run installs Debian's chromium)")
    pytest.skip(what)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (the dev extra)")
    executable = os.environ.get("LLARA_BENCH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not executable:
        _missing("no Chromium found (apt-get install chromium, or set LLARA_BENCH_CHROMIUM)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable)
        yield b
        b.close()


class Visit:
    """A page opened from file://, with every console message, page error and request recorded;
    requests for anything but the report itself are aborted."""

    def __init__(self, browser, path: Path, width: int = 1366, height: int = 800):
        self.page = browser.new_page(viewport={"width": width, "height": height})
        self.url = path.resolve().as_uri()
        self.console: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.console.append((m.type, m.text)))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.route("**/*", lambda route: route.continue_() if route.request.url == self.url else route.abort())
        self.page.goto(self.url, wait_until="load")

    def close(self):
        self.page.close()


# Each table against the box it sits in (its scroll container, else its parent): wider means a reader scrolls
# sideways, or the page does. Every <details> is opened first, so that no table hides at zero width.
OVERFLOWS = """() => {
  document.querySelectorAll('details').forEach(d => d.open = true);
  return Array.from(document.querySelectorAll('table')).map(t => {
    const box = t.closest('.table-wrap') || t.parentElement;
    return {table: t.id || t.className, scroll: box.scrollWidth, client: box.clientWidth,
            right: t.getBoundingClientRect().right, limit: box.getBoundingClientRect().right};
  }).filter(o => o.scroll > o.client + 1 || o.right > o.limit + 1);
}"""


def _screens() -> list[Path]:
    """Where screenshots go: the test artefacts folder, and LLARA_BENCH_SCREENS when set (a stable copy)."""
    folders = [ARTEFACTS] + ([Path(os.environ["LLARA_BENCH_SCREENS"])] if os.environ.get("LLARA_BENCH_SCREENS") else [])
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    return folders


def test_smoke_report_in_chromium(browser, smoke_run_dir):
    visit = Visit(browser, smoke_run_dir / "report.html")
    page = visit.page
    try:
        assert visit.errors == []
        assert [m for m in visit.console if m[0] == "error"] == []
        assert visit.requests == [visit.url]  # the page itself, nothing else
        # both charts are inline SVG: one marker per model, one bar per phase of each (model, dataset)
        assert page.locator("#chart-quality .chart-view:not([hidden]) .point").count() == 4
        assert page.locator("#chart-phases rect.bar").count() >= 4 * 3
        assert page.locator("#chart-quality svg").first.bounding_box()["width"] > 600
        legend = [t.split()[0] for t in page.locator("#quality-legend li").all_inner_texts()]
        assert legend == ["minilm", "bm25", "tiny-llara", "tiny-llama"]  # best first
        # the summary table, best first with a rank, its best cell marked, and sorting by a column
        summary = page.locator("#summary-table")
        assert summary.is_visible()
        assert summary.locator("td.best").inner_text().startswith("0.9364")
        rows = lambda: [t.strip().split()[0] for t in summary.locator("tbody th").all_inner_texts()]  # noqa: E731
        assert rows() == ["minilm", "bm25", "tiny-llara", "tiny-llama"]
        assert [t.strip() for t in summary.locator("tbody tr td:first-child").all_inner_texts()] == ["1", "2", "3", "4"]
        summary.locator("thead th", has_text="smoke").click()
        assert rows() == ["tiny-llama", "tiny-llara", "bm25", "minilm"]  # ascending nDCG@10
        summary.locator("thead th", has_text="smoke").click()
        assert rows() == ["minilm", "bm25", "tiny-llara", "tiny-llama"]
    finally:
        visit.close()


@pytest.mark.parametrize("width", [1280, 800])
def test_smoke_report_fits_the_width_and_filters_queries(browser, smoke_run_dir, width):
    visit = Visit(browser, smoke_run_dir / "report.html", width=width, height=900)
    page = visit.page
    try:
        # the per-query table filters as one types: one query mentions the sky
        table = page.locator("#pq-1")
        assert table.locator("tbody tr:visible").count() == 40
        page.locator("input.query-filter").first.fill("sky")
        assert table.locator("tbody tr:visible").count() == 1
        assert "why is the sky blue" in table.locator("tbody tr:visible").inner_text()
        assert page.locator('.filter-count[data-for="pq-1"]').inner_text() == "1 of 40"
        page.locator("input.query-filter").first.fill("SKY d123")  # every word must match, in any case
        assert table.locator("tbody tr:visible").count() == 1
        page.locator("input.query-filter").first.fill("sky nosuchword")
        assert table.locator("tbody tr:visible").count() == 0
        page.locator("input.query-filter").first.fill("")
        assert table.locator("tbody tr:visible").count() == 40
        # ordering the queries by a model's gains over the baseline, then its losses, then back by query id
        order = page.locator("select.pq-order").first
        order.select_option(label="minilm's largest gains over bm25")
        deltas = [float(d) for d in page.locator('#pq-1 tbody td[data-col="1"]').evaluate_all(
            "cells => cells.map(c => c.dataset.delta)")]
        assert deltas == sorted(deltas, reverse=True) and deltas[0] > 0.5
        order.select_option(label="tiny-llama's largest losses against bm25")
        deltas = [float(d) for d in page.locator('#pq-1 tbody td[data-col="4"]').evaluate_all(
            "cells => cells.map(c => c.dataset.delta)")]
        assert deltas == sorted(deltas) and deltas[0] < -0.5
        order.select_option(label="by query id")
        assert page.locator("#pq-1 tbody tr td:first-child code").first.inner_text() == "q01"
        # sorting the per-query table by a model's score
        page.locator("#pq-1 thead th", has_text="tiny-llama").click()
        scores = [float(c.split()[0]) for c in page.locator("#pq-1 tbody tr td:nth-child(5)").all_inner_texts()]
        assert scores == sorted(scores)
        # no table wider than its box, nothing wider than the window
        assert page.evaluate(OVERFLOWS) == []
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        # names are never broken: each model name sits on one line
        heights = page.evaluate("Array.from(document.querySelectorAll('#summary-table .name'))"
                                ".map(e => e.getClientRects().length)")
        assert heights and set(heights) == {1}
        assert visit.errors == [] and [m for m in visit.console if m[0] == "error"] == []
        assert visit.requests == [visit.url]
        for folder in _screens():
            shot = folder / f"report-smoke-{width}.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 50_000
    finally:
        visit.close()


def test_eight_models_fit_800_px_with_the_per_query_columns_on_demand(browser, smoke_run_dir, tmp_path):
    """Two labelled copies of the smoke run: eight models, too many per-query columns for 800 px. The table
    shows four (the baseline and the suite's declared pair first) and a tick adds another."""
    from llara_bench.reports.collect import Input

    before = "before the change, a long label"  # long names wrap between words, never inside one
    html_path = write_report([Input(smoke_run_dir, before), Input(smoke_run_dir, "after")],
                             tmp_path / "report.html")[0]
    visit = Visit(browser, html_path, width=800, height=900)
    page = visit.page
    try:
        assert page.evaluate(OVERFLOWS) == []
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        shown = lambda: [" ".join(t.split()) for t in  # noqa: E731
                         page.locator("#pq-1 thead th.model-col:visible").all_inner_texts()]
        assert shown() == [f"bm25 ({before})", f"tiny-llara ({before})", "tiny-llara (after)", f"tiny-llama ({before})"]
        assert page.locator("#pq-1 tbody tr:first-child td.pq:visible").count() == 4
        page.locator(".model-picker label", has_text=f"minilm ({before})").click()
        assert shown()[0] == f"minilm ({before})" and len(shown()) == 5
        words = page.evaluate("Array.from(document.querySelectorAll('.name .w')).map(w => w.getClientRects().length)")
        assert 1 in words and set(words) <= {0, 1}  # no word of a name is broken (0: a hidden one)
        assert page.locator("#pq-1 tbody tr:first-child td.pq:visible").count() == 5
        assert visit.errors == [] and [m for m in visit.console if m[0] == "error"] == []
    finally:
        visit.close()


def test_quality_chart_switches_between_the_mean_and_each_dataset(browser, tmp_path):
    from synthetic_results import DATASETS, MODELS, write_run

    html_path = write_report([write_run(tmp_path / "synthetic")], tmp_path / "report.html")[0]
    visit = Visit(browser, html_path, width=1280, height=900)
    page = visit.page
    try:
        views = page.locator("#chart-quality .chart-view")
        assert views.count() == 1 + len(DATASETS)
        visible = lambda: page.locator("#chart-quality .chart-view:visible figcaption").inner_text()  # noqa: E731
        assert "mean over the datasets" in visible()
        page.locator("#quality-view").select_option(label="nfcorpus")
        assert "nfcorpus" in visible() and page.locator("#chart-quality .chart-view:visible").count() == 1
        assert page.locator("#chart-quality .chart-view:visible .point").count() == len(MODELS)
        # every marker inside its plot: none clipped by the SVG's edges
        outside = page.evaluate("""Array.from(document.querySelectorAll('#chart-quality .point')).filter(p => {
            const s = p.ownerSVGElement.getBoundingClientRect(), b = p.getBoundingClientRect();
            return b.width > 0 && (b.left < s.left || b.right > s.right || b.top < s.top || b.bottom > s.bottom);
        }).length""")
        assert outside == 0
        assert visit.errors == [] and [m for m in visit.console if m[0] == "error"] == []
    finally:
        visit.close()


MARKUP = {
    "doc": '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">',
    "model": "<img src=x onerror=window.__pwned=3>",
    "dataset": "<svg onload=window.__pwned=4>",
    "query": "<b onmouseover=window.__pwned=5>cats</b>",
}


@pytest.fixture(scope="module")
def injected_report(tmp_path_factory):
    """A run whose corpus, queries, model name and dataset name all carry markup, and its report."""
    folder = tmp_path_factory.mktemp("markup")
    data = folder / "data"
    (data / "qrels").mkdir(parents=True)
    topics = ["cats purr when content", "dogs bark at strangers", "parrots mimic speech", "owls hunt at night",
              "bees make honey", "whales sing underwater"]
    with (data / "corpus.jsonl").open("w") as fh:
        for i, topic in enumerate(topics):
            fh.write(json.dumps({"_id": f"d{i}", "title": f"{MARKUP['doc']} {topic.split()[0]}",
                                 "text": f"{topic}. {MARKUP['doc']} More about {topic}."}) + "\n")
    with (data / "queries.jsonl").open("w") as fh:
        for i, topic in enumerate(topics):
            fh.write(json.dumps({"_id": f"q{i}", "text": f"{MARKUP['query']} {topic.split()[0]} {topic.split()[1]}"}) + "\n")
    (data / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" +
                                            "".join(f"q{i}\td{i}\t1\n" for i in range(len(topics))))
    models_file = folder / "encoders.yaml"
    models_file.write_text(f"encoders:\n  {json.dumps(MARKUP['model'])}: "
                           f"{{model: {tiny_llama_path()}, contract: llara, dtype: float32}}\n")
    suite = parse_suite(f"name: markup\nmodels: [bm25, {json.dumps(MARKUP['model'])}]\nbaseline: bm25\n"
                        f"datasets:\n  - {{spec: 'folder:{data}', name: {json.dumps(MARKUP['dataset'])}}}\n"
                        "top_k: 10\n", "markup.yaml")
    run = run_suite(RunConfig(suite=suite, output=folder / "runs", models_files=[models_file]))
    html_path, md_path = write_report([run.run_dir], run.run_dir / "report.html")[:2]
    return html_path, md_path


def test_markup_in_data_and_names_is_escaped_in_the_files(injected_report):
    html_path, md_path = injected_report
    html_text = html_path.read_text(encoding="utf-8")
    page = skeleton(html_text)
    assert not [(t, a) for t, a in page.tags if any(k.startswith("on") for k in a)]
    assert not [t for t, _ in page.tags if t == "img"]
    assert [t for t, _ in page.tags].count("svg") == 2  # the two charts, none from the data
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html_text  # the document, as text
    assert "&lt;img src=x onerror=window.__pwned=3&gt;" in html_text  # the model name, as text
    md = md_path.read_text(encoding="utf-8")
    assert "<img" not in md and "<svg" not in md and "&lt;img src=x onerror=window.__pwned=3&gt;" in md


def test_markup_in_data_and_names_renders_as_text_in_chromium(browser, injected_report):
    html_path, _ = injected_report
    visit = Visit(browser, html_path)
    page = visit.page
    try:
        page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        page.mouse.move(200, 300)
        assert page.evaluate("window.__pwned") is None
        assert visit.errors == [] and [m for m in visit.console if m[0] == "error"] == []
        assert visit.requests == [visit.url]
        assert page.evaluate("document.querySelectorAll('img, [onerror], [onload], [onmouseover]').length") == 0
        text = page.locator("body").inner_text()
        # a corpus document's markup, shown as text where the per-query view shows a document (hovering)
        titles = page.locator("#pq-1 .hit[title]").evaluate_all("hits => hits.map(h => h.title)")
        assert titles and all(MARKUP["doc"] in t for t in titles)
        assert MARKUP["query"] in text and MARKUP["model"] in text and MARKUP["dataset"] in text
        assert sorted(page.locator("#quality-legend .name").all_text_contents()) == sorted(["bm25", MARKUP["model"]])
        assert sorted(page.locator("#chart-quality .point-label").all_text_contents()) == sorted(["bm25", MARKUP["model"]])
        assert MARKUP["dataset"] in page.locator("#chart-quality figcaption").text_content()
        assert MARKUP["dataset"] in page.locator("#chart-quality svg").get_attribute("aria-label")
    finally:
        visit.close()

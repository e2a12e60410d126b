"""Reports from real runs: files, contents, exports, the command line, and bad input."""

from __future__ import annotations

import csv
import json
import shutil
from html.parser import HTMLParser

import pytest
from typer.testing import CliRunner

from llara_bench.harness.cli import app
from llara_bench.harness.errors import ConfigError, DataFormatError
from llara_bench.reports import Options, build_report, write_report
from llara_bench.reports.exports import render_markdown


class Skeleton(HTMLParser):
    """Every tag and attribute of a page, and the scripts' types and sizes."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[dict] = []
        self._in_script = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = {"type": dict(attrs).get("type"), "id": dict(attrs).get("id"), "size": 0}
            self.scripts.append(self._in_script)

    def handle_data(self, data):
        if self._in_script is not None:
            self._in_script["size"] += len(data)

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = None


def skeleton(html_text: str) -> Skeleton:
    parser = Skeleton()
    parser.feed(html_text)
    return parser


def test_run_writes_the_report_with_the_suites_baseline(smoke_run_dir):
    html_path, md_path, csv_path = (smoke_run_dir / f"report.{ext}" for ext in ("html", "md", "csv"))
    assert html_path.is_file() and md_path.is_file() and csv_path.is_file()
    report = build_report([smoke_run_dir])
    assert report.baseline == "bm25"  # the smoke suite names it
    assert report.models == ["minilm", "bm25", "tiny-llama", "tiny-llara"] and report.datasets == ["smoke"]
    assert report.is_best("minilm", "smoke") and not report.is_best("bm25", "smoke")
    # MiniLM beats BM25 on the smoke set by 0.46 nDCG@10 over 40 queries: significant after correction
    assert report.direction("minilm", "smoke") == 1
    minilm = report.comparisons[("minilm", "smoke")]
    assert minilm.wins + minilm.ties + minilm.losses == 40 and minilm.wins > minilm.losses
    assert minilm.ci_low < minilm.delta < minilm.ci_high
    assert minilm.p_adjusted >= minilm.p_value
    assert ("bm25", "smoke") not in report.comparisons  # the baseline is not compared with itself


def test_csv_and_markdown_carry_the_result_files_numbers(smoke_run_dir):
    rows = list(csv.DictReader((smoke_run_dir / "report.csv").open(encoding="utf-8")))
    assert [(r["model"], r["dataset"]) for r in rows] == [("minilm", "smoke"), ("bm25", "smoke"),
                                                           ("tiny-llama", "smoke"), ("tiny-llara", "smoke")]
    for row in rows:
        result = json.loads((smoke_run_dir / "results" / row["model"] / "smoke.json").read_text())
        assert float(row["value"]) == result["metrics"]["nDCG@10"]
        assert float(row["measure:AP"]) == result["metrics"]["AP"]
        assert row["dataset_fingerprint"] == result["dataset"]["fingerprint"]
        assert row["n_queries"] == "40"
    minilm = rows[0]
    assert minilm["is_best"] == "True" and minilm["significant"] == "True"
    assert int(minilm["wins"]) + int(minilm["ties"]) + int(minilm["losses"]) == 40
    assert rows[1]["p_value"] == ""  # the baseline row has no test
    md = (smoke_run_dir / "report.md").read_text(encoding="utf-8")
    value = json.loads((smoke_run_dir / "results/minilm/smoke.json").read_text())["metrics"]["nDCG@10"]
    assert f"| minilm | **{value:.4f}**" in md
    assert "| bm25 (baseline) |" in md and "## Significance against bm25" in md


def test_html_is_self_contained(smoke_run_dir):
    html_text = (smoke_run_dir / "report.html").read_text(encoding="utf-8")
    page = skeleton(html_text)
    # nothing to fetch: no src, no stylesheet links, links only within the page
    assert not [(t, a) for t, a in page.tags if "src" in a or t in ("link", "iframe", "object", "embed")]
    assert all(a["href"].startswith("#") for t, a in page.tags if "href" in a)
    csp = next(a["content"] for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in csp
    # plotly.js (megabytes), our script, and one JSON block per chart
    assert sorted(s["type"] or "js" for s in page.scripts) == ["application/json", "application/json", "js", "js"]
    assert max(s["size"] for s in page.scripts) > 1_000_000
    for section in ("summary", "quality-vs-cost", "significance", "queries", "measures", "timing", "provenance"):
        assert any(a.get("id") == section for _, a in page.tags), section


def test_html_shows_provenance_and_timings(smoke_run_dir):
    html_text = (smoke_run_dir / "report.html").read_text(encoding="utf-8")
    result = json.loads((smoke_run_dir / "results/tiny-llama/smoke.json").read_text())
    prov = result["provenance"]
    assert prov["git"]["commit"] in html_text
    assert result["dataset"]["fingerprint"] in html_text
    assert "left" in html_text and "last_k_mean" in html_text  # tiny-llama's LLaRA contract as run
    assert f"torch {prov['libraries']['torch']}" in html_text
    assert "encode_corpus s" in html_text and "peak RSS" in html_text
    assert "untrained" in html_text


def test_report_shows_the_runs_expected_scores_and_notes_a_fail(smoke_run_dir, tmp_path):
    html_text = (smoke_run_dir / "report.html").read_text(encoding="utf-8")
    gates = json.loads((smoke_run_dir / "run.json").read_text())["gates"]
    assert [g["model"] for g in gates] == ["minilm", "bm25", "tiny-llama", "tiny-llara"]  # the smoke suite's expected scores
    assert "Expected scores" in html_text and 'id="gates-table"' in html_text
    assert html_text.count('class="gate-ok') == 4 and "FAIL" not in html_text.split('id="gates-table"')[1][:4000]
    wrong = tmp_path / "wrong"
    shutil.copytree(smoke_run_dir, wrong)
    run = json.loads((wrong / "run.json").read_text())
    run["gates"][1] |= {"score": 0.9, "status": "FAIL"}
    (wrong / "run.json").write_text(json.dumps(run))
    report = build_report([wrong])
    assert "1 expected score FAIL (see Expected scores)" in report.notes
    assert [g["status"] for g in report.gates] == [gates[0]["status"], "FAIL", *(g["status"] for g in gates[2:])]
    markdown = render_markdown(report).split("## Expected scores")[1]
    assert "| bm25 | smoke | nDCG@10 | 0.9000 |" in markdown and "| **FAIL** |" in markdown
    assert markdown.count("| OK |") == 3


def test_report_command_compares_runs(smoke_run_dir, tmp_path):
    second = tmp_path / "second"
    shutil.copytree(smoke_run_dir, second)
    (second / "run.json").unlink()  # an interrupted run: results/ but no run.json
    out = tmp_path / "cmp" / "compare.html"
    cli = CliRunner().invoke(app, ["report", str(smoke_run_dir), str(second), "-o", str(out), "--baseline", "minilm",
                                   "--test", "t-test", "--correction", "bonferroni", "--title", "two runs"])
    assert cli.exit_code == 0, cli.output
    assert out.is_file() and out.with_suffix(".md").is_file() and out.with_suffix(".csv").is_file()
    md = out.with_suffix(".md").read_text(encoding="utf-8")
    assert md.startswith("# two runs") and "paired t-test" in md and "Bonferroni" in md
    assert md.count("is superseded by") == 4  # same models and datasets in both inputs: one of each kept
    assert "| minilm (baseline) |" in md


def test_report_command_errors_name_what_is_wrong(smoke_run_dir, tmp_path):
    def report(*args):
        result = CliRunner().invoke(app, ["report", *map(str, args)])
        assert result.exit_code == 2, result.output
        return " ".join(result.output.split())  # rich wraps long lines

    assert f"{tmp_path / 'nope'}: no such run directory or result file" in report(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    assert "not a run directory: expected run.json or results/" in report(tmp_path / "empty")
    assert "Did you mean 'minilm'" in report(smoke_run_dir, "-o", tmp_path / "r.html", "-b", "minilmm")
    metric = report(smoke_run_dir, "-o", tmp_path / "r.html", "--metric", "P@5")
    assert "results/minilm/smoke.json: no 'P@5' among its measures" in metric
    assert "expected one of randomization, t-test" in report(smoke_run_dir, "--test", "wilcoxon")
    assert not list(tmp_path.glob("r.*"))


def test_corrupt_result_file_is_named(smoke_run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(smoke_run_dir, run)
    (run / "results/bm25/smoke.json").write_text('{"schema_version": 1, "model": ')
    with pytest.raises(DataFormatError, match=r"results/bm25/smoke.json.*cannot read"):
        build_report([run])
    (run / "results/bm25/smoke.json").write_text('{"schema_version": 1, "created_at": "x"}')
    with pytest.raises(DataFormatError, match=r"results/bm25/smoke.json \(field 'model'\)"):
        build_report([run])


def test_results_on_different_data_are_not_paired(smoke_run_dir, tmp_path):
    other = tmp_path / "other.json"
    result = json.loads((smoke_run_dir / "results/minilm/smoke.json").read_text())
    result["model"]["name"] = "minilm-v2"
    result["dataset"]["fingerprint"] = "sha256:" + "0" * 64
    other.write_text(json.dumps(result))
    report = build_report([smoke_run_dir, other])
    assert "minilm-v2" in report.models and ("minilm", "smoke") not in report.comparisons
    assert "different data" in report.untestable["smoke"]


def test_a_failed_render_writes_nothing(smoke_run_dir, tmp_path, monkeypatch):
    from llara_bench.reports import exports

    def boom(report):
        raise RuntimeError("render failed")

    monkeypatch.setattr(exports, "render_csv", boom)
    with pytest.raises(RuntimeError):
        write_report([smoke_run_dir], tmp_path / "out" / "report.html")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_options_are_validated():
    with pytest.raises(ConfigError, match="--alpha"):
        Options(alpha=1.5)
    with pytest.raises(ConfigError, match="holm, bonferroni"):
        Options(correction="fdr")


def test_per_query_examples_match_the_run_file(smoke_run_dir):
    import gzip

    from llara_bench.harness.datasets import load_dataset

    report = build_report([smoke_run_dir])
    shown = report.examples("minilm", "smoke")
    assert 1 <= len(shown) <= 6
    gains = [e for e in shown if e.delta > 0]
    assert gains and gains == sorted(gains, key=lambda e: -e.delta)
    first_hit = {}
    for line in gzip.open(smoke_run_dir / "results/minilm/smoke.trec.gz", "rt"):
        qid, _, doc, rank, _, _ = line.split()
        if rank == "1":
            first_hit[qid] = doc
    smoke = load_dataset("embedded:smoke")
    titles = dict(zip(smoke.corpus.ids, smoke.corpus.titles))
    for e in shown:
        assert e.top["id"] == first_hit[e.query_id]
        assert e.top["title"] == titles[e.top["id"]]
        assert e.query == smoke.split("test").queries[e.query_id]


def test_marker_size_grows_with_parameters(smoke_run_dir):
    from llara_bench.reports.charts import MAX_MARKER, MIN_MARKER, UNKNOWN_MARKER, marker_sizes

    report = build_report([smoke_run_dir])  # minilm 22.7M, tiny-llama and tiny-llara 443K, bm25 unknown
    sizes = marker_sizes(report)
    assert sizes == {"minilm": MAX_MARKER, "tiny-llama": MIN_MARKER, "tiny-llara": MIN_MARKER,
                     "bm25": UNKNOWN_MARKER}

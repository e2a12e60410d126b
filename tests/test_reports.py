"""Reports: one from a real smoke run end to end; the rest from synthetic run directories (tests/synthetic_results.py,
schema-valid results with known per-query differences): files, contents, exports, the command line, bad input."""

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
from synthetic_results import DATASETS, MODELS, document, fingerprint, query_text, write_run


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


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("synthetic") / "synthetic-run")


@pytest.fixture(scope="module")
def synthetic_report(synthetic_run):
    """The report files, written into the run directory as `llara-bench run` does at its end."""
    return write_report([synthetic_run], synthetic_run / "report.html")


def _result(run_dir, model: str, dataset: str) -> dict:
    return json.loads((run_dir / "results" / model / f"{dataset}.json").read_text())


def test_run_writes_the_report_with_the_suites_baseline(smoke_run_dir):
    """The one report of a real run: `llara-bench run --suite smoke` end to end, its files and what they say."""
    import gzip

    from llara_bench.harness.datasets import load_dataset

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
    assert ("bm25", "smoke") not in report.comparisons  # the baseline is not compared with itself
    rows = list(csv.DictReader(csv_path.open(encoding="utf-8")))
    assert [r["model"] for r in rows] == report.models
    for row in rows:
        assert float(row["value"]) == _result(smoke_run_dir, row["model"], "smoke")["metrics"]["nDCG@10"]
    # the per-query view shows each query's text and the top document of the run file, as the dataset has them
    shown = report.examples("minilm", "smoke")
    assert 1 <= len(shown) <= 6
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


def test_report_compares_each_model_with_the_runs_baseline(synthetic_run):
    report = build_report([synthetic_run])
    assert report.baseline == "bm25"  # run.json names it, though it is not the first model
    assert report.models == [m.name for m in MODELS] and report.datasets == list(DATASETS)
    for dataset, n in DATASETS.items():
        assert report.is_best("minilm", dataset) and not report.is_best("bm25", dataset)
        # shifted by +0.35 and -0.35 over 24-30 queries: significant after correction, either way
        assert report.direction("minilm", dataset) == 1 and report.direction("tiny-llama", dataset) == -1
        for model in ("minilm", "tiny-llama", "tiny-llara"):
            c = report.comparisons[(model, dataset)]
            assert c.wins + c.ties + c.losses == c.n == n
            assert c.delta == pytest.approx(report.value(model, dataset) - report.value("bm25", dataset))
            assert c.ci_low < c.delta < c.ci_high and c.p_adjusted >= c.p_value
        assert ("bm25", dataset) not in report.comparisons  # the baseline is not compared with itself
    assert report.comparisons[("minilm", "scifact")].wins > report.comparisons[("minilm", "scifact")].losses
    assert report.is_best("minilm", None)  # the mean over the datasets
    assert report.mean("minilm") == pytest.approx(sum(report.value("minilm", d) for d in DATASETS) / len(DATASETS))


def test_csv_and_markdown_carry_the_result_files_numbers(synthetic_run, synthetic_report):
    _, md_path, csv_path = synthetic_report[:3]
    rows = list(csv.DictReader(csv_path.open(encoding="utf-8")))
    assert [(r["model"], r["dataset"]) for r in rows] == [(m.name, d) for m in MODELS for d in DATASETS]
    for row in rows:
        result = _result(synthetic_run, row["model"], row["dataset"])
        assert float(row["value"]) == result["metrics"]["nDCG@10"]
        assert float(row["measure:AP"]) == result["metrics"]["AP"]
        assert row["dataset_fingerprint"] == result["dataset"]["fingerprint"] == fingerprint(row["dataset"])
        assert row["n_queries"] == str(DATASETS[row["dataset"]])
    minilm = rows[0]
    assert minilm["is_best"] == "True" and minilm["significant"] == "True"
    assert int(minilm["wins"]) + int(minilm["ties"]) + int(minilm["losses"]) == DATASETS["scifact"]
    assert [r["significant"] for r in rows if r["model"] == "tiny-llama"] == ["True", "True"]
    assert [r["p_value"] for r in rows if r["model"] == "bm25"] == ["", ""]  # the baseline rows have no test
    md = md_path.read_text(encoding="utf-8")
    value = _result(synthetic_run, "minilm", "scifact")["metrics"]["nDCG@10"]
    assert f"| minilm | **{value:.4f}**" in md
    assert "| bm25 (baseline) |" in md and "## Significance against bm25" in md
    assert "| model | scifact | nfcorpus | mean |" in md


def test_html_is_self_contained(synthetic_report):
    html_text = synthetic_report[0].read_text(encoding="utf-8")
    page = skeleton(html_text)
    # nothing to fetch: no src, no stylesheet links; links within the page or to files beside it (relative)
    assert not [(t, a) for t, a in page.tags if "src" in a or t in ("link", "iframe", "object", "embed")]
    hrefs = [a["href"] for t, a in page.tags if "href" in a]
    assert not [h for h in hrefs if ":" in h or h.startswith("/")], "only relative links"
    assert any(h.startswith("results/") for h in hrefs)
    csp = next(a["content"] for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in csp
    # one small script of our own; the charts are inline SVG (no plotly.js, which weighed 4.9 MB)
    assert [s["type"] for s in page.scripts] == [None] and page.scripts[0]["size"] < 10_000
    assert [t for t, _ in page.tags].count("svg") == 1 + len(DATASETS) + 1  # the mean and each dataset; phases
    assert len(html_text.encode("utf-8")) < 400_000
    for section in ("summary", "quality-vs-cost", "significance", "queries", "measures", "timing", "provenance"):
        assert any(a.get("id") == section for _, a in page.tags), section


def test_html_shows_provenance_and_timings(synthetic_run, synthetic_report):
    html_text = synthetic_report[0].read_text(encoding="utf-8")
    result = _result(synthetic_run, "tiny-llama", "scifact")
    prov = result["provenance"]
    assert prov["git"]["commit"] in html_text
    assert result["dataset"]["fingerprint"] in html_text
    assert "left" in html_text and "last_k_mean" in html_text  # tiny-llama's LLaRA contract as run
    assert f"torch {prov['libraries']['torch']}" in html_text
    assert ">encode corpus</th>" in html_text and "peak RSS" in html_text and "search p90" in html_text
    assert "untrained" in html_text


def test_report_shows_the_runs_expected_scores_and_notes_a_fail(synthetic_run, synthetic_report, tmp_path):
    html_text = synthetic_report[0].read_text(encoding="utf-8")
    gates = json.loads((synthetic_run / "run.json").read_text())["gates"]
    assert [g["model"] for g in gates] == [m.name for m in MODELS] and {g["status"] for g in gates} == {"OK"}
    assert "Expected scores" in html_text and 'id="gates-table"' in html_text
    assert html_text.count('class="gate-ok') == 4 and "FAIL" not in html_text.split('id="gates-table"')[1][:4000]
    wrong = tmp_path / "wrong"
    shutil.copytree(synthetic_run, wrong)
    run = json.loads((wrong / "run.json").read_text())
    run["gates"][1] |= {"score": 0.9, "status": "FAIL"}
    (wrong / "run.json").write_text(json.dumps(run))
    report = build_report([wrong])
    assert "1 expected score FAIL (see Expected scores)" in report.notes
    assert [g["status"] for g in report.gates] == ["OK", "FAIL", "OK", "OK"]
    markdown = render_markdown(report).split("## Expected scores")[1]
    assert "| bm25 | scifact | nDCG@10 | 0.9000 |" in markdown and "| **FAIL** |" in markdown
    assert markdown.count("| OK |") == 3


def test_report_command_compares_runs(synthetic_run, tmp_path):
    second = write_run(tmp_path / "second", seed=1, created_at="2026-01-02T00:00:00+00:00")
    (second / "run.json").unlink()  # an interrupted run: results/ but no run.json
    out = tmp_path / "cmp" / "compare.html"
    cli = CliRunner().invoke(app, ["report", str(synthetic_run), str(second), "-o", str(out), "--baseline", "minilm",
                                   "--test", "t-test", "--correction", "bonferroni", "--title", "two runs"])
    assert cli.exit_code == 0, cli.output
    assert out.is_file() and out.with_suffix(".md").is_file() and out.with_suffix(".csv").is_file()
    md = out.with_suffix(".md").read_text(encoding="utf-8")
    assert md.startswith("# two runs") and "paired t-test" in md and "Bonferroni" in md
    # same models and datasets in both inputs: one of each kept, the newer (the second run)
    assert md.count("is superseded by") == len(MODELS) * len(DATASETS)
    assert "| minilm (baseline) |" in md
    rows = {(r["model"], r["dataset"]): r for r in csv.DictReader(out.with_suffix(".csv").open(encoding="utf-8"))}
    for (model, dataset), row in rows.items():
        assert float(row["value"]) == _result(second, model, dataset)["metrics"]["nDCG@10"]
        assert row["run_id"] == "second"


def test_report_command_errors_name_what_is_wrong(synthetic_run, tmp_path):
    def report(*args):
        result = CliRunner().invoke(app, ["report", *map(str, args)])
        assert result.exit_code == 2, result.output
        return " ".join(result.output.split())  # rich wraps long lines

    assert f"{tmp_path / 'nope'}: no such run directory, result file or TREC run file" in report(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    assert "not a run directory: expected run.json or results/" in report(tmp_path / "empty")
    assert "Did you mean 'minilm'" in report(synthetic_run, "-o", tmp_path / "r.html", "-b", "minilmm")
    metric = report(synthetic_run, "-o", tmp_path / "r.html", "--metric", "P@5")
    assert "results/minilm/scifact.json: no 'P@5' among its measures" in metric
    assert "expected one of randomization, t-test" in report(synthetic_run, "--test", "wilcoxon")
    assert not list(tmp_path.glob("r.*"))


def test_corrupt_result_file_is_named(synthetic_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(synthetic_run, run)
    (run / "results/bm25/scifact.json").write_text('{"schema_version": 1, "model": ')
    with pytest.raises(DataFormatError, match=r"results/bm25/scifact.json.*cannot read"):
        build_report([run])
    (run / "results/bm25/scifact.json").write_text('{"schema_version": 1, "created_at": "x"}')
    with pytest.raises(DataFormatError, match=r"results/bm25/scifact.json \(field 'model'\)"):
        build_report([run])


def test_results_on_different_data_are_not_paired(synthetic_run, tmp_path):
    other = tmp_path / "other.json"
    result = _result(synthetic_run, "minilm", "scifact")
    result["model"]["name"] = "minilm-v2"
    result["dataset"]["fingerprint"] = "sha256:" + "0" * 64
    other.write_text(json.dumps(result))
    report = build_report([synthetic_run, other])
    assert "minilm-v2" in report.models and ("minilm", "scifact") not in report.comparisons
    assert "different data" in report.untestable["scifact"]
    assert ("minilm", "nfcorpus") in report.comparisons  # the other dataset is still compared


def test_a_failed_render_writes_nothing(synthetic_run, tmp_path, monkeypatch):
    from llara_bench.reports import exports

    def boom(report):
        raise RuntimeError("render failed")

    monkeypatch.setattr(exports, "render_csv", boom)
    with pytest.raises(RuntimeError):
        write_report([synthetic_run], tmp_path / "out" / "report.html")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_options_are_validated():
    with pytest.raises(ConfigError, match="--alpha"):
        Options(alpha=1.5)
    with pytest.raises(ConfigError, match="holm, bonferroni"):
        Options(correction="fdr")


def test_per_query_examples_are_the_largest_gains_and_losses(synthetic_run):
    report = build_report([synthetic_run])
    for model, dataset in [("minilm", "scifact"), ("tiny-llama", "nfcorpus")]:
        mine = _result(synthetic_run, model, dataset)["per_query"]["nDCG@10"]
        base = _result(synthetic_run, "bm25", dataset)["per_query"]["nDCG@10"]
        shown = report.examples(model, dataset)
        assert 1 <= len(shown) <= 6
        gains, losses = [e for e in shown if e.delta > 0], [e for e in shown if e.delta < 0]
        assert len(gains) + len(losses) == len(shown)  # ties with the baseline are never shown
        assert gains == sorted(gains, key=lambda e: -e.delta) and losses == sorted(losses, key=lambda e: e.delta)
        deltas = sorted((mine[q] - base[q] for q in mine), reverse=True)
        assert [e.delta for e in gains] == [d for d in deltas[:3] if d > 0]
        assert [e.delta for e in losses] == [d for d in deltas[::-1][:3] if d < 0]
        top = _result(synthetic_run, model, dataset)["examples"]["top"]
        for e in shown:
            assert (e.score, e.baseline_score) == (mine[e.query_id], base[e.query_id])
            assert e.query == query_text(dataset, e.query_id)
            assert e.top == {"id": top[e.query_id], **document(dataset, top[e.query_id])}
    assert any(e.delta > 0 for e in report.examples("minilm", "scifact"))
    assert any(e.delta < 0 for e in report.examples("tiny-llama", "nfcorpus"))


def test_marker_size_grows_with_parameters(synthetic_run):
    from llara_bench.reports.charts import MAX_MARKER, MIN_MARKER, UNKNOWN_MARKER, marker_sizes

    report = build_report([synthetic_run])  # minilm 22.7M, tiny-llama and tiny-llara 443K, bm25 unknown
    sizes = marker_sizes(report)
    assert sizes == {"minilm": MAX_MARKER, "tiny-llama": MIN_MARKER, "tiny-llara": MIN_MARKER,
                     "bm25": UNKNOWN_MARKER}

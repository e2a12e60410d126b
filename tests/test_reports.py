"""Reports: one from a real smoke run end to end; the rest from synthetic run directories (tests/synthetic_results.py,
schema-valid results with known per-query differences): files, contents, exports, the command line, bad input."""

from __future__ import annotations

import csv
import json
import re
import shutil
from html.parser import HTMLParser

import numpy as np
import pytest
from typer.testing import CliRunner

from llara_bench.harness.cli import app
from llara_bench.harness.errors import ConfigError, DataFormatError
from llara_bench.reports import Options, build_report, write_report
from llara_bench.reports.exports import render_markdown
from synthetic_results import DATASETS, MODELS, fingerprint, query_text, write_run


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
    # the per-query table: every query with its text, the run file's top documents graded by the dataset's qrels
    from llara_bench.reports.queries import for_dataset

    table = for_dataset(report, "smoke")
    first_hit = {}
    for line in gzip.open(smoke_run_dir / "results/minilm/smoke.trec.gz", "rt"):
        qid, _, doc, rank, _, _ = line.split()
        if rank == "1":
            first_hit[qid] = doc
    smoke = load_dataset("embedded:smoke")
    split = smoke.split("test")
    assert [r.query_id for r in table.rows] == sorted(split.queries) and table.notes == []
    rr = _result(smoke_run_dir, "minilm", "smoke")["per_query"]["RR@10"]
    for row in table.rows:
        assert row.text == split.queries[row.query_id] and row.qrels == split.qrels[row.query_id]
        minilm = row.models["minilm"]
        assert minilm.top[0].doc_id == first_hit[row.query_id]
        assert minilm.top[0].grade == split.qrels[row.query_id].get(first_hit[row.query_id])
        if rr[row.query_id]:  # dense scores have no ties: the rank agrees with the reciprocal rank
            assert minilm.first_relevant == round(1 / rr[row.query_id])


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


def test_marker_size_grows_with_parameters(synthetic_run):
    from llara_bench.reports.charts import MAX_MARKER, MIN_MARKER, UNKNOWN_MARKER, marker_sizes

    report = build_report([synthetic_run])  # minilm 22.7M, tiny-llama and tiny-llara 443K, bm25 unknown
    sizes = marker_sizes(report)
    assert sizes == {"minilm": MAX_MARKER, "tiny-llama": MIN_MARKER, "tiny-llara": MIN_MARKER,
                     "bm25": UNKNOWN_MARKER}


# -- per-query truth, colours, provenance, links (issue 19, items 3 and 5) -----------------------------------
def _judged_copy(synthetic_run, folder):
    """The synthetic run with what `llara-bench run` saves beside its results: a TREC run per result (20 ranked
    documents per query, seeded) and each dataset's qrels (grades 2, 1 and a judged 0). Returns the run folder,
    the qrels and the runs as written."""
    import gzip

    run = folder / "judged-run"
    shutil.copytree(synthetic_run, run)
    (run / "qrels").mkdir()
    rng = np.random.default_rng(7)
    qrels, runs = {}, {}
    for dataset, n in DATASETS.items():
        qrels[dataset] = {f"q{i:02d}": {f"d{i % 50:02d}": 2, f"d{(i + 5) % 50:02d}": 1, f"d{(i + 9) % 50:02d}": 0}
                          for i in range(n)}
        (run / "qrels" / f"{dataset}.qrels").write_text("".join(
            f"{q} 0 {d} {g}\n" for q, docs in qrels[dataset].items() for d, g in docs.items()))
        for model in MODELS:
            ranked = {q: [f"d{j:02d}" for j in rng.permutation(50)[:20]] for q in qrels[dataset]}
            runs[(model.name, dataset)] = ranked
            with gzip.open(run / "results" / model.name / f"{dataset}.trec.gz", "wt") as fh:
                fh.writelines(f"{q} Q0 {d} {k + 1} {20 - k:.1f} {model.name}\n"
                              for q, docs in ranked.items() for k, d in enumerate(docs))
            path = run / "results" / model.name / f"{dataset}.json"
            result = json.loads(path.read_text())
            result |= {"run_file": f"results/{model.name}/{dataset}.trec.gz", "qrels_file": f"qrels/{dataset}.qrels"}
            path.write_text(json.dumps(result))
    return run, qrels, runs


@pytest.fixture(scope="module")
def judged(synthetic_run, tmp_path_factory):
    run, qrels, runs = _judged_copy(synthetic_run, tmp_path_factory.mktemp("judged"))
    paths = write_report([run], run / "report.html")
    return run, qrels, runs, paths


def test_per_query_table_has_every_query_with_first_relevant_rank_marks_and_qrels(judged):
    from llara_bench.reports import queries

    run, qrels, runs, paths = judged
    report = build_report([run])
    for dataset, n in DATASETS.items():
        table = queries.for_dataset(report, dataset)
        assert [r.query_id for r in table.rows] == [f"q{i:02d}" for i in range(n)]  # all of them, in order
        assert table.models == report.ranked(dataset) and table.notes == []
        assert table.qrels_source == str(run / "qrels" / f"{dataset}.qrels")
        for row in table.rows:
            assert row.qrels == qrels[dataset][row.query_id]
            for model, mq in row.models.items():
                ranked, judged_docs = runs[(model, dataset)][row.query_id], qrels[dataset][row.query_id]
                first = next((k + 1 for k, d in enumerate(ranked) if judged_docs.get(d, 0) > 0), None)
                assert mq.first_relevant == first
                assert [(h.doc_id, h.grade) for h in mq.top] == [(d, judged_docs.get(d)) for d in ranked[:3]]
                assert mq.scores[report.metric] == _result(run, model, dataset)["per_query"]["nDCG@10"][row.query_id]
    html_text = paths[0].read_text(encoding="utf-8")
    for i, n in enumerate(DATASETS.values(), start=1):
        table = html_text.split(f'id="pq-{i}"')[1].split("</table>")[0]
        assert table.count("<tr") == 1 + n  # the header and every query
    assert 'class="hit rel"' in html_text and 'class="hit nonrel"' in html_text and "qrels not saved" not in html_text


def test_per_query_exports_carry_the_table(judged):
    run, qrels, runs, paths = judged
    names = [p.name for p in paths]
    assert "report.per-query.csv" in names and "report.per-query.jsonl" in names
    records = [json.loads(line) for line in (run / "report.per-query.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(records) == sum(DATASETS.values())
    first = records[0]
    assert (first["dataset"], first["query_id"]) == ("scifact", "q00") and first["qrels"] == qrels["scifact"]["q00"]
    assert first["query"] == query_text("scifact", "q00")
    assert [h["id"] for h in first["models"]["minilm"]["top"]] == runs[("minilm", "scifact")]["q00"][:3]
    assert first["models"]["bm25"]["scores"]["AP"] == _result(run, "bm25", "scifact")["per_query"]["AP"]["q00"]
    rows = list(csv.DictReader((run / "report.per-query.csv").open(encoding="utf-8")))
    assert len(rows) == sum(DATASETS.values()) * len(MODELS)
    row = next(r for r in rows if (r["dataset"], r["query_id"], r["model"]) == ("nfcorpus", "q03", "tiny-llama"))
    ranked = runs[("tiny-llama", "nfcorpus")]["q03"]
    grades = qrels["nfcorpus"]["q03"]
    assert row["top_documents"].split() == [d if d not in grades else f"{d}:{grades[d]}" for d in ranked[:3]]
    assert row["qrels"].split() == [f"{d}:{g}" for d, g in grades.items()]
    assert float(row["nDCG@10"]) == _result(run, "tiny-llama", "nfcorpus")["per_query"]["nDCG@10"]["q03"]
    first = next((k + 1 for k, d in enumerate(ranked) if grades.get(d, 0) > 0), None)
    assert row["first_relevant_rank"] == (str(first) if first else "")


def test_per_query_without_saved_qrels_says_so_and_ranks_from_rr(synthetic_run):
    from llara_bench.reports import queries

    report = build_report([synthetic_run])  # results without run files or qrels, as older runs wrote them
    table = queries.for_dataset(report, "scifact")
    assert any(n.startswith("qrels not saved with this run") for n in table.notes)
    assert any("run file not saved" in n for n in table.notes)
    for row in table.rows:
        assert row.qrels is None
        for model, mq in row.models.items():
            rr = _result(synthetic_run, model, "scifact")["per_query"]["RR@10"][row.query_id]
            assert mq.first_relevant == (round(1 / rr) if rr else None) and "RR@10" in mq.first_relevant_note
            assert mq.top == []


def test_links_to_result_run_and_qrels_files_are_relative_and_resolve(judged):
    run, _, _, paths = judged
    page = skeleton(paths[0].read_text(encoding="utf-8"))
    hrefs = [a["href"] for t, a in page.tags if t == "a" and not a["href"].startswith("#")]
    assert "results/minilm/scifact.json" in hrefs and "results/minilm/scifact.trec.gz" in hrefs
    assert "qrels/scifact.qrels" in hrefs
    assert {p.name for p in paths[1:]} <= set(hrefs)  # every export written beside the report is linked
    assert all((run / h).is_file() for h in hrefs), [h for h in hrefs if not (run / h).is_file()]
    # a report written elsewhere links back to the same files
    elsewhere = write_report([run], run.parent / "reports" / "cmp.html")[0]
    for t, a in skeleton(elsewhere.read_text(encoding="utf-8")).tags:
        if t == "a" and not a["href"].startswith("#"):
            assert (elsewhere.parent / a["href"]).is_file(), a["href"]


def test_model_colours_are_stable_across_reports_and_distinct_within_one(synthetic_run, tmp_path):
    from llara_bench.reports.charts import PALETTE, colour, colours

    smoke = colours(["minilm", "bm25", "tiny-llama", "tiny-llara"])
    assert len(set(smoke.values())) == 4  # the smoke suite's four models: four colours
    other = colours(["tiny-llara", "bm25", "llama2-7b", "repllama-7b"])
    assert other["tiny-llara"] == smoke["tiny-llara"] and other["bm25"] == smoke["bm25"]
    assert all(smoke[m] == colour(m) for m in smoke)  # no collision: each its own colour
    many = colours([f"model-{i}" for i in range(len(PALETTE))])
    assert sorted(many.values()) == sorted(PALETTE)  # collisions take the next free colour
    # in the HTML: the same swatch for a model whatever models sit beside it
    two = write_run(tmp_path / "two", models=tuple(m for m in MODELS if m.name in ("bm25", "tiny-llara")))
    def swatch(html_text, model):
        return re.search(r'<i class="swatch" style="background:(#[0-9a-f]{6})"></i>' + re.escape(model) + "<",
                         html_text).group(1)
    full = write_report([synthetic_run], tmp_path / "full.html")[0].read_text(encoding="utf-8")
    part = write_report([two], tmp_path / "part.html")[0].read_text(encoding="utf-8")
    assert swatch(full, "tiny-llara") == swatch(part, "tiny-llara") == colour("tiny-llara")


def test_axes_fit_the_data():
    from llara_bench.reports.charts import measure_range, nice_ticks

    assert measure_range([0.0294, 0.9364]) == (0.0, 1.0)  # never past 1 (plotly's autorange went to 1.1)
    low, high = measure_range([0.31, 0.33])
    assert 0.2 < low < 0.31 and 0.33 < high < 0.45
    assert nice_ticks(0.0, 1.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]


def test_rows_are_ranked_best_first(synthetic_run, synthetic_report):
    report = build_report([synthetic_run])
    assert report.ranked() == ["minilm", "tiny-llara", "bm25", "tiny-llama"]  # by the mean
    html_text = synthetic_report[0].read_text(encoding="utf-8")
    summary = html_text.split('id="summary-table"')[1].split("</table>")[0]
    order = re.findall(r'<th scope="row" data-sort="([^"]+)"', summary)
    ranks = re.findall(r'<td class="num" data-sort="(\d+)">\d+</td>\s*<th scope="row"', summary)
    assert order == report.ranked() and ranks == ["1", "2", "3", "4"]


def test_bm25_provenance_shows_its_settings_not_a_dense_contract(smoke_run_dir):
    result = _result(smoke_run_dir, "bm25", "smoke")
    assert result["model"]["extra"]["bm25"] == {"scoring": result["model"]["extra"]["bm25"]["scoring"], "k1": 1.5,
                                                 "b": 0.75, "stemmer": "Snowball english (PyStemmer)",
                                                 "stop_words": "en"}
    html_text = (smoke_run_dir / "report.html").read_text(encoding="utf-8")
    details = re.findall(r'<details class="model".*?</details>', html_text, re.S)
    bm25 = next(d for d in details if "</i>bm25</span></span> · lexical" in d)
    assert "<dt>k1</dt><dd>1.5</dd>" in bm25 and "<dt>b</dt><dd>0.75</dd>" in bm25
    assert "<dt>stemmer</dt><dd>Snowball english (PyStemmer)</dd>" in bm25 and "<dt>stop words</dt><dd>en</dd>" in bm25
    assert "encoding contract" not in bm25 and "null" not in bm25 and "dimension" not in bm25
    minilm = next(d for d in details if "</i>minilm</span></span> · dense" in d)
    assert "<dt>dimension</dt><dd>384</dd>" in minilm and "null" not in minilm  # a contract without its nulls


def test_smoke_report_marks_the_model_adapted_on_the_evaluated_corpus(smoke_run_dir):
    report = build_report([smoke_run_dir])
    assert report.adapted_on("tiny-llara", "smoke") == "adapted on embedded:smoke"
    assert [m for m in report.models if report.adapted_on(m, "smoke")] == ["tiny-llara"]
    assert _result(smoke_run_dir, "tiny-llara", "smoke")["model"]["extra"]["trained_on"] == [
        {"stage": "adapted", "spec": "embedded:smoke", "fingerprint": None}]
    html_text = (smoke_run_dir / "report.html").read_text(encoding="utf-8")
    summary = html_text.split('id="summary-table"')[1].split("</table>")[0]
    row = next(r for r in summary.split("<tr") if 'data-sort="tiny-llara"' in r)
    assert "trained on smoke" in row and 'class="adapted"' in row
    assert not any('class="adapted"' in r for r in summary.split("<tr") if 'data-sort="tiny-llama"' in r)
    assert "tiny-llara was adapted on embedded:smoke, the collection it is evaluated on" in html_text


def test_smoke_report_is_small_and_self_contained(smoke_run_dir):
    size = (smoke_run_dir / "report.html").stat().st_size
    assert size <= 1_500_000, size  # was 4.9 MB with plotly.js inlined
    page = skeleton((smoke_run_dir / "report.html").read_text(encoding="utf-8"))
    assert not [(t, a) for t, a in page.tags if "src" in a or t in ("link", "iframe", "object", "embed")]
    assert (smoke_run_dir / "report.per-query.csv").is_file() and (smoke_run_dir / "report.per-query.jsonl").is_file()


def test_trained_on_reads_the_manifest_chain(tmp_path):
    from llara_bench.models.decoder import trained_on

    assert trained_on(tmp_path) == []
    adapted = {"stage": "adapted", "data": {"spec": "folder:/data/scifact", "documents": 5183}}
    (tmp_path / "llara-bench.json").write_text(json.dumps(
        {"stage": "finetuned", "data": {"spec": "beir:msmarco", "split": "train", "fingerprint": "sha256:ab"},
         "adapted_from": adapted}))
    assert trained_on(tmp_path) == [{"stage": "finetuned", "spec": "beir:msmarco", "fingerprint": "sha256:ab"},
                                    {"stage": "adapted", "spec": "folder:/data/scifact", "fingerprint": None}]


def test_bm25_records_the_settings_it_scores_with():
    from llara_bench.models import REGISTRY
    from llara_bench.models.bm25 import BM25Retriever

    meta = REGISTRY.get("bm25").meta
    assert BM25Retriever(meta).meta.extra["bm25"] | {"scoring": None} == {
        "scoring": None, "k1": 1.5, "b": 0.75, "stemmer": "Snowball english (PyStemmer)", "stop_words": "en"}
    variant = BM25Retriever(meta, k1=0.9, b=0.4, stemmer_language=None).meta.extra["bm25"]
    assert (variant["k1"], variant["b"], variant["stemmer"]) == (0.9, 0.4, None)
    assert variant["scoring"].startswith("lucene (bm25s ")


def test_timing_phases_are_in_pipeline_order_whichever_model_loaded(synthetic_run):
    report = build_report([synthetic_run])
    for m, d, r in report.pairs():  # as a rerun with cached embeddings: only bm25 loads anything
        if m != "bm25":
            r["timings"].pop("load", None)
        else:
            r["timings"] = {"load": {"seconds": 0.1, "peak_rss_bytes": 1}, **r["timings"]}
    assert report.phases() == ["load", "encode_corpus", "encode_queries", "index", "search", "evaluate"]

"""Reports that compare anything with anything: all pairs of models (Holm over all pairs), the suites'
declared pairs first, labelled runs, TREC run files of other tools, `llara-bench evaluate` from a saved
run folder, honest p-values and small-sample warnings, the exports (Markdown, CSV, LaTeX, MTEB), and
result files validated on read."""

from __future__ import annotations

import csv
import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from llara_bench.harness.cli import app
from llara_bench.harness.errors import ConfigError, DataFormatError, UnknownNameError
from llara_bench.reports import Options, build_report, write_report
from llara_bench.reports.collect import Input
from llara_bench.reports.format import p_adjusted_of, p_of
from llara_bench.reports.stats import compare_pairs
from synthetic_results import MODELS, write_run


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("compare") / "synthetic-run")


@pytest.fixture(scope="module")
def bm25_run(tmp_path_factory) -> Path:
    """A real run (BM25 on the embedded smoke set: about a second) with its run file and saved qrels."""
    out = tmp_path_factory.mktemp("bm25-run")
    result = CliRunner().invoke(app, ["run", "-m", "bm25", "-o", str(out), "--name", "bm25", "--no-report"])
    assert result.exit_code == 0, result.output
    return out / "bm25"


def _holm_by_hand(p: list[float]) -> list[float]:
    """Holm's step-down: the i-th smallest p times (m - i), made monotone, capped at 1."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    adjusted, running = [0.0] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def test_all_pairs_are_one_holm_family_per_dataset(synthetic_run):
    report = build_report([synthetic_run])
    names = [m.name for m in MODELS]
    for dataset in report.datasets:
        pairs = report.pairwise[dataset]
        assert len(pairs) == len(names) * (len(names) - 1) // 2  # every pair once
        raw = [c.p_value for c in pairs.values()]
        assert [c.p_adjusted for c in pairs.values()] == pytest.approx(_holm_by_hand(raw))
        assert all(c.family == 6 for c in pairs.values())
        # each pair is the paired test of its two models' per-query scores
        a, b = "tiny-llama", "tiny-llara"
        c = report.pair(a, b, dataset)
        assert c.delta == pytest.approx(report.value(a, dataset) - report.value(b, dataset))
        assert report.pair(b, a, dataset).delta == pytest.approx(-c.delta)
        matrix = report.matrix(dataset)
        # shifted +0.35 / -0.35 around bm25 over 24-30 queries: minilm beats all, tiny-llama loses to all
        assert all(matrix[("minilm", m)] == 1 for m in names if m != "minilm")
        assert all(matrix[("tiny-llama", m)] == -1 for m in names if m != "tiny-llama")
        assert matrix[("bm25", "tiny-llara")] == matrix[("tiny-llara", "bm25")] == 0  # +0.03: a tie
        assert matrix[("bm25", "bm25")] is None
    assert "Holm correction over all pairs of models on each dataset (6 per dataset, 12 in all)" in report.caption("pairs")
    assert "comparisons with bm25 on each dataset (3 per dataset, 6 in all)" in report.caption("baseline")


def test_bonferroni_over_all_pairs_is_statsmodels(synthetic_run):
    from statsmodels.stats.multitest import multipletests

    report = build_report([synthetic_run], Options(correction="bonferroni"))
    pairs = report.pairwise["scifact"]
    raw = [c.p_value for c in pairs.values()]
    assert [c.p_adjusted for c in pairs.values()] == pytest.approx(multipletests(raw, method="bonferroni")[1])
    assert [c.p_adjusted for c in pairs.values()] == pytest.approx([min(1.0, 6 * p) for p in raw])


def test_declared_pairs_come_first_in_their_order(synthetic_run, tmp_path):
    run_json = json.loads((synthetic_run / "run.json").read_text())
    run = tmp_path / "declared"
    for path in synthetic_run.rglob("*.json"):
        target = run / path.relative_to(synthetic_run)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
    (run / "run.json").write_text(json.dumps(run_json | {"compare": [["tiny-llara", "tiny-llama"]]}))
    report = build_report([run])
    assert report.declared == [("tiny-llara", "tiny-llama")]
    for dataset in report.datasets:
        assert report.pairs_shown(dataset)[0] == ("tiny-llara", "tiny-llama")  # A against B, as declared
        assert report.pairwise[dataset][("tiny-llara", "tiny-llama")].delta > 0
    md = (write_report([run], tmp_path / "r.html")[1]).read_text()
    first = md.split("## All pairs")[1].splitlines()[4]
    assert first.startswith("| scifact | tiny-llara (declared) | tiny-llama |"), first


def test_the_smoke_suite_declares_tiny_llara_against_tiny_llama():
    from llara_bench.harness.suites import load_suite

    assert load_suite("smoke").compare == [("tiny-llara", "tiny-llama")]


def test_the_smoke_report_shows_tiny_llara_against_tiny_llama_first(smoke_run_dir):
    report = build_report([smoke_run_dir])
    assert report.pairs_shown("smoke")[0] == ("tiny-llara", "tiny-llama")
    assert len(report.pairwise["smoke"]) == 6


@pytest.mark.parametrize("text,error", [
    ("compare: [[bm25, minlm]]", "Did you mean 'minilm'"),
    ("compare: [bm25, minilm]", "expected pairs of two different model names"),
    ("compare: [[bm25, bm25]]", "expected pairs of two different model names"),
    ("main_metric: ndcgg@10", "Did you mean"),
])
def test_suite_compare_and_measures_are_checked(text, error):
    from llara_bench.harness.suites import parse_suite

    with pytest.raises((ConfigError, UnknownNameError), match=error):
        parse_suite(f"name: x\nmodels: [bm25, minilm]\ndatasets: [embedded:smoke]\n{text}\n", "s.yaml")


def test_measure_names_are_case_insensitive_in_suites_and_reports(synthetic_run):
    from llara_bench.harness.suites import parse_suite

    suite = parse_suite("name: x\nmodels: [bm25]\ndatasets: [embedded:smoke]\nmeasures: [NDCG@10, r@100]\n"
                        "main_metric: ndcg@10\n", "s.yaml")
    assert suite.measures == ["nDCG@10", "R@100"] and suite.main_metric == "nDCG@10"
    assert build_report([synthetic_run], Options(metric="ap")).metric == "AP"
    with pytest.raises(ConfigError, match=r"^--metric: unknown measure 'ndcgg'\. Did you mean 'ndcg'"):
        Options(metric="ndcgg@10")


def test_two_labelled_runs_of_the_same_model_are_two_rows(synthetic_run, tmp_path):
    later = write_run(tmp_path / "later", MODELS[:2], seed=3, created_at="2026-02-01T00:00:00+00:00")
    unlabelled = build_report([synthetic_run, later])
    assert "minilm" in unlabelled.models and any("superseded" in n and "--label" in n for n in unlabelled.notes)
    report = build_report([Input(synthetic_run, "before"), Input(later, "after")])
    assert report.models == ["minilm (before)", "bm25 (before)", "tiny-llama (before)", "tiny-llara (before)",
                             "minilm (after)", "bm25 (after)"]
    assert report.baseline == "bm25 (before)"  # the first run's suite baseline, labelled
    for dataset in report.datasets:
        for label, run in (("before", synthetic_run), ("after", later)):
            saved = json.loads((run / "results" / "minilm" / f"{dataset}.json").read_text())
            assert report.value(f"minilm ({label})", dataset) == saved["metrics"]["nDCG@10"]
        assert ("minilm (before)", "minilm (after)") in report.pairwise[dataset]
    assert not any("superseded" in n for n in report.notes)


def test_report_command_takes_labels_and_prints_the_table(synthetic_run, tmp_path):
    later = write_run(tmp_path / "later", MODELS[:2], seed=3)
    out = tmp_path / "out" / "report.html"
    result = CliRunner().invoke(app, ["report", "--label", f"before={synthetic_run}", "-l", f"after={later}",
                                      "-o", str(out), "--metric", "NDCG@10"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "minilm (before)" in result.output and "minilm (after)" in result.output and "nDCG@10" in result.output
    assert out.is_file() and out.with_suffix(".tex").is_file()
    bad = CliRunner().invoke(app, ["report", "--label", str(later), "-o", str(out)])
    assert bad.exit_code == 2 and "expected NAME=PATH" in bad.output


def _write_anserini_run(path: Path, qrels: dict[str, dict[str, int]], seed: int) -> None:
    """A run as Pyserini/Anserini write it (gzip, tag Anserini): judged and unjudged documents, ranked by score."""
    rng = np.random.default_rng(seed)
    lines = []
    for qid, judged in qrels.items():
        docs = list(judged) + [f"x{i}" for i in range(8)]
        scores = rng.random(len(docs)) * 10
        ranked = sorted(zip(docs, scores), key=lambda ds: -ds[1])
        lines += [f"{qid} Q0 {d} {rank} {s:.6f} Anserini\n" for rank, (d, s) in enumerate(ranked, start=1)]
    path.write_bytes(gzip.compress("".join(lines).encode()))


def test_a_trec_run_of_another_tool_scores_as_ir_measures(tmp_path):
    import ir_measures

    rng = np.random.default_rng(0)
    qrels = {f"q{i}": {f"d{i}-{j}": int(rng.integers(0, 3)) for j in range(4)} for i in range(25)}
    (tmp_path / "qrels.txt").write_text("".join(f"{q} 0 {d} {g}\n" for q, docs in qrels.items()
                                                for d, g in docs.items()))
    for seed, name in ((1, "a.run.gz"), (2, "b.txt")):
        _write_anserini_run(tmp_path / name, qrels, seed)
    (tmp_path / "b.txt").write_bytes(gzip.decompress((tmp_path / "b.txt").read_bytes()))  # plain text too
    measures = ["nDCG@10", "AP", "RR@10", "P@5"]
    report = build_report([tmp_path / "a.run.gz", Input(tmp_path / "b.txt", "other")], qrels=tmp_path / "qrels.txt",
                          measures=["ndcg@10", "ap", "rr@10", "p@5"])
    assert report.models == ["a", "other"] and report.datasets == ["qrels"]
    for model, file in (("a", "a.run.gz"), ("other", "b.txt")):
        expected = ir_measures.calc_aggregate([ir_measures.parse_measure(m) for m in measures],
                                              list(ir_measures.read_trec_qrels(str(tmp_path / "qrels.txt"))),
                                              list(ir_measures.read_trec_run(str(tmp_path / file))))
        got = report.results[(model, "qrels")]["metrics"]
        assert {m: got[m] for m in measures} == pytest.approx({m: expected[ir_measures.parse_measure(m)]
                                                               for m in measures}, abs=1e-12)
    assert ("a", "other") in report.pairwise["qrels"]  # same qrels: the per-query scores pair
    # the whole report renders although an external run's corpus size is unknown
    html = write_report(report, tmp_path / "report.html")[0].read_text(encoding="utf-8")
    assert "TREC run file a.run.gz (tag Anserini)" in html


def test_a_trec_run_without_qrels_is_one_line(tmp_path):
    run = tmp_path / "run.trec.gz"
    run.write_bytes(gzip.compress(b"q1 Q0 d1 1 2.0 x\n"))
    out = subprocess.run([sys.executable, "-m", "llara_bench.harness.cli", "report", str(run)],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [f"error: {run}: a TREC run file is scored against qrels: give them "
                                               "with --qrels FILE (TREC 'QUERY_ID 0 DOC_ID GRADE', or the "
                                               "qrels/<dataset>.qrels a llara-bench run saved)"]
    (tmp_path / "qrels").write_text("q1 0 d1 1\n")
    (tmp_path / "bad.txt").write_text("q1 Q0 d1 1 high x\n")
    with pytest.raises(DataFormatError, match=r"bad.txt:1 \(field 'score'\): expected a number"):
        build_report([tmp_path / "bad.txt"], qrels=tmp_path / "qrels")


def test_a_run_saves_its_qrels_and_evaluate_recomputes_any_measure(bm25_run):
    import ir_measures

    saved = json.loads((bm25_run / "results" / "bm25" / "smoke.json").read_text())
    assert saved["qrels_file"] == "qrels/smoke.qrels" and (bm25_run / "qrels" / "smoke.qrels").is_file()
    result = CliRunner().invoke(app, ["evaluate", str(bm25_run), "--measures", "NDCG@10", "-M", "p@5", "--json"])
    assert result.exit_code == 0, result.output
    (line,) = [json.loads(x) for x in result.output.splitlines()]
    assert line["model"] == "bm25" and line["dataset"] == "smoke"
    assert line["metrics"]["nDCG@10"] == saved["metrics"]["nDCG@10"]  # what the run computed
    direct = ir_measures.calc_aggregate([ir_measures.P @ 5],
                                        list(ir_measures.read_trec_qrels(str(bm25_run / "qrels" / "smoke.qrels"))),
                                        list(ir_measures.read_trec_run(str(bm25_run / saved["run_file"]))))
    assert line["metrics"]["P@5"] == pytest.approx(direct[ir_measures.P @ 5], abs=1e-12)


def test_an_external_run_on_a_runs_saved_qrels_pairs_with_that_run(bm25_run, tmp_path):
    copy = tmp_path / "pyserini.txt"
    copy.write_bytes(gzip.decompress((bm25_run / "results" / "bm25" / "smoke.trec.gz").read_bytes()))
    report = build_report([bm25_run, Input(copy, "pyserini")], qrels=bm25_run / "qrels" / "smoke.qrels")
    assert report.datasets == ["smoke"]  # the run's dataset: same name and fingerprint
    assert report.value("pyserini", "smoke") == report.value("bm25", "smoke")
    c = report.comparisons[("pyserini", "smoke")]
    assert c.delta == 0 and c.ties == c.n == 40


def test_a_run_without_run_files_cannot_be_reevaluated(tmp_path):
    result = CliRunner().invoke(app, ["run", "-m", "bm25", "-o", str(tmp_path), "--name", "r", "--no-report",
                                      "--no-run-files"])
    assert result.exit_code == 0, result.output
    out = CliRunner().invoke(app, ["evaluate", str(tmp_path / "r"), "--measures", "AP"])
    assert out.exit_code == 2 and "field 'run_file'" in out.output and "no run file saved" in out.output


def test_p_at_the_resampling_floor_reads_as_a_bound():
    rng = np.random.default_rng(0)
    base = rng.random(60)
    far, near = base + 0.5, base + rng.normal(0, 0.2, 60)
    for resamples, text in ((10_000, "< 0.0001"), (999, "< 0.001")):
        c_far, c_near = compare_pairs([(far, base), (near, base)], n_resamples=resamples)
        assert c_far.p_at_floor and c_far.p_value == pytest.approx(2 / (resamples + 1))
        assert p_of(c_far) == text and p_adjusted_of(c_far).startswith("≤ ")
        assert not c_near.p_at_floor and p_of(c_near) == f"{c_near.p_value:.4f}"
    exact = compare_pairs([(base[:10] + 0.5, base[:10])])[0]  # 2**10 sign vectors enumerated: an exact p
    assert exact.p_floor is None and not exact.p_at_floor and p_of(exact) == f"{2 / 1024:.4f}"
    t_test = compare_pairs([(far, base)], test="t-test")[0]
    assert not t_test.p_at_floor and p_of(t_test) == "<0.0001"


def test_the_captions_say_when_p_is_a_bound(synthetic_run):
    report = build_report([synthetic_run])
    assert report.comparisons[("minilm", "scifact")].p_at_floor
    assert "p < 0.0001: no sign flip reached the observed difference" in report.caption()
    assert "< 0.0001" in render_cells(report)


def render_cells(report) -> str:
    from llara_bench.reports.exports import render_markdown

    return render_markdown(report).replace("&lt;", "<")


def test_few_queries_are_warned_about(tmp_path):
    run = write_run(tmp_path / "few", MODELS[:2], {"tiny": 5, "enough": 20})
    notes = build_report([run]).notes
    assert "tiny has only 5 judged queries: below ~20 a paired test has little power and its p-values say little" \
        in notes
    assert not any(n.startswith("enough ") for n in notes)


def test_exports_carry_every_measure_the_marks_and_a_latex_table(synthetic_run, tmp_path):
    html, md_path, csv_path, tex_path = write_report([synthetic_run], tmp_path / "report.html")[:4]
    report = build_report([synthetic_run])
    md = md_path.read_text()
    assert "## All measures" in md and "## All pairs" in md
    scifact_ap = json.loads((synthetic_run / "results/minilm/scifact.json").read_text())["metrics"]["AP"]
    assert f"| scifact | minilm | **{report.value('minilm', 'scifact'):.4f}** |" in md and f"**{scifact_ap:.4f}**" in md
    assert "| minilm | · | ▲ | ▲ | ▲ |" in md and "| tiny-llama | ▼ | ▼ | · | ▼ |" in md
    rows = {(r["model"], r["dataset"]): r for r in csv.DictReader(csv_path.open(encoding="utf-8"))}
    minilm = rows[("minilm", "scifact")]
    assert minilm["direction"] == "1" and minilm["p_at_floor"] == "True" and minilm["comparisons"] == "3"
    assert minilm["better_than"] == "bm25;tiny-llama;tiny-llara" and minilm["worse_than"] == ""
    assert rows[("tiny-llama", "nfcorpus")]["worse_than"] == "minilm;bm25;tiny-llara"
    assert float(minilm["measure:AP"]) == scifact_ap
    tex = tex_path.read_text()
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    minilm_row = next(line for line in tex.splitlines() if line.startswith("minilm &"))
    assert minilm_row.split(" & ")[1] == rf"\textbf{{{report.value('minilm', 'scifact'):.4f}}}$^\dagger$"
    llama_row = next(line for line in tex.splitlines() if line.startswith("tiny-llama &"))
    assert llama_row.split(" & ")[1] == f"{report.value('tiny-llama', 'scifact'):.4f}$^\\ddagger$"
    assert next(line for line in tex.splitlines() if line.startswith("bm25 &")).count("$") == 0


def test_latex_escapes_names():
    from llara_bench.reports.exports import _tex

    assert _tex("a_b & 50% #1") == r"a\_b \& 50\% \#1"


def test_mteb_results_folder_loads_in_mteb(synthetic_run, tmp_path):
    mteb = pytest.importorskip("mteb")
    from llara_bench.reports.exports import write_mteb_results

    report = build_report([synthetic_run])
    written = write_mteb_results(report, tmp_path / "cache")
    assert len(written) == 8
    path = tmp_path / "cache" / "results" / "minilm" / "no_revision_available" / "scifact.json"
    loaded = mteb.TaskResult.from_disk(path)
    scores = loaded.scores["test"][0]
    assert loaded.task_name == "scifact"
    assert scores["ndcg_at_10"] == scores["main_score"] == report.value("minilm", "scifact")
    assert scores["map"] == report.results[("minilm", "scifact")]["metrics"]["AP"]
    # MTEB's own loader over the folder: every model, every task, the main scores
    cache = mteb.ResultCache(tmp_path / "cache").load_results()
    found = {(m.model_name, t.task_name): t.get_score() for m in cache.model_results for t in m.task_results}
    assert found == pytest.approx({(m, d): report.value(m, d) for m, d, _ in report.pairs()})


@pytest.mark.parametrize("field,value,named", [
    ("metrics.nDCG@10", "high", "metrics.nDCG@10"), ("timings", [], "timings"),
    ("dataset.n_queries", "30", "dataset.n_queries"), ("per_query.AP.q00", float("nan"), "per_query.AP.q00"),
])
def test_result_files_with_wrong_types_are_refused_naming_the_field(synthetic_run, tmp_path, field, value, named):
    data = json.loads((synthetic_run / "results/minilm/scifact.json").read_text())
    target = data
    *parents, last = field.split(".")
    for key in parents:
        target = target[key]
    target[last] = value
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    out = subprocess.run([sys.executable, "-m", "llara_bench.harness.cli", "report", str(bad), "-o",
                          str(tmp_path / "r.html")], capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(f"error: {bad} (field '{named}'): expected ")
    assert not (tmp_path / "r.html").exists()

"""Titles joined onto an untitled corpus (MS MARCO passage + RocketQA's titles, as RepLLaMA and LLaRA expect)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from llara_bench.harness.cli import app
from llara_bench.harness.datasets import load_dataset
from llara_bench.harness.datasets.titles import join_titles, load_titles, resolve_title_source
from llara_bench.harness.errors import ConfigError, DataFormatError
from llara_bench.harness.suites import load_suite, parse_suite


def _untitled_folder(tmp_path, n=6):
    folder = tmp_path / "msmarco-mini"
    (folder / "qrels").mkdir(parents=True)
    words = ["apples", "bridges", "castles", "dragons", "engines", "forests"]
    docs = [{"_id": str(100 + i), "title": "", "text": f"a passage about {words[i]}"} for i in range(n)]
    docs[0]["title"] = "its own title"
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (folder / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "castles"}) + "\n")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\t102\t1\n")
    return folder


def test_a_rocketqa_title_file_fills_untitled_docs_and_says_so(tmp_path):
    folder = _untitled_folder(tmp_path)
    titles = tmp_path / "para.title.txt"
    titles.write_text("100\tignored, the doc has a title\n101\tTopic one\r\n102\t-\n999\tnot in the corpus\n")
    dataset = load_dataset(f"folder:{folder}")
    before = dataset.fingerprint("test")
    join_titles(dataset, load_titles(str(titles)), str(titles))
    assert dataset.corpus.titles[:4] == ["its own title", "Topic one", "-", ""]
    assert dataset.notes[-1] == (f"titles joined from {titles}: 2 of 6 documents (3 not in the source, "
                                 "1 kept their own title)")
    assert dataset.fingerprint("test") != before  # titled embeddings are cached apart from untitled ones


def test_tevatron_jsonl_and_hf_title_sources(tmp_path, monkeypatch):
    jsonl = tmp_path / "corpus.jsonl"
    jsonl.write_text(json.dumps({"docid": "101", "title": "T1", "text": "x"}) + "\n"
                     + json.dumps({"_id": "102", "title": "T2"}) + "\n")
    assert load_titles(str(jsonl)) == {"101": "T1", "102": "T2"}

    datasets = pytest.importorskip("datasets")
    calls = []

    def fake_load(name, split):  # the Hub is out of reach here: the columns Tevatron's dataset has
        calls.append((name, split))
        return datasets.Dataset.from_dict({"docid": ["101", "102"], "title": ["T1", "-"], "text": ["a", "b"]})

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    assert load_titles("hf:Tevatron/msmarco-passage-corpus") == {"101": "T1", "102": "-"}
    assert calls == [("Tevatron/msmarco-passage-corpus", "train")]


@pytest.mark.parametrize("content, message", [
    ("101\tok\n102 no tab here\n", r"para.title.txt:2: expected 'doc id<TAB>title', got '102 no tab here'"),
])
def test_a_malformed_title_file_names_the_line(tmp_path, content, message):
    path = tmp_path / "para.title.txt"
    path.write_text(content)
    with pytest.raises(DataFormatError, match=message):
        load_titles(str(path))


def test_a_title_source_with_other_ids_or_no_file_is_refused(tmp_path):
    dataset = load_dataset(f"folder:{_untitled_folder(tmp_path)}")
    with pytest.raises(DataFormatError, match=r"names none of the 6 doc ids .*corpus id '100', title-file id 'D1'"):
        join_titles(dataset, {"D1": "x"}, "t.tsv")
    with pytest.raises(ConfigError, match="titles 'missing.tsv': no such file"):
        resolve_title_source("missing.tsv", tmp_path)
    (tmp_path / "t.tsv").write_text("100\tx\n")
    assert resolve_title_source("t.tsv", tmp_path) == str((tmp_path / "t.tsv").resolve())  # under the data root


def test_suites_carry_a_title_source_that_entries_and_the_cli_override(tmp_path):
    assert {e.titles for e in load_suite("msmarco").datasets} == {"hf:Tevatron/msmarco-passage-corpus"}
    assert {e.titles for e in load_suite("trec-dl").datasets} == {"hf:Tevatron/msmarco-passage-corpus"}
    suite = parse_suite("name: t\nmodels: [bm25]\ntitles: a.tsv\ndatasets:\n  - beir:x\n"
                        "  - {spec: beir:y, titles: none}\n  - {discover: beir-folders}\n", "t.yaml")
    _untitled_folder(tmp_path)
    assert [(e.name, e.titles) for e in suite.resolve_datasets(tmp_path)] == [
        ("x", "a.tsv"), ("y", None), ("msmarco-mini", "a.tsv")]


def test_a_run_with_titles_records_them_and_encodes_the_titled_passages(tmp_path):
    folder = _untitled_folder(tmp_path)
    # doc 105's title repeats the query's words: once joined, BM25 ranks it above the judged doc 102
    (folder.parent / "titles.tsv").write_text("".join(f"{100 + i}\tTitle {i}\n" for i in range(5))
                                              + "105\tcastles, castles and castles\n")
    out = tmp_path / "runs"
    args = ["run", "--suite", "msmarco-local", "--data-root", str(tmp_path), "-m", "bm25", "--no-report", "-o"]
    plain = CliRunner().invoke(app, [*args, str(out / "plain")])
    titled = CliRunner().invoke(app, [*args, str(out / "titled"), "--titles", "titles.tsv"])
    assert plain.exit_code == 0 and titled.exit_code == 0, plain.output + titled.output
    (plain_result,) = (out / "plain").glob("*/results/**/*.json")
    (titled_result,) = (out / "titled").glob("*/results/**/*.json")
    plain_res, titled_res = (json.loads(p.read_text()) for p in (plain_result, titled_result))
    plain_ds, titled_ds = plain_res["dataset"], titled_res["dataset"]
    assert plain_ds["conventions"]["titles"] is None
    assert titled_ds["conventions"]["titles"] == "titles.tsv"
    assert any(n.startswith("titles joined from") and "5 of 6 documents" in n for n in titled_ds["notes"])
    assert titled_ds["fingerprint"] != plain_ds["fingerprint"]
    assert plain_res["metrics"]["nDCG@10"] == 1.0 and titled_res["metrics"]["nDCG@10"] < 1.0

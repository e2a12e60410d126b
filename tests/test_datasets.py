"""Dataset loading: BEIR folders (quirks of real data and malformed input), the spec resolver,
ir_datasets ids, content fingerprints and the real shared collections (skipped when absent)."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest

from llara_bench.harness.datasets import load_dataset
from llara_bench.harness.datasets.beir_folder import load_beir_folder
from llara_bench.harness.datasets.irds import split_name
from llara_bench.harness.errors import ConfigError, DataFormatError, LlaraBenchError, UnknownNameError

# --------------------------------------------------------------------------------------------------
# Helper: a BEIR folder from Python lists
# --------------------------------------------------------------------------------------------------

QRELS_HEADER = "query-id\tcorpus-id\tscore"


def _line(item) -> bytes:
    """A dict is written as one JSON line, a str verbatim, bytes as they are (e.g. invalid UTF-8)."""
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return item.encode("utf-8")
    return json.dumps(item, ensure_ascii=False).encode("utf-8")


def _qrels_line(row) -> bytes:
    if isinstance(row, (str, bytes)):
        return _line(row)
    return "\t".join(str(c) for c in row).encode("utf-8")


def write_beir(folder: Path, corpus=None, queries=None, qrels=None, *, header: bool = True,
               newline: str = "\n", bom: bool = False) -> Path:
    """Write corpus.jsonl / queries.jsonl / qrels/<split>.tsv under `folder`.

    `corpus` and `queries` are lists of dicts (JSON), str (verbatim) or bytes; None leaves the file
    out. `qrels` maps split -> rows (tuples joined by tabs, or raw str/bytes); None leaves the qrels
    folder out, {} makes an empty one. `newline` ends every line ("\\r\\n" for CRLF); `bom` puts a
    UTF-8 byte-order mark at the start of every file.
    """
    folder.mkdir(parents=True, exist_ok=True)
    nl = newline.encode()
    start = b"\xef\xbb\xbf" if bom else b""

    def dump(path: Path, lines: list[bytes]) -> None:
        path.write_bytes(start + b"".join(line + nl for line in lines))

    if corpus is not None:
        dump(folder / "corpus.jsonl", [_line(d) for d in corpus])
    if queries is not None:
        dump(folder / "queries.jsonl", [_line(q) for q in queries])
    if qrels is not None:
        (folder / "qrels").mkdir(exist_ok=True)
        for split, rows in qrels.items():
            lines = ([QRELS_HEADER.encode()] if header else []) + [_qrels_line(r) for r in rows]
            dump(folder / "qrels" / f"{split}.tsv", lines)
    return folder


CORPUS = [
    {"_id": "d1", "title": "Title one", "text": "first document"},
    {"_id": "d2", "title": "Title two", "text": "second document"},
    {"_id": "d3", "title": "Title three", "text": "third document"},
]
QUERIES = [{"_id": "q1", "text": "first query"}, {"_id": "q2", "text": "second query"}]
QRELS = {"test": [("q1", "d1", 1), ("q2", "d2", 2)]}


def good(tmp_path: Path, **overrides) -> Path:
    kwargs = {"corpus": CORPUS, "queries": QUERIES, "qrels": QRELS, **overrides}
    return write_beir(tmp_path / "ds", **kwargs)


# --------------------------------------------------------------------------------------------------
# Quirks of real BEIR data
# --------------------------------------------------------------------------------------------------


def test_well_formed_folder_loads(tmp_path):
    ds = load_beir_folder(good(tmp_path))
    assert ds.name == "ds"
    assert ds.corpus.ids == ["d1", "d2", "d3"]
    assert ds.corpus.titles == ["Title one", "Title two", "Title three"]
    assert ds.corpus.texts == ["first document", "second document", "third document"]
    assert ds.queries == {"q1": "first query", "q2": "second query"}
    assert ds.qrels == {"test": {"q1": {"d1": 1}, "q2": {"d2": 2}}}
    assert ds.splits == ["test"]
    assert ds.notes == []


def test_crlf_line_endings_in_qrels(tmp_path):
    folder = good(tmp_path, qrels={"test": [("q1", "d1", 1), ("q1", "d2", 0), ("q2", "d3", 2)]},
                  newline="\r\n")
    assert b"\r\n" in (folder / "qrels" / "test.tsv").read_bytes()
    ds = load_beir_folder(folder)
    assert ds.qrels["test"] == {"q1": {"d1": 1, "d2": 0}, "q2": {"d3": 2}}
    assert ds.corpus.ids == ["d1", "d2", "d3"]  # no "\r" left on ids
    assert all("\r" not in t for t in ds.corpus.texts + list(ds.queries.values()))


def test_empty_missing_and_null_titles_become_empty_strings(tmp_path):
    corpus = [
        {"_id": "d1", "title": "", "text": "empty title"},
        {"_id": "d2", "text": "no title key"},
        {"_id": "d3", "title": None, "text": "null title"},
        {"_id": "d4", "title": "Real", "text": "with title"},
    ]
    ds = load_beir_folder(good(tmp_path, corpus=corpus))
    assert ds.corpus.titles == ["", "", "", "Real"]
    assert all(isinstance(t, str) for t in ds.corpus.titles)


def test_newlines_inside_texts_are_preserved(tmp_path):
    corpus = [{"_id": "d1", "title": "t", "text": "line one\nline two\n\nline four"}] + CORPUS[1:]
    queries = [{"_id": "q1", "text": "what is\nthis"}, QUERIES[1]]
    folder = good(tmp_path, corpus=corpus, queries=queries)
    assert len((folder / "corpus.jsonl").read_bytes().splitlines()) == 3  # escaped: still one line each
    ds = load_beir_folder(folder)
    assert ds.corpus.texts[0] == "line one\nline two\n\nline four"
    assert ds.queries["q1"] == "what is\nthis"


def test_unjudged_queries_are_loaded_but_not_in_split(tmp_path):
    queries = QUERIES + [{"_id": "q3", "text": "never judged"}, {"_id": "q4", "text": "also unjudged"}]
    ds = load_beir_folder(good(tmp_path, queries=queries))
    assert list(ds.queries) == ["q1", "q2", "q3", "q4"]
    split = ds.split("test")
    assert split.name == "test"
    assert split.queries == {"q1": "first query", "q2": "second query"}
    assert split.unjudged_queries == 2
    assert split.qrels == {"q1": {"d1": 1}, "q2": {"d2": 2}}


def test_unknown_split_name_is_reported(tmp_path):
    ds = load_beir_folder(good(tmp_path))
    with pytest.raises(UnknownNameError, match="tset.*Did you mean 'test'"):
        ds.split("tset")


def test_negative_grades_are_kept_as_ints(tmp_path):
    folder = good(tmp_path, qrels={"test": [("q1", "d1", -1), ("q1", "d2", 2), ("q2", "d3", 0)]})
    qrels = load_beir_folder(folder).qrels["test"]
    assert qrels == {"q1": {"d1": -1, "d2": 2}, "q2": {"d3": 0}}
    assert all(type(g) is int for docs in qrels.values() for g in docs.values())


@pytest.mark.parametrize("header", [True, False], ids=["with-header", "without-header"])
def test_qrels_with_and_without_header(tmp_path, header):
    folder = good(tmp_path, header=header)
    first = (folder / "qrels" / "test.tsv").read_text().splitlines()[0]
    assert (first == QRELS_HEADER) is header
    assert load_beir_folder(folder).qrels["test"] == {"q1": {"d1": 1}, "q2": {"d2": 2}}


def test_utf8_byte_order_mark_at_start_of_files(tmp_path):
    folder = good(tmp_path, bom=True)
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
        assert (folder / name).read_bytes().startswith(b"\xef\xbb\xbf")
    ds = load_beir_folder(folder)
    assert ds.corpus.ids[0] == "d1"
    assert list(ds.queries)[0] == "q1"
    assert ds.qrels["test"] == {"q1": {"d1": 1}, "q2": {"d2": 2}}  # header recognised after the BOM


def test_blank_lines_are_skipped(tmp_path):
    corpus = ["", CORPUS[0], "   ", CORPUS[1], "", CORPUS[2], ""]
    queries = [QUERIES[0], "", QUERIES[1], "  "]
    qrels = {"test": ["", ("q1", "d1", 1), "  ", ("q2", "d2", 2), ""]}
    ds = load_beir_folder(good(tmp_path, corpus=corpus, queries=queries, qrels=qrels))
    assert ds.corpus.ids == ["d1", "d2", "d3"]
    assert list(ds.queries) == ["q1", "q2"]
    assert ds.qrels["test"] == {"q1": {"d1": 1}, "q2": {"d2": 2}}


def test_blank_lines_still_count_for_line_numbers(tmp_path):
    folder = good(tmp_path, corpus=[CORPUS[0], "", "", {"_id": "d2"}])
    with pytest.raises(DataFormatError) as exc:
        load_beir_folder(folder)
    assert exc.value.line == 4
    assert "corpus.jsonl:4" in str(exc.value)


def test_judged_doc_missing_from_corpus_is_tolerated_and_noted(tmp_path):
    folder = good(tmp_path, qrels={"test": [("q1", "d1", 1), ("q1", "ghost", 1), ("q2", "d2", 1)]})
    ds = load_beir_folder(folder)
    assert ds.qrels["test"]["q1"] == {"d1": 1, "ghost": 1}
    assert len(ds.notes) == 1
    assert "test.tsv" in ds.notes[0]
    assert "1 judged doc ids are not in the corpus" in ds.notes[0]


def test_missing_docs_are_counted_once_per_id(tmp_path):
    folder = good(tmp_path, qrels={"test": [("q1", "ghost", 1), ("q2", "ghost", 1), ("q2", "d2", 1)]})
    assert "1 judged doc ids are not in the corpus" in load_beir_folder(folder).notes[0]


def test_blank_line_before_qrels_header(tmp_path):
    folder = good(tmp_path)
    path = folder / "qrels" / "test.tsv"
    path.write_bytes(b"\n" + path.read_bytes())
    assert load_beir_folder(folder).qrels["test"]


@pytest.mark.parametrize("grade", ["1_0", "\u0661", " "])
def test_grades_must_be_ascii_integers(tmp_path, grade):
    folder = good(tmp_path)
    path = folder / "qrels" / "test.tsv"
    path.write_text(f"query-id\tcorpus-id\tscore\nq1\td1\t{grade}\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="integer grade") as exc:
        load_beir_folder(folder)
    assert exc.value.line == 2


def test_multiple_splits_and_split_selection(tmp_path):
    folder = good(tmp_path, qrels={"test": [("q1", "d1", 1)], "dev": [("q2", "d2", 1)]})
    assert load_beir_folder(folder).splits == ["dev", "test"]
    only = load_beir_folder(folder, splits=["dev"])
    assert only.splits == ["dev"]
    assert only.qrels == {"dev": {"q2": {"d2": 1}}}


def test_identical_duplicate_judgment_is_accepted(tmp_path):
    folder = good(tmp_path, qrels={"test": [("q1", "d1", 1), ("q1", "d1", 1)]})
    assert load_beir_folder(folder).qrels["test"] == {"q1": {"d1": 1}}


# --------------------------------------------------------------------------------------------------
# Malformed input: DataFormatError naming file, line and what was expected
# --------------------------------------------------------------------------------------------------


def bad(id, *, file, line, words, field=None, load=None, **files):
    """One malformed case: `files` overrides the good folder (corpus/queries/qrels/header);
    `load(folder)` loads it (default load_beir_folder)."""
    return pytest.param(dict(files=files, file=file, line=line, words=words, field=field, load=load), id=id)


def _drop(name):
    def load(folder):
        target = folder / name
        if target.is_dir():
            for p in target.iterdir():
                p.unlink()
            target.rmdir()
        else:
            target.unlink()
        return load_beir_folder(folder)
    return load


MALFORMED = [
    bad("missing-folder", file="no-such-folder", line=None, words=["dataset folder not found", "corpus.jsonl"],
        load=lambda folder: load_beir_folder(folder.parent / "no-such-folder")),
    bad("missing-corpus", file="corpus.jsonl", line=None, words=["file not found"], load=_drop("corpus.jsonl")),
    bad("missing-queries", file="queries.jsonl", line=None, words=["file not found"], load=_drop("queries.jsonl")),
    bad("no-qrels-folder", file="qrels", line=None, words=["no qrels found", "qrels/<split>.tsv"], qrels=None),
    bad("no-qrels-files", file="qrels", line=None, words=["no qrels found"], qrels={}),
    bad("split-not-present", file="dev.tsv", line=None,
        words=["split 'dev' not found", "available splits: test, train"],
        qrels={"test": QRELS["test"], "train": QRELS["test"]},
        load=lambda folder: load_beir_folder(folder, splits=["dev"])),
    bad("invalid-json", file="corpus.jsonl", line=2, words=["invalid JSON", "expected one JSON object per line"],
        corpus=[CORPUS[0], '{"_id": "d2", "text": "unterminated}', CORPUS[2]]),
    bad("json-array-not-object", file="corpus.jsonl", line=3, words=["expected a JSON object", "got list"],
        corpus=[CORPUS[0], CORPUS[1], '["d3", "third document"]']),
    bad("missing-id", file="corpus.jsonl", line=2, field="_id", words=["missing", "expected a string"],
        corpus=[CORPUS[0], {"title": "t", "text": "no id"}]),
    bad("numeric-id", file="corpus.jsonl", line=2, field="_id", words=["expected a string", "got int"],
        corpus=[CORPUS[0], {"_id": 42, "text": "numeric id"}]),
    bad("empty-id", file="corpus.jsonl", line=1, field="_id", words=["expected a non-empty string"],
        corpus=[{"_id": "", "text": "empty id"}] + CORPUS[1:]),
    bad("duplicate-doc-id", file="corpus.jsonl", line=3, field="_id",
        words=["duplicate document id 'd1'", "first on line 1"],
        corpus=[CORPUS[0], CORPUS[1], {"_id": "d1", "text": "again"}]),
    bad("missing-text", file="corpus.jsonl", line=2, field="text", words=["missing", "expected a string"],
        corpus=[CORPUS[0], {"_id": "d2", "title": "no text"}]),
    bad("non-string-title", file="corpus.jsonl", line=1, field="title", words=["expected a string", "got list"],
        corpus=[{"_id": "d1", "title": ["a", "b"], "text": "x"}] + CORPUS[1:]),
    bad("non-string-text", file="corpus.jsonl", line=2, field="text", words=["expected a string", "got int"],
        corpus=[CORPUS[0], {"_id": "d2", "text": 7}]),
    bad("invalid-utf8", file="corpus.jsonl", line=2, words=["not valid UTF-8"],
        corpus=[CORPUS[0], b'{"_id": "d2", "text": "caf\xe9"}', CORPUS[2]]),
    bad("empty-corpus", file="corpus.jsonl", line=None, words=["no documents"], corpus=[]),
    bad("blank-only-corpus", file="corpus.jsonl", line=None, words=["no documents"], corpus=["", "  "]),
    bad("empty-queries", file="queries.jsonl", line=None, words=["no queries"], queries=[]),
    bad("queries-invalid-json", file="queries.jsonl", line=2, words=["invalid JSON"],
        queries=[QUERIES[0], "{_id: q2}"]),
    bad("duplicate-query-id", file="queries.jsonl", line=2, field="_id",
        words=["duplicate query id 'q1'", "first on line 1"],
        queries=[QUERIES[0], {"_id": "q1", "text": "again"}]),
    bad("empty-query-text", file="queries.jsonl", line=2, field="text", words=["expected a non-empty string"],
        queries=[QUERIES[0], {"_id": "q2", "text": "   "}]),
    bad("qrels-2-columns", file="test.tsv", line=3, words=["expected 3 tab-separated columns", "got 2"],
        qrels={"test": [("q1", "d1", 1), ("q2", "d2")]}),
    bad("qrels-trec-4-columns-spaces", file="test.tsv", line=2,
        words=["expected 3 tab-separated columns", "TREC"], qrels={"test": ["q1 0 d1 1"]}),
    bad("qrels-trec-4-columns-tabs", file="test.tsv", line=2,
        words=["expected 3 tab-separated columns", "got 4", "TREC"], qrels={"test": [("q1", "0", "d1", 1)]}),
    bad("grade-decimal", file="test.tsv", line=3, field="score", words=["expected an integer grade", "'1.5'"],
        qrels={"test": [("q1", "d1", 1), ("q2", "d2", "1.5")]}),
    bad("grade-word", file="test.tsv", line=2, field="score", words=["expected an integer grade", "'high'"],
        qrels={"test": [("q1", "d1", "high")]}),
    bad("qrels-unknown-query", file="test.tsv", line=3, field="query-id",
        words=["query id 'q9' is not in queries.jsonl"], qrels={"test": [("q1", "d1", 1), ("q9", "d2", 1)]}),
    bad("qrels-empty-ids", file="test.tsv", line=2, words=["empty query-id or corpus-id"],
        qrels={"test": [("q1", "", 1)]}),
    bad("conflicting-grades", file="test.tsv", line=4, field="score",
        words=["conflicting grades", "('q1', 'd1')", "1 on line 2", "2 here"],
        qrels={"test": [("q1", "d1", 1), ("q2", "d2", 1), ("q1", "d1", 2)]}),
    bad("empty-qrels-file", file="test.tsv", line=None, words=["no judgments"], qrels={"test": []}, header=False),
    bad("header-only-qrels", file="test.tsv", line=None, words=["no judgments"], qrels={"test": []}),
    bad("wrong-header", file="test.tsv", line=1, words=["expected the header", "query-id", "qid\\tdocid\\trel"],
        qrels={"test": ["qid\tdocid\trel", ("q1", "d1", 1)]}, header=False),
    bad("qrels-invalid-utf8", file="test.tsv", line=3, words=["not valid UTF-8"],
        qrels={"test": [("q1", "d1", 1), b"q2\td\xff\t1"]}),
]


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_input_is_rejected(tmp_path, case):
    folder = good(tmp_path, **case["files"])
    load = case["load"] or load_beir_folder
    with pytest.raises(DataFormatError) as exc:
        load(folder)
    err, message = exc.value, str(exc.value)
    assert Path(err.path).name == case["file"]
    assert case["file"] in message
    assert err.line == case["line"]
    if case["line"] is not None:
        assert f"{case['file']}:{case['line']}" in message
    if case["field"] is not None:
        assert err.field == case["field"]
        assert f"(field {case['field']!r})" in message
    for word in case["words"]:
        assert word in message, f"{word!r} not in {message!r}"
    assert isinstance(err, LlaraBenchError) and isinstance(err, ValueError)


def test_malformed_cases_cover_enough_kinds():
    assert len({p.id for p in MALFORMED}) == len(MALFORMED) >= 18


# --------------------------------------------------------------------------------------------------
# The spec resolver
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def no_data_root(monkeypatch):
    monkeypatch.delenv("LLARA_BENCH_DATA_ROOT", raising=False)


def test_embedded_smoke_loads():
    ds = load_dataset("embedded:smoke")
    assert ds.name == "smoke"
    assert ds.source == "embedded:smoke"
    assert len(ds.corpus) == 235
    assert len(ds.queries) == 40
    assert ds.splits == ["test"]
    split = ds.split("test")
    assert len(split.queries) == 40 and split.unjudged_queries == 0
    assert ds.notes == []


@pytest.mark.parametrize("spec", ["foo:bar", "scifact", "beir:", ":scifact"],
                         ids=["unknown-source", "no-colon", "empty-name", "empty-source"])
def test_bad_spec_is_a_config_error(spec):
    with pytest.raises(ConfigError) as exc:
        load_dataset(spec)
    message = str(exc.value)
    assert repr(spec) in message
    assert "embedded" in message and "irds" in message  # names the valid sources


def test_unknown_source_is_named():
    with pytest.raises(ConfigError, match="unknown source 'foo'"):
        load_dataset("foo:bar")


def test_unknown_source_lists_the_known_ones_with_a_did_you_mean():
    with pytest.raises(ConfigError, match=r"^dataset spec 'beri:scifact': unknown source 'beri'\. "
                                          r"Did you mean 'beir'\? Known: beir, embedded, folder, irds\.$"):
        load_dataset("beri:scifact")


def test_unknown_embedded_name_suggests_close_match():
    with pytest.raises(UnknownNameError) as exc:
        load_dataset("embedded:nope")
    assert "'nope'" in str(exc.value) and "smoke" in str(exc.value)  # listed among the known names
    with pytest.raises(UnknownNameError, match=r"Did you mean 'smoke'\?"):
        load_dataset("embedded:smok")


def test_beir_name_resolves_under_data_root(tmp_path, no_data_root):
    root = tmp_path / "root"
    write_beir(root / "mycoll", corpus=CORPUS, queries=QUERIES, qrels=QRELS)
    ds = load_dataset("beir:mycoll", data_root=root)
    assert ds.name == "mycoll"
    assert ds.corpus.ids == ["d1", "d2", "d3"]
    assert str(root / "mycoll") in ds.source


def test_beir_name_resolves_under_env_data_root(tmp_path, monkeypatch):
    root = tmp_path / "root"
    write_beir(root / "mycoll", corpus=CORPUS, queries=QUERIES, qrels=QRELS)
    monkeypatch.setenv("LLARA_BENCH_DATA_ROOT", str(root))
    assert load_dataset("beir:mycoll").qrels == {"test": {"q1": {"d1": 1}, "q2": {"d2": 2}}}


def test_folder_spec_loads_any_beir_folder(tmp_path):
    folder = good(tmp_path)
    ds = load_dataset(f"folder:{folder}")
    assert ds.name == "ds" and len(ds.corpus) == 3


def test_beir_misspelled_name_suggests_known(tmp_path, no_data_root):
    root = tmp_path / "root"
    write_beir(root / "other", corpus=CORPUS, queries=QUERIES, qrels=QRELS)
    with pytest.raises(UnknownNameError, match=r"Did you mean 'scifact'"):
        load_dataset("beir:scifactt", data_root=root)


def test_beir_absent_offline_refuses_and_writes_nothing(tmp_path, monkeypatch, no_data_root):
    cache = tmp_path / "cache"
    monkeypatch.setenv("LLARA_BENCH_CACHE", str(cache))
    monkeypatch.setenv("LLARA_BENCH_OFFLINE", "1")
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(LlaraBenchError) as exc:
        load_dataset("beir:nq", data_root=root)
    assert "'nq'" in str(exc.value)
    assert "downloads are off" in str(exc.value)
    assert not cache.exists() or not any(cache.rglob("*"))


@pytest.fixture
def beir_host(tmp_path, monkeypatch, no_data_root):
    """BEIR's download (the network edge) served from a zip made here; unzipping and the rest are BEIR's own.
    Yields the list of URLs fetched and a switch that makes the next fetch break off halfway."""
    import zipfile

    from beir import util

    fetched, fail = [], []

    def download_url(url: str, save_path: str, chunk_size: int = 1024) -> None:
        fetched.append(url)
        name = Path(save_path).stem
        with zipfile.ZipFile(save_path, "w") as zf:
            for path in sorted(write_beir(tmp_path / "host" / name, CORPUS, QUERIES, QRELS).rglob("*.*")):
                zf.write(path, path.relative_to(tmp_path / "host"))
        if fail:
            Path(save_path).write_bytes(Path(save_path).read_bytes()[:100])
            raise ConnectionResetError("connection reset by peer")

    monkeypatch.setattr(util, "download_url", download_url)
    monkeypatch.setenv("LLARA_BENCH_CACHE", str(tmp_path / "cache"))
    for name in ("LLARA_BENCH_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    return fetched, fail


def test_beir_download_lands_whole_and_is_reused_offline(tmp_path, monkeypatch, beir_host):
    fetched, _ = beir_host
    assert load_dataset("beir:scifact").corpus.ids == ["d1", "d2", "d3"]
    assert fetched == ["https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/scifact.zip"]
    assert [p.name for p in (tmp_path / "cache" / "beir").iterdir()] == ["scifact"]  # no zip, no scratch
    monkeypatch.setenv("LLARA_BENCH_OFFLINE", "1")
    assert load_dataset("beir:scifact").qrels == {"test": {"q1": {"d1": 1}, "q2": {"d2": 2}}}
    assert len(fetched) == 1  # the finished download is used, not fetched again


def test_an_interrupted_beir_download_leaves_nothing(tmp_path, beir_host):
    _, fail = beir_host
    fail.append(True)
    with pytest.raises(LlaraBenchError, match="could not download BEIR dataset 'scifact': connection reset"):
        load_dataset("beir:scifact")
    assert list((tmp_path / "cache" / "beir").iterdir()) == []


# --------------------------------------------------------------------------------------------------
# ir_datasets
# --------------------------------------------------------------------------------------------------


def register_local_irds(folder: Path, docs, queries, qrels) -> str:
    """A dataset built with ir_datasets' own local-file support, registered under a fresh id.
    docs/queries: (id, text); qrels: (qid, docid, rel) written as TREC 'qid 0 docid rel'."""
    import ir_datasets

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "docs.tsv").write_text("".join(f"{i}\t{t}\n" for i, t in docs), encoding="utf-8")
    (folder / "queries.tsv").write_text("".join(f"{i}\t{t}\n" for i, t in queries), encoding="utf-8")
    (folder / "qrels.trec").write_text("".join(f"{q} 0 {d} {r}\n" for q, d, r in qrels), encoding="utf-8")
    ds = ir_datasets.create_dataset(docs_tsv=str(folder / "docs.tsv"), queries_tsv=str(folder / "queries.tsv"),
                                    qrels_trec=str(folder / "qrels.trec"))
    dataset_id = "llara-test/local-" + uuid.uuid4().hex[:12]
    ir_datasets.registry.register(dataset_id, ds)
    return dataset_id


IRDS_DOCS = [("d1", "alpha document"), ("d2", "beta document"), ("d3", "gamma document")]
IRDS_QUERIES = [("q1", "alpha?"), ("q2", "beta?"), ("q3", "unjudged")]
IRDS_QRELS = [("q1", "d1", 1), ("q1", "d3", 0), ("q2", "d2", 2), ("q2", "d1", -1)]


def test_split_name_of_ids():
    assert split_name("msmarco-passage/dev/small") == "dev/small"
    assert split_name("llara-test/local-x") == "local-x"
    assert split_name("cranfield") == "all"


def test_irds_local_dataset_loads(tmp_path):
    dataset_id = register_local_irds(tmp_path / "irds", IRDS_DOCS, IRDS_QUERIES, IRDS_QRELS)
    ds = load_dataset(f"irds:{dataset_id}")
    assert ds.source == f"irds:{dataset_id}"
    assert ds.corpus.ids == ["d1", "d2", "d3"]
    assert ds.corpus.texts == ["alpha document", "beta document", "gamma document"]
    assert ds.corpus.titles == ["", "", ""]
    assert ds.queries == {"q1": "alpha?", "q2": "beta?", "q3": "unjudged"}
    split = split_name(dataset_id)
    assert split == dataset_id.split("/", 1)[1]
    assert ds.splits == [split]
    assert ds.qrels[split] == {"q1": {"d1": 1, "d3": 0}, "q2": {"d2": 2, "d1": -1}}
    assert ds.split(split).unjudged_queries == 1


def test_irds_unknown_id():
    with pytest.raises(UnknownNameError, match="ir_datasets id 'llara-test/no-such-dataset-zz'"):
        load_dataset("irds:llara-test/no-such-dataset-zz")


def test_irds_misspelled_id_suggests():
    with pytest.raises(UnknownNameError, match="Did you mean 'msmarco-passage/dev/small'"):
        load_dataset("irds:msmarco-pasage/dev/small")


# --------------------------------------------------------------------------------------------------
# Fingerprints
# --------------------------------------------------------------------------------------------------


def test_fingerprint_same_content_from_beir_folder_and_irds(tmp_path):
    dataset_id = register_local_irds(tmp_path / "irds", IRDS_DOCS, IRDS_QUERIES, IRDS_QRELS)
    split = split_name(dataset_id)
    from_irds = load_dataset(f"irds:{dataset_id}")

    # The BEIR copy must match what ir_datasets' TSV docs carry: empty titles, and the split name
    # ir_datasets' id gives (a BEIR split is the qrels file's stem).
    def beir_copy(name, docs=IRDS_DOCS, title="", split_as=split):
        return load_beir_folder(write_beir(
            tmp_path / name,
            corpus=[{"_id": i, "title": title, "text": t} for i, t in docs],
            queries=[{"_id": i, "text": t} for i, t in IRDS_QUERIES],
            qrels={split_as: IRDS_QRELS}))

    same = beir_copy("same")
    assert same.fingerprint(split) == from_irds.fingerprint(split)
    assert same.fingerprint() == from_irds.fingerprint()
    assert same.fingerprint().startswith("sha256:") and len(same.fingerprint()) == len("sha256:") + 64

    edited = beir_copy("edited", docs=[IRDS_DOCS[0], ("d2", "beta documenT"), IRDS_DOCS[2]])
    assert edited.fingerprint(split) != from_irds.fingerprint(split)
    titled = beir_copy("titled", title="x")
    assert titled.fingerprint(split) != from_irds.fingerprint(split)
    renamed = beir_copy("renamed", split_as="test")
    assert renamed.fingerprint("test") != from_irds.fingerprint(split)


def test_fingerprint_changes_with_one_character_of_one_doc(tmp_path):
    a = load_beir_folder(good(tmp_path / "a"))
    b = load_beir_folder(good(tmp_path / "b"))
    assert a.fingerprint("test") == b.fingerprint("test")  # folder name/location does not matter
    corpus = [CORPUS[0], {**CORPUS[1], "text": "second documenu"}, CORPUS[2]]
    c = load_beir_folder(good(tmp_path / "c", corpus=corpus))
    assert c.fingerprint("test") != a.fingerprint("test")


def test_fingerprint_covers_queries_and_qrels(tmp_path):
    base = load_beir_folder(good(tmp_path / "a")).fingerprint("test")
    other_query = [QUERIES[0], {"_id": "q2", "text": "second querY"}]
    assert load_beir_folder(good(tmp_path / "b", queries=other_query)).fingerprint("test") != base
    other_grade = {"test": [("q1", "d1", 1), ("q2", "d2", 1)]}
    assert load_beir_folder(good(tmp_path / "c", qrels=other_grade)).fingerprint("test") != base


# --------------------------------------------------------------------------------------------------
# Real shared collections (skipped when LLARA_BENCH_SHARED_DATA is absent)
# --------------------------------------------------------------------------------------------------

REAL = ["scifact", "nfcorpus", "cranfield", "cisi", "msmarco-dl19-subset-agentset"]


@pytest.fixture(scope="module")
def real_data(shared_data) -> Path:
    return shared_data


@pytest.fixture(scope="module")
def readme_counts(real_data) -> dict[str, tuple[int, int, int]]:
    """folder -> (docs, queries with test qrels, test qrels rows), the first number of each cell of
    the README table (e.g. '300 (test), 809 (train)' -> 300, 'test 339, train 919' -> 339)."""
    counts = {}
    for line in (real_data / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0] in REAL:
            counts[cells[0]] = tuple(int(re.search(r"\d[\d,]*", c).group().replace(",", "")) for c in cells[1:4])
    return counts


@pytest.fixture(scope="module")
def real(real_data):
    loaded: dict = {}

    def get(name):
        if name not in loaded:
            folder = real_data / name
            if not folder.is_dir():
                pytest.skip(f"{folder} absent")
            loaded[name] = load_beir_folder(folder)
        return loaded[name]
    return get


@pytest.mark.shared_data
@pytest.mark.parametrize("name", REAL)
def test_real_collection_counts(real, readme_counts, name):
    docs, judged, rows = readme_counts[name]
    ds = real(name)
    split = ds.split("test")
    assert len(ds.corpus) == docs
    assert len(split.queries) == judged
    assert sum(len(d) for d in split.qrels.values()) == rows
    assert split.unjudged_queries == len(ds.queries) - judged


@pytest.mark.shared_data
def test_real_readme_table_parsed(readme_counts):
    assert set(readme_counts) == set(REAL)
    assert readme_counts["scifact"] == (5183, 300, 339)


@pytest.mark.shared_data
def test_real_cranfield_negative_grades_and_newlines(real):
    ds = real("cranfield")
    grades = {g for docs in ds.qrels["test"].values() for g in docs.values()}
    assert -1 in grades
    assert any("\n" in t for t in ds.corpus.texts)


@pytest.mark.shared_data
def test_real_cisi_unjudged_queries(real):
    split = real("cisi").split("test")
    assert split.unjudged_queries == 36
    assert len(split.queries) + 36 == len(real("cisi").queries)


@pytest.mark.shared_data
def test_real_scifact_qrels_crlf(real_data, real):
    raw = (real_data / "scifact" / "qrels" / "test.tsv").read_bytes()
    assert b"\r\n" in raw
    ds = real("scifact")
    assert ds.splits == ["test", "train"]
    assert all("\r" not in d for docs in ds.qrels["test"].values() for d in docs)


def test_a_beir_sub_dataset_loads_from_its_folder_inside_the_parent(tmp_path, monkeypatch):
    """CQADupStack's forums live inside its download (cqadupstack/android, ...)."""
    forum = tmp_path / "cqadupstack" / "android"
    (forum / "qrels").mkdir(parents=True)
    (forum / "corpus.jsonl").write_text(json.dumps({"_id": "d1", "title": "", "text": "adb over wifi"}) + "\n")
    (forum / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "wireless adb"}) + "\n")
    (forum / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    dataset = load_dataset("beir:cqadupstack/android", tmp_path)
    assert dataset.name == "cqadupstack/android" and dataset.corpus.ids == ["d1"]
    monkeypatch.setenv("LLARA_BENCH_OFFLINE", "1")
    with pytest.raises(LlaraBenchError, match="'cqadupstack' is not under the data root"):
        load_dataset("beir:cqadupstack/gaming", tmp_path)
    with pytest.raises(UnknownNameError):
        load_dataset("beir:nope/x", tmp_path)

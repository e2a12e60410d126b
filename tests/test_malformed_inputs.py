"""Malformed inputs, as a hostile new user gives them: each ends with a non-zero status, one error line that
names the file (and its line or field), no Python traceback, and nothing written (no run folder, report or
cache entry). The console script's `main()` runs in this process with patched argv (fast: most cases stop
before any model loads); a lone surrogate once crashed the interpreter, so that case runs in a subprocess,
as does the one that shows the traceback under --debug."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llara_bench.harness import cli

LOL = "[" + ",".join(["lol"] * 9) + "]"


def billion_laughs(levels: int) -> str:
    """A flow list of nested aliases that expands to about 9**(levels + 1) strings (a few hundred bytes)."""
    items = [f"&a0 {LOL}"] + [f"&a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "[" + ", ".join(items) + f", [{','.join([f'*a{levels - 1}'] * 9)}]]"


def folder(root: Path, name: str, corpus: list[str] | None = None, queries: list[str] | None = None,
           qrels: str = "q1\td1\t1\nq2\td2\t1\n") -> Path:
    """A tiny BEIR folder; ``corpus`` and ``queries`` are JSONL lines."""
    path = root / name
    (path / "qrels").mkdir(parents=True)
    (path / "corpus.jsonl").write_text("\n".join(corpus or [
        '{"_id": "d1", "title": "", "text": "apples are red fruit"}',
        '{"_id": "d2", "title": "", "text": "bananas are yellow"}',
        '{"_id": "d3", "title": "", "text": "cherries are small"}']) + "\n")
    (path / "queries.jsonl").write_text("\n".join(queries or [
        '{"_id": "q1", "text": "red apples"}', '{"_id": "q2", "text": "yellow banana"}']) + "\n")
    (path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + qrels)
    return path


def suite(root: Path, body: str, name: str = "suite.yaml") -> Path:
    path = root / name
    path.write_bytes(body.encode("utf-8") if isinstance(body, str) else body)
    return path


def run_args(root: Path, *args: str) -> list[str]:
    return ["run", *args, "-o", str(root / "runs"), "--no-report"]


# Each case: (files made under tmp_path) -> (argv, what the one error line must contain).
def dup_names(t):
    a, b = folder(t, "A"), folder(t, "B")
    s = suite(t, f"name: s\nmodels: [bm25]\ndatasets: ['folder:{a}', {{spec: 'folder:{b}', name: A}}]\n")
    return run_args(t, "-s", str(s)), ["datasets 'A'", f"{s}:3", f"folder:{a}", f"folder:{b}", "same name"]


def dup_file_safe_names(t):
    a, b = folder(t, "A"), folder(t, "B")
    s = suite(t, f"name: s\nmodels: [bm25]\ndatasets:\n  - 'folder:{a}'\n  - {{spec: 'folder:{b}', name: 'A/'}}\n")
    return run_args(t, "-s", str(s)), [f"{s}:4", f"{s}:5", "'A/'", "same file name ('A')"]


def dup_by_dataset_flag(t):
    a, other = folder(t, "A"), folder(t / "elsewhere", "A")
    s = suite(t, f"name: s\nmodels: [bm25]\ndatasets: ['folder:{a}']\n")
    return run_args(t, "-s", str(s), "-d", "A", "-d", f"folder:{other}"), [f"{s}:3", f"--dataset folder:{other}"]


def dup_with_discovered(t):
    folder(t / "root", "scifact")
    b = folder(t, "B")
    s = suite(t, f"name: s\nmodels: [bm25]\ndatasets:\n  - discover: beir-folders\n"
                 f"  - {{spec: 'folder:{b}', name: scifact}}\n")
    return run_args(t, "-s", str(s), "--data-root", str(t / "root")), [
        f"{s}:5", f"discover: beir-folders found {t / 'root' / 'scifact'}", "same name"]


def dup_models(t):
    return run_args(t, "-s", "smoke", "-m", "A=bm25", "-m", "A/=bm25"), ["'A' and 'A/'", "same file name"]


def dup_mteb_folders(t):
    a, other = folder(t, "A"), folder(t / "elsewhere", "A")
    return ["mteb", "--folder", str(a), "--folder", str(other), "-m", "tiny-llama", "-o", str(t / "runs")], [
        "'local-A' and 'local-A' make the same file name"]


def dup_mteb_models(t):
    return ["mteb", "--folder", str(folder(t, "A")), "-m", "minilm", "-m", "all-MiniLM-L6-v2", "-o",
            str(t / "runs")], ["'minilm' and 'all-MiniLM-L6-v2' are the same encoder"]


def qrels_outside_corpus(t):
    c = folder(t, "C", qrels="q1\tx1\t1\nq2\tx2\t1\n")
    return run_args(t, "-s", "smoke", "-m", "bm25", "-d", f"folder:{c}"), [
        f"{c / 'qrels' / 'test.tsv'}: none of the 2 judgments", "'x1' is not a corpus id"]


def qrels_of_unknown_queries(t):
    d = folder(t, "D", qrels="q1\td1\t1\nq9\td2\t1\nq9\td3\t1\nq8\td1\t1\n")
    return run_args(t, "-s", "smoke", "-m", "bm25", "-d", f"folder:{d}"), [
        f"{d / 'qrels' / 'test.tsv'}:3 (field 'query-id'): query id 'q9' is not in queries.jsonl (3 judgment rows "
        "of this file name 2 query ids it lacks)"]


def huge_grade(t):
    g = folder(t, "G", qrels="q1\td1\t2147483647\nq2\td2\t1\n")  # trec_eval took 16 GB and 37 s for it
    return run_args(t, "-s", "smoke", "-m", "bm25", "-d", f"folder:{g}"), [
        f"{g / 'qrels' / 'test.tsv'}:2 (field 'score'): expected an integer grade from -1000 to 1000"]


def whitespace_in_doc_id(t):
    w = folder(t, "W", corpus=['{"_id": "d1", "text": "apples"}', '{"_id": "d 2", "text": "bananas"}'])
    return run_args(t, "-s", "smoke", "-m", "bm25", "-d", f"folder:{w}"), [
        f"{w / 'corpus.jsonl'}:2 (field '_id'): document id 'd 2' contains whitespace"]


def surrogate_in_doc_id(t):
    s = folder(t, "S", corpus=['{"_id": "d1\\udfff", "text": "apples"}', '{"_id": "d2", "text": "bananas"}'])
    return run_args(t, "-s", "smoke", "-m", "bm25", "-d", f"folder:{s}"), [
        f"{s / 'corpus.jsonl'}:1 (field '_id')", "lone surrogate"]


def surrogate_in_query_text(t):
    s = folder(t, "S", queries=['{"_id": "q1", "text": "red apples"}', '{"_id": "q2", "text": "yellow \\ud800"}'])
    return run_args(t, "-s", "smoke", "-m", "bm25", "-d", f"folder:{s}"), [
        f"{s / 'queries.jsonl'}:2 (field 'text')", "lone surrogate"]


def surrogate_bytes_in_qrels(t):
    q = folder(t, "Q")
    (q / "qrels" / "test.tsv").write_bytes(b"q1\td1\t1\nq2\td\xed\xbf\xbf\t1\n")  # a surrogate encoded as UTF-8
    return run_args(t, "-s", "smoke", "-m", "bm25", "-d", f"folder:{q}"), [
        f"{q / 'qrels' / 'test.tsv'}:2: not valid UTF-8"]


def surrogate_in_titles(t):
    titles = t / "titles.jsonl"
    titles.write_text('{"docid": "d1", "title": "ok"}\n{"docid": "d2", "title": "\\udfff"}\n')
    return run_args(t, "-s", "smoke", "-m", "bm25", "--titles", str(titles)), [f"{titles}:2 (field 'title')"]


def surrogate_in_suite(t):
    s = suite(t, 'name: s\ndatasets: [embedded:smoke]\nmodels: ["bm25\\udfff"]\n')
    return run_args(t, "-s", str(s)), [f"{s}:3", "lone surrogate"]


def json_nested_too_deeply(t):
    q = folder(t, "Q", queries=['{"_id": "q1", "text": "red apples"}', "[" * 100_000 + "]" * 100_000])
    return run_args(t, "-s", "smoke", "-m", "bm25", "-d", f"folder:{q}"), [
        f"{q / 'queries.jsonl'}:2: invalid JSON (nested too deeply)"]


def all_empty_corpus(t):
    e = folder(t, "E", corpus=['{"_id": "d1", "title": "", "text": ""}', '{"_id": "d2", "text": "  "}'])
    return run_args(t, "-s", "smoke", "-m", "bm25", "-d", f"folder:{e}"), [
        f"{e / 'corpus.jsonl'}: all 2 documents are empty"]


def stop_words_corpus(t):
    e = folder(t, "E", corpus=['{"_id": "d1", "text": "the a an"}', '{"_id": "d2", "text": "of"}'])
    return run_args(t, "-s", "smoke", "-m", "bm25", "-d", f"folder:{e}"), [
        f"beir-folder:{e}: dataset 'E'", "BM25 finds no word to index"]


def corpus_is_a_folder(t):
    f = folder(t, "F")
    (f / "corpus.jsonl").unlink()
    (f / "corpus.jsonl").mkdir()
    return run_args(t, "-s", "smoke", "-m", "bm25", "-d", f"folder:{f}"), [
        f"{f / 'corpus.jsonl'}: expected a file, found a folder"]


def binary_suite(t):
    s = suite(t, b"\x00\xa9\xff\xfe binary")
    return run_args(t, "-s", str(s)), [f"{s}: not a text file", "expected a UTF-8 YAML suite file"]


def dataset_name_a_number(t):
    a = folder(t, "A")
    s = suite(t, f"name: s\nmodels: [bm25]\ndatasets:\n  - {{spec: 'folder:{a}', name: 12}}\n")
    return run_args(t, "-s", str(s)), [f"{s}:4 (field 'name')", "expected a non-empty string, got 12"]


def cache_is_a_file(t):
    (t / "cache-file").write_text("")
    return run_args(t, "-s", "smoke", "-m", "tiny-llama"), [
        f"the cache folder {t / 'cache-file'} (LLARA_BENCH_CACHE) is not a writable folder: it is a file"]


def output_is_a_file(t):
    (t / "out-file").write_text("")
    return ["run", "-s", "smoke", "-m", "tiny-llama", "-o", str(t / "out-file"), "--no-report"], [
        f"the output folder {t / 'out-file'} (--output) is not a writable folder: it is a file"]


def output_under_a_file(t):
    (t / "out-file").write_text("")
    return ["run", "-s", "smoke", "-m", "bm25", "-o", str(t / "out-file" / "runs")], [
        f"{t / 'out-file' / 'runs'} (--output) is not a writable folder", "a part of this path is a file"]


def report_into_a_file(t):
    (t / "out-file").write_text("")
    return ["report", str(t), "-o", str(t / "out-file" / "report.html")], [
        f"the report's folder {t / 'out-file'} (--output) is not a writable folder: it is a file"]


def mteb_output_is_a_file(t):
    (t / "out-file").write_text("")
    return ["mteb", "--folder", str(folder(t, "A")), "-m", "bm25", "-o", str(t / "out-file")], [
        f"the output folder {t / 'out-file'} (--output)"]


def mteb_cache_is_a_file(t):
    (t / "cache-file").write_text("")
    return ["mteb", "--folder", str(folder(t, "A")), "-m", "tiny-llama", "-o", str(t / "runs")], [
        f"the cache folder {t / 'cache-file'} (LLARA_BENCH_CACHE) is not a writable folder: it is a file"]


def models_file_binary(t):
    m = suite(t, b"encoders:\n  \xff\xfe: x\n", name="models.yaml")
    return ["models", "--models-file", str(m)], [f"{m}: not a text file", "UTF-8 YAML models file"]


def models_file_is_a_folder(t):
    (t / "models.yaml").mkdir()
    return ["models", "--models-file", str(t / "models.yaml")], [f"models file {t / 'models.yaml'} is a folder"]


def register_into_a_file(t):
    (t / "out-file").write_text("")
    return ["register", "x", str(t), "-c", "llara", "--models-file", str(t / "out-file" / "encoders.yaml")], [
        f"the models file's folder {t / 'out-file'} (--models-file) is not a writable folder: it is a file"]


def bomb_in_suite_models(t):
    s = suite(t, f"name: s\ndatasets: [embedded:smoke]\nmodels: {billion_laughs(8)}\n")
    return run_args(t, "-s", str(s)), [f"{s}:3", "expands to more than 100,000 values"]


def bomb_in_models_file(t):
    m = suite(t, f"encoders:\n  x:\n    contract: llara\n    model: {billion_laughs(8)}\n", name="models.yaml")
    return ["models", "--models-file", str(m)], [f"{m}:4", "expands to more than 100,000 values"]


def small_bomb_is_not_printed_whole(t):
    # 9**5 = 59,049 values: under the bound, so it loads, and the message quotes it cut short
    s = suite(t, f"name: s\ndatasets: [embedded:smoke]\nmodels: {billion_laughs(4)}\n")
    return run_args(t, "-s", str(s)), [f"{s}:3 (field 'models')", "expected a non-empty list of strings"]


def nested_too_deeply(t):
    s = suite(t, "name: s\ndatasets: [embedded:smoke]\nmodels: " + "[" * 5000 + "]" * 5000 + "\n")
    return run_args(t, "-s", str(s)), [f"{s}: invalid YAML (lists or mappings nested too deeply)"]


def yaml_type(field_line: str, field: str, expected: str):
    """A suite with one field of the wrong YAML type (line 4)."""
    def case(t):
        a = folder(t, "A")
        s = suite(t, f"name: s\nmodels: [bm25]\ndatasets: ['folder:{a}']\n{field_line}\n")
        return run_args(t, "-s", str(s)), [f"{s}:4", f"(field {field!r})", expected]
    case.__name__ = f"suite_{field}_{field_line}"
    return case


def models_file_type(entry: str, field: str, expected: str):
    """A models file whose one encoder has a field of the wrong YAML type (line 2)."""
    def case(t):
        m = suite(t, f"encoders:\n  {entry}\n", name="models.yaml")
        return ["models", "--models-file", str(m)], [f"{m}:2", f"(field {field!r})", expected]
    case.__name__ = f"models_file_{field}"
    return case


CASES = [
    dup_names, dup_file_safe_names, dup_by_dataset_flag, dup_with_discovered, dup_models,  # item 2
    dup_mteb_folders, dup_mteb_models,
    qrels_outside_corpus, qrels_of_unknown_queries, huge_grade, whitespace_in_doc_id,  # 4
    # 5 (the document id: in a subprocess, below)
    surrogate_in_query_text, surrogate_bytes_in_qrels, surrogate_in_titles, surrogate_in_suite,
    json_nested_too_deeply,
    all_empty_corpus, stop_words_corpus,  # 6
    corpus_is_a_folder, binary_suite, dataset_name_a_number, cache_is_a_file, output_is_a_file,  # 7, 8
    output_under_a_file, report_into_a_file, mteb_output_is_a_file, mteb_cache_is_a_file, models_file_binary,
    models_file_is_a_folder, register_into_a_file,
    bomb_in_suite_models, bomb_in_models_file, small_bomb_is_not_printed_whole, nested_too_deeply,  # 9
    yaml_type("top_k: [1]", "top_k", "expected a positive integer, got [1]"),
    yaml_type("split: 3", "split", "expected a non-empty string, got 3"),
    yaml_type("titles: 5", "titles", "expected a non-empty string, got 5"),
    yaml_type("conventions: {A: {relevance_map: {true: 1}}}", "relevance_map", "integer grade"),
    yaml_type("conventions: {A: {relevance_map: {1: 3000000000}}}", "relevance_map", "from -1000 to 1000"),
    yaml_type("conventions: {5: {top_k: 2}}", 5, "expected a dataset name (a string), got 5"),
    yaml_type("expected: [{model: bm25, dataset: A, score: .nan}]", "score", "expected a number, got nan"),
    models_file_type("x: {model: /tmp, contract: llara, dtype: [a]}", "dtype", "got ['a']"),
    models_file_type("12: {model: /tmp, contract: llara}", 12, "expected an encoder name (a string), got 12"),
    models_file_type("x: {model: /tmp, contract: {base: [a]}}", "base", "a contract name"),
    models_file_type("x: {model: 5, contract: llara}", "model", "expected a non-empty string, got 5"),
]


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("LLARA_BENCH_CACHE", str(path))
    monkeypatch.delenv("LLARA_BENCH_DEBUG", raising=False)
    return path


def _main(argv: list[str], capsys) -> tuple[int, str]:
    sys_argv = sys.argv
    sys.argv = ["llara-bench", *argv]
    try:
        with pytest.raises(SystemExit) as done:
            cli.main()
    finally:
        sys.argv = sys_argv
    return done.value.code, capsys.readouterr().err


def _assert_one_error_line(status: int, stderr: str, wanted: list[str]) -> None:
    assert status == 2, stderr
    assert "Traceback" not in stderr
    [line] = stderr.strip().splitlines()
    assert line.startswith("error: ") and "internal error" not in line, line
    assert len(line) < 700, line
    for part in wanted:
        assert part in line, f"{part!r} not in {line!r}"


def _assert_nothing_written(tmp_path: Path, cache: Path) -> None:
    assert not (tmp_path / "runs").exists()
    assert not list(tmp_path.rglob("report*.html")) and not list(tmp_path.rglob("*.trec.gz"))
    assert not list(tmp_path.rglob("results"))
    assert not cache.exists() or not any(p.is_file() for p in cache.rglob("*"))


@pytest.mark.parametrize("make", CASES, ids=lambda c: c.__name__)
def test_a_malformed_input_ends_with_one_line_that_names_it(make, tmp_path, cache, monkeypatch, capsys):
    argv, wanted = make(tmp_path)
    if make in (cache_is_a_file, mteb_cache_is_a_file):
        monkeypatch.setenv("LLARA_BENCH_CACHE", str(tmp_path / "cache-file"))
    start = time.perf_counter()
    status, stderr = _main(argv, capsys)
    _assert_one_error_line(status, stderr, wanted)
    _assert_nothing_written(tmp_path, cache)
    assert time.perf_counter() - start < 20  # a YAML bomb is refused, not expanded


def _subprocess(argv: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llara_bench.harness.cli", *argv], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "LLARA_BENCH_DEBUG": "", **env})


def test_a_lone_surrogate_in_a_document_id_is_refused_not_a_crash(tmp_path, cache):
    argv, wanted = surrogate_in_doc_id(tmp_path)
    done = _subprocess(argv, LLARA_BENCH_CACHE=str(cache))  # it was a segfault inside pytrec_eval (status 139)
    _assert_one_error_line(done.returncode, done.stderr, wanted)
    _assert_nothing_written(tmp_path, cache)


def test_debug_shows_the_traceback(tmp_path, cache):
    argv, _ = dataset_name_a_number(tmp_path)
    done = _subprocess(["--debug", *argv], LLARA_BENCH_CACHE=str(cache))
    assert done.returncode != 0
    assert "Traceback" in done.stderr and "ConfigError" in done.stderr and "(field 'name')" in done.stderr


def _denied(monkeypatch, path: Path) -> None:
    """Reading or writing ``path`` (or a file in it) fails with EACCES, as chmod would make it for a user
    other than root (these tests may run as root)."""
    import errno
    import tempfile

    def deny(name: object) -> None:
        if Path(str(name)) == path or Path(str(name)).parent == path:
            raise PermissionError(errno.EACCES, "Permission denied", str(name))

    open_, read_text, mkstemp = Path.open, Path.read_text, tempfile.mkstemp
    monkeypatch.setattr(Path, "open", lambda self, *a, **k: deny(self) or open_(self, *a, **k))
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: deny(self) or read_text(self, *a, **k))
    monkeypatch.setattr(tempfile, "mkstemp", lambda *a, dir=None, **k: deny(Path(dir) / "probe") or
                        mkstemp(*a, dir=dir, **k))


@pytest.mark.parametrize("what", ["corpus", "suite", "output"])
def test_permissions_are_named(what, tmp_path, cache, capsys, monkeypatch):
    a = folder(tmp_path, "A")
    s = suite(tmp_path, f"name: s\nmodels: [bm25]\ndatasets: ['folder:{a}']\n")
    argv = run_args(tmp_path, "-s", str(s))
    if what == "corpus":
        _denied(monkeypatch, a / "corpus.jsonl")
        wanted = [f"{a / 'corpus.jsonl'}: cannot read this file: permission denied; check its permissions"]
    elif what == "suite":
        _denied(monkeypatch, s)
        wanted = [f"cannot read the suite file {s}: permission denied; check its permissions"]
    else:
        _denied(monkeypatch, tmp_path / "runs")
        wanted = [f"the output folder {tmp_path / 'runs'} (--output) is not a writable folder: permission denied"]
    status, stderr = _main(argv, capsys)
    _assert_one_error_line(status, stderr, wanted)
    _assert_nothing_written(tmp_path, cache)


def test_judgments_of_unknown_documents_are_counted_in_a_warning(tmp_path, cache, capsys):
    f = folder(tmp_path, "F", qrels="q1\tx1\t1\nq1\td1\t1\nq2\td2\t1\n")
    status, stderr = _main(run_args(tmp_path, "-s", "smoke", "-m", "bm25", "-d", f"folder:{f}"), capsys)
    assert status == 0, stderr
    assert f"{f / 'qrels' / 'test.tsv'}: 1 of 3 judgments name documents that are not in the corpus" in \
        " ".join(stderr.split())


def test_an_expected_score_on_a_dataset_the_data_root_lacks_is_reported(tmp_path, cache, capsys):
    folder(tmp_path / "root", "scifact")
    status, stderr = _main(run_args(tmp_path, "-s", "beir-local", "--data-root", str(tmp_path / "root"), "-m",
                                    "bm25"), capsys)
    assert status == 0, stderr
    said = " ".join(stderr.split())
    assert "beir-local.yaml: the expected scores of 'cisi', 'cranfield'," in said
    assert "cannot be checked: no such dataset was found under" in said and "'scifact'" not in said


def test_an_escaped_surrogate_pair_is_a_character_and_loads(tmp_path):
    from llara_bench.harness.datasets.beir_folder import load_beir_folder

    f = folder(tmp_path, "F", corpus=['{"_id": "d1", "text": "smile \\ud83d\\ude00"}', '{"_id": "d2", "text": "b"}'])
    assert load_beir_folder(f).corpus.texts[0] == "smile \U0001F600"


def test_a_check_that_checks_nothing_says_so(tmp_path, cache, capsys):
    status, stderr = _main(["run", "-s", "smoke", "-m", "renamed=bm25", "-o", str(tmp_path / "runs"), "--no-report",
                            "--check"], capsys)
    assert status == 0, stderr
    assert "--check checked nothing: none of the suite's 4 expected scores is for a model and dataset of this " \
        "run" in " ".join(stderr.split())


def test_every_built_in_expected_score_names_a_registered_model():
    from llara_bench.harness.suites import expected_collections, load_expected
    from llara_bench.models import REGISTRY

    for collection in expected_collections():
        for e in load_expected(collection):
            assert e.model in REGISTRY, f"{e.where}: {e.model!r} is not a registered model: this gate never fires"

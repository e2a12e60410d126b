"""Suite files: the built-in suites, per-dataset conventions, and malformed suite files rejected with
a ConfigError naming the file, the line and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llara_bench.harness.errors import ConfigError, UnknownNameError
from llara_bench.harness.suites import DatasetEntry, builtin_suites, load_suite, parse_suite

CRANFIELD_MAP = {1: 4, 2: 3, 3: 2, 4: 1, -1: 0}


def make_beir_folder(folder: Path) -> None:
    """The smallest folder discover_beir_folders accepts (it only looks at the layout)."""
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(json.dumps({"_id": "d1", "text": "x"}) + "\n")
    (folder / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "x"}) + "\n")
    (folder / "qrels" / "test.tsv").write_text("q1\td1\t1\n")


# --------------------------------------------------------------------------------------------------
# Built-in suites
# --------------------------------------------------------------------------------------------------


def test_builtin_suites_are_listed():
    assert {"smoke", "beir-local"} <= set(builtin_suites())


def test_smoke_suite_parses():
    suite = load_suite("smoke")
    assert suite.name == "smoke"
    assert suite.path == "<built-in suite>/smoke.yaml"
    assert suite.models == ["minilm", "bm25", "tiny-llama", "tiny-llara"]
    assert suite.measures == ["nDCG@10", "RR@10", "R@100", "R@1000", "AP"]
    assert suite.main_metric == "nDCG@10"
    assert suite.split == "test" and suite.top_k == 100
    assert suite.discover is None
    assert suite.datasets == [DatasetEntry(spec="embedded:smoke", name="smoke", split="test", top_k=100)]
    assert suite.resolve_datasets(None) == suite.datasets  # needs no data root


def test_beir_local_suite_parses_with_conventions():
    suite = load_suite("beir-local")
    assert suite.name == "beir-local"
    assert suite.discover == "beir-folders"
    assert suite.datasets == []
    assert suite.top_k == 1000 and suite.split == "test"
    assert suite.conventions["cranfield"] == {"relevance_map": CRANFIELD_MAP}
    assert suite.conventions["arguana"] == {"drop_self_hits": True}
    assert suite.conventions["quora"] == {"drop_self_hits": True}


def test_msmarco_local_discovers_only_msmarco_and_trec_dl_folders(tmp_path):
    for name in ("msmarco-dl19-subset", "trec-dl-2020", "scifact"):
        make_beir_folder(tmp_path / name)
    suite = load_suite("msmarco-local")
    assert suite.discover_match == ["msmarco*", "trec-dl*"]
    assert [e.name for e in suite.resolve_datasets(tmp_path)] == ["msmarco-dl19-subset", "trec-dl-2020"]
    assert suite.measures == ["nDCG@10", "R(rel=2)@1000", "RR(rel=2)@10", "AP(rel=2)"]
    empty = tmp_path / "empty"
    make_beir_folder(empty / "scifact")
    with pytest.raises(ConfigError, match="no BEIR folders named msmarco\\* or trec-dl\\*"):
        suite.resolve_datasets(empty)


def test_beir_local_resolves_and_applies_conventions(tmp_path):
    for name in ("cranfield", "arguana", "scifact"):
        make_beir_folder(tmp_path / name)
    (tmp_path / "not-a-dataset").mkdir()  # ignored: no BEIR layout
    entries = {e.name: e for e in load_suite("beir-local").resolve_datasets(tmp_path)}
    assert set(entries) == {"cranfield", "arguana", "scifact"}
    assert entries["cranfield"] == DatasetEntry("beir:cranfield", "cranfield", "test", 1000,
                                                drop_self_hits=False, relevance_map=CRANFIELD_MAP)
    assert entries["arguana"].drop_self_hits is True and entries["arguana"].relevance_map is None
    assert entries["scifact"].drop_self_hits is False and entries["scifact"].relevance_map is None
    assert all(e.spec == f"beir:{n}" and e.top_k == 1000 for n, e in entries.items())


def test_beir_local_without_data_root_asks_for_it():
    with pytest.raises(ConfigError, match="--data-root"):
        load_suite("beir-local").resolve_datasets(None)


def test_beir_local_with_empty_data_root(tmp_path):
    with pytest.raises(ConfigError, match="no BEIR folders"):
        load_suite("beir-local").resolve_datasets(tmp_path)


def test_unknown_suite_name_suggests_close_match():
    with pytest.raises(UnknownNameError, match=r"unknown suite 'smok'\. Did you mean 'smoke'"):
        load_suite("smok")


def test_missing_suite_file(tmp_path):
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError, match="not found") as exc:
        load_suite(str(path))
    assert str(path) in str(exc.value)


def test_suite_file_with_explicit_entries_and_conventions(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "name: mine\n"
        "models: [bm25]\n"
        "top_k: 50\n"
        "datasets:\n"
        "  - beir:arguana\n"
        "  - {spec: beir:cranfield, top_k: 10}\n"
        "  - {spec: 'folder:/data/quora/', name: q, drop_self_hits: false}\n"
        "conventions:\n"
        "  arguana: {drop_self_hits: true}\n"
        "  cranfield: {relevance_map: {1: 4, -1: 0}}\n"
        "  quora: {drop_self_hits: true}\n"
    )
    suite = load_suite(str(path))
    assert suite.path == str(path)
    assert suite.measures == ["nDCG@10", "RR@10", "R@100", "R@1000", "AP"]  # the defaults
    arguana, cranfield, quora = suite.datasets
    assert arguana == DatasetEntry("beir:arguana", "arguana", "test", 50, drop_self_hits=True)
    assert cranfield == DatasetEntry("beir:cranfield", "cranfield", "test", 10, relevance_map={1: 4, -1: 0})
    # the entry's own value wins over the convention of its folder name
    assert quora.name == "q" and quora.drop_self_hits is False


# --------------------------------------------------------------------------------------------------
# Malformed suite files
# --------------------------------------------------------------------------------------------------

HEAD = "name: bad\nmodels: [bm25]\n"  # lines 1-2 of most cases


def bad(id, text, *, line, field, words):
    """`line`: the line the message should name (None where no single line applies)."""
    return pytest.param(dict(text=text, line=line, field=field, words=words), id=id)

MALFORMED = [
    bad("unknown-top-level-key", "name: bad\nmodles: [bm25]\ndatasets: [embedded:smoke]\n", line=2,
        field="modles", words=["unknown field", "did you mean 'models'?"]),
    # a missing key has no line of its own; the message names the file and the field
    bad("missing-models", "# no models\nname: bad\ndatasets: [embedded:smoke]\n", line=None,
        field="models", words=["missing field 'models'"]),
    bad("missing-name", "models: [bm25]\ndatasets: [embedded:smoke]\n", line=None,
        field="name", words=["missing field 'name'"]),
    bad("models-not-a-list", "name: bad\nmodels: bm25\ndatasets: [embedded:smoke]\n", line=2,
        field="models", words=["expected a non-empty list of strings"]),
    bad("top-k-negative", HEAD + "datasets: [embedded:smoke]\ntop_k: -3\n", line=4,
        field="top_k", words=["expected a positive integer", "-3"]),
    bad("top-k-string", HEAD + "datasets: [embedded:smoke]\ntop_k: \"ten\"\n", line=4,
        field="top_k", words=["expected a positive integer", "'ten'"]),
    bad("unknown-measure", HEAD + "datasets: [embedded:smoke]\nmeasures: [nDCG@10, Foo@3]\n", line=4,
        field="measures", words=["unknown measure 'foo'"]),  # any case: named as looked up
    bad("main-metric-not-measured", HEAD + "datasets: [embedded:smoke]\nmeasures: [nDCG@10]\nmain_metric: AP\n",
        line=5, field="main_metric", words=["'AP' is not among the measures"]),
    bad("empty-datasets", HEAD + "datasets: []\n", line=3, field="datasets",
        words=["expected a non-empty list of dataset specs"]),
    bad("dataset-not-string-or-mapping", HEAD + "datasets:\n  - 42\n", line=4, field=None,
        words=["each dataset must be a spec string", "got 42"]),
    bad("dataset-entry-without-spec", HEAD + "datasets:\n  - embedded:smoke\n  - {split: test, top_k: 5}\n",
        line=5, field="spec", words=["missing field 'spec'"]),
    bad("dataset-spec-without-colon", HEAD + "datasets:\n  - embedded:smoke\n  - scifact\n",
        line=5, field="scifact", words=["expected SOURCE:NAME"]),
    bad("dataset-entry-unknown-key", HEAD + "datasets:\n  - spec: beir:scifact\n    topk: 10\n", line=5,
        field="topk", words=["unknown field", "did you mean 'top_k'?"]),
    bad("dataset-entry-top-k-zero", HEAD + "datasets:\n  - {spec: beir:scifact, top_k: 0}\n", line=4,
        field="top_k", words=["expected a positive integer", "got 0"]),
    bad("discover-unknown", HEAD + "datasets:\n  - discover: everything\n", line=4, field="discover",
        words=["expected 'discover: beir-folders' alone"]),
    bad("invalid-yaml-tab", HEAD + "\tdatasets: [embedded:smoke]\n", line=3, field=None,
        words=["invalid YAML", "cannot start any token"]),
    bad("invalid-yaml-indent", HEAD + "datasets:\n  - embedded:smoke\n top_k: 10\n", line=5, field=None,
        words=["invalid YAML"]),
    bad("relevance-map-string-keys", HEAD + "datasets:\n  - spec: beir:cranfield\n    relevance_map: {a: 1}\n",
        line=5, field="relevance_map", words=["expected a mapping of integer grade to integer grade"]),
    bad("drop-self-hits-string", HEAD + "datasets:\n  - spec: beir:arguana\n    drop_self_hits: \"yes\"\n",
        line=5, field="drop_self_hits", words=["expected true or false"]),
    bad("convention-drop-self-hits-string",
        HEAD + "datasets: [beir:arguana]\nconventions:\n  arguana:\n    drop_self_hits: 'yes'\n",
        line=6, field="drop_self_hits", words=["expected true or false"]),
    bad("convention-unknown-key", HEAD + "datasets: [beir:arguana]\nconventions:\n  arguana: {spec: x}\n",
        line=5, field="spec", words=["unknown field"]),
    bad("conventions-not-mapping", HEAD + "datasets: [beir:arguana]\nconventions: [arguana]\n", line=4,
        field="conventions", words=["expected a mapping of dataset name to conventions"]),
    bad("duplicate-key", HEAD + "models: [x]\ndatasets: [embedded:smoke]\n", line=3, field=None,
        words=["invalid YAML", "duplicate key 'models' (first on line 2)"]),
    bad("suite-is-a-list", "- name: bad\n- models: [bm25]\n", line=None, field=None,
        words=["expected a mapping with keys", "models"]),
]


def _load(tmp_path: Path, text: str) -> tuple[Path, ConfigError]:
    path = tmp_path / "suite.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_suite(str(path))
    return path, exc.value


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_suite_is_rejected(tmp_path, case):
    path, err = _load(tmp_path, case["text"])
    message = str(err)
    assert str(path) in message
    if case["line"] is not None:
        assert f"{path}:{case['line']}" in message
    if case["field"] is not None:
        assert repr(case["field"]) in message
    for word in case["words"]:
        assert word in message, f"{word!r} not in {message!r}"


def test_malformed_cases_cover_enough_kinds():
    assert len({p.id for p in MALFORMED}) == len(MALFORMED) >= 8


def test_builtin_suite_name_wins_over_a_folder_of_that_name(tmp_path, monkeypatch):
    (tmp_path / "smoke").mkdir()
    monkeypatch.chdir(tmp_path)
    assert load_suite("smoke").name == "smoke"


def test_msmarco_suites_name_the_ir_datasets_splits_and_official_measures():
    dev = load_suite("msmarco")
    (entry,) = dev.datasets
    assert (entry.spec, entry.split, entry.top_k) == ("irds:msmarco-passage/dev/small", "dev/small", 1000)
    assert dev.main_metric == "RR@10" and "R@1000" in dev.measures
    assert {e.model for e in dev.expected} == {"llara-passage", "repllama-7b", "bm25"}
    assert all(e.source and e.metric == "RR@10" for e in dev.expected)
    dl = load_suite("trec-dl")
    assert [(e.name, e.split) for e in dl.datasets] == [("dl19", "trec-dl-2019/judged"),
                                                        ("dl20", "trec-dl-2020/judged")]
    assert dl.main_metric == "nDCG@10" and "R(rel=2)@1000" in dl.measures


def test_beir_suite_names_the_18_datasets_with_their_conventions():
    suite = load_suite("beir")
    names = [e.name for e in suite.datasets]
    forums = [e for e in suite.datasets if e.group == "cqadupstack"]
    # BEIR's 18 zero-shot datasets, plus MS MARCO (in-domain, dev) as BEIR's table lists it: 19 names
    assert len(forums) == 12 and len(names) - len(forums) + 1 == 19
    assert forums[0].spec == "beir:cqadupstack/android" and forums[0].name == "cqadupstack-android"
    by_name = {e.name: e for e in suite.datasets}
    assert by_name["msmarco"].split == "dev" and by_name["scifact"].split == "test"
    assert by_name["arguana"].drop_self_hits and by_name["quora"].drop_self_hits
    assert not by_name["nq"].drop_self_hits


def test_group_means_average_their_members_and_gates_can_name_a_group():
    from llara_bench.harness.gates import Expectation, check
    from llara_bench.harness.runner import group_means

    suite = parse_suite("name: g\nmodels: [m]\ndatasets:\n  - {spec: 'folder:/a', name: a, group: g}\n"
                        "  - {spec: 'folder:/b', name: b, group: g}\n  - folder:/c\n", "g.yaml")
    result = lambda d, v: {"model": {"name": "m"}, "dataset": {"name": d}, "metrics": {"nDCG@10": v}}  # noqa: E731
    (group,) = group_means(suite.datasets, [result("a", 0.2), result("b", 0.4), result("c", 0.9)])
    assert group["dataset"]["name"] == "g" and group["metrics"]["nDCG@10"] == pytest.approx(0.3)
    assert group["members"] == ["a", "b"] and group["complete"]
    (partial,) = group_means(suite.datasets, [result("a", 0.2)])
    assert not partial["complete"] and partial["metrics"]["nDCG@10"] == pytest.approx(0.2)
    assert check([Expectation("m", "g", "nDCG@10", 0.3)], [group])[0].status == "OK"

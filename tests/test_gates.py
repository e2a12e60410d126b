"""Expected-score gates: OK / OKish / FAIL per model × dataset under the conditions of the expected score
("not comparable" under others), and `--check` failing the run on FAIL."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from llara_bench.harness.cli import app
from llara_bench.harness.errors import ConfigError
from llara_bench.harness.gates import Expectation, check, contract_digest, judge
from llara_bench.harness.suites import expected_collections, load_expected, load_suite, parse_suite
from llara_bench.models.base import EncodingContract


def test_judgement_follows_pyserini():
    e = Expectation("m", "d", "nDCG@10", 0.5000, tolerance=0.002)
    assert judge(e, 0.50004).status == "OK"  # equal at four decimals
    assert judge(e, 0.5015).status == "OKish"
    assert judge(e, 0.4980).status == "OKish"  # the tolerance is inclusive
    assert judge(e, 0.5030).status == "FAIL" and judge(e, 0.503).delta == pytest.approx(0.003)
    assert judge(e, None).status == "not run"
    results = [{"model": {"name": "m"}, "dataset": {"name": "d"}, "metrics": {"nDCG@10": 0.7}}]
    assert [v.status for v in check([e, Expectation("m", "other", "nDCG@10", 0.1)], results)] == ["FAIL", "not run"]


SUITE = """\
name: gated
models: [bm25]
datasets: [embedded:smoke]
measures: [nDCG@10, AP]
expected:
{expected}
"""


@pytest.mark.parametrize("expected,error", [
    ("  - {model: bm25, dataset: smoke, score: 0.4, tolerence: 0.1}", r"gated.yaml:6 \(field 'tolerence'\).*did you mean 'tolerance'"),
    ("  - {model: bm25, dataset: smoke, metric: R@100, score: 0.4}", r"gated.yaml:6 \(field 'metric'\).*not among"),
    ("  - {model: bm25, dataset: smoke, score: high}", r"gated.yaml:6 \(field 'score'\): expected a number"),
    ("  - {model: bm25, dataset: smoke, score: 0.4, tolerance: -1}", r"field 'tolerance'\): expected a number >= 0"),
    ("  - 42", r"gated.yaml:6: expected a mapping"),
    ("  - {model: bm25, dataset: smoke, score: 0.4, top_k: ten}", r"gated.yaml:6 \(field 'top_k'\): expected a positive"),
    # a gate that could never fire (issue 16): a model or dataset the suite does not run, an unknown collection
    ("  - {model: bm52, dataset: smoke, score: 0.4}", r"gated.yaml:6 \(field 'model'\): 'bm52' is not among the "
                                                     r"suite's models \['bm25'\], so this gate would never fire"),
    ("  - {model: bm25, dataset: smoek, score: 0.4}", r"gated.yaml:6 \(field 'dataset'\): dataset 'smoek' is not "
                                                     r"among the suite's datasets \['smoke'\].*did you mean 'smoke'"),
    ("  - scifact", r"gated.yaml:6: dataset 'scifact' is not among the suite's datasets"),
    ("  - smoek", r"gated.yaml:6: unknown expected-score collection 'smoek'. Did you mean 'smoke'"),
])
def test_bad_expectations_name_the_line_and_field(expected, error):
    with pytest.raises(ConfigError, match=error):
        parse_suite(SUITE.format(expected=expected), "gated.yaml")


def test_check_fails_the_run_on_a_wrong_expected_score_and_passes_on_a_right_one(tmp_path):
    right = load_suite("smoke").expected
    bm25 = next(e for e in right if e.model == "bm25" and e.metric == "nDCG@10")
    lines = [f"  - {{model: bm25, dataset: smoke, score: {bm25.score}, source: reference run}}",
             "  - {model: bm25, dataset: smoke, metric: AP, score: 0.9, tolerance: 0.01, source: deliberately wrong}"]
    cli = CliRunner()
    for name, expected, code, statuses in (("right", lines[:1], 0, ["OK"]), ("wrong", lines, 1, ["OK", "FAIL"])):
        suite = tmp_path / f"{name}.yaml"
        suite.write_text(SUITE.format(expected="\n".join(expected)))
        out = cli.invoke(app, ["run", "--suite", str(suite), "--check", "--no-report", "-o", str(tmp_path / name)],
                         env={"COLUMNS": "200"})
        assert out.exit_code == code, out.output
        assert "Expected scores" in out.output and ("check failed" in out.output) == (code == 1)
        (run_dir,) = (tmp_path / name).iterdir()
        gates = json.loads((run_dir / "run.json").read_text())["gates"]
        assert [g["status"] for g in gates] == statuses
        assert gates[0]["got"] == pytest.approx(bm25.score, abs=5e-5)


RAN = {"split": "test", "top_k": 100, "dtype": "float32", "titles": None, "contract": "abc"}


def test_a_run_under_other_conditions_is_not_comparable_with_the_condition_that_differs():
    e = Expectation("m", "d", "nDCG@10", 0.5, conditions={"top_k": 100, "dtype": "float32", "titles": None})
    assert judge(e, 0.5, RAN).status == "OK"
    assert judge(e, 0.5, RAN | {"split": "dev", "contract": "other"}).status == "OK"  # not declared: any
    far = judge(e, 0.9, RAN | {"top_k": 10})  # never OK/OKish/FAIL, whatever the score
    assert (far.status, far.reason, far.delta) == ("not comparable", "top_k 10 ≠ 100", None)
    both = judge(e, 0.5, RAN | {"dtype": "bfloat16", "titles": "hf:Tevatron/msmarco-passage-corpus"})
    assert both.reason == "dtype bfloat16 ≠ float32; titles hf:Tevatron/msmarco-passage-corpus ≠ none"
    assert judge(e, None, RAN | {"top_k": 10}).status == "not run"


def test_a_group_is_judged_under_its_members_conditions():
    record = lambda d, k: {"model": {"name": "m"}, "dataset": {"name": d, "split": "test"},  # noqa: E731
                           "search": {"top_k": k}, "metrics": {"nDCG@10": 0.3}}
    group = {"model": {"name": "m"}, "dataset": {"name": "g"}, "metrics": {"nDCG@10": 0.3}, "members": ["a", "b"]}
    e = Expectation("m", "g", "nDCG@10", 0.3, conditions={"split": "test", "top_k": 100})
    assert check([e], [record("a", 100), record("b", 100), group])[0].status == "OK"
    (mixed,) = check([e], [record("a", 100), record("b", 10), group])
    assert (mixed.status, mixed.reason) == ("not comparable", "top_k mixed ≠ 100")


def test_the_contract_digest_leaves_out_dtype_and_fields_at_their_default():
    llara = EncodingContract(padding_side="left", pooling="last_k_mean", pooling_k=8, bos=True).to_dict()
    digest = contract_digest(llara)
    assert len(digest) == 12 and digest == contract_digest(llara | {"dtype": "bfloat16"})
    assert digest != contract_digest(llara | {"padding_side": "right"}) != contract_digest(EncodingContract().to_dict())
    # a result recorded before a field existed (here: normalize, at its default) keeps its digest
    assert digest == contract_digest({k: v for k, v in llara.items() if k != "normalize"})
    assert contract_digest(None) is None


def test_each_collection_is_kept_once_and_the_suites_refer_to_it():
    entries = {c: load_expected(c) for c in expected_collections()}
    assert {"smoke", "scifact", "msmarco-dev-small"} <= set(entries)
    for collection, expectations in entries.items():
        assert all(e.dataset == collection and e.source and e.conditions.get("split") for e in expectations)
    beir_local = load_suite("beir-local").expected
    assert [e for e in beir_local if e.dataset == "scifact"] == entries["scifact"]
    assert [e for e in load_suite("msmarco-local").expected] == entries["msmarco-dl19-subset-agentset"]
    # BM25's published MS MARCO figure is Anserini's on the untitled collection: comparable only under --titles none
    bm25 = next(e for e in load_suite("msmarco").expected if e.model == "bm25")
    assert bm25.conditions["titles"] is None and bm25.metric == "RR@10"


@pytest.mark.slow
def test_the_smoke_suite_is_ok_under_its_conditions_and_not_comparable_under_others(tmp_path):
    """The smoke suite's own gates, run through the CLI: OK as the reference was run; --top-k 10, or a decoder
    encoder under --dtype bfloat16, is "not comparable" with the reason, and --check does not fail on it."""
    cli = CliRunner()
    runs = {"same": ["-m", "bm25", "-m", "tiny-llama", "--no-report"], "top-k": ["-m", "bm25", "--top-k", "10"],
            "dtype": ["-m", "tiny-llama", "--dtype", "bfloat16", "--no-report"]}
    gates = {}
    for name, args in runs.items():
        out = cli.invoke(app, ["run", "--suite", "smoke", *args, "--check", "-o", str(tmp_path / name)],
                         env={"COLUMNS": "250"})
        assert out.exit_code == 0, out.output
        (run_dir,) = (tmp_path / name).iterdir()
        gates[name] = {g["model"]: g for g in json.loads((run_dir / "run.json").read_text())["gates"]
                       if g["status"] != "not run"}
        if name != "same":
            assert "not comparable" in out.output
    # the report's Expected scores section shows the status and the reason
    html_text = next((tmp_path / "top-k").glob("*/report.html")).read_text()
    markdown = next((tmp_path / "top-k").glob("*/report.md")).read_text()
    assert 'class="gate-not-comparable">not comparable (top_k 10 ≠ 100)<' in html_text
    assert "| not comparable (top_k 10 ≠ 100) |" in markdown
    assert {m: g["status"] for m, g in gates["same"].items()} == {"bm25": "OK", "tiny-llama": "OK"}
    assert gates["top-k"]["bm25"]["status"] == "not comparable"
    assert gates["top-k"]["bm25"]["reason"] == "top_k 10 ≠ 100"
    tiny = gates["dtype"]["tiny-llama"]
    # only the dtype differs: the contract digest, which leaves dtype out, matches the reference's
    assert (tiny["status"], tiny["reason"]) == ("not comparable", "dtype bfloat16 ≠ float32")

"""Expected-score gates: OK / OKish / FAIL per model × dataset, and `--check` failing the run on FAIL."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from llara_bench.harness.cli import app
from llara_bench.harness.errors import ConfigError
from llara_bench.harness.gates import Expectation, check, judge
from llara_bench.harness.suites import load_suite, parse_suite


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
    ("  - bm25", r"gated.yaml:6: expected a mapping"),
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

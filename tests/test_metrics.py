"""Metrics: ir_measures values cross-checked against pytrec_eval, and the aggregation rule."""

from __future__ import annotations

import numpy as np
import pytest
import pytrec_eval

from llara_bench.harness.errors import ConfigError
from llara_bench.harness.metrics import evaluate, parse_measures, relevance_for_metrics


def random_case(seed: int):
    rng = np.random.default_rng(seed)
    docs = [f"d{i}" for i in range(300)]
    qrels = {f"q{q}": {d: int(rng.integers(0, 3)) for d in rng.choice(docs, 8, replace=False)} for q in range(40)}
    run = {f"q{q}": {d: float(s) for d, s in zip(rng.choice(docs, 200, replace=False), rng.random(200))}
           for q in range(40)}
    return qrels, run


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_values_match_pytrec_eval(seed):
    qrels, run = random_case(seed)
    agg, per_query = evaluate(qrels, run, ["nDCG@10", "RR@10", "R@100", "AP"])
    ev = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100", "map", "recip_rank"})
    # pytrec_eval's recip_rank has no cut-off: give it each run truncated to its top 10 for RR@10
    top10 = {q: dict(sorted(d.items(), key=lambda kv: -kv[1])[:10]) for q, d in run.items()}
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    ref = ev.evaluate(run)
    for q in qrels:
        assert per_query["nDCG@10"][q] == pytest.approx(ref[q]["ndcg_cut_10"], abs=1e-9)
        assert per_query["R@100"][q] == pytest.approx(ref[q]["recall_100"], abs=1e-9)
        assert per_query["AP"][q] == pytest.approx(ref[q]["map"], abs=1e-9)
        assert per_query["RR@10"][q] == pytest.approx(rr[q]["recip_rank"], abs=1e-9)
    assert agg["nDCG@10"] == pytest.approx(np.mean([ref[q]["ndcg_cut_10"] for q in qrels]))


def test_mean_is_over_qrels_queries_missing_count_as_zero():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    agg, per_query = evaluate(qrels, {"q1": {"a": 1.0}, "q9": {"b": 1.0}}, ["nDCG@10"])
    assert per_query["nDCG@10"] == {"q1": 1.0, "q2": 0.0}
    assert agg["nDCG@10"] == 0.5  # q9 is not in the qrels and does not count


def test_relevance_map_then_negative_grades_clamped():
    qrels = {"q": {"a": 1, "b": 4, "c": -1}}
    assert relevance_for_metrics(qrels, {1: 4, 4: 1, -1: 0}) == {"q": {"a": 4, "b": 1, "c": 0}}
    assert relevance_for_metrics(qrels) == {"q": {"a": 1, "b": 4, "c": 0}}


def test_measure_names_are_canonical_and_typos_rejected():
    assert [str(m) for m in parse_measures(["MRR@10", "R(rel=2)@1000"])] == ["RR@10", "R(rel=2)@1000"]
    with pytest.raises(ConfigError, match="unknown measure 'nDGC@10'"):
        parse_measures(["nDGC@10"])

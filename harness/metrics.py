"""Metrics through ir_measures: per-query values kept, mean over the queries in the qrels
(a query with no results counts as zero, as ir_measures and trec_eval -c do)."""

from __future__ import annotations

import re
from typing import Mapping, Sequence

import ir_measures

from llara_bench.harness.datasets import Qrels
from llara_bench.harness.errors import ConfigError, UnknownNameError
from llara_bench.harness.search import Run

DEFAULT_MEASURES = ("nDCG@10", "RR@10", "R@100", "R@1000", "AP")


def parse_measures(names: Sequence[str]) -> list:
    parsed = []
    for name in names:
        try:
            parsed.append(ir_measures.parse_measure(name))
        except (ValueError, NameError, SyntaxError, TypeError) as exc:
            raise ConfigError(f"unknown measure {name!r} ({exc}); expected ir_measures syntax such as "
                              "nDCG@10, RR@10, R@1000, AP, R(rel=2)@1000") from None
    return parsed


def canonical_measures(names: Sequence[str]) -> list[str]:
    """ir_measures' spelling of measures named in any case (``ndcg@10`` → ``nDCG@10``, ``mrr@10`` → ``RR@10``);
    an unknown measure name gets a did-you-mean."""
    known = {name.lower(): name for name in sorted(ir_measures.measures.registry)}
    out = []
    for name in names:
        head = re.match(r"[^@(]*", name.strip()).group()
        if head.lower() not in known:
            raise UnknownNameError("measure", head.lower(), sorted(known))  # (any case is accepted)
        out.append(str(parse_measures([known[head.lower()] + name.strip()[len(head):]])[0]))
    return out


def relevance_for_metrics(qrels: Qrels, relevance_map: Mapping[int, int] | None = None) -> Qrels:
    """Grades as metrics see them: mapped by the dataset's convention if one is declared (e.g.
    Cranfield's 1 = most relevant), then negative grades (judged non-relevant) clamped to 0."""
    mapped: Qrels = {}
    for qid, docs in qrels.items():
        mapped[qid] = {d: max(0, relevance_map.get(g, g) if relevance_map else g) for d, g in docs.items()}
    return mapped


def evaluate(qrels: Qrels, run: Run, measures: Sequence[str]) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """(aggregate per measure, per-query values per measure); the aggregate is the mean over every
    query in the qrels, a query the run lacks counting as 0."""
    parsed = parse_measures(measures)
    per_query: dict[str, dict[str, float]] = {str(m): {qid: 0.0 for qid in qrels} for m in parsed}
    for metric in ir_measures.iter_calc(parsed, qrels, run):
        per_query[str(metric.measure)][metric.query_id] = float(metric.value)
    aggregate = {name: (sum(values.values()) / len(values) if values else 0.0) for name, values in per_query.items()}
    return aggregate, per_query

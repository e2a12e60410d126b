"""End to end: the smoke suite through the runner and the CLI, result files against their schema."""

from __future__ import annotations

import gzip
import json
import os

import jsonschema
import pytest
from typer.testing import CliRunner

from llara_bench.harness import results
from llara_bench.harness.cli import app
from llara_bench.harness.runner import CacheOptions, RunConfig, run_suite
from llara_bench.harness.suites import load_suite


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return run_suite(RunConfig(suite=load_suite("smoke"), output=out, cache=CacheOptions(embedding_cache=False)))  # timings of a real encode


def test_smoke_writes_valid_results_for_every_pair(smoke_run):
    assert [(r["model"]["name"], r["dataset"]["name"]) for r in smoke_run.results] == [
        ("minilm", "smoke"), ("bm25", "smoke"), ("tiny-llama", "smoke"), ("tiny-llara", "smoke")]
    schema = results.schema()
    for r in smoke_run.results:
        path, _ = results.result_paths(smoke_run.run_dir, r["model"]["name"], r["dataset"]["name"])
        on_disk = results.load_result(path)
        jsonschema.validate(on_disk, schema)
        assert on_disk["metrics"] == r["metrics"]
        assert set(on_disk["per_query"]["nDCG@10"]) == set(on_disk["per_query"]["AP"])
        assert len(on_disk["per_query"]["nDCG@10"]) == on_disk["dataset"]["n_queries"] == 40
    run_json = json.loads((smoke_run.run_dir / "run.json").read_text())
    assert len(run_json["results"]) == 4


def test_decoder_result_records_the_contract_as_run(smoke_run):
    tiny = smoke_run.results[2]["model"]
    contract = tiny["contract"]
    assert (contract["padding_side"], contract["pooling"], contract["pooling_k"], contract["bos"],
            contract["eos"]) == ("left", "last_k_mean", 8, True, False)
    assert contract["passage_suffix"].endswith("<s8>") and contract["query_suffix"].endswith("<s16>")
    assert contract["dtype"] == "float32" and tiny["trained"] is False and tiny["dimension"] == 64
    resolved = tiny["extra"]["resolved"]
    assert resolved["added_special_tokens"] == 16 and resolved["n_parameters"] > 0


def test_dense_result_has_timings_contract_and_provenance(smoke_run):
    dense = smoke_run.results[0]
    t = dense["timings"]
    assert set(t) == {"load", "encode_corpus", "encode_queries", "index", "search", "evaluate"}
    assert t["encode_corpus"]["items"] == 235 and t["encode_corpus"]["tokens"] > 235
    assert t["encode_corpus"]["tokens_per_second"] > 0 and t["encode_corpus"]["peak_rss_bytes"] > 0
    assert dense["model"]["contract"]["passage_template"] == "{title} {text}"
    p = dense["provenance"]
    assert p["libraries"]["faiss-cpu"] and p["libraries"]["ir_measures"] and p["hardware"]["cpu_count_logical"]
    assert dense["dataset"]["fingerprint"].startswith("sha256:")
    assert dense["search"]["backend"].startswith("faiss IndexFlatIP")
    latency = dense["search"]["latency_ms"]
    assert latency["queries"] == 40 and 0 < latency["p50"] <= latency["p90"] <= latency["p99"]
    assert dense["search"]["qps"] == t["search"]["items_per_second"] > 0


def test_memory_plan_is_made_before_the_run_and_recorded(smoke_run):
    plan = {row["model"]: row for row in smoke_run.plan}
    assert set(plan) == {"minilm", "tiny-llama", "tiny-llara"}  # dense models only
    assert plan["minilm"]["embedding_bytes"] == 235 * 384 * 4 == plan["minilm"]["index_bytes"]
    assert (plan["minilm"]["mode"], plan["minilm"]["device"]) == ("in-memory", "cpu")
    assert json.loads((smoke_run.run_dir / "run.json").read_text())["plan"] == smoke_run.plan


def test_cli_plan_only_prints_the_plan_and_runs_nothing(tmp_path):
    out = CliRunner().invoke(app, ["run", "--suite", "smoke", "--plan-only", "--memory-budget-mib", "1",
                                   "--faiss-fp16", "-o", str(tmp_path)], env={"COLUMNS": "160"})
    assert out.exit_code == 0, out.output
    assert "Memory plan" in out.output and "tiny-llama" in out.output and "235 × 64" in out.output
    assert "shard-and-merge on CPU" in out.output and "fp16" in out.output  # 1 MiB fits nothing
    assert not list(tmp_path.iterdir())


def test_metrics_agree_with_the_trec_run_file(smoke_run):
    """The written run file, evaluated independently by ir_measures, gives the stored numbers."""
    import ir_measures

    from llara_bench.harness.datasets import load_dataset

    qrels = load_dataset("embedded:smoke").qrels["test"]
    for r in smoke_run.results:
        with gzip.open(smoke_run.run_dir / r["run_file"], "rt") as fh:
            run = list(ir_measures.read_trec_run(fh.read()))
        value = ir_measures.calc_aggregate([ir_measures.nDCG @ 10], qrels, run)[ir_measures.nDCG @ 10]
        assert value == pytest.approx(r["metrics"]["nDCG@10"], abs=1e-6)


def test_smoke_quality_ordering(smoke_run):
    minilm, bm25, tiny, adapted = (r["metrics"]["nDCG@10"] for r in smoke_run.results)
    assert minilm > bm25  # paraphrase queries defeat BM25 on this collection
    assert bm25 > tiny  # tiny-llama is untrained
    assert adapted > 2 * tiny  # LLaRA's pretext tasks alone, on the smoke corpus, make it a retriever


def test_self_hits_dropped_where_the_suite_says(tmp_path):
    """A collection whose queries are also documents: with drop_self_hits no query retrieves itself."""
    folder = tmp_path / "dup"
    (folder / "qrels").mkdir(parents=True)
    docs = [("a", "volcanoes erupt lava"), ("b", "lava flows from volcanoes downhill"), ("c", "stock markets")]
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "title": "", "text": t}) + "\n"
                                                 for i, t in docs))
    (folder / "queries.jsonl").write_text(json.dumps({"_id": "a", "text": "volcanoes erupt lava"}) + "\n")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\na\tb\t1\n")
    suite_file = tmp_path / "suite.yaml"
    suite_file.write_text(f"name: dup\nmodels: [bm25]\ntop_k: 2\ndatasets:\n"
                          f"  - {{spec: 'folder:{folder}', drop_self_hits: true}}\n")
    run = run_suite(RunConfig(suite=load_suite(str(suite_file)), output=tmp_path / "runs"))
    r = run.results[0]
    assert r["metrics"]["RR@10"] == 1.0  # b is first once a is dropped
    with gzip.open(run.run_dir / r["run_file"], "rt") as fh:
        ranked = [line.split()[2] for line in fh]
    assert ranked == ["b", "c"]


def test_cli_run_prints_table_and_reports_errors(tmp_path):
    cli = CliRunner()
    ok = cli.invoke(app, ["run", "--suite", "smoke", "-m", "bm25", "-o", str(tmp_path)], env={"COLUMNS": "160"})
    assert ok.exit_code == 0, ok.output
    assert "nDCG@10" in ok.output and "bm25" in ok.output and "Results in" in ok.output
    bad = cli.invoke(app, ["run", "--suite", "smoke", "-m", "minilmm", "-o", str(tmp_path)])
    assert bad.exit_code == 2 and "Did you mean 'minilm'" in bad.output
    assert not any(tmp_path.glob("smoke-*/results/minilmm*"))


def test_cli_models_lists_metadata():
    out = CliRunner().invoke(app, ["models", "--json"])
    assert out.exit_code == 0
    listed = {m["name"]: m for m in json.loads(out.output)}
    assert listed["minilm"]["dimension"] == 384 and listed["bm25"]["kind"] == "lexical"


def test_atomic_write_leaves_nothing_half_written(tmp_path, monkeypatch):
    target = tmp_path / "out.json"
    results.write_json(target, {"a": 1})
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # as open() would create it, not mkstemp's 0600

    def boom(*args, **kwargs):
        raise OSError("disk full")

    from llara_bench.models import files  # the one atomic writer behind results.write_json

    monkeypatch.setattr(files.os, "replace", boom)
    with pytest.raises(OSError):
        results.write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]

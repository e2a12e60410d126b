"""The retrieval seam and the options declared once: plug-ins get only the options they take, a misspelt
setting is an error, --device places search too, and the every-day flags of `llara-bench run`."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import typer
from typer.testing import CliRunner

from llara_bench.harness import retrieval
from llara_bench.harness.cli import app
from llara_bench.harness.errors import ConfigError, UnknownNameError
from llara_bench.harness.metrics import canonical_measures
from llara_bench.harness.options import option, with_options
from llara_bench.harness.retrieval import EncoderOptions, SearchOptions, factory_options
from llara_bench.models import REGISTRY
from llara_bench.models.bm25 import BM25Retriever
from llara_bench.models.sentence_transformer import SentenceTransformerEncoder, minilm_path

GIB = 2**30


@pytest.fixture
def registry(monkeypatch):
    """The global registry, restored after the test (the CLI reads the global one)."""
    REGISTRY.names()  # entry points loaded first, so that they are in the saved copy
    monkeypatch.setattr(REGISTRY, "_entries", dict(REGISTRY._entries))
    return REGISTRY


@pytest.fixture
def folder(tmp_path):
    """A small BEIR folder with a dev split only."""
    root = tmp_path / "tiny"
    (root / "qrels").mkdir(parents=True)
    docs = {"d1": "volcanoes erupt lava", "d2": "stock markets fell sharply", "d3": "cats chase mice at night"}
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "title": "", "text": t}) + "\n"
                                               for i, t in docs.items()))
    queries = {"q1": "lava from volcanoes", "q2": "cats and mice"}
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in queries.items()))
    (root / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t1\n")
    return root


def _run(*args: str):
    return CliRunner().invoke(app, ["run", "--no-report", *args], env={"COLUMNS": "160"})


def test_a_plugin_without_token_budget_runs_and_is_told_the_option_was_ignored(registry, folder, tmp_path,
                                                                                monkeypatch):
    monkeypatch.setenv("LLARA_BENCH_CACHE", str(tmp_path / "cache"))
    received = {}

    def plain_minilm(meta, model_path=None, device=None, batch_size=32):  # no token_budget, no **kwargs
        received.update(device=device, batch_size=batch_size)
        return SentenceTransformerEncoder(meta, model_path, device=device, batch_size=batch_size)

    registry.add("plain-minilm", plain_minilm, meta=registry.get("minilm").meta, model_path=minilm_path())
    out = _run("-m", "plain-minilm", "-d", f"folder:{folder}", "--split", "dev", "--token-budget", "512",
               "--batch-size", "7", "--device", "cpu", "-o", str(tmp_path / "runs"))
    assert out.exit_code == 0, out.output
    assert "plain-minilm: ignored --token-budget" in out.output
    assert received == {"device": "cpu", "batch_size": 7}
    (run_dir,) = (tmp_path / "runs").iterdir()
    result = json.loads((run_dir / "results" / "plain-minilm" / "tiny.json").read_text())
    assert result["metrics"]["nDCG@10"] == 1.0  # each query's one relevant document first
    assert result["search"]["backend"] == "faiss IndexFlatIP (float32) on CPU"


def test_options_reach_only_the_factories_that_take_them():
    options = EncoderOptions(device="cpu", token_budget=512)
    assert factory_options(REGISTRY.get("bm25"), options) == ({}, ["--device", "--token-budget"])
    passed, ignored = factory_options(REGISTRY.get("minilm"), options)
    assert (passed, ignored) == ({"device": "cpu", "token_budget": 512}, [])
    assert factory_options(REGISTRY.get("tiny-llama"), options)[0] == passed  # a **kwargs factory takes all


def test_a_misspelt_bm25_setting_is_an_error(registry):
    entry = registry.add("bm25-typo", "llara_bench.models.bm25:BM25Retriever", meta=REGISTRY.get("bm25").meta,
                         k_1=1.2)
    with pytest.raises(UnknownNameError, match=r"setting of encoder 'bm25-typo' \(BM25Retriever\) 'k_1'.*'k1'"):
        factory_options(entry, EncoderOptions())
    with pytest.raises(TypeError, match="k_1"):
        BM25Retriever(REGISTRY.get("bm25").meta, k_1=1.2)


def test_device_cpu_keeps_faiss_on_the_cpu_where_faiss_sees_a_gpu(monkeypatch, tmp_path):
    monkeypatch.setattr(retrieval, "gpu_free_bytes", lambda: [80 * GIB])  # as faiss-gpu on an 80 GiB card
    options = SearchOptions(memory_budget_mib=64 * 1024)
    assert options.plan(5183, 384, 300, 100, device=None, block_rows=50_000)["device"] == "gpu"
    assert options.plan(5183, 384, 300, 100, device="cuda:0", block_rows=50_000)["device"] == "gpu"
    on_cpu = options.plan(5183, 384, 300, 100, device="cpu", block_rows=50_000)
    assert (on_cpu["device"], on_cpu["gpus"], on_cpu["mode"]) == ("cpu", 0, "in-memory")
    # the same decision in the plan `run` prints, which is the plan the dense retriever searches by
    with_gpu = _run("-m", "minilm", "--plan-only", "-o", str(tmp_path))
    assert with_gpu.exit_code == 0 and "in-memory on GPU ×1" in with_gpu.output, with_gpu.output
    cpu = _run("-m", "minilm", "--plan-only", "--device", "cpu", "-o", str(tmp_path))
    assert cpu.exit_code == 0 and "in-memory on CPU" in cpu.output and "GPU" not in cpu.output, cpu.output


def test_run_flags_dataset_spec_measures_split_name_and_short_model_name(folder, tmp_path, monkeypatch):
    monkeypatch.setenv("LLARA_BENCH_CACHE", str(tmp_path / "cache"))
    runs = tmp_path / "runs"
    args = ["-m", "bm25", "-m", f"mini={minilm_path()}", "-d", f"folder:{folder}", "--split", "dev",
            "--measures", "ndcg@10", "--measures", "r@2", "--baseline", "mini", "--name", "first", "-o", str(runs)]
    out = _run(*args)
    assert out.exit_code == 0, out.output
    assert [p.name for p in runs.iterdir()] == ["first"]
    run_json = json.loads((runs / "first" / "run.json").read_text())
    assert run_json["run_id"] == "first" and run_json["baseline"] == "mini"
    assert sorted(run_json["results"]) == ["results/bm25/tiny.json", "results/mini/tiny.json"]
    mini = json.loads((runs / "first" / "results" / "mini" / "tiny.json").read_text())
    assert set(mini["metrics"]) == {"nDCG@10", "R@2"} and mini["main_metric"] == "nDCG@10"
    assert mini["dataset"]["split"] == "dev" and mini["dataset"]["spec"] == f"folder:{folder}"
    assert mini["model"]["name"] == "mini" and mini["model"]["source"] == minilm_path()
    again = _run(*args)  # the same name again would mix two runs in one folder
    assert again.exit_code == 2 and "already holds files" in again.output


def test_run_flags_are_checked_before_anything_runs(tmp_path):
    assert "Did you mean 'ndcg'" in _run("--measures", "ndgc@10", "-o", str(tmp_path)).output
    assert "Did you mean 'bm25'" in _run("-m", "bm25", "--baseline", "bm52", "-o", str(tmp_path)).output
    unknown = _run("-d", "smok", "-o", str(tmp_path))
    assert unknown.exit_code == 2 and "Did you mean 'smoke'" in unknown.output
    assert "run name 'a/b'" in _run("--name", "a/b", "-o", str(tmp_path)).output
    assert not list(tmp_path.iterdir())


def test_measure_names_in_any_case():
    assert canonical_measures(["ndcg@10", "MRR@10", "r@100", "map", "R(rel=2)@1000"]) == [
        "nDCG@10", "RR@10", "R@100", "AP", "R(rel=2)@1000"]
    with pytest.raises(ConfigError, match="(?i)unknown measure 'ndcg@x'"):
        canonical_measures(["ndcg@x"])


def test_a_new_option_is_one_field():
    """A field added to an options dataclass is a flag of the command, and arrives in the built instance."""

    @dataclass(frozen=True)
    class Knobs:
        depth: int = option(3, "How deep.", min=1)
        fast: bool = option(False, "Go fast.", "--fast/--slow")

    got = []
    cli = typer.Typer()

    @cli.command()
    @with_options(knobs=Knobs, encoder=EncoderOptions)
    def go(name: str = typer.Option("x", "--name"), *, knobs: Knobs, encoder: EncoderOptions) -> None:
        got.append((name, knobs, encoder))

    assert CliRunner().invoke(cli, ["--depth", "5", "--fast", "--token-budget", "9"]).exit_code == 0
    assert got == [("x", Knobs(depth=5, fast=True), EncoderOptions(token_budget=9))]
    assert CliRunner().invoke(cli, ["--depth", "0"]).exit_code == 2  # the field's minimum

"""What a run costs, counted honestly: a model's load (any first-use build inside it) is its own phase, counted
once and never inside encoding; totals are sums of top-level phases; the CLI, the result JSON, the HTML, the
Markdown and the CSV give the same figures; decoder encoders count their forward FLOPs and record an MFU."""

from __future__ import annotations

import csv
import io
import shutil
import time
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from llara_bench.harness.cli import comparison_table
from llara_bench.harness.runner import CacheOptions, RunConfig, run_suite
from llara_bench.harness.suites import load_suite
from llara_bench.models import EncodeOutput, ModelEntry, ModelMeta, REGISTRY
from llara_bench.models.compute import flops_counter, forward_flops, measured_matmul_peak, peak_for
from llara_bench.reports import build_report, write_report
from llara_bench.reports.exports import render_csv, render_markdown

LOAD_SECONDS = 2.0
SMOKE = Path(__file__).resolve().parents[1] / "harness" / "data" / "smoke"


class SlowLoading:
    """Loads in LOAD_SECONDS (as a large model or a first-use build would), then encodes at once: hashed
    words."""

    def __init__(self, meta: ModelMeta):
        time.sleep(LOAD_SECONDS)
        self.meta = replace(meta, dimension=32, extra={"resolved": {"device": "cpu"}})

    def encode(self, texts, role, *, titles=None, progress=None) -> EncodeOutput:
        vectors = np.zeros((len(texts), 32), np.float32)
        for i, text in enumerate(texts):
            np.add.at(vectors[i], [zlib.crc32(w.encode()) % 32 for w in text.split()], 1)
        if progress:
            progress(len(texts))
        return EncodeOutput(vectors, n_tokens=sum(map(len, texts)), n_padded_tokens=sum(map(len, texts)))


@pytest.fixture(scope="module")
def two_dataset_run(tmp_path_factory):
    """The slow-loading model on two collections (the smoke collection and a copy), embedding cache off."""
    tmp = tmp_path_factory.mktemp("cost")
    shutil.copytree(SMOKE, tmp / "smoke-copy")
    suite = tmp / "suite.yaml"
    suite.write_text(f"name: cost\nmodels: [slow-loading]\nmeasures: [nDCG@10, RR@10, R@100, R@1000, AP]\n"
                     f"main_metric: nDCG@10\n"
                     f"datasets: ['folder:{SMOKE}', 'folder:{tmp / 'smoke-copy'}']\n")
    meta = ModelMeta(name="slow-loading", kind="dense", description="test", source="test", similarity="dot")
    with REGISTRY.scoped([ModelEntry("slow-loading", SlowLoading, meta, origin="test")]):
        return run_suite(RunConfig(suite=load_suite(str(suite)), output=tmp / "runs",
                                   cache=CacheOptions(embedding_cache=False)))


def test_load_is_its_own_phase_counted_once_and_outside_encoding(two_dataset_run):
    first, second = two_dataset_run.results
    assert first["timings"]["load"]["seconds"] >= LOAD_SECONDS
    assert "load" not in second["timings"]  # loaded once, counted once: with the dataset that loaded it
    for r in (first, second):
        encode = r["timings"]["encode_corpus"]
        assert encode["seconds"] < LOAD_SECONDS / 2  # the load is not inside encoding
        assert encode["items_per_second"] == pytest.approx(encode["items"] / encode["seconds"])
        assert r["embeddings"]["as_encoded"]["seconds"] <= encode["seconds"]


def test_cli_json_html_markdown_and_csv_agree_on_rates_and_totals(two_dataset_run, tmp_path):
    report = build_report([two_dataset_run.run_dir])
    rows = {(row.model, row.dataset): row for row in report.timing_rows()}
    console = Console(record=True, width=200)
    console.print(comparison_table(two_dataset_run.results, ["nDCG@10"]))
    cli_rows = [line.split() for line in console.export_text().splitlines() if "slow-loading" in line]
    markdown = render_markdown(report)
    csv_rows = {(r["model"], r["dataset"]): r for r in csv.DictReader(io.StringIO(render_csv(report)))}
    html = write_report([two_dataset_run.run_dir], tmp_path / "report.html")[0].read_text()
    for r, cli in zip(two_dataset_run.results, cli_rows):
        key = ("slow-loading", r["dataset"]["name"])
        total = sum(p["seconds"] for p in r["timings"].values())  # top-level phases only: none is nested
        rate = r["timings"]["encode_corpus"]["items_per_second"]
        assert rows[key].docs_per_second == rate and sum(rows[key].seconds.values()) == pytest.approx(total)
        assert cli[-2:] == [f"{rate:,.0f}", f"{total:.1f}"]
        assert float(csv_rows[key]["total_seconds"]) == pytest.approx(total)
        assert float(csv_rows[key]["docs_per_second"]) == pytest.approx(rate)
        assert f"| {rate:,.1f} |" in markdown and f"| {total:.2f} |" in markdown
        assert f"{rate:,.0f}</td>" in html
    # the load adds to its own dataset's total only
    first, second = (sum(p["seconds"] for p in r["timings"].values()) for r in two_dataset_run.results)
    assert first > second + LOAD_SECONDS * 0.9


def test_forward_flops_follow_palm_accounting():
    from transformers import LlamaConfig, LlamaModel

    import torch

    torch.manual_seed(0)
    model = LlamaModel(LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                                   num_attention_heads=4, num_key_value_heads=2))
    # per layer: q 32x32, k and v 32x16, o 32x32, MLP 3 x 32x64, two RMSNorm weights of 32; the final norm
    n_params = 3 * (32 * 32 + 2 * 32 * 16 + 32 * 32 + 3 * 32 * 64 + 2 * 32) + 32
    count = flops_counter(model)
    assert count(10) == forward_flops(n_params, 3, 32, 10) == 2 * n_params * 10 + 4 * 3 * 32 * 100
    assert count(0) == 0


def test_decoder_encoder_counts_flops_on_real_tokens_only():
    encoder = REGISTRY.get("tiny-llama").load(device="cpu")
    texts = ["a short one", "a much longer passage " * 6, "middle sized text here"]
    out = encoder.encode(texts, "passage")
    lengths = [len(ids) for ids in encoder.input_ids(texts, "passage")]
    assert out.n_padded_tokens > out.n_tokens == sum(lengths)  # the batch was padded; padding is not counted
    assert out.n_flops == pytest.approx(sum(flops_counter(encoder.model)(n) for n in lengths))


def test_decoder_results_record_flops_and_mfu_against_a_recorded_peak(tmp_path):
    config = RunConfig(suite=load_suite("smoke"), output=tmp_path / "runs", models=["tiny-llama"],
                       cache=CacheOptions(embedding_cache=False))
    (result,) = run_suite(config).results
    encode = result["timings"]["encode_corpus"]
    compute = result["embeddings"]["compute"]
    assert compute["device"] == "cpu" and compute["dtype"] == "float32"
    assert compute["peak_source"].startswith("measured torch.matmul")
    assert encode["flops_per_second"] == pytest.approx(encode["flops"] / encode["seconds"])
    assert encode["mfu"] == pytest.approx(encode["flops_per_second"] / compute["peak_flops_per_second"])
    assert 0 < encode["mfu"] < 1.5  # a tiny model is far from the peak; above it would mean a counting error
    assert result["embeddings"]["as_encoded"]["flops"] == pytest.approx(encode["flops"])


def test_peak_is_measured_on_cpu_and_taken_from_the_environment_when_set(monkeypatch):
    peak = measured_matmul_peak("cpu", "float32", n=256, repeats=2)
    assert peak.flops_per_second > 1e8 and "256x256 float32 on cpu" in peak.source
    monkeypatch.setenv("LLARA_BENCH_PEAK_TFLOPS", "2.5")
    assert peak_for("cpu", "float32").flops_per_second == 2.5e12


@pytest.mark.parametrize("width", [80, 50])
def test_results_table_never_cuts_a_name_or_a_figure(two_dataset_run, width):
    """Narrow, the table folds cells onto more lines; it never crops or ellipsises: every character of the
    wide table is still there."""
    from collections import Counter

    def characters(width: int) -> Counter:
        console = Console(record=True, width=width)
        console.print(comparison_table(two_dataset_run.results, ["nDCG@10", "RR@10", "R@100", "R@1000", "AP"]))
        return Counter(c for c in console.export_text() if not c.isspace() and c != "─")

    assert characters(width) == characters(300)

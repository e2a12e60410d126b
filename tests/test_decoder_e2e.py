"""The real pretrained stories260K (LLaMA architecture) through the harness on SciFact, under both
decoder contracts, registered from a models file as a user would register a local checkpoint."""

from __future__ import annotations

import json

import pytest

from llara_bench.harness import results
from llara_bench.harness.runner import RunConfig, run_suite
from llara_bench.harness.suites import parse_suite


@pytest.fixture(scope="module")
def stories_run(shared_data, shared_models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("stories")
    models_file = folder / "encoders.yaml"
    checkpoint = shared_models / "stories260K-hf"
    models_file.write_text("encoders:\n"
                           f"  stories-llara: {{model: {checkpoint}, contract: llara, dtype: float32}}\n"
                           f"  stories-eos: {{model: {checkpoint}, contract: repllama, dtype: float32}}\n")
    suite = parse_suite(f"name: stories\nmodels: [stories-llara, stories-eos]\n"
                        f"datasets: [folder:{shared_data / 'scifact'}]\ntop_k: 100\n", "<test>")
    return run_suite(RunConfig(suite=suite, output=folder / "runs", models_files=[models_file]))


def test_both_contracts_run_end_to_end_and_record_the_contract(stories_run):
    by_model = {r["model"]["name"]: r for r in stories_run.results}
    assert set(by_model) == {"stories-llara", "stories-eos"}
    for name, r in by_model.items():
        on_disk = results.load_result(results.result_paths(stories_run.run_dir, name, "scifact")[0])
        assert on_disk["dataset"]["n_docs"] == 5183 and on_disk["dataset"]["n_queries"] == 300
        assert 0 <= on_disk["metrics"]["nDCG@10"] <= 1
        assert on_disk["timings"]["encode_corpus"]["tokens"] > 5183 * 100
        resolved = on_disk["model"]["extra"]["resolved"]
        assert resolved["n_parameters"] >= 260_032 and resolved["dtype"] == "float32"
        print(f"{name}: nDCG@10 {on_disk['metrics']['nDCG@10']:.4f}, "
              f"{on_disk['timings']['encode_corpus']['items_per_second']:.1f} docs/s")
    llara = by_model["stories-llara"]["model"]["contract"]
    assert (llara["padding_side"], llara["pooling"], llara["pooling_k"], llara["bos"], llara["eos"]) == \
        ("left", "last_k_mean", 8, True, False)
    assert llara["passage_prefix"] == '"' and "summarize the above passage" in llara["passage_suffix"]
    assert llara["passage_max_length"] == 512  # capped at the model's 512 positions, and recorded
    eos = by_model["stories-eos"]["model"]["contract"]
    assert (eos["padding_side"], eos["pooling"], eos["bos"], eos["eos"], eos["passage_template"]) == \
        ("right", "last_token", True, True, "passage: {title} {text}")
    run_json = json.loads((stories_run.run_dir / "run.json").read_text())
    assert run_json["config"]["models_files"] and len(run_json["results"]) == 2

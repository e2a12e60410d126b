"""`llara-bench register` checks the model against the contract before writing (models/fit.py); encoder-only
contracts (mean, cls) with E5-style prefixes; `models` shows the contract's lengths; no catalog/registry cycle."""

from __future__ import annotations

import ast
import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from llara_bench.harness.cli import app
from llara_bench.harness.encoders_file import parse_models_file, register_encoder
from llara_bench.harness.errors import ConfigError
from llara_bench.models.contracts import LLARA
from llara_bench.models.sentence_transformer import minilm_path

MODELS = Path(__file__).resolve().parents[1] / "models"


@pytest.fixture(autouse=True)
def _no_user_file(tmp_path, monkeypatch):
    monkeypatch.setenv("LLARA_BENCH_MODELS_FILE", str(tmp_path / "user-config" / "encoders.yaml"))


def _register(*args: str) -> tuple[int, str]:
    out = CliRunner().invoke(app, ["register", *args])
    return out.exit_code, " ".join(out.output.split())  # rich wraps the error line


def _imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_registry_and_catalog_do_not_import_each_other():
    assert "llara_bench.models.catalog" not in _imported_modules(MODELS / "registry.py")
    assert "llara_bench.models.registry" in _imported_modules(MODELS / "catalog.py")


# -- register refuses what would fail at run time, naming the flag, writing nothing --------------------------

def test_minilm_under_a_decoder_contract_is_refused_naming_the_contract(tmp_path):
    models_file = tmp_path / "enc.yaml"
    code, message = _register("mini", minilm_path(), "--contract", "llara", "--models-file", str(models_file))
    assert code == 2 and f"--contract llara: {minilm_path()} is a sentence-transformers folder" in message
    assert "takes the contract mean or cls" in message
    assert not models_file.exists()


def test_plain_encoder_checkpoint_under_llara_names_what_its_tokenizer_lacks(tmp_path):
    """MiniLM's transformers files without the sentence-transformers ones: the checkpoint passes as a folder,
    and the contract fails on the tokenizer (the run-time error of before, now at register time)."""
    plain = tmp_path / "bert"
    plain.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
                 "special_tokens_map.json"):
        (plain / name).symlink_to(Path(minilm_path()) / name)
    models_file = tmp_path / "enc.yaml"
    code, message = _register("bert-llara", str(plain), "--contract", "llara", "--models-file", str(models_file))
    assert code == 2 and f"--contract llara: does not fit the tokenizer of {plain}" in message
    # BERT's tokenizer has no BOS; its padding falls back to [UNK] (models.contracts.fit_contract)
    assert "the contract adds a BOS token but the tokenizer has no 'BOS'" in message
    assert "padding" not in message
    assert "(--tokenizer)" in message and not models_file.exists()
    # the same folder under mean is not a sentence-transformers folder: said, naming the contract
    code, message = _register("bert-mean", str(plain), "--contract", "mean", "--models-file", str(models_file))
    assert code == 2 and "--contract mean:" in message and "no modules.json" in message
    assert not models_file.exists()


def test_a_folder_without_config_or_tokenizer_is_refused_naming_the_model(tmp_path):
    models_file = tmp_path / "enc.yaml"
    empty = tmp_path / "empty"
    empty.mkdir()
    code, message = _register("e", str(empty), "--contract", "repllama", "--models-file", str(models_file))
    assert code == 2 and f"MODEL {empty}: {empty} has no config.json" in message
    weights_only = tmp_path / "weights-only"
    weights_only.mkdir()
    for name in ("config.json", "model.safetensors"):
        (weights_only / name).symlink_to(Path(minilm_path()) / name)
    code, message = _register("w", str(weights_only), "--contract", "repllama", "--models-file", str(models_file))
    assert code == 2 and f"MODEL {weights_only}: no tokenizer in {weights_only}" in message
    assert "with --tokenizer" in message and not models_file.exists()


def test_tokenizer_problems_of_a_llama_tokenizer():
    from transformers import AutoTokenizer

    from llara_bench.models.fit import tokenizer_problems
    from llara_bench.models.tiny_llama import tiny_llama_path

    assert tokenizer_problems(AutoTokenizer.from_pretrained(tiny_llama_path()), LLARA) == []
    [cramped] = tokenizer_problems(AutoTokenizer.from_pretrained(tiny_llama_path()), replace(LLARA, query_max_length=15))
    assert re.fullmatch(r"query max length 15 leaves no room for text after \d+ prompt tokens", cramped), cramped
    # a padding token the vocabulary lacks falls back to unk (padded positions are masked): no problem
    missing_pad = replace(LLARA, pad_token="<pad>")
    assert tokenizer_problems(AutoTokenizer.from_pretrained(tiny_llama_path()), missing_pad) == []
    no_bos = replace(LLARA, bos_token="<bos>")
    assert tokenizer_problems(AutoTokenizer.from_pretrained(tiny_llama_path()), no_bos) == \
        ["the contract adds a BOS token but the tokenizer has no '<bos>'; set the contract's bos_token or bos: false"]


def test_llama2_tokenizer_fits_both_decoder_contracts_with_the_pinned_prompt_sizes(shared_models):
    """With the real LLaMA-2 tokenizer: nothing lacks, and the prompt around the text is BOS + `▁"` + 18 (query)
    or 19 (passage) suffix tokens, as models/contracts.py pins them."""
    from transformers import AutoTokenizer

    from llara_bench.models.contracts import REPLLAMA
    from llara_bench.models.fit import tokenizer_problems

    def load():
        return AutoTokenizer.from_pretrained(shared_models / "llama2-tokenizer-hf")

    assert tokenizer_problems(load(), LLARA) == [] and tokenizer_problems(load(), REPLLAMA) == []
    assert tokenizer_problems(load(), replace(LLARA, query_max_length=20, passage_max_length=21)) == [
        "query max length 20 leaves no room for text after 20 prompt tokens",
        "passage max length 21 leaves no room for text after 21 prompt tokens"]
    assert tokenizer_problems(load(), replace(LLARA, query_max_length=21, passage_max_length=22)) == []


def test_real_llama_checkpoint_registers_and_models_shows_its_position_limit(shared_models, tmp_path):
    """stories260K (a real LLaMA, 512 positions): under llara the contract's 532/533 are capped at 512."""
    models_file = tmp_path / "enc.yaml"
    # (a name of its own: test_decoder_e2e registers "stories-llara" from another file in this process)
    code, message = _register("stories-registered", str(shared_models / "stories260K-hf"), "--contract", "llara",
                              "--models-file", str(models_file))
    assert code == 0, message
    out = CliRunner().invoke(app, ["models", "--json", "--models-file", str(models_file)])
    assert out.exit_code == 0, out.output
    listed = {m["name"]: m for m in json.loads(out.output)}["stories-registered"]
    assert (listed["dimension"], listed["max_length"]) == (64, 512)
    assert (listed["query_max_length"], listed["passage_max_length"]) == (512, 512)
    assert (listed["contract"]["query_max_length"], listed["contract"]["passage_max_length"]) == (532, 533)


@pytest.mark.parametrize("args,needle", [
    (["--contract", "cls"], "--contract cls: pools by 'cls' but"),
    (["--contract", "mean", "--tokenizer", "owner/tok"], "--tokenizer: applies to decoder contracts"),
    (["--contract", "mean", "--dtype", "float64"], "--dtype: expected one of"),
    (["--contract", "mena"], "--contract: unknown encoding contract 'mena'. Did you mean 'mean'"),
])
def test_register_errors_name_the_flag(tmp_path, args, needle):
    models_file = tmp_path / "enc.yaml"
    code, message = _register("mini", minilm_path(), *args, "--models-file", str(models_file))
    assert code == 2 and needle in message, message
    assert not models_file.exists() and str(models_file) not in message  # no line of a file the user never wrote


def test_unreachable_hub_id_is_said_and_no_check_registers_it(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    models_file = tmp_path / "enc.yaml"
    code, message = _register("hub", "owner/model", "--contract", "repllama", "--models-file", str(models_file))
    assert code == 2 and "owner/model is not in the local Hugging Face cache" in message and "--no-check" in message
    assert not models_file.exists()
    code, _ = _register("hub", "owner/model", "--contract", "repllama", "--models-file", str(models_file),
                        "--no-check")
    assert code == 0 and [e.name for e in parse_models_file(models_file.read_text(), models_file)] == ["hub"]


def test_encoder_only_entries_refuse_decoder_fields_in_a_models_file(tmp_path):
    path = tmp_path / "enc.yaml"
    with pytest.raises(ConfigError, match=r"enc\.yaml:4 \(field 'adapter'\): applies to decoder contracts"):
        parse_models_file("encoders:\n  e5:\n    model: /m\n    adapter: /lora\n    contract: mean\n", path)


# -- encoder-only contracts -------------------------------------------------------------------------------------

def test_e5_prefixes_reach_the_encoder(tmp_path):
    from sentence_transformers import SentenceTransformer

    path = register_encoder("mini-e5", minilm_path(), "mean", tmp_path / "enc.yaml", query_prefix="query: ",
                            passage_prefix="passage: ")
    [prefixed] = parse_models_file(path.read_text(), path)
    assert prefixed.meta.contract.query_prefix == "query: " and prefixed.meta.contract.passage_prefix == "passage: "
    encoder = prefixed.load(device="cpu")
    reference = SentenceTransformer(minilm_path(), device="cpu")
    query = encoder.encode(["how do volcanoes form"], "query").vectors
    passage = encoder.encode(["Magma rises through the crust."], "passage", titles=["Volcano"]).vectors
    np.testing.assert_allclose(query, reference.encode(["query: how do volcanoes form"], normalize_embeddings=True),
                               atol=1e-5)
    np.testing.assert_allclose(passage, reference.encode(["passage: Volcano Magma rises through the crust."],
                                                         normalize_embeddings=True), atol=1e-5)
    plain = reference.encode(["how do volcanoes form"], normalize_embeddings=True)
    assert float(query[0] @ plain[0]) < 0.999  # the prefix changed the vector


def test_cls_contract_runs_a_folder_that_pools_the_first_token(tmp_path):
    """MiniLM's files with a Pooling module that takes [CLS] (as BGE's does): registered under cls, refused
    under mean, and encoded as sentence-transformers encodes it."""
    from sentence_transformers import SentenceTransformer

    folder = tmp_path / "mini-cls"
    folder.mkdir()
    for item in Path(minilm_path()).iterdir():
        if item.name != "1_Pooling":
            (folder / item.name).symlink_to(item)
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 384,
                                                                  "pooling_mode_cls_token": True}))
    code, message = _register("mini-mean", str(folder), "--contract", "mean", "--models-file", str(tmp_path / "x"))
    assert code == 2 and "--contract mean: pools by 'mean'" in message and "use the contract cls" in message
    path = register_encoder("mini-cls", str(folder), "cls", tmp_path / "enc.yaml")
    [entry] = parse_models_file(path.read_text(), path)
    assert entry.meta.contract.pooling == "cls" and entry.meta.dimension == 384
    vectors = entry.load(device="cpu").encode(["a first text", "and a second, longer one"], "query").vectors
    reference = SentenceTransformer(str(folder), device="cpu").encode(["a first text", "and a second, longer one"],
                                                                       normalize_embeddings=True)
    np.testing.assert_allclose(vectors, reference, atol=1e-5)
    mean = SentenceTransformer(minilm_path(), device="cpu").encode(["a first text"], normalize_embeddings=True)
    assert float(vectors[0] @ mean[0]) < 0.999  # not the mean-pooled vector


def test_minilm_registered_under_mean_runs_the_smoke_suite(tmp_path):
    models_file = tmp_path / "enc.yaml"
    code, message = _register("mini-mean", minilm_path(), "--contract", "mean", "--query-prefix", "query: ",
                              "--models-file", str(models_file))
    assert code == 0, message
    runs = tmp_path / "runs"
    out = CliRunner().invoke(app, ["run", "--suite", "smoke", "-m", "mini-mean", "--models-file", str(models_file),
                                   "-o", str(runs), "--device", "cpu", "--no-report", "--no-embedding-cache"])
    assert out.exit_code == 0, out.output
    [run_dir] = list(runs.iterdir())
    result = json.loads((run_dir / "results" / "mini-mean" / "smoke.json").read_text())
    contract = result["model"]["contract"]
    assert (contract["pooling"], contract["normalize"], contract["query_prefix"], contract["passage_prefix"]) == \
        ("mean", True, "query: ", "")
    assert (contract["query_max_length"], contract["passage_max_length"], result["model"]["dimension"]) == (256, 256, 384)
    assert 0.0 < result["metrics"]["nDCG@10"] <= 1.0


# -- models shows the lengths the contract feeds the model ---------------------------------------------------------

def test_models_json_and_table_show_the_contract_lengths():
    cli = CliRunner()
    out = cli.invoke(app, ["models", "--json"])
    assert out.exit_code == 0, out.output
    listed = {m["name"]: m for m in json.loads(out.output)}
    for name in ("llama2-7b", "llara-passage", "tiny-llama"):  # 512 text tokens + BOS, `"` and the 18/19-token suffix
        assert (listed[name]["query_max_length"], listed[name]["passage_max_length"]) == (532, 533)
    assert (listed["repllama-7b"]["query_max_length"], listed["repllama-7b"]["passage_max_length"]) == (512, 512)
    assert listed["llama2-7b"]["max_length"] == 4096  # the model's own limit stays its metadata
    assert listed["minilm"]["query_max_length"] == 256 and listed["bm25"]["query_max_length"] is None
    table = cli.invoke(app, ["models"], env={"COLUMNS": "200"})
    row = next(line for line in table.output.splitlines() if "llama2-7b-eos" in line)
    assert "512 / 512" in row and "4096 / " not in row

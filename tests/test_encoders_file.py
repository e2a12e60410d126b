"""harness/encoders_file.py (YAML models files) and the `register` / `models` / `run --models-file` commands."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from llara_bench.harness.cli import app
from llara_bench.harness.encoders_file import load_models_files, parse_models_file, register_encoder, user_models_file
from llara_bench.harness.errors import ConfigError
from llara_bench.models.catalog import register_builtins
from llara_bench.models.contracts import LLARA, REPLLAMA
from llara_bench.models.registry import Registry


@pytest.fixture(autouse=True)
def _no_user_file(tmp_path, monkeypatch):
    """Each test gets its own (absent) user models file, so nothing leaks between tests."""
    monkeypatch.setenv("LLARA_BENCH_MODELS_FILE", str(tmp_path / "user-config" / "encoders.yaml"))


def _parse(tmp_path: Path, text: str, name: str = "encoders.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path, parse_models_file(text, path)


def _error(tmp_path: Path, text: str) -> tuple[Path, str]:
    path = tmp_path / "enc.yaml"
    with pytest.raises(ConfigError) as info:
        parse_models_file(text, path)
    return path, str(info.value)


# -- parsing -----------------------------------------------------------------------------------

def test_one_line_entry_becomes_a_decoder_entry_with_path_relative_to_the_file(tmp_path, monkeypatch):
    config_dir = tmp_path / "config"
    (config_dir / "ckpt").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # relative to the file, not to the current directory
    path, entries = _parse(config_dir, "encoders:\n  my-llara: {model: ./ckpt, contract: llara}\n")
    assert len(entries) == 1
    entry = entries[0]
    assert entry.name == entry.meta.name == "my-llara"
    assert entry.target == "llara_bench.models.decoder:DecoderEncoder"
    assert entry.kwargs == {"model": str((config_dir / "ckpt").resolve())}
    assert Path(entry.kwargs["model"]).is_absolute()
    assert entry.meta.contract == LLARA
    assert entry.meta.kind == "dense" and entry.meta.similarity == "cosine" and entry.meta.trained is True
    assert entry.origin == f"models-file:{path}"
    assert "llara" in entry.meta.description


def test_bare_relative_folder_next_to_the_file_is_resolved(tmp_path):
    (tmp_path / "runs" / "final").mkdir(parents=True)
    _, [entry] = _parse(tmp_path, "encoders:\n  a: {model: runs/final, contract: repllama}\n")
    assert entry.kwargs["model"] == str((tmp_path / "runs" / "final").resolve())


@pytest.mark.parametrize("model", ["BAAI/LLARA-passage", "meta-llama/Llama-2-7b-hf"])
def test_hub_id_stays_as_is(tmp_path, model):
    _, [entry] = _parse(tmp_path, f"encoders:\n  hub: {{model: {model}, contract: llara}}\n")
    assert entry.kwargs["model"] == model and entry.meta.source == model


def test_absolute_and_home_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    _, entries = _parse(tmp_path, "encoders:\n  a: {model: /data/ckpt, contract: llara}\n"
                                  "  b: {model: ~/ckpt, contract: llara}\n")
    assert [e.kwargs["model"] for e in entries] == ["/data/ckpt", str(tmp_path / "home" / "ckpt")]


def test_contract_mapping_and_top_level_overrides(tmp_path):
    _, entries = _parse(tmp_path, """\
encoders:
  eos32:
    model: owner/model
    contract: {base: repllama, dtype: float32}
  llara-short:
    model: owner/model
    contract: llara
    dtype: float32
    passage_max_length: 256
    query_max_length: 64
  custom:
    model: owner/model
    contract:
      base: llara
      pooling: last_token
      pooling_k: null
      special_tokens: [<a>, <b>]
    passage_max_length: 128
""")
    eos32, short, custom = entries
    assert eos32.meta.contract == replace(REPLLAMA, dtype="float32")
    assert short.meta.contract == replace(LLARA, dtype="float32", passage_max_length=256, query_max_length=64)
    assert custom.meta.contract == replace(LLARA, pooling="last_token", pooling_k=None, special_tokens=("<a>", "<b>"),
                                           passage_max_length=128)
    assert "repllama" in eos32.meta.description and "llara" in custom.meta.description


def test_optional_fields_reach_meta_and_loader_arguments(tmp_path):
    (tmp_path / "lora").mkdir()
    _, [entry] = _parse(tmp_path, """\
encoders:
  full:
    model: owner/base
    contract: repllama
    description: my adapted model
    tokenizer: owner/tok
    adapter: ./lora
    revision: abc123
    adapter_revision: def456
    allow_pickle: true
    trust_remote_code: false
    trained: false
""")
    assert entry.meta.description == "my adapted model"
    assert entry.meta.trained is False and entry.meta.revision == "abc123"
    assert entry.meta.source == f"owner/base + {(tmp_path / 'lora').resolve()}"
    lora = str((tmp_path / "lora").resolve())
    assert entry.kwargs == {"model": "owner/base", "tokenizer": "owner/tok", "adapter": lora,
                            "revision": "abc123", "adapter_revision": "def456", "allow_pickle": True,
                            "trust_remote_code": False}


@pytest.mark.parametrize("text", ["", "# only a comment\n"])
def test_empty_file_declares_nothing(tmp_path, text):
    assert parse_models_file(text, tmp_path / "enc.yaml") == []


# -- errors name the file, the line and the field ----------------------------------------------

@pytest.mark.parametrize("text,line,needles", [
    ("encoders:\n  a:\n    model: o/m\n    contract: llara\n    modle: x\n", 5,
     ["field 'modle'", "unknown field", "did you mean 'model'?"]),
    ("encoders:\n  a: {model: o/m, contract: llara, dtpye: float32}\n", 2, ["field 'dtpye'", "did you mean 'dtype'?"]),
    ("encoders:\n  x: {model: o/m, contract: llara}\n  a: {model: o/m}\n", 3,
     ["field 'a'", "missing field 'contract'"]),
    ("encoders:\n  a:\n    contract: llara\n", 2, ["field 'a'", "missing field 'model'"]),
    ("encoders:\n  a:\n    model: o/m\n    contract: llarra\n", 4,
     ["field 'contract'", "unknown encoding contract 'llarra'", "Did you mean 'llara'"]),
    ("encoders:\n  a:\n    model: o/m\n    contract: llara\n    allow_pickle: 'yes'\n", 5,
     ["field 'allow_pickle'", "expected true or false"]),
    ("encoders:\n  a:\n    model: o/m\n    contract: llara\n    trust_remote_code: 1\n", 5,
     ["field 'trust_remote_code'", "expected true or false"]),
    ("encoders:\n  a:\n    model: o/m\n    contract: llara\n    passage_max_length: 0\n", 5,
     ["field 'passage_max_length'", "positive integer"]),
    ("encoders:\n  a:\n    model: o/m\n    contract: {dtype: float32}\n", 4, ["field 'base'", "needs 'base'"]),
    ("encoders:\n  a:\n    model: o/m\n    contract: {base: llara, poolng: mean}\n", 4,
     ["field 'poolng'", "did you mean 'pooling'?"]),
    ("encoders:\n  a:\n    model: o/m\n    contract: {base: repllama, pooling: last_k_mean}\n", 4,
     ["field 'contract'", "pooling_k"]),
    ("encoders:\n  a:\n    model: o/m\n    contract: [llara]\n", 4, ["field 'contract'", "expected a contract name"]),
    ("encoders:\n  a:\n    model: o/m\n    contract: {base: llara, bos: 'yes'}\n", 4,
     ["field 'bos'", "expected true or false or null"]),
    ("encoders:\n  a:\n    model: o/m\n    contract:\n      base: llara\n      special_tokens: abc\n", 6,
     ["field 'special_tokens'", "a list of strings"]),
    ("encoders:\n  a:\n    model: o/m\n    contract:\n      base: llara\n      padding_side: middle\n", 6,
     ["field 'padding_side'", "one of 'left', 'right'"]),
    ("encoders:\n  a:\n    model: o/m\n    contract: {base: llara, dtype: float32}\n    dtype: bfloat16\n", 5,
     ["field 'dtype'", "set both here and in the contract mapping"]),
    ("encoders:\n  a:\n    model: o/m\n    contract: llara\n    dtype: float64\n", 5,
     ["field 'dtype'", "expected one of", "bfloat16"]),
    ("encoders:\n  a:\n    model: ''\n    contract: llara\n", 3, ["field 'model'", "non-empty string"]),
    ("encoders:\n  a: o/m\n", 2, ["field 'a'", "expected a mapping"]),
    ("encoders:\n  a: {model: o/m, contract: llara\n", 3, ["invalid YAML"]),
    ("encoders:\n  a: {model: o/m, contract: llara}\n  a: {model: o/n, contract: llara}\n", 3,
     ["invalid YAML", "duplicate key 'a'", "first on line 2"]),
    ("encoders:\n  a:\n    model: o/m\n    model: o/n\n    contract: llara\n", 4,
     ["duplicate key 'model'", "first on line 3"]),
])
def test_errors_name_file_line_and_field(tmp_path, text, line, needles):
    path, message = _error(tmp_path, text)
    assert f"{path}:{line}" in message, message
    for needle in needles:
        assert needle in message, message


@pytest.mark.parametrize("text", ["models:\n  a: {model: o/m, contract: llara}\n", "encoders: [a, b]\n",
                                  "encoders:\n", "- a\n- b\n",
                                  "encoders: {a: {model: o/m, contract: llara}}\nextra: 1\n"])
def test_wrong_top_level_shape(tmp_path, text):
    path, message = _error(tmp_path, text)
    assert message.startswith(f"{path}:") and "expected a mapping 'encoders:'" in message


# -- loading into a registry -------------------------------------------------------------------

def test_load_registers_and_reloading_replaces_its_own_entries(tmp_path):
    registry = Registry(entry_point_group=None)
    path = tmp_path / "enc.yaml"
    path.write_text("encoders:\n  a: {model: o/m, contract: llara}\n  b: {model: o/n, contract: repllama}\n")
    assert load_models_files([path], registry) == [path]
    assert registry.names() == ["a", "b"]
    assert registry.get("b").meta.contract == REPLLAMA
    path.write_text("encoders:\n  a: {model: o/changed, contract: repllama}\n")
    load_models_files([path], registry)
    assert registry.get("a").kwargs["model"] == "o/changed" and registry.get("a").meta.contract == REPLLAMA


def test_name_taken_by_another_file_or_a_builtin_is_an_error(tmp_path):
    registry = Registry(entry_point_group=None)
    first, second = tmp_path / "first.yaml", tmp_path / "second.yaml"
    first.write_text("encoders:\n  mine: {model: o/m, contract: llara}\n")
    second.write_text("encoders:\n  mine: {model: o/other, contract: llara}\n")
    load_models_files([first], registry)
    with pytest.raises(ConfigError, match=r"'mine' is already registered.*first\.yaml"):
        load_models_files([second], registry)
    assert registry.get("mine").kwargs["model"] == "o/m"

    builtins = Registry(entry_point_group=None)
    register_builtins(builtins)
    clash = tmp_path / "clash.yaml"
    clash.write_text("encoders:\n  tiny-llama: {model: o/m, contract: llara}\n")
    with pytest.raises(ConfigError, match=r"'tiny-llama' is already registered.*builtin"):
        load_models_files([clash], builtins)
    alias = tmp_path / "alias.yaml"
    alias.write_text("encoders:\n  all-MiniLM-L6-v2: {model: o/m, contract: llara}\n")
    with pytest.raises(ConfigError, match="already registered by 'minilm'"):
        load_models_files([alias], builtins)


def test_user_file_is_read_when_it_exists(tmp_path, monkeypatch):
    registry = Registry(entry_point_group=None)
    user = tmp_path / "home-config" / "encoders.yaml"
    monkeypatch.setenv("LLARA_BENCH_MODELS_FILE", str(user))
    assert load_models_files(None, registry) == [] and registry.names() == []
    user.parent.mkdir()
    user.write_text("encoders:\n  from-user: {model: o/m, contract: llara}\n")
    extra = tmp_path / "extra.yaml"
    extra.write_text("encoders:\n  from-extra: {model: o/m, contract: repllama}\n")
    assert load_models_files([extra], registry) == [user, extra]
    assert registry.names() == ["from-extra", "from-user"]
    assert registry.get("from-user").origin == f"models-file:{user}"


def test_missing_models_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml not found"):
        load_models_files([tmp_path / "nope.yaml"], Registry(entry_point_group=None))


def test_user_models_file_location(tmp_path, monkeypatch):
    monkeypatch.setenv("LLARA_BENCH_MODELS_FILE", str(tmp_path / "x.yaml"))
    assert user_models_file() == tmp_path / "x.yaml"
    monkeypatch.setenv("LLARA_BENCH_MODELS_FILE", "")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert user_models_file() == tmp_path / "xdg" / "llara-bench" / "encoders.yaml"
    monkeypatch.delenv("LLARA_BENCH_MODELS_FILE")
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_models_file() == tmp_path / "home" / ".config" / "llara-bench" / "encoders.yaml"


# -- register_encoder (check=False: these placeholders have no config or tokenizer to check) -------------

def test_register_writes_atomically_and_round_trips(tmp_path, monkeypatch):
    work = tmp_path / "work"
    (work / "ckpt").mkdir(parents=True)
    (work / "lora").mkdir()
    monkeypatch.chdir(work)
    path = tmp_path / "config" / "enc.yaml"  # its folder does not exist yet
    assert register_encoder("first", "ckpt", "llara", path, check=False) == path
    register_encoder("second", "owner/model", "repllama", path, check=False, dtype="float32", adapter="./lora",
                     tokenizer=None, description="second one")
    assert [p.name for p in path.parent.iterdir()] == ["enc.yaml"]  # no temporary files left
    first, second = parse_models_file(path.read_text(), path)
    assert first.name == "first" and first.kwargs["model"] == str((work / "ckpt").resolve())
    assert first.meta.contract == LLARA
    assert second.kwargs == {"model": "owner/model", "adapter": str((work / "lora").resolve())}
    assert second.meta.contract == replace(REPLLAMA, dtype="float32")
    assert second.meta.description == "second one"
    # registering a name again replaces it, keeping the others
    register_encoder("first", "other/model", "repllama", path, check=False)
    entries = {e.name: e for e in parse_models_file(path.read_text(), path)}
    assert list(entries) == ["first", "second"] and entries["first"].kwargs["model"] == "other/model"


def test_register_defaults_to_the_user_file(tmp_path, monkeypatch):
    user = tmp_path / "u" / "encoders.yaml"
    monkeypatch.setenv("LLARA_BENCH_MODELS_FILE", str(user))
    assert register_encoder("mine", "owner/model", "llara", check=False) == user
    assert [e.name for e in parse_models_file(user.read_text(), user)] == ["mine"]


@pytest.mark.parametrize("name,contract,fields,needle", [
    ("bad", "llarra", {}, "unknown encoding contract 'llarra'"),
    ("bad", "llara", {"dtype": "float32", "description": ""}, "non-empty string"),
    ("tiny-llama", "llara", {}, "'tiny-llama' is already registered"),  # a built-in name: every load would fail
])
def test_register_validates_before_writing(tmp_path, name, contract, fields, needle):
    path = tmp_path / "enc.yaml"
    register_encoder("keep", "owner/model", "llara", path, check=False)
    before = path.read_bytes()
    with pytest.raises(ConfigError, match=needle):
        register_encoder(name, "owner/model", contract, path, **fields)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["enc.yaml"]


def test_register_refuses_to_extend_an_invalid_file(tmp_path):
    path = tmp_path / "enc.yaml"
    path.write_text("encoders:\n  a: {model: o/m, contract: llara, typo: 1}\n")
    before = path.read_bytes()
    with pytest.raises(ConfigError, match=r"enc\.yaml:2 \(field 'typo'\)"):
        register_encoder("b", "owner/model", "llara", path)
    assert path.read_bytes() == before


# -- the command line ------------------------------------------------------------------------------

def test_cli_register_then_models_json_lists_the_entry(tmp_path):
    cli = CliRunner()
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    models_file = tmp_path / "cli-models.yaml"
    out = cli.invoke(app, ["register", "cli-listed-llara", str(ckpt), "--contract", "llara", "--dtype", "float32",
                           "--models-file", str(models_file), "--no-check"])  # an empty folder: nothing to check
    assert out.exit_code == 0, out.output
    assert "cli-listed-llara" in out.output and models_file.is_file()
    listed = cli.invoke(app, ["models", "--json", "--models-file", str(models_file)])
    assert listed.exit_code == 0, listed.output
    entries = {m["name"]: m for m in json.loads(listed.output)}
    mine = entries["cli-listed-llara"]
    assert "tiny-llama" in entries  # the built-ins are still listed
    assert mine["origin"] == f"models-file:{models_file}" and mine["source"] == str(ckpt.resolve())
    contract = mine["contract"]
    assert (contract["padding_side"], contract["pooling"], contract["pooling_k"], contract["bos"], contract["eos"],
            contract["dtype"]) == ("left", "last_k_mean", 8, True, False, "float32")
    assert contract["special_tokens"] == [f"<s{i}>" for i in range(1, 17)]


def test_cli_register_reports_errors_without_writing(tmp_path):
    models_file = tmp_path / "enc.yaml"
    out = CliRunner().invoke(app, ["register", "x", "owner/model", "--contract", "repllamma",
                                   "--models-file", str(models_file)])
    message = " ".join(out.output.split())  # rich wraps the error line
    assert out.exit_code == 2 and "Did you mean 'repllama'" in message
    assert not models_file.exists()


def test_cli_models_reports_a_bad_models_file(tmp_path):
    models_file = tmp_path / "enc.yaml"
    models_file.write_text("encoders:\n  a: {model: o/m, contract: llara, modle: x}\n")
    out = CliRunner().invoke(app, ["models", "--json", "--models-file", str(models_file)])
    message = " ".join(out.output.split())  # rich wraps the error line
    assert out.exit_code == 2 and f"{models_file}:2 (field 'modle')" in message and "did you mean 'model'" in message


# -- real checkpoints --------------------------------------------------------------------------------

def _tiny_checkpoint(folder: Path, *, safetensors: bool = True) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from llara_bench.models.tiny_llama import tiny_llama_path

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_path())
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                         max_position_embeddings=256))
    if safetensors:
        model.save_pretrained(folder)
    else:  # transformers 5 always writes safetensors from save_pretrained: write the pickle checkpoint by hand
        folder.mkdir(parents=True, exist_ok=True)
        model.config.save_pretrained(folder)
        torch.save(model.state_dict(), folder / "pytorch_model.bin")
    tokenizer.save_pretrained(folder)
    return folder


def test_cli_run_with_a_registered_local_checkpoint(tmp_path):
    ckpt = _tiny_checkpoint(tmp_path / "my-ckpt")
    models_file = tmp_path / "models.yaml"
    cli = CliRunner()
    reg = cli.invoke(app, ["register", "e2e-tiny-eos", str(ckpt), "--contract", "repllama", "--dtype", "float32",
                           "--models-file", str(models_file)])
    assert reg.exit_code == 0, reg.output
    runs = tmp_path / "runs"
    out = cli.invoke(app, ["run", "--suite", "smoke", "-m", "e2e-tiny-eos", "--models-file", str(models_file),
                           "-o", str(runs), "--device", "cpu"], env={"COLUMNS": "160"})
    assert out.exit_code == 0, out.output
    assert "e2e-tiny-eos" in out.output
    [run_dir] = list(runs.iterdir())
    result = json.loads((run_dir / "results" / "e2e-tiny-eos" / "smoke.json").read_text())
    model = result["model"]
    contract = model["contract"]
    assert (contract["padding_side"], contract["pooling"], contract["bos"], contract["eos"], contract["dtype"]) == \
        ("right", "last_token", True, True, "float32")
    assert contract["query_template"] == "query: {text}" and contract["special_tokens"] == []
    assert model["dimension"] == 32
    resolved = model["extra"]["resolved"]
    assert resolved["model"] == str(ckpt.resolve()) and resolved["added_special_tokens"] == 0
    assert result["dataset"]["name"] == "smoke" and 0.0 <= result["metrics"]["nDCG@10"] <= 1.0
    assert json.loads((run_dir / "run.json").read_text())["config"]["models_files"] == [str(models_file)]


def test_pickle_weights_need_allow_pickle(tmp_path):
    ckpt = _tiny_checkpoint(tmp_path / "pickled", safetensors=False)
    assert not list(ckpt.glob("*.safetensors")) and (ckpt / "pytorch_model.bin").is_file()
    _, [refused] = _parse(tmp_path, f"encoders:\n  pickled: {{model: {ckpt}, contract: repllama, dtype: float32}}\n",
                          "refuse.yaml")
    with pytest.raises(ConfigError) as info:
        refused.load(device="cpu")
    assert "allow_pickle" in str(info.value) and "--allow-pickle" in str(info.value)
    assert "pytorch_model.bin" in str(info.value) and "'pickled'" in str(info.value)

    # the flag the error names exists, and writes allow_pickle: true
    models_file = tmp_path / "allow.yaml"
    out = CliRunner().invoke(app, ["register", "pickled-ok", str(ckpt), "--contract", "repllama", "--dtype", "float32",
                                   "--allow-pickle", "--models-file", str(models_file)])
    assert out.exit_code == 0, out.output
    [allowed] = parse_models_file(models_file.read_text(), models_file)
    assert allowed.kwargs["allow_pickle"] is True
    encoder = allowed.load(device="cpu")
    vectors = encoder.encode(["a text", "another"], "query").vectors
    assert vectors.shape == (2, 32) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)

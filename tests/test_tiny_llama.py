"""models/tiny_llama.py: the embedded LLaMA-architecture model, built offline, deterministically and atomically."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llara_bench.models import tiny_llama
from llara_bench.models.tiny_llama import CONFIG, SEED, build_key, tiny_llama_path

BUILT_FILES = ("model.safetensors", "tokenizer.json", "tokenizer_config.json", "config.json", "BUILD.json")


def _build_in(root: Path) -> Path:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLARA_BENCH_CACHE", str(root))
        return tiny_llama_path()


@pytest.fixture(scope="module")
def builds(tmp_path_factory) -> tuple[Path, Path]:
    """The same model built from scratch into two different cache roots."""
    return _build_in(tmp_path_factory.mktemp("cache-a")), _build_in(tmp_path_factory.mktemp("cache-b"))


@pytest.fixture(scope="module")
def tokenizer(builds):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(builds[0])


def test_build_goes_to_the_keyed_cache_folder(builds):
    for folder in builds:
        assert folder.is_dir() and folder.name == f"tiny-llama-{build_key()}"
        assert folder.parent.name == "models"
        assert not [p.name for p in folder.parent.iterdir() if p.name.startswith(".tiny-llama-")]
        for name in BUILT_FILES:
            assert (folder / name).is_file(), name
    assert builds[0].parent != builds[1].parent


def test_two_builds_are_byte_identical(builds):
    a, b = builds
    for name in BUILT_FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), f"{name} differs between two builds"


def test_build_json_says_untrained(builds):
    info = json.loads((builds[0] / "BUILD.json").read_text())
    assert info["trained"] is False and info["seed"] == SEED
    assert info["key"] == build_key()  # the build key, not the scratch folder it was built in


def test_config_is_llama_for_causal_lm_with_the_declared_config(builds, tokenizer):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    raw = json.loads((builds[0] / "config.json").read_text())
    assert raw["architectures"] == ["LlamaForCausalLM"] and raw["model_type"] == "llama"
    config = LlamaConfig.from_pretrained(builds[0])
    for key, value in CONFIG.items():
        if key == "rope_theta":  # transformers 5 keeps it under rope_parameters
            got = getattr(config, "rope_parameters", None) or {}
            assert got.get("rope_theta", getattr(config, "rope_theta", None)) == value
        else:
            assert getattr(config, key) == value, key
    assert config.vocab_size == len(tokenizer)

    model, info = LlamaForCausalLM.from_pretrained(builds[0], output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()  # tied
    # the weights are exactly LlamaForCausalLM's initialisation under the fixed seed
    torch.manual_seed(SEED)
    fresh = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), **CONFIG))
    loaded = model.state_dict()
    for name, tensor in fresh.state_dict().items():
        assert torch.equal(loaded[name], tensor), name


def test_tokenizer_special_and_byte_tokens_at_llama_ids(tokenizer):
    assert tokenizer.convert_ids_to_tokens([0, 1, 2]) == ["<unk>", "<s>", "</s>"]
    assert (tokenizer.unk_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id) == (0, 1, 2)
    assert tokenizer.convert_ids_to_tokens(list(range(3, 259))) == [f"<0x{b:02X}>" for b in range(256)]
    assert tokenizer.padding_side == "right"
    assert tokenizer.model_max_length == CONFIG["max_position_embeddings"]
    assert 259 < len(tokenizer) <= tiny_llama.VOCAB_SIZE


@pytest.mark.parametrize("text", ["retrieval 🤖 with emoji 🧪", "检索增强的大型语言模型", "naïve café — Ω≈ç√",
                                  "mixed 日本語 and ASCII, 👩‍🔬 too", "ℏ𝔘𝔫𝔦𝔠𝔬𝔡𝔢"])
def test_arbitrary_unicode_round_trips_through_byte_fallback(tokenizer, text):
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert 0 not in ids  # never <unk>: unseen characters fall back to bytes
    assert any(3 <= i < 259 for i in ids)  # the byte tokens are used
    assert tokenizer.decode(ids) == text
    assert tokenizer.decode(ids, skip_special_tokens=True) == text  # byte pieces are vocabulary, not special
    with_bos = tokenizer.encode(text)
    assert with_bos[0] == 1 and with_bos[1:] == ids  # LLaMA style: BOS, no EOS


def test_literal_byte_token_text_is_not_a_byte_token(tokenizer):
    ids = tokenizer.encode("<0x41>", add_special_tokens=False)
    assert 3 + 0x41 not in ids and tokenizer.decode(ids) == "<0x41>"


def test_word_marks_are_llama_style(tokenizer):
    pieces = tokenizer.convert_ids_to_tokens(tokenizer.encode("the ocean", add_special_tokens=False))
    assert pieces[0].startswith("▁") and any(p.startswith("▁") for p in pieces[1:])


def test_second_call_reuses_the_cached_build(builds, monkeypatch):
    folder = builds[0]
    before = {name: (folder / name).stat().st_mtime_ns for name in BUILT_FILES}

    def no_rebuild(path):
        raise AssertionError("rebuilt although the cached folder exists")

    monkeypatch.setattr(tiny_llama, "build", no_rebuild)
    monkeypatch.setenv("LLARA_BENCH_CACHE", str(folder.parent.parent))
    assert tiny_llama_path() == folder
    assert {name: (folder / name).stat().st_mtime_ns for name in BUILT_FILES} == before


@pytest.mark.parametrize("error", [RuntimeError("tokenizer training failed"), OSError(28, "No space left")])
def test_failed_build_leaves_nothing_behind(tmp_path, monkeypatch, error):
    def half_build(path: Path) -> None:
        (path / "model.safetensors").write_bytes(b"half written")
        raise error

    monkeypatch.setattr(tiny_llama, "build", half_build)
    monkeypatch.setenv("LLARA_BENCH_CACHE", str(tmp_path))
    with pytest.raises(type(error)) as info:
        tiny_llama_path()
    assert info.value is error
    models_dir = tmp_path / "models"
    assert not (models_dir / f"tiny-llama-{build_key()}").exists()
    assert list(models_dir.iterdir()) == []  # no .tiny-llama-* scratch folder either


def test_concurrent_builder_that_finished_first_wins(tmp_path, monkeypatch):
    """Another process renames its build into place while ours runs: ours is discarded, theirs is used."""
    target = tmp_path / "models" / f"tiny-llama-{build_key()}"

    def racing_build(path: Path) -> None:
        target.mkdir()
        (target / "model.safetensors").write_bytes(b"theirs")
        (path / "model.safetensors").write_bytes(b"ours")

    monkeypatch.setattr(tiny_llama, "build", racing_build)
    monkeypatch.setenv("LLARA_BENCH_CACHE", str(tmp_path))
    assert tiny_llama_path() == target
    assert (target / "model.safetensors").read_bytes() == b"theirs"
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_registry_entry_is_untrained_and_loads_an_encoder():
    from llara_bench.models import REGISTRY

    entry = REGISTRY.get("tiny-llama")
    assert entry.meta.trained is False and entry.meta.dimension == 64
    encoder = entry.load(device="cpu")
    out = encoder.encode(["a text", "another"], "passage")
    assert out.vectors.shape == (2, 64) and out.vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(out.vectors, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(out.vectors[0], out.vectors[1])
    resolved = encoder.meta.extra["resolved"]
    assert resolved["added_special_tokens"] == 16  # LLaRA's <s1>..<s16>
    assert Path(resolved["model"]).name == f"tiny-llama-{build_key()}"
    assert encoder.meta.trained is False

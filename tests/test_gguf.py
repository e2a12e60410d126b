"""GGUF checkpoints (models/gguf.py): a tiny LLaMA written to GGUF here with the `gguf` package (tensors and a
SmolLM2-style byte-level BPE tokenizer with a chat-turn BOS), loaded back through transformers' GGUF reader,
dequantised once into the cache, and used as an encoder and an adaptation base; contracts fitted to it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from llara_bench.models import gguf as gguf_module
from llara_bench.models.base import ModelMeta
from llara_bench.models.contracts import LLARA, REPLLAMA, fit_contract
from llara_bench.models.decoder import DecoderEncoder
from llara_bench.models.errors import ConfigError
from llara_bench.models.tiny_llama import corpus_docs

gguf = pytest.importorskip("gguf")

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]  # ids 0, 1, 2, as in SmolLM2
CONFIG = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=512, rms_norm_eps=1e-5, rope_theta=10000.0,
              tie_word_embeddings=True, bos_token_id=1, eos_token_id=2)


def byte_level_bpe():
    """A byte-level BPE (GPT-2 style, as SmolLM2's) trained on the smoke corpus: (tokens by id, merges)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator([text for _, text in corpus_docs()], trainers.BpeTrainer(
        vocab_size=512, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    spec = json.loads(tok.to_str())
    tokens = [t for t, _ in sorted(spec["model"]["vocab"].items(), key=lambda kv: kv[1])]
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    return tokens, merges


def llama_cpp_permute(weights: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's convert_hf_to_gguf permutation of q/k rows (transformers' GGUF reader undoes it)."""
    return weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:]) \
        .swapaxes(1, 2).reshape(weights.shape)


def write_gguf(model, tokens: list[str], merges: list[str], path: Path) -> None:
    """``model`` (a LlamaForCausalLM) and its tokenizer as a float32 GGUF file, under llama.cpp's names."""
    c = model.config
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny test llama")
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_context_length(c.max_position_embeddings)
    writer.add_embedding_length(c.hidden_size)
    writer.add_block_count(c.num_hidden_layers)
    writer.add_feed_forward_length(c.intermediate_size)
    writer.add_head_count(c.num_attention_heads)
    writer.add_head_count_kv(c.num_key_value_heads)
    writer.add_rope_dimension_count(c.hidden_size // c.num_attention_heads)
    writer.add_rope_freq_base(CONFIG["rope_theta"])
    writer.add_layer_norm_rms_eps(c.rms_norm_eps)
    writer.add_vocab_size(len(tokens))
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.CONTROL if t in SPECIALS else gguf.TokenType.NORMAL for t in tokens])
    writer.add_token_merges(merges)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(False)
    names = {"embed_tokens": "token_embd", "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q",
             "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
             "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down", "norm": "output_norm"}
    for key, value in model.state_dict().items():
        if key == "lm_head.weight":
            continue  # tied
        part = key.removeprefix("model.").removesuffix(".weight")
        if part.startswith("layers."):
            _, layer, rest = part.split(".", 2)
            name = f"blk.{layer}.{names[rest]}.weight"
        else:
            name = f"{names[part]}.weight"
        data = value.detach().numpy().astype(np.float32)
        if part.endswith("q_proj"):
            data = llama_cpp_permute(data, c.num_attention_heads)
        elif part.endswith("k_proj"):
            data = llama_cpp_permute(data, c.num_key_value_heads)
        writer.add_tensor(name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """(the source LlamaForCausalLM, the GGUF file written from it)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokens, merges = byte_level_bpe()
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokens), **CONFIG)).eval()
    path = tmp_path_factory.mktemp("gguf") / "tiny.F32.gguf"
    write_gguf(model, tokens, merges, path)
    return model, path


@pytest.fixture(scope="module")
def cached(source, tmp_path_factory):
    """The dequantised folder of the GGUF file, in a cache root of its own."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLARA_BENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
        folder = gguf_module.dequantised_folder("tiny", source[1])
    return folder


def _encoder(model: str, contract, **kwargs) -> DecoderEncoder:
    meta = ModelMeta(name="tiny-gguf", kind="dense", description="", source=model, similarity="cosine",
                     contract=replace(contract, dtype="float32"))
    return DecoderEncoder(meta, model, device="cpu", **kwargs)


IDS = torch.tensor([[1, 40, 41, 300, 301, 7, 2, 0], [5, 6, 7, 8, 9, 10, 11, 12]])


def test_dequantised_folder_has_the_source_models_logits(source, cached):
    from transformers import AutoModelForCausalLM

    model, path = source
    loaded = AutoModelForCausalLM.from_pretrained(cached, dtype=torch.float32).eval()
    assert type(loaded).__name__ == "LlamaForCausalLM" and loaded.config.tie_word_embeddings
    assert getattr(loaded.config, "quantization_config", None) is None  # a plain checkpoint
    with torch.inference_mode():
        torch.testing.assert_close(loaded(IDS).logits, model(IDS).logits, atol=1e-5, rtol=1e-5)
    manifest = json.loads((cached / gguf_module.MANIFEST).read_text())
    assert manifest["gguf_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert cached.name == f"tiny.F32-{manifest['gguf_sha256'][:16]}" and cached.parent.name == "gguf"
    assert manifest["gguf_quantisation"] == "ALL_F32" and manifest["gguf_tensor_types"] == {"F32": 2 + 9 * 2}
    assert manifest["n_parameters"] == sum(p.numel() for p in model.parameters())
    assert not [p for p in cached.parent.iterdir() if p.name.startswith(".")]  # no scratch folder left


def test_tokenizer_comes_through_with_its_special_tokens(cached):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(cached)
    assert (tok.bos_token, tok.eos_token, tok.unk_token) == tuple(SPECIALS[1:] + SPECIALS[:1])
    assert (tok.bos_token_id, tok.eos_token_id, tok.unk_token_id) == (1, 2, 0)
    ids = tok("The cat sat.")["input_ids"]
    assert ids[0] not in (0, 1, 2) and tok.decode(ids) == "The cat sat."  # no BOS added by default


def test_encoder_loads_the_gguf_file_and_records_it(source, cached, monkeypatch):
    model, path = source
    monkeypatch.setenv("LLARA_BENCH_CACHE", str(cached.parent.parent))
    encoder = _encoder(str(path), REPLLAMA)
    resolved = encoder.meta.extra["resolved"]
    assert Path(resolved["model"]) == cached and resolved["gguf_file"] == str(path.resolve())
    assert resolved["gguf_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert resolved["gguf_quantisation"] == "ALL_F32" and encoder.meta.dimension == 64
    batch = encoder.input_ids(["The cat sat.", "Dense retrieval with a tiny llama"], "passage")
    with torch.inference_mode():
        got = encoder.forward(batch)
        last = [len(b) - 1 for b in batch]
        for row, ids in enumerate(batch):  # the source model's own hidden state at the EOS position
            hidden = model.model(torch.tensor([ids])).last_hidden_state[0, last[row]]
            torch.testing.assert_close(got[row], torch.nn.functional.normalize(hidden, dim=0), atol=1e-5, rtol=0)


def test_folder_plus_gguf_file_is_the_same_model(source, cached, monkeypatch):
    _, path = source
    monkeypatch.setenv("LLARA_BENCH_CACHE", str(cached.parent.parent))
    encoder = _encoder(str(path.parent), REPLLAMA, gguf_file=path.name)
    assert Path(encoder.meta.extra["resolved"]["model"]) == cached


def test_second_load_uses_the_cache_without_dequantising(source, cached, monkeypatch):
    _, path = source
    monkeypatch.setenv("LLARA_BENCH_CACHE", str(cached.parent.parent))

    def refuse(*args, **kwargs):
        raise AssertionError("dequantised again")

    monkeypatch.setattr(gguf_module, "dequantise", refuse)
    assert gguf_module.dequantised_folder("tiny", path) == cached
    assert _encoder(str(path), LLARA).meta.extra["resolved"]["gguf_sha256"]


def test_a_changed_file_is_dequantised_again(source, tmp_path, monkeypatch):
    model, path = source
    monkeypatch.setenv("LLARA_BENCH_CACHE", str(tmp_path / "cache"))
    copy = tmp_path / "tiny.F32.gguf"
    copy.write_bytes(path.read_bytes())
    first = gguf_module.dequantised_folder("tiny", copy)
    with copy.open("ab") as f:
        f.write(b"\0" * 32)  # padding after the tensor data: a different file, the same model
    second = gguf_module.dequantised_folder("tiny", copy)
    assert first != second and first.parent == second.parent


def test_contracts_fit_a_tokenizer_without_unk_and_with_a_chat_bos(source, cached, monkeypatch):
    """No <unk>: pad falls back to the tokenizer's unk (<|endoftext|>); BOS <|im_start|> is a chat-turn token,
    so the document separator <|endoftext|> is put before the text; both recorded in the contract as run."""
    monkeypatch.setenv("LLARA_BENCH_CACHE", str(cached.parent.parent))
    llara = _encoder(str(source[1]), LLARA)
    assert (llara.contract.pad_token, llara.contract.bos_token, llara.pad_id) == ("<|endoftext|>", "<|endoftext|>", 0)
    [ids] = llara.input_ids(["The cat sat."], "passage")
    specials = llara.tokenizer.convert_tokens_to_ids(list(LLARA.special_tokens[:8]))
    assert ids[0] == 0 and 1 not in ids and ids[-8:] == specials
    repllama = _encoder(str(source[1]), REPLLAMA)
    [q] = repllama.input_ids(["what is a cat"], "query")
    assert q[0] == 0 and q[-1] == 2 and repllama.tokenizer.decode(q[1:-1]) == "query: what is a cat"
    vectors = repllama.encode(["a cat", "Dense retrieval.", "x"], "query").vectors
    assert vectors.shape == (3, 64) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)


def test_fit_contract_keeps_what_the_contract_or_tokenizer_names(cached):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(cached)
    kept = fit_contract(replace(LLARA, bos_token="<|im_start|>", pad_token="<|im_end|>"), tok)
    assert (kept.bos_token, kept.pad_token) == ("<|im_start|>", "<|im_end|>")
    assert fit_contract(replace(REPLLAMA, bos=False), tok).bos_token is None
    with pytest.raises(ConfigError, match=r"'tiny-gguf'.*no '<s>'.*bos_token"):
        fit_contract(replace(LLARA, bos_token="<s>"), tok, "tiny-gguf")


def test_adaptation_loads_a_gguf_base(source, cached, monkeypatch):
    from llara_bench.adaptation.stages import load_causal_lm

    model, path = source
    monkeypatch.setenv("LLARA_BENCH_CACHE", str(cached.parent.parent))
    lm, tok = load_causal_lm(str(path))
    assert tok.bos_token == "<|im_start|>"
    with torch.inference_mode():
        torch.testing.assert_close(lm(IDS).logits, model(IDS).logits, atol=1e-5, rtol=1e-5)


def test_missing_gguf_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"'tiny-gguf': GGUF file .*absent\.gguf not found"):
        _encoder(str(tmp_path / "absent.gguf"), LLARA)
    with pytest.raises(ConfigError, match=r"GGUF file .*nope\.gguf not found"):
        _encoder(str(tmp_path), LLARA, gguf_file="nope.gguf")


def test_models_file_names_a_gguf_file_or_a_folder_plus_gguf_file(source, cached, monkeypatch):
    from llara_bench.harness.encoders_file import parse_models_file

    _, path = source
    monkeypatch.setenv("LLARA_BENCH_CACHE", str(cached.parent.parent))
    text = (f"encoders:\n  by-file: {{model: ./{path.name}, contract: repllama, dtype: float32}}\n"
            f"  by-folder: {{model: ., gguf_file: {path.name}, contract: llara, dtype: float32}}\n")
    entries = {e.name: e for e in parse_models_file(text, path.parent / "encoders.yaml")}
    for name in ("by-file", "by-folder"):
        resolved = entries[name].load(device="cpu").meta.extra["resolved"]
        assert Path(resolved["model"]) == cached and resolved["gguf_file"] == str(path.resolve())


def test_adapt_and_finetune_take_a_gguf_base(source, cached, tmp_path, monkeypatch):
    """Both stages start from the GGUF file, pad and prefix with the fitted tokens, and give a loadable encoder."""
    from llara_bench.adaptation.finetune import ContrastiveSettings, TrainGroup
    from llara_bench.adaptation.stages import adapt, finetune
    from llara_bench.adaptation.train import TrainSettings
    from llara_bench.models.registry import adapted_entry

    _, path = source
    monkeypatch.setenv("LLARA_BENCH_CACHE", str(cached.parent.parent))
    settings = TrainSettings(steps=2, batch_size=4, lr=1e-3, log_every=1, monitor_every=0)
    docs = corpus_docs()[:40]
    manifest = adapt(str(path), [(d, t) for d, t in docs], tmp_path / "adapted", settings, chunk_words=32)
    assert manifest["base"] == str(path) and len(manifest["history"]) == 2
    texts = [t for _, t in docs]
    groups = [TrainGroup(texts[i][:80], [("", texts[i])], [("", texts[i + 1])]) for i in range(4)]
    tuned = finetune(str(path), groups, tmp_path / "tuned", TrainSettings(steps=1, batch_size=2, log_every=1),
                     ContrastiveSettings(negatives=1))
    assert tuned["stage"] == "finetuned"
    for folder in ("adapted", "tuned"):
        encoder = adapted_entry(tmp_path / folder).load(device="cpu")
        assert (encoder.contract.bos_token, encoder.contract.pad_token) == ("<|endoftext|>", "<|endoftext|>")
        assert encoder.encode(["a cat"], "query").vectors.shape == (1, 64)

"""The decoder encoders' contracts, pinned at the token level with the real LLaMA-2 tokenizer (the fast,
`tokenizers`-backed one that AutoTokenizer loads, as the LLaRA and Tevatron code do) and a randomly
initialised LLaMA of vocab 32,000; pooling, batch invariance, adapters and safe loading."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from llara_bench.models.base import ModelMeta
from llara_bench.models.contracts import LLARA, LLARA_SPECIAL_TOKENS, REPLLAMA
from llara_bench.models.decoder import DecoderEncoder
from llara_bench.models.errors import ConfigError

# "▁\"," summar ize ▁the ▁above ▁passage ▁within ▁eight ▁words : ▁  (FlagEmbedding's LLARA code lists these)
SUMMARIZE_TEXT_IDS = [9162, 19138, 675, 278, 2038, 13382, 2629, 9475, 3838, 29901, 29871]
PREDICT_TEXT_IDS = [9162, 8500, 278, 1494, 13382, 2629, 9475, 3838, 29901, 29871]
THE_CAT_SAT = [450, 6635, 3290, 29889]  # "The cat sat." without BOS: ▁The ▁cat ▁sat .
BOS, EOS, QUOTE = 1, 2, 376  # <s>, </s>, ▁"

TEXTS = ["The cat sat.", "A much longer passage about retrieval with large language models and how dense "
         "encoders pool their hidden states into a single vector for search.", "Hi", "Dense retrieval."]


@pytest.fixture(scope="module")
def llama2_tokenizer(shared_models):
    return shared_models / "llama2-tokenizer-hf"


@pytest.fixture(scope="module")
def random_llama(tmp_path_factory):
    """A randomly initialised LLaMA with LLaMA-2's vocabulary size (32,000), saved as safetensors."""
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("random-llama")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=32000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def _encoder(folder, tokenizer, contract, **kwargs) -> DecoderEncoder:
    meta = ModelMeta(name="test-llama", kind="dense", description="", source=str(folder), similarity="cosine",
                     contract=replace(contract, dtype="float32"))
    return DecoderEncoder(meta, str(folder), tokenizer=str(tokenizer), device="cpu", **kwargs)


@pytest.fixture(scope="module")
def llara(random_llama, llama2_tokenizer):
    return _encoder(random_llama, llama2_tokenizer, LLARA)


@pytest.fixture(scope="module")
def repllama(random_llama, llama2_tokenizer):
    return _encoder(random_llama, llama2_tokenizer, REPLLAMA)


def _special_ids(encoder, tokens):
    return encoder.tokenizer.convert_tokens_to_ids(list(tokens))


def test_llara_passage_input_ids(llara):
    [ids] = llara.input_ids(["The cat sat."], "passage")
    specials = _special_ids(llara, LLARA_SPECIAL_TOKENS[:8])
    assert ids == [BOS, QUOTE, *THE_CAT_SAT, *SUMMARIZE_TEXT_IDS, *specials]
    assert len(ids) - 2 - len(THE_CAT_SAT) == 19 and EOS not in ids
    assert llara.tokenizer.convert_ids_to_tokens(ids[-9:]) == ["▁", *LLARA_SPECIAL_TOKENS[:8]]


def test_llara_query_input_ids(llara):
    [ids] = llara.input_ids(["The cat sat."], "query")
    specials = _special_ids(llara, LLARA_SPECIAL_TOKENS[8:])
    assert ids == [BOS, QUOTE, *THE_CAT_SAT, *PREDICT_TEXT_IDS, *specials]
    assert len(ids) - 2 - len(THE_CAT_SAT) == 18 and EOS not in ids


def test_llara_adds_the_sixteen_tokens_and_mean_initialises_them(llara):
    assert len(llara.tokenizer) == 32016 and llara.meta.extra["resolved"]["added_special_tokens"] == 16
    weight = llara.model.get_input_embeddings().weight
    assert weight.shape[0] == 32016
    torch.testing.assert_close(weight[32000:], weight[:32000].mean(dim=0, keepdim=True).expand(16, -1))


def test_llara_passage_with_title_and_no_prefix_words(llara):
    [ids] = llara.input_ids(["The cat sat."], "passage", titles=["Cats"])
    text = llara.tokenizer.decode(ids[2:-19])
    assert text == "Cats The cat sat."
    assert "query" not in llara.tokenizer.decode(ids) and "passage:" not in llara.tokenizer.decode(ids)


def test_llara_pads_left_with_unk_and_numbers_positions_from_the_first_real_token(llara):
    batch = llara.input_ids(["The cat sat.", "Hi"], "passage")
    ids, mask, positions = llara.collate(batch)
    short = len(batch[1])
    pad = ids.shape[1] - short
    assert pad == len(batch[0]) - short > 0
    assert ids[1, :pad].tolist() == [0] * pad and mask[1, :pad].tolist() == [0] * pad
    assert ids[1, pad:].tolist() == batch[1] and ids[1, pad] == BOS
    assert positions[1, pad:].tolist() == list(range(short)) and positions[0].tolist() == list(range(len(batch[0])))


def test_repllama_input_ids(repllama):
    tok = repllama.tokenizer
    [q] = repllama.input_ids(["what is a cat"], "query")
    assert q == [BOS, 2346, 29901, 825, 338, 263, 6635, EOS]  # <s> ▁query : ▁what ▁is ▁a ▁cat </s>
    [p] = repllama.input_ids(["The cat sat."], "passage", titles=["Cats"])
    # the castorini/repllama-v1-7b-lora-passage model card: tokenizer(f'passage: {title} {passage}</s>')
    assert p == tok("passage: Cats The cat sat.</s>")["input_ids"]
    assert p[0] == BOS and p[-1] == EOS and p.count(BOS) == 1
    [untitled] = repllama.input_ids(["The cat sat."], "passage")
    assert untitled == tok("passage: The cat sat.</s>")["input_ids"]
    assert len(tok) == 32000  # no tokens added for RepLLaMA


def test_repllama_pads_right(repllama):
    batch = repllama.input_ids(["what is a cat", "hi"], "query")
    ids, mask, _ = repllama.collate(batch)
    n = len(batch[1])
    assert ids[1, :n].tolist() == batch[1] and ids[1, n - 1] == EOS
    assert ids[1, n:].tolist() == [0] * (ids.shape[1] - n) and mask[1, n:].sum() == 0


def _hidden(encoder, batch):
    ids, mask, positions = encoder.collate(batch)
    with torch.inference_mode():
        return encoder.model(input_ids=ids, attention_mask=mask, position_ids=positions).last_hidden_state, ids


def test_llara_pools_the_eight_special_positions(llara):
    batch = llara.input_ids(TEXTS[:3], "passage")
    hidden, ids = _hidden(llara, batch)
    specials = torch.tensor(_special_ids(llara, LLARA_SPECIAL_TOKENS[:8]))
    with torch.inference_mode():
        got = llara.forward(batch)
    for row in range(len(batch)):
        at = torch.isin(ids[row], specials)
        assert int(at.sum()) == 8 and at[-8:].all()
        want = torch.nn.functional.normalize(hidden[row, at].mean(dim=0), dim=0)
        torch.testing.assert_close(got[row], want, atol=1e-6, rtol=0)


def test_repllama_pools_the_eos_position(repllama):
    batch = repllama.input_ids(TEXTS[:3], "passage")
    hidden, ids = _hidden(repllama, batch)
    with torch.inference_mode():
        got = repllama.forward(batch)
    for row in range(len(batch)):
        eos_at = (ids[row] == EOS).nonzero().flatten()
        assert eos_at.tolist() == [len(batch[row]) - 1]
        want = torch.nn.functional.normalize(hidden[row, eos_at[0]], dim=0)
        torch.testing.assert_close(got[row], want, atol=1e-6, rtol=0)


@pytest.mark.parametrize("contract", ["llara", "repllama"])
@pytest.mark.parametrize("role", ["query", "passage"])
def test_batch_invariance(contract, role, llara, repllama):
    """A text alone and inside a padded batch of longer and shorter texts gives the same vector (fp32)."""
    encoder = llara if contract == "llara" else repllama
    together = encoder.encode(TEXTS, role).vectors
    for i, text in enumerate(TEXTS):
        alone = encoder.encode([text], role).vectors[0]
        assert np.abs(alone - together[i]).max() < 1e-5
    assert np.allclose(np.linalg.norm(together, axis=1), 1, atol=1e-5)


def test_fixed_and_token_budget_batching_give_the_same_vectors_in_input_order(random_llama, llama2_tokenizer):
    budget = _encoder(random_llama, llama2_tokenizer, LLARA, token_budget=64, batch_size=8)
    fixed = _encoder(random_llama, llama2_tokenizer, LLARA, batching="fixed", batch_size=3)
    texts = [f"text number {i} " + "word " * (i % 7) * 5 for i in range(17)]
    a, b = budget.encode(texts, "passage"), fixed.encode(texts, "passage")
    assert np.abs(a.vectors - b.vectors).max() < 1e-5
    assert a.n_tokens == b.n_tokens and a.n_padded_tokens < b.n_padded_tokens


def test_truncation_keeps_the_prompt_whole(random_llama, llama2_tokenizer):
    encoder = _encoder(random_llama, llama2_tokenizer, replace(LLARA, passage_max_length=40, query_max_length=30))
    long_text = "retrieval " * 200
    [p] = encoder.input_ids([long_text], "passage")
    [q] = encoder.input_ids([long_text], "query")
    assert len(p) == 40 and p[:2] == [BOS, QUOTE] and p[-19:-8] == SUMMARIZE_TEXT_IDS
    assert len(q) == 30 and q[-18:-8] == PREDICT_TEXT_IDS
    with pytest.raises(ConfigError, match="no room for text"):
        _encoder(random_llama, llama2_tokenizer, replace(LLARA, passage_max_length=20)).input_ids(["x"], "passage")


def test_released_tokenizer_with_the_tokens_is_used_as_is(tmp_path, llama2_tokenizer):
    """A LLaRA checkpoint ships <s1>..<s16> (non-sequential ids): nothing is added, their own ids are used."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(llama2_tokenizer)
    order = [9, 12, 14, 7, 15, 6, 4, 13, 1, 10, 3, 11, 5, 8, 2, 16]  # <s9> first, as in BAAI's tokenizer
    tok.add_tokens([f"<s{i}>" for i in order], special_tokens=True)
    tok.save_pretrained(tmp_path)
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=32016, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                 num_attention_heads=2, max_position_embeddings=1024)).save_pretrained(tmp_path)
    meta = ModelMeta(name="released", kind="dense", description="", source="x", similarity="cosine",
                     contract=replace(LLARA, dtype="float32"))
    encoder = DecoderEncoder(meta, str(tmp_path), device="cpu")
    assert encoder.meta.extra["resolved"]["added_special_tokens"] == 0 and len(encoder.tokenizer) == 32016
    [ids] = encoder.input_ids(["The cat sat."], "passage")
    assert ids[-8:] == [32000 + order.index(i) for i in range(1, 9)]


def test_lora_adapter_is_merged(tmp_path, random_llama, llama2_tokenizer):
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModel

    base = AutoModel.from_pretrained(random_llama)
    torch.manual_seed(1)
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "o_proj"],
                                                 init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()

    merged = _encoder(random_llama, llama2_tokenizer, REPLLAMA, adapter=str(tmp_path / "adapter"))
    plain = _encoder(random_llama, llama2_tokenizer, REPLLAMA)
    resolved = merged.meta.extra["resolved"]
    assert len(resolved["adapter_sha256"]) == 64
    batch = merged.input_ids(TEXTS, "passage")
    unmerged = PeftModel.from_pretrained(AutoModel.from_pretrained(random_llama), tmp_path / "adapter").eval()
    ids, mask, positions = merged.collate(batch)
    with torch.inference_mode():
        hidden = unmerged(input_ids=ids, attention_mask=mask, position_ids=positions).last_hidden_state
        want = torch.nn.functional.normalize(hidden[torch.arange(len(batch)), mask.sum(1) - 1], dim=-1)
        got = merged.forward(batch)
        assert (got - want).abs().max() < 1e-5
        assert (got - plain.forward(batch)).abs().max() > 1e-3  # the adapter changed something


def test_pickle_weights_need_an_explicit_opt_in(tmp_path, llama2_tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    model = LlamaForCausalLM(LlamaConfig(vocab_size=32000, hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=1, num_attention_heads=2))
    model.config.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")  # transformers 5 writes only safetensors
    with pytest.raises(ConfigError, match=r"'test-llama'.*only pickle weights.*--allow-pickle"):
        _encoder(tmp_path, llama2_tokenizer, REPLLAMA)
    assert _encoder(tmp_path, llama2_tokenizer, REPLLAMA, allow_pickle=True).meta.dimension == 32


def test_missing_weights_and_tokenizer_are_named(tmp_path, random_llama, llama2_tokenizer):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"'test-llama': no weights in model .*empty"):
        _encoder(tmp_path / "empty", llama2_tokenizer, LLARA)
    with pytest.raises(ConfigError, match=r"'test-llama': no tokenizer in .*random-llama"):
        _encoder(random_llama, random_llama, LLARA)
    with pytest.raises(ConfigError, match="neither an existing folder nor a Hub id"):
        _encoder(tmp_path / "missing" / "folder", llama2_tokenizer, LLARA)


def test_unreachable_hub_gives_the_offline_hint(tmp_path, monkeypatch):
    import huggingface_hub.constants

    from llara_bench.models import REGISTRY

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ConfigError, match=r"encoder 'llara-passage': model BAAI/LLARA-passage is not in the local "
                                          r"Hugging Face cache.*HF_HUB_OFFLINE=1"):
        REGISTRY.get("llara-passage").load(device="cpu")


def test_remote_code_is_refused_unless_declared(tmp_path, random_llama, llama2_tokenizer):
    import json
    import shutil

    shutil.copytree(random_llama, tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config.update(model_type="my-custom-llama", auto_map={"AutoConfig": "modeling_custom.CustomConfig", "AutoModel": "modeling_custom.CustomModel"})
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    marker = tmp_path / "remote-code-ran"
    (tmp_path / "m" / "modeling_custom.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    with pytest.raises(ConfigError, match=r"'test-llama': cannot load the model"):
        _encoder(tmp_path / "m", llama2_tokenizer, LLARA)
    assert not marker.exists()
    with pytest.raises(Exception):  # declared: the checkpoint's code runs (and this one defines no model)
        _encoder(tmp_path / "m", llama2_tokenizer, LLARA, trust_remote_code=True)
    assert marker.exists()

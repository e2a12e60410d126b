"""`tiny-llama`, the embedded default decoder: a small LLaMA-architecture model the project builds itself.

The tokenizer is a LLaMA-style BPE (byte fallback, ``▁`` word marks, <unk>/<s>/</s> at ids 0/1/2) trained
with the `tokenizers` library on the embedded smoke corpus; the model is `LlamaForCausalLM` from a fixed
config and seed. Both are saved (safetensors) under the cache, keyed by everything that determines them,
so a fresh machine builds it offline in seconds. The weights are random: it is UNTRAINED, a stand-in that
exercises the LLaMA code path, not a retriever.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

from llara_bench.models.base import ModelMeta
from llara_bench.models.cache import cache_root, cached_build
from llara_bench.models.loading import save_safetensors

BUILD_VERSION = 3
SEED = 0
VOCAB_SIZE = 4096
CONFIG: dict[str, Any] = dict(hidden_size=64, intermediate_size=172, num_hidden_layers=4, num_attention_heads=4,
                              num_key_value_heads=4, max_position_embeddings=1024, rms_norm_eps=1e-5,
                              rope_theta=10000.0, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2)
SPECIAL_TOKENS = ["<unk>", "<s>", "</s>"]
BYTE_TOKENS = [f"<0x{b:02X}>" for b in range(256)]  # with the special tokens, LLaMA's first 259 ids


def corpus_docs() -> list[tuple[str, str]]:
    """(id, "title text") of each passage of the embedded smoke corpus."""
    path = resources.files("llara_bench.harness") / "data" / "smoke" / "corpus.jsonl"
    docs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(d["_id"], f"{d.get('title') or ''} {d['text']}".strip()) for d in docs]


def _corpus_texts() -> list[str]:
    return [text for _, text in corpus_docs()]


def build_key() -> str:
    import tokenizers
    import torch
    import transformers

    texts = _corpus_texts()
    blob = json.dumps({"version": BUILD_VERSION, "seed": SEED, "vocab": VOCAB_SIZE, "config": CONFIG,
                       "corpus": hashlib.sha256("\n".join(texts).encode()).hexdigest(),
                       "libraries": [tokenizers.__version__, torch.__version__, transformers.__version__]},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _train_tokenizer(texts: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=VOCAB_SIZE - 256, special_tokens=SPECIAL_TOKENS,
                                                       min_frequency=2, show_progress=False))
    # As in LLaMA, the 256 byte-fallback pieces are ordinary vocabulary at ids 3..258, not added special
    # tokens (which decoding with skip_special_tokens would drop, and which would match literal "<0x41>").
    spec = json.loads(tok.to_str())
    learned = sorted((i, t) for t, i in spec["model"]["vocab"].items() if t not in SPECIAL_TOKENS)
    vocab = {t: i for i, t in enumerate(SPECIAL_TOKENS + BYTE_TOKENS)}
    for _, token in learned:
        vocab.setdefault(token, len(vocab))
    spec["model"]["vocab"] = vocab
    tok = Tokenizer.from_str(json.dumps(spec))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   model_max_length=CONFIG["max_position_embeddings"], padding_side="right")


def build(folder: Path) -> None:
    """Train the tokenizer and build the seeded model into ``folder``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = _train_tokenizer(_corpus_texts())
    torch.manual_seed(SEED)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), **CONFIG))
    save_safetensors(model, folder)
    tokenizer.save_pretrained(folder)
    (folder / "BUILD.json").write_text(json.dumps({"built_by": "llara-bench models/tiny_llama.py", "seed": SEED,
                                                   "trained": False, "key": build_key()}, indent=2))


def tiny_llama_path() -> Path:
    """The cached build folder, built first if absent."""
    return cached_build(cache_root() / "models" / f"tiny-llama-{build_key()}", build)


def tiny_llama_encoder(meta: ModelMeta, **kwargs: Any):
    from llara_bench.models.decoder import DecoderEncoder

    return DecoderEncoder(meta, str(tiny_llama_path()), **kwargs)

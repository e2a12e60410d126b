"""The named encoding contracts of decoder-LLM encoders, as their authors ran them.

Sources: the LLaRA paper (arXiv 2312.15503) and its released code (FlagEmbedding, research/LLARA),
Tevatron's RepLLaMA example and the castorini/repllama-v1-7b-lora-passage model card. The exact token
ids these produce with the LLaMA-2 tokenizer are pinned in tests/test_decoder_contracts.py.
"""

from __future__ import annotations

from dataclasses import replace

from llara_bench.models.base import EncodingContract
from llara_bench.models.errors import ConfigError, UnknownNameError

LLARA_SPECIAL_TOKENS = tuple(f"<s{i}>" for i in range(1, 17))
# EBAE (passages): 11 text pieces ending in a lone "▁" (29871), then <s1>..<s8> = 19 tokens with LLaMA-2
LLARA_SUMMARIZE_SUFFIX = '", summarize the above passage within eight words: ' + "".join(LLARA_SPECIAL_TOKENS[:8])
# EBAR (queries): 10 text pieces, then <s9>..<s16> = 18 tokens
LLARA_PREDICT_SUFFIX = '", predict the following passage within eight words: ' + "".join(LLARA_SPECIAL_TOKENS[8:])

# The official inference examples truncate the text to 512 tokens and then add BOS + `▁"` and the suffix.
LLARA_TEXT_TOKENS = 512

LLARA = EncodingContract(
    query_template="{text}", passage_template="{title} {text}",
    query_prefix='"', query_suffix=LLARA_PREDICT_SUFFIX,
    passage_prefix='"', passage_suffix=LLARA_SUMMARIZE_SUFFIX,
    special_tokens=LLARA_SPECIAL_TOKENS, bos=True, eos=False, pad_token="<unk>", padding_side="left",
    pooling="last_k_mean", pooling_k=8, normalize=True,
    query_max_length=LLARA_TEXT_TOKENS + 2 + 18, passage_max_length=LLARA_TEXT_TOKENS + 2 + 19,
    dtype="bfloat16")

# RepLLaMA: "query: q</s>" and "passage: title text</s>", BOS added, EOS appended, right padding,
# the EOS hidden state; pad = unk as in Tevatron. 512 tokens at inference.
REPLLAMA = EncodingContract(
    query_template="query: {text}", passage_template="passage: {title} {text}",
    bos=True, eos=True, pad_token="<unk>", padding_side="right", pooling="last_token", normalize=True,
    query_max_length=512, passage_max_length=512, dtype="bfloat16")

# Encoder-only models (sentence-transformers folders such as MiniLM, E5, BGE): the text as it is, the mean of
# the token states or the first ([CLS]) one, L2-normalised. Prefixes (E5's "query: ") are set per entry.
ENCODER_ONLY: dict[str, EncodingContract] = {"mean": EncodingContract(pooling="mean"),
                                            "cls": EncodingContract(pooling="cls")}

CONTRACTS: dict[str, EncodingContract] = {"llara": LLARA, "repllama": REPLLAMA, **ENCODER_ONLY}


def contract_named(name: str, **overrides) -> EncodingContract:
    """A named contract, with fields overridden (e.g. dtype, max lengths)."""
    try:
        contract = CONTRACTS[name]
    except KeyError:
        raise UnknownNameError("encoding contract", name, sorted(CONTRACTS)) from None
    return replace(contract, **overrides) if overrides else contract


# Chat-tuned models such as SmolLM2-135M-Instruct declare their chat-turn opener, <|im_start|>, as BOS; in
# every sequence they were tuned on it is followed by a role name ("user\n"), never by a bare document.
# LLaRA and RepLLaMA put BOS before a bare document, as LLaMA-2's <s> in pretraining; the token that played
# that part in these models' pretraining is the document separator <|endoftext|> (the BOS of the base
# SmolLM2), so it is used instead when the vocabulary has it. The choice is recorded as the contract's
# bos_token, and a contract that names bos_token keeps it.
CHAT_TURN_TOKENS = ("<|im_start|>",)
DOCUMENT_SEPARATORS = ("<|endoftext|>",)


def fit_contract(contract: EncodingContract, tokenizer, name: str = "encoder") -> EncodingContract:
    """``contract`` as it runs with ``tokenizer``: its pad and BOS tokens named explicitly.

    Pad: the contract's pad_token if the vocabulary has it (LLaMA-2's "<unk>"), else the tokenizer's
    (when the contract names none), unk, or eos, in that order; padded positions are masked, so any real
    token does. BOS (when the contract adds one): the contract's bos_token, else the tokenizer's BOS unless
    that is a chat-turn token (see `CHAT_TURN_TOKENS`), else a document separator.
    """
    vocab = tokenizer.get_vocab()
    wanted = [contract.pad_token] if contract.pad_token else [tokenizer.pad_token]
    pad = next((t for t in [*wanted, tokenizer.unk_token, tokenizer.eos_token] if t is not None and t in vocab), None)
    if pad is None:
        raise ConfigError(f"encoder {name!r}: no padding token: the tokenizer has none of {contract.pad_token!r}, "
                          "an unk or an eos token; set the contract's pad_token")
    bos = contract.bos_token
    if contract.bos and bos is None:
        bos = tokenizer.bos_token
        if bos in CHAT_TURN_TOKENS:
            bos = next((t for t in DOCUMENT_SEPARATORS if t in vocab), bos)
    if contract.bos and (bos is None or bos not in vocab):
        raise ConfigError(f"encoder {name!r}: the contract adds a BOS token but the tokenizer has no {bos or 'BOS'!r}; "
                          "set the contract's bos_token or bos: false")
    return replace(contract, pad_token=pad, bos_token=bos)

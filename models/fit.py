"""Whether a model can run under an encoding contract, read from its config and tokenizer files (never its
weights): what `llara-bench register` checks before it writes an entry, so that a wrong contract fails there
and not in the middle of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from llara_bench.models.base import ROLES, EncodingContract
from llara_bench.models.contracts import ENCODER_ONLY, fit_contract
from llara_bench.models.errors import ConfigError
from llara_bench.models.loading import check_tokenizer, check_weights, resolve_folder
from llara_bench.models.registry import DECODER_TARGET, SENTENCE_TRANSFORMER_TARGET, ModelEntry

Part = Literal["model", "tokenizer", "contract"]
ENCODER_HINT = "an encoder-only model (BERT, MiniLM, E5, BGE) takes the contract mean or cls"
DECODER_HINT = "a causal LM takes the contract llara or repllama"


class FitError(ConfigError):
    """The model, its tokenizer or the contract (``part``) does not fit the rest."""

    def __init__(self, part: Part, message: str):
        self.part = part
        super().__init__(message)


def check_fit(entry: ModelEntry) -> None:
    """Raise FitError (or ConfigError, for a folder that cannot be found) unless ``entry`` can load."""
    if entry.meta.contract is None:
        raise FitError("contract", "the entry has no encoding contract")
    if entry.target == DECODER_TARGET:
        check_decoder(entry.name, entry.meta.contract, **entry.kwargs)
    elif entry.target == SENTENCE_TRANSFORMER_TARGET:
        check_sentence_transformer(entry.name, entry.meta.contract, entry.kwargs["model_path"])


def check_decoder(name: str, contract: EncodingContract, model: str, *, tokenizer: str | None = None,
                  revision: str | None = None, allow_pickle: bool = False, trust_remote_code: bool = False,
                  **_: object) -> None:
    """A causal LM folder (or Hub id, from the cache or the Hub: configs and tokenizer only) whose tokenizer
    has what the contract uses: BOS/EOS, the padding token, its special tokens as single pieces, and room for
    text within the max lengths."""
    from transformers import AutoTokenizer

    folder = resolve_folder(name, "model", model, revision=revision, weights=False)
    if not (folder / "config.json").is_file():
        raise FitError("model", f"{folder} has no config.json; expected a transformers checkpoint folder")
    if (folder / "modules.json").is_file():
        raise FitError("contract", f"{folder} is a sentence-transformers folder; {ENCODER_HINT}")
    if Path(model).expanduser().exists():  # a Hub snapshot fetched without weights has none to look at
        check_weights(name, "model", folder, allow_pickle=allow_pickle)
    tok_folder = folder if tokenizer is None else resolve_folder(name, "tokenizer", tokenizer, weights=False)
    _has_tokenizer(name, tok_folder, "; give the tokenizer's folder or Hub id with --tokenizer")
    try:
        tok = AutoTokenizer.from_pretrained(tok_folder, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise FitError("tokenizer", f"cannot load the tokenizer from {tok_folder}: {exc}") from exc
    problems = tokenizer_problems(tok, contract)
    if problems:
        raise FitError("contract", f"does not fit the tokenizer of {tok_folder} ({type(tok).__name__}): "
                                   f"{'; '.join(problems)}. Give a tokenizer that has them (--tokenizer), or "
                                   f"{ENCODER_HINT}")


def _has_tokenizer(name: str, folder: Path, hint: str = "") -> None:
    try:
        check_tokenizer(name, folder)
    except ConfigError:
        raise FitError("tokenizer", f"no tokenizer in {folder} (expected tokenizer.json, tokenizer.model or "
                                    f"tokenizer_config.json){hint}") from None


def tokenizer_problems(tokenizer, contract: EncodingContract) -> list[str]:
    """What a decoder contract needs and ``tokenizer`` lacks (the tokenizer gains the contract's special
    tokens, as the encoder adds them at load)."""
    from llara_bench.models.decoder import affix_ids, text_ids

    problems = ["the contract adds EOS but the tokenizer has no eos token"] if contract.eos and \
        tokenizer.eos_token_id is None else []
    try:  # the pad and BOS tokens as the encoder will choose them (fallbacks included)
        contract = fit_contract(contract, tokenizer)
    except ConfigError as exc:
        problems.append(str(exc).split(": ", 1)[1])
    tokenizer.add_tokens([t for t in contract.special_tokens if t not in tokenizer.get_vocab()], special_tokens=True)
    split = [t for t in contract.special_tokens if len(text_ids(tokenizer, t)) != 1]
    if split:
        problems.append(f"special tokens {', '.join(split)} do not stay single tokens")
    if problems:  # the lengths below are measured with the tokens above
        return problems
    for role in ROLES:
        head, tail = affix_ids(tokenizer, contract, role)
        limit = contract.max_length(role)
        if limit is not None and limit - len(head) - len(tail) < 1:
            problems.append(f"{role} max length {limit} leaves no room for text after {len(head) + len(tail)} "
                            "prompt tokens")
    return problems


DECODER_ONLY_FIELDS = ("special_tokens", "bos", "eos", "pad_token", "padding_side", "pooling_k")


def check_sentence_transformer(name: str, contract: EncodingContract, model: str) -> None:
    """A sentence-transformers folder (or Hub id) with a tokenizer, pooled as the contract says, under a contract
    that uses nothing the sentence-transformers encoder ignores (BOS/EOS, padding, special tokens)."""
    from llara_bench.models.sentence_transformer import folder_pooling, sentence_transformer_meta

    folder = resolve_folder(name, "model", model, weights=False)
    if not (folder / "modules.json").is_file():
        if (folder / "config.json").is_file():
            raise FitError("contract", f"{folder} is a transformers checkpoint, not a sentence-transformers folder "
                                       f"(no modules.json): {DECODER_HINT}; an encoder-only checkpoint needs saving "
                                       "with sentence-transformers (SentenceTransformer(path).save(folder)) first")
        raise FitError("model", f"{folder} is not a sentence-transformers folder (no modules.json)")
    _has_tokenizer(name, folder)
    pooling = folder_pooling(folder)
    if pooling is not None and pooling != contract.pooling:
        hint = f"use the contract {pooling}" if pooling in ENCODER_ONLY else "no named contract pools that way"
        raise FitError("contract", f"pools by {contract.pooling!r} but {folder} pools by {pooling!r}; {hint}")
    plain = EncodingContract()
    ignored = [f for f in DECODER_ONLY_FIELDS if getattr(contract, f) != getattr(plain, f)]
    if ignored:
        raise FitError("contract", f"sets {', '.join(ignored)}, which a sentence-transformers encoder does not apply")
    limit = sentence_transformer_meta(str(folder), description="").max_length
    for role in ROLES:
        if limit is not None and contract.max_length(role) not in (None, limit):
            raise FitError("contract", f"{role} max length {contract.max_length(role)} differs from the folder's "
                                       f"max_seq_length {limit}")

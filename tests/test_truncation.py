"""A long text is cut to what its tokenizer keeps before it is tokenized (models/truncation.py): the tokens kept
are exactly those of the whole text, and a 50 MB document is never handed to a tokenizer whole."""

from __future__ import annotations

import json

import pytest

from llara_bench.models.truncation import CHARS_PER_TOKEN, cut_to_tokens

FIFTY_MB = 50 * 2**20


@pytest.fixture(scope="module")
def real_text() -> str:
    """The shipped smoke collection's documents (about 60,000 characters), one after another."""
    from importlib import resources

    corpus = resources.files("llara_bench.harness") / "data" / "smoke" / "corpus.jsonl"
    return "\n".join(json.loads(line)["text"] for line in corpus.read_text(encoding="utf-8").splitlines())


def hard_texts(real: str) -> dict[str, str]:
    """Texts that put the cut where a careless one would change the tokens kept."""
    words = real.split()
    return {
        "real": real,
        "spaces between words": "   ".join(words),  # runs of spaces: SentencePiece has pieces for them
        "whitespace first": " \n\t" * 20_000 + real,  # WordPiece's tokens only after 60,000 dropped characters
        "one long word": "x" * 30_000 + " " + real,  # a word far longer than the first budget
        "no whitespace": "".join(words),  # no word end to cut at
        "CJK": "検索拡張生成は大規模言語モデルの回答を外部文書で補強する。" * 3_000,
        "code": "def f(x):\n    return {'k': [x, x * 2]}  # comment\n" * 5_000,
    }


TOKENIZERS = ["minilm", "tiny-llama", "llama2-tokenizer-hf", "stories260K-hf"]


@pytest.fixture(params=TOKENIZERS)
def tokenizer(request):
    """MiniLM's WordPiece and tiny-llama's BPE (shipped); LLaMA-2's 32,000-piece SentencePiece and a 512-piece
    one from the shared models folder (skipped when absent)."""
    from transformers import AutoTokenizer

    from llara_bench.models.sentence_transformer import minilm_path
    from llara_bench.models.tiny_llama import tiny_llama_path

    if request.param == "minilm":
        return AutoTokenizer.from_pretrained(minilm_path())
    if request.param == "tiny-llama":
        return AutoTokenizer.from_pretrained(tiny_llama_path())
    return AutoTokenizer.from_pretrained(request.getfixturevalue("shared_models") / request.param)


@pytest.mark.parametrize("max_tokens", [32, 512])
def test_the_tokens_kept_are_those_of_the_whole_text(real_text, tokenizer, max_tokens):
    """On real text and on texts built to trip a cut."""
    texts = hard_texts(real_text)
    cut = cut_to_tokens(tokenizer, list(texts.values()), max_tokens)
    whole = tokenizer(list(texts.values()), add_special_tokens=False, truncation=True,
                      max_length=max_tokens)["input_ids"]
    kept = tokenizer(cut, add_special_tokens=False, truncation=True, max_length=max_tokens)["input_ids"]
    for name, text, short, a, b in zip(texts, texts.values(), cut, whole, kept):
        assert a == b, f"{name}: the cut changed the tokens kept"
        assert text.startswith(short) and len(a) == max_tokens
    assert len(cut[0]) < len(real_text) // 5  # the real text was cut, not tokenized whole


def test_short_texts_are_left_whole():
    class Refuses:
        def __call__(self, *args, **kwargs):
            raise AssertionError("a text within the first budget is not tokenized to be cut")

    texts = ["a short text", "x" * (512 * CHARS_PER_TOKEN)]
    assert cut_to_tokens(Refuses(), texts, 512) == texts


@pytest.fixture
def longest_tokenized(monkeypatch):
    """The length of the longest string any Hugging Face tokenizer is called on during the test."""
    from transformers import PreTrainedTokenizerBase

    seen = [0]
    original = PreTrainedTokenizerBase.__call__

    def spy(self, text=None, *args, **kwargs):
        strings = [text] if isinstance(text, str) else list(text or [])
        seen[0] = max([seen[0], *(len(s) for s in strings if isinstance(s, str))])
        return original(self, text, *args, **kwargs)

    for cls in {PreTrainedTokenizerBase, *_subclasses(PreTrainedTokenizerBase)}:
        if "__call__" in vars(cls):
            monkeypatch.setattr(cls, "__call__", spy)
    return seen


def _subclasses(cls) -> set:
    return {sub for direct in cls.__subclasses__() for sub in {direct, *_subclasses(direct)}}


def fifty_mb_document(real: str) -> str:
    return (real + "\n") * (FIFTY_MB // (len(real) + 1) + 1)


@pytest.mark.parametrize("tokenizer", ["tiny-llama", "llama2-tokenizer-hf"], indirect=True)
def test_a_decoder_never_tokenizes_a_50_mb_document_whole(real_text, tokenizer, longest_tokenized):
    """LLaMA-2's tokenizer took 91 s and 7.2 GB for one 50 MB document; its inputs are now a prefix of
    a few times the contract's length, with the ids a whole tokenization gives (checked on the first 1 MB)."""
    from llara_bench.models.contracts import REPLLAMA
    from llara_bench.models.decoder import input_ids

    document = fifty_mb_document(real_text)
    (ids,) = input_ids(tokenizer, REPLLAMA, "passage", [document], ["A title"])
    assert len(ids) == REPLLAMA.max_length("passage")
    assert 0 < longest_tokenized[0] <= 2 * REPLLAMA.max_length("passage") * CHARS_PER_TOKEN
    assert input_ids(tokenizer, REPLLAMA, "passage", [document[:2**20]], ["A title"]) == [ids]


def test_minilm_never_tokenizes_a_50_mb_document_whole(real_text, longest_tokenized):
    """sentence-transformers truncates only after tokenizing the whole text: the encoder hands it the cut."""
    import numpy as np

    from llara_bench.models import REGISTRY

    encoder = REGISTRY.get("minilm").load(device="cpu")
    document = fifty_mb_document(real_text)
    vector = encoder.encode([document], "passage").vectors
    limit = encoder.model.max_seq_length
    assert 0 < longest_tokenized[0] <= 2 * limit * CHARS_PER_TOKEN
    np.testing.assert_allclose(vector, encoder.encode([document[:2**20]], "passage").vectors, atol=1e-6)

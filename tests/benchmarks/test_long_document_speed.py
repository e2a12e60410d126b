"""One 50 MB document through LLaMA-2's tokenizer as a decoder encoder builds its input: the contract's 512
tokens cut from a prefix (models/truncation.py) against the whole text tokenized, then truncated (the
baseline: what the tokenizer does when asked for max_length, 91 s and 7.2 GB in the issue). Both must give
the same ids. With benchmarks disabled: a 256 KB document, once each."""

from __future__ import annotations

import pytest

from llara_bench.models.contracts import REPLLAMA
from llara_bench.models.decoder import affix_ids, input_ids

GROUP = "one long document to a decoder's input ids"


@pytest.fixture(scope="module")
def tokenizer(shared_models):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(shared_models / "llama2-tokenizer-hf")


@pytest.fixture(scope="module")
def document(request, shared_data) -> str:
    from llara_bench.harness.datasets import load_dataset

    text = "\n".join(load_dataset(f"folder:{shared_data / 'scifact'}").corpus.texts)
    size = 256 * 2**10 if request.config._benchmarksession.disabled else 50 * 2**20
    return (text * (size // len(text) + 1))[:size]


def whole_text_ids(tokenizer, document: str) -> list[int]:
    """The input before the cut: the formatted text tokenized whole, truncated to the room left by the affixes."""
    head, tail = affix_ids(tokenizer, REPLLAMA, "passage")
    room = REPLLAMA.max_length("passage") - len(head) - len(tail)
    body = tokenizer([REPLLAMA.format("passage", document, "")], add_special_tokens=False, truncation=True,
                     max_length=room)["input_ids"][0]
    return head + body + tail


def test_whole_text_tokenized(benchmark, tokenizer, document):
    benchmark.extra_info.update(comparison=GROUP, baseline=True)
    ids = benchmark.pedantic(whole_text_ids, args=(tokenizer, document), rounds=1, iterations=1)
    assert len(ids) == REPLLAMA.max_length("passage")


def test_prefix_tokenized(benchmark, tokenizer, document):
    benchmark.extra_info.update(comparison=GROUP)
    (ids,) = benchmark.pedantic(input_ids, args=(tokenizer, REPLLAMA, "passage", [document]), rounds=3,
                                iterations=1)
    assert ids == whole_text_ids(tokenizer, document[:2**20])  # the same ids as the whole text's first MB gives

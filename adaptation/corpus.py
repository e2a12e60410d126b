"""Pretext data: consecutive chunks of a document, each paired with the next chunk of the same document,
and the bag-of-words target token sets of both heads.

LLaRA pretrains on consecutive ~500-word chunks of Wikipedia articles, each ending at a sentence
boundary: the EBAE target is the chunk itself, the EBAR target the chunk after it. Here the chunk size is
a setting (``chunk_words``). A document that yields a single chunk has no "next" chunk; what happens to it
is a setting too (``short_docs``):

- ``"halve"`` (default): it is cut in two at the sentence boundary nearest its middle (at the middle word
  when it is one sentence), and the halves form a pair;
- ``"drop"``: it is left out.

Either way, documents with fewer than ``2 * min_words`` words cannot form a pair and are left out; every
left-out document is counted in `PairStats`, which the caller reports.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from llara_bench.adaptation.stopwords import NLTK_ENGLISH
from llara_bench.harness.datasets.beir_folder import iter_jsonl
from llara_bench.harness.errors import ConfigError, DataFormatError

SHORT_DOC_POLICIES = ("halve", "drop")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_NON_WORD = re.compile(r"\W+")


@dataclass(frozen=True)
class ChunkPair:
    doc_id: str
    text: str  # the chunk: EBAE reconstructs it
    next_text: str  # the next chunk of the same document: EBAR predicts it


@dataclass
class PairStats:
    documents: int = 0
    pairs: int = 0
    halved: int = 0  # single-chunk documents cut in two (short_docs="halve")
    dropped_short: int = 0  # documents too short to pair (or single-chunk under short_docs="drop")
    examples_dropped: list[str] = field(default_factory=list)  # a few of their ids

    def to_dict(self) -> dict:
        return asdict(self)


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(" ".join(text.split())) if s]


def chunk_document(text: str, chunk_words: int) -> list[str]:
    """Consecutive chunks of whole sentences, each closed once it holds ``chunk_words`` words; a sentence
    longer than ``2 * chunk_words`` words is cut at word boundaries. The last chunk may be shorter."""
    chunks, current, count = [], [], 0
    for sentence in sentences(text):
        words = sentence.split()
        while len(words) > 2 * chunk_words:  # one overlong "sentence" (a table, a list without stops)
            if current:
                chunks.append(" ".join(current))
                current, count = [], 0
            chunks.append(" ".join(words[:chunk_words]))
            words = words[chunk_words:]
        current += words
        count += len(words)
        if count >= chunk_words:
            chunks.append(" ".join(current))
            current, count = [], 0
    if current:
        chunks.append(" ".join(current))
    return chunks


def _halve(text: str) -> tuple[str, str]:
    """Two halves at the sentence boundary nearest the middle word (at the middle word if none)."""
    parts = sentences(text)
    total = sum(len(p.split()) for p in parts)
    if len(parts) > 1:
        best, seen, best_gap = 1, 0, None
        for i, part in enumerate(parts[:-1], 1):
            seen += len(part.split())
            gap = abs(total / 2 - seen)
            if best_gap is None or gap < best_gap:
                best, best_gap = i, gap
        return " ".join(parts[:best]), " ".join(parts[best:])
    words = text.split()
    return " ".join(words[:len(words) // 2]), " ".join(words[len(words) // 2:])


def make_pairs(docs: Iterable[tuple[str, str]], chunk_words: int = 128, short_docs: str = "halve",
               min_words: int = 8) -> tuple[list[ChunkPair], PairStats]:
    """(doc id, text) → every (chunk, next chunk) pair, and what happened to each document."""
    if short_docs not in SHORT_DOC_POLICIES:
        raise ConfigError(f"short_docs {short_docs!r}: expected one of {', '.join(SHORT_DOC_POLICIES)}")
    if chunk_words < min_words:
        raise ConfigError(f"chunk_words {chunk_words} is below min_words {min_words}")
    pairs: list[ChunkPair] = []
    stats = PairStats()
    for doc_id, text in docs:
        stats.documents += 1
        chunks = chunk_document(text, chunk_words)
        if len(chunks) >= 2 and len(chunks[-1].split()) < min_words:  # a stub tail joins its predecessor
            chunks[-2:] = [chunks[-2] + " " + chunks[-1]]
        if len(chunks) == 1 and short_docs == "halve" and len(chunks[0].split()) >= 2 * min_words:
            chunks = list(_halve(chunks[0]))
            stats.halved += 1
        if len(chunks) < 2:
            stats.dropped_short += 1
            if len(stats.examples_dropped) < 5:
                stats.examples_dropped.append(doc_id)
            continue
        pairs += [ChunkPair(doc_id, a, b) for a, b in zip(chunks, chunks[1:])]
    stats.pairs = len(pairs)
    return pairs, stats


def target_ids(text: str, tokenizer, excluded: set[int]) -> list[int]:
    """LLaRA's bag-of-words target: non-word characters to spaces, NLTK English stop words removed
    (case-insensitive), tokenised without special tokens, ids ≤ 2 and ``excluded`` ids dropped,
    deduplicated in first-seen order."""
    words = [w for w in _NON_WORD.sub(" ", text).split() if w.lower() not in NLTK_ENGLISH]
    if not words:
        return []
    ids = tokenizer(" ".join(words), add_special_tokens=False)["input_ids"]
    return list(dict.fromkeys(i for i in ids if i > 2 and i not in excluded))


def excluded_ids(tokenizer) -> set[int]:
    """Ids never used as targets: the tokenizer's special tokens, including added ones (<s1>..<s16>)."""
    added = [i for i, tok in tokenizer.added_tokens_decoder.items() if tok.special]
    return set(tokenizer.all_special_ids) | set(added)


def read_text_files(paths: Sequence[Path]) -> list[tuple[str, str]]:
    """Plain-text documents: one per file, or one per line of a ``.jsonl`` file (``text``, optional
    ``title`` and ``_id``/``id``)."""
    docs: list[tuple[str, str]] = []
    for path in paths:
        if not path.is_file():
            raise ConfigError(f"corpus file {path} not found")
        if path.suffix != ".jsonl":
            docs.append((path.name, path.read_text(encoding="utf-8")))
            continue
        for lineno, obj in iter_jsonl(path):
            if not isinstance(obj.get("text"), str):
                raise DataFormatError(path, "expected an object with a string 'text'", line=lineno, field="text")
            docs.append((str(obj.get("_id", obj.get("id", f"{path.name}:{lineno}"))),
                         titled(obj.get("title") or "", obj["text"])))
    return docs


def titled(title: str, text: str) -> str:
    """A document's text for adaptation: ``"title. text"``, or the text alone."""
    return f"{title}. {text}" if title else text


def dataset_docs(dataset) -> list[tuple[str, str]]:
    """(id, titled text) of each document of a harness dataset's corpus."""
    corpus = dataset.corpus
    return [(i, titled(title, text)) for i, title, text in zip(corpus.ids, corpus.titles, corpus.texts)]

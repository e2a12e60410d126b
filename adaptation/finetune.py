"""Contrastive fine-tuning: InfoNCE over one positive and N hard negatives per query, with the other
queries' passages in the batch as negatives too (LLaRA's and Tevatron's recipe).

Queries are encoded with the predict prompt, passages with the summarize prompt (the model's encoding
contract, token for token as at inference), scores are cosine similarities over a temperature (0.01).
Training groups come from a dataset's train-split qrels (BEIR layout), with negatives mined by the
harness (BM25 or any registry encoder) from the top of its ranking with every judged-relevant document
left out, or from a Tevatron-style JSONL (``query``, ``positive_passages``, ``negative_passages``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from llara_bench.harness.datasets import Dataset
from llara_bench.harness.datasets.beir_folder import iter_jsonl
from llara_bench.harness.errors import ConfigError, DataFormatError
from llara_bench.models.base import EncodingContract
from llara_bench.models.decoder import collate, embed, input_ids

Passage = tuple[str, str]  # (title, text)


@dataclass
class TrainGroup:
    query: str
    positives: list[Passage]
    negatives: list[Passage]


@dataclass(frozen=True)
class ContrastiveSettings:
    negatives: int = 15  # hard negatives per query (LLaRA: train_group_size 16)
    temperature: float = 0.01
    query_max_length: int = 64  # total tokens, prompt included (LLaRA's README example)
    passage_max_length: int = 160


def mine_groups(dataset: Dataset, split: str, miner: str = "bm25", depth: int = 100,
                device: str | None = None) -> list[TrainGroup]:
    """A group per judged query of ``split``: its relevant documents, and the miner's top ``depth`` minus
    every judged-relevant document as hard negatives, in rank order."""
    from llara_bench.models import REGISTRY

    qrels = dataset.split(split).qrels
    queries = {q: dataset.queries[q] for q in qrels if any(g > 0 for g in qrels[q].values())}
    if not queries:
        raise ConfigError(f"dataset {dataset.name}: split {split!r} judges no query relevant")
    ranked = _rank(REGISTRY.get(miner), dataset, list(queries.values()), depth, device)
    row = {doc_id: i for i, doc_id in enumerate(dataset.corpus.ids)}
    corpus = dataset.corpus

    def passage(doc_id: str) -> Passage:
        return corpus.titles[row[doc_id]], corpus.texts[row[doc_id]]

    groups = []
    for (qid, text), hits in zip(queries.items(), ranked):
        relevant = {d for d, g in qrels[qid].items() if g > 0}
        positives = [passage(d) for d in qrels[qid] if d in relevant and d in row]
        if positives:
            groups.append(TrainGroup(text, positives, [passage(d) for d in hits if d not in relevant]))
    return groups


def _rank(entry, dataset: Dataset, queries: list[str], depth: int, device: str | None) -> list[list[str]]:
    corpus = dataset.corpus
    if entry.meta.kind == "lexical":
        retriever = entry.load()
        retriever.index(corpus.ids, corpus.texts, corpus.titles)
        return retriever.search(queries, depth)[1]
    from llara_bench.harness.search import build_index, search_index

    encoder = entry.load(**({"device": device} if device else {}))
    docs = encoder.encode(corpus.texts, "passage", titles=corpus.titles).vectors
    index = build_index(docs)
    return search_index(index, encoder.encode(queries, "query").vectors, corpus.ids, depth).doc_ids


def read_tevatron_jsonl(path: Path) -> list[TrainGroup]:
    """Tevatron's training format: one object per line with ``query`` and ``positive_passages`` /
    ``negative_passages`` lists of ``{docid, title, text}``."""
    groups = []
    for lineno, obj in iter_jsonl(path):
        if not isinstance(obj.get("query"), str):
            raise DataFormatError(path, "expected an object with a string 'query'", line=lineno, field="query")
        lists = {}
        for key in ("positive_passages", "negative_passages"):
            items = obj.get(key, [])
            if not isinstance(items, list) or not all(isinstance(p, dict) and isinstance(p.get("text"), str)
                                                      for p in items):
                raise DataFormatError(path, "expected a list of {docid, title, text} objects", line=lineno,
                                      field=key)
            lists[key] = [(p.get("title") or "", p["text"]) for p in items]
        if not lists["positive_passages"]:
            raise DataFormatError(path, "expected at least one positive passage", line=lineno,
                                  field="positive_passages")
        groups.append(TrainGroup(obj["query"], lists["positive_passages"], lists["negative_passages"]))
    if not groups:
        raise DataFormatError(path, "no training groups")
    return groups


def sample_group(group: TrainGroup, n_negatives: int, rng: random.Random,
                 fallback: Sequence[Passage]) -> list[Passage]:
    """[positive, negative × n] for one step: a random positive, negatives drawn from the group's without
    replacement (with replacement when it has too few; from ``fallback`` when it has none)."""
    pool_ = group.negatives or list(fallback)
    negatives = rng.sample(pool_, n_negatives) if len(pool_) >= n_negatives else \
        [rng.choice(pool_) for _ in range(n_negatives)]
    return [rng.choice(group.positives), *negatives]


class ContrastiveBatches:
    """Builds tokenised batches of groups for `contrastive_loss`."""

    def __init__(self, groups: list[TrainGroup], tokenizer, contract: EncodingContract, pad_id: int,
                 settings: ContrastiveSettings, seed: int = 0):
        from dataclasses import replace

        self.groups, self.tokenizer, self.pad_id, self.settings, self.seed = groups, tokenizer, pad_id, settings, seed
        self.contract = replace(contract, query_max_length=settings.query_max_length,
                                passage_max_length=settings.passage_max_length)
        self.fallback = [p for g in groups for p in g.positives]

    def __call__(self, indices: list[int]):
        rng = random.Random(hash((self.seed, *indices)) & 0xFFFFFFFF)
        chosen = [self.groups[i] for i in indices]
        passages = [p for g in chosen for p in sample_group(g, self.settings.negatives, rng, self.fallback)]
        q = input_ids(self.tokenizer, self.contract, "query", [g.query for g in chosen])
        p = input_ids(self.tokenizer, self.contract, "passage", [t for _, t in passages], [t for t, _ in passages])
        return collate(q, self.pad_id, self.contract.padding_side), \
            collate(p, self.pad_id, self.contract.padding_side)


def contrastive_loss(model, batch, contract: EncodingContract, temperature: float):
    """InfoNCE: each query against every passage of the batch; its own positive is the target."""
    import torch

    queries, passages = batch
    q = embed(model, queries, contract)
    p = embed(model, passages, contract)
    scores = q @ p.T / temperature
    group = p.shape[0] // q.shape[0]
    target = torch.arange(q.shape[0], device=scores.device) * group
    loss = torch.nn.functional.cross_entropy(scores, target)
    accuracy = float((scores.argmax(dim=1) == target).float().mean())
    return loss, {"loss": float(loss.detach()), "accuracy": accuracy}


def groups_summary(groups: list[TrainGroup]) -> dict:
    return {"groups": len(groups), "positives": int(sum(len(g.positives) for g in groups)),
            "mean_negatives": float(np.mean([len(g.negatives) for g in groups])) if groups else 0.0}

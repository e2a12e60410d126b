"""The one dataset type every source produces: a corpus, queries, and graded qrels per split."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Iterator, Mapping

Qrels = dict[str, dict[str, int]]  # query id -> doc id -> grade (raw; may be negative)
# the largest grade (either sign) a qrels file may hold: real ones are small (TREC 0-3, Cranfield -1..4), and
# trec_eval allocates memory per grade level (a grade of 2**31 took 16 GB and 37 s)
MAX_GRADE = 1000


@dataclass
class Corpus:
    """Documents as parallel lists (compact at MS MARCO scale, order preserved)."""

    ids: list[str] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, doc_id: str, title: str, text: str) -> None:
        self.ids.append(doc_id)
        self.titles.append(title)
        self.texts.append(text)


@dataclass
class Split:
    """What one evaluation needs: the judged queries of a split and their qrels."""

    name: str
    queries: dict[str, str]  # judged queries only, in file order
    qrels: Qrels
    unjudged_queries: int  # queries in the file with no judgment in this split
    unknown_doc_rows: int = 0  # judgments whose document is not in the corpus (they count as never retrieved)


@dataclass
class Dataset:
    name: str
    source: str  # e.g. "beir-folder:/data/scifact", "irds:msmarco-passage/dev/small"
    corpus: Corpus
    queries: dict[str, str]
    qrels: dict[str, Qrels]  # split name -> qrels
    notes: list[str] = field(default_factory=list)  # loader observations worth recording
    qrels_sources: dict[str, str] = field(default_factory=dict)  # split name -> its qrels file (default: source)
    _fingerprints: dict[str | None, str] = field(default_factory=dict, repr=False, compare=False)
    _unknown_doc_rows: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    @property
    def splits(self) -> list[str]:
        return sorted(self.qrels)

    def changed(self) -> None:
        """Call after editing the corpus, queries or qrels in place: the memoised fingerprints are stale."""
        self._fingerprints.clear()
        self._unknown_doc_rows.clear()

    def split(self, name: str) -> Split:
        """The judged queries and qrels of one split (BEIR's rule: only judged queries are run)."""
        from llara_bench.harness.errors import UnknownNameError

        if name not in self.qrels:
            raise UnknownNameError(f"split of dataset {self.name!r}", name, self.splits)
        qrels = self.qrels[name]
        judged = {qid: text for qid, text in self.queries.items() if qid in qrels}
        return Split(name, judged, qrels, unjudged_queries=len(self.queries) - len(judged),
                     unknown_doc_rows=self._judgments_outside_corpus(name))

    def qrels_source(self, split: str) -> str:
        return self.qrels_sources.get(split, self.source)

    def _judgments_outside_corpus(self, split: str) -> int:
        """How many judgments of ``split`` name a document the corpus lacks (counted once per split). A split
        none of whose judged documents is in the corpus is refused: every score would be 0, which is not a
        result but the wrong qrels or the wrong corpus."""
        from llara_bench.harness.errors import DataFormatError

        if split not in self._unknown_doc_rows:
            rows = [doc for judged in self.qrels[split].values() for doc in judged]
            judged_ids = set(rows)  # a few thousand: no set of the whole corpus (MS MARCO's is 8.8M ids)
            present = {doc for doc in self.corpus.ids if doc in judged_ids}
            unknown = [doc for doc in rows if doc not in present]
            if rows and len(unknown) == len(rows):
                raise DataFormatError(self.qrels_source(split), f"none of the {len(rows):,} judgments of split "
                                      f"{split!r} names a document of the corpus of {self.name!r} (e.g. "
                                      f"{unknown[0][:60]!r} is not a corpus id), so every score would be 0; "
                                      "expected the qrels of this corpus (check the corpus-id column)")
            self._unknown_doc_rows[split] = len(unknown)
        return self._unknown_doc_rows[split]

    def fingerprint(self, split: str | None = None) -> str:
        """sha256 over the canonical content (ids, titles, texts, queries, qrels), source-agnostic:
        the same collection loaded from a BEIR folder or ir_datasets gets the same fingerprint.
        Computed once per split (a dataset is not changed after loading)."""
        if split not in self._fingerprints:
            h = hashlib.sha256()
            for row in _canonical_rows(self, split):
                h.update(row.encode("utf-8"))
            self._fingerprints[split] = "sha256:" + h.hexdigest()
        return self._fingerprints[split]

    def corpus_fingerprint(self) -> str:
        """sha256 over the corpus alone (ids, titles, texts): what corpus embeddings depend on."""
        if "<corpus>" not in self._fingerprints:
            h = hashlib.sha256()
            for doc_id, title, text in zip(self.corpus.ids, self.corpus.titles, self.corpus.texts):
                h.update(f"D\t{doc_id}\t{title}\t{text}\n".encode("utf-8"))
            self._fingerprints["<corpus>"] = "sha256:" + h.hexdigest()
        return self._fingerprints["<corpus>"]


def _canonical_rows(ds: Dataset, split: str | None) -> Iterator[str]:
    for doc_id, title, text in zip(ds.corpus.ids, ds.corpus.titles, ds.corpus.texts):
        yield f"D\t{doc_id}\t{title}\t{text}\n"
    for qid, text in ds.queries.items():
        yield f"Q\t{qid}\t{text}\n"
    splits: Mapping[str, Qrels] = ds.qrels if split is None else {split: ds.qrels[split]}
    for name in sorted(splits):
        for qid in sorted(splits[name]):
            for doc_id, grade in sorted(splits[name][qid].items()):
                yield f"R\t{name}\t{qid}\t{doc_id}\t{grade}\n"

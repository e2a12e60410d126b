"""Datasets from ir_datasets ids (e.g. ``msmarco-passage/dev/small``).

ir_datasets downloads and caches the canonical files on first use; offline, it reads its cache
(``IR_DATASETS_HOME``). Locally built datasets (``ir_datasets.create_dataset`` registered under an
id) load the same way.
"""

from __future__ import annotations

from llara_bench.harness.datasets.model import Corpus, Dataset
from llara_bench.harness.errors import DataFormatError, UnknownNameError


def split_name(dataset_id: str) -> str:
    """The split an id names: everything after the collection, e.g. 'dev/small' for
    'msmarco-passage/dev/small' (a bare collection id has no judged split: 'all')."""
    _, _, rest = dataset_id.partition("/")
    return rest or "all"


def load_irds(dataset_id: str) -> Dataset:
    import ir_datasets

    try:
        ds = ir_datasets.load(dataset_id)
    except KeyError:
        known = list(ir_datasets.registry._registered.keys())  # no public listing API
        raise UnknownNameError("ir_datasets id", dataset_id, known) from None
    source = f"irds:{dataset_id}"
    for part in ("docs", "queries", "qrels"):
        if not getattr(ds, f"has_{part}")():
            raise DataFormatError(source, f"ir_datasets id has no {part}; expected an id with docs, queries "
                                          "and qrels (e.g. msmarco-passage/dev/small)")
    corpus = Corpus()
    for doc in ds.docs_iter():
        title = getattr(doc, "title", "") or ""
        text = getattr(doc, "text", None)
        corpus.add(doc.doc_id, title, text if text is not None else doc.default_text())
    queries: dict[str, str] = {}
    for query in ds.queries_iter():
        text = getattr(query, "text", None)
        queries[query.query_id] = text if text is not None else query.default_text()
    qrels: dict[str, dict[str, int]] = {}
    doc_ids = set(corpus.ids)
    missing_docs: set[str] = set()
    for row in ds.qrels_iter():
        if row.query_id not in queries:
            raise DataFormatError(source, f"qrels name query id {row.query_id!r}, which is not among its queries",
                                  field="query_id")
        grade = int(row.relevance)
        previous = qrels.get(row.query_id, {}).get(row.doc_id)
        if previous is not None and previous != grade:
            raise DataFormatError(source, f"conflicting grades for ({row.query_id!r}, {row.doc_id!r}): "
                                          f"{previous} and {grade}", field="relevance")
        if row.doc_id not in doc_ids:
            missing_docs.add(row.doc_id)
        qrels.setdefault(row.query_id, {})[row.doc_id] = grade
    dataset = Dataset(name=dataset_id, source=source, corpus=corpus, queries=queries,
                      qrels={split_name(dataset_id): qrels})
    if missing_docs:
        dataset.notes.append(f"{source}: {len(missing_docs)} judged doc ids are not in the corpus "
                             "(they count as never retrieved)")
    return dataset

"""Datasets from ir_datasets ids (e.g. ``msmarco-passage/dev/small``).

ir_datasets downloads and caches the canonical files on first use; offline (or under ``--plan-only``,
see `harness.datasets.downloads`) it reads its cache (``IR_DATASETS_HOME``) and a file missing there is
refused in one line rather than fetched. Locally built datasets (``ir_datasets.create_dataset``
registered under an id) load the same way.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from typing import Iterator
from unittest import mock

from llara_bench.harness.datasets.downloads import DownloadRefused, refusal
from llara_bench.harness.datasets.model import Corpus, Dataset
from llara_bench.harness.errors import DataFormatError, UnknownNameError


def split_name(dataset_id: str) -> str:
    """The split an id names: everything after the collection, e.g. 'dev/small' for
    'msmarco-passage/dev/small' (a bare collection id has no judged split: 'all')."""
    _, _, rest = dataset_id.partition("/")
    return rest or "all"


def load_irds(dataset_id: str) -> Dataset:
    """The dataset of an ir_datasets id; its files are fetched on first use unless downloads are refused
    (`harness.datasets.downloads.refusal`), when a missing one raises `DownloadRefused`."""
    ds = _irds(dataset_id)
    with _fetches_refused(f"irds:{dataset_id}", refusal()):
        return _read(ds, dataset_id)


def irds_size(dataset_id: str) -> tuple[int | None, int | None]:
    """(documents, queries) from the counts ir_datasets ships for its published datasets, read without
    downloading anything; None for a count it does not know (a locally built dataset)."""
    ds = _irds(dataset_id)
    return (ds.docs_count() if ds.has_docs() else None), (ds.queries_count() if ds.has_queries() else None)


def _irds(dataset_id: str):
    import ir_datasets

    try:
        return ir_datasets.load(dataset_id)
    except KeyError:
        known = list(ir_datasets.registry._registered.keys())  # no public listing API
        raise UnknownNameError("ir_datasets id", dataset_id, known) from None


class _Fetch(BaseException):
    """Raised where ir_datasets would open a network stream. A BaseException, so that its mirror loop (which
    catches Exception, logs "Download failed" and tries the next mirror) lets it through to `_fetches_refused`."""

    def __init__(self, url: str):
        super().__init__(url)
        self.url = url


@contextmanager
def _fetches_refused(source: str, reason: str | None) -> Iterator[None]:
    """With a `reason`, every ir_datasets download class that reaches the network (all but the local-file
    one) raises instead of fetching: a file already in the cache is read, a missing one is refused in one
    line. ir_datasets has no offline switch of its own."""
    if reason is None:
        yield
        return
    from ir_datasets import util
    from ir_datasets.util import download

    def refuse(mirror, *args, **kwargs):
        raise _Fetch(str(getattr(mirror, "url", None) or getattr(mirror, "uri", None) or mirror))

    with ExitStack() as patches:
        for cls in download.BaseDownload.__subclasses__():
            if cls is not download.LocalDownload:
                patches.enter_context(mock.patch.object(cls, "stream", refuse))
        # its notes on the way to a fetch (the data usage agreement, where a local copy could go), not the line
        patches.enter_context(mock.patch.object(download._logger, "info", lambda *args, **kwargs: None))
        try:
            yield
        except _Fetch as fetch:
            raise DownloadRefused(f"{source} is not in ir_datasets' cache {util.home_path()} (it would fetch "
                                  f"{fetch.url}) and {reason}; set IR_DATASETS_HOME to the folder that holds its "
                                  "files, or go online to download them") from None


def _read(ds, dataset_id: str) -> Dataset:
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

"""Load a BEIR-layout folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.

Survives what real BEIR data has (CRLF qrels, empty or null titles, newlines inside texts, queries
without judgments, negative grades) and rejects malformed input with a `DataFormatError` that
names the file, the line and what was expected.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterator

from llara_bench.harness.datasets.model import MAX_GRADE, Corpus, Dataset, Qrels
from llara_bench.harness.errors import DataFormatError
from llara_bench.harness.failures import reason_and_advice

QRELS_HEADER = ["query-id", "corpus-id", "score"]


def load_beir_folder(folder: str | Path, name: str | None = None, splits: list[str] | None = None) -> Dataset:
    """Load the corpus, the queries and the qrels of `splits` (default: every qrels/*.tsv)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFormatError(folder, "dataset folder not found (expected a folder with corpus.jsonl, "
                                      "queries.jsonl and qrels/<split>.tsv)")
    corpus = _load_corpus(folder / "corpus.jsonl")
    queries = _load_queries(folder / "queries.jsonl")
    qrels_dir = folder / "qrels"
    available = sorted(p.stem for p in qrels_dir.glob("*.tsv")) if qrels_dir.is_dir() else []
    if not available:
        raise DataFormatError(qrels_dir, "no qrels found (expected qrels/<split>.tsv, e.g. qrels/test.tsv)")
    wanted = available if splits is None else splits
    for split in wanted:
        if split not in available:
            raise DataFormatError(qrels_dir / f"{split}.tsv",
                                  f"split {split!r} not found; available splits: {', '.join(available)}")
    doc_ids = set(corpus.ids)
    dataset = Dataset(name=name or folder.name, source=f"beir-folder:{folder}", corpus=corpus,
                      queries=queries, qrels={})
    for split in wanted:
        path = qrels_dir / f"{split}.tsv"
        qrels, missing_docs = _load_qrels(path, queries, doc_ids)
        dataset.qrels[split] = qrels
        dataset.qrels_sources[split] = str(path)
        if missing_docs:
            dataset.notes.append(f"{path}: {missing_docs} judged doc ids are not in the corpus "
                                 "(they count as never retrieved)")
    return dataset


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, decoded line without its line ending), rejecting bad UTF-8 by line."""
    if not path.is_file():
        raise DataFormatError(path, "file not found" if not path.exists() else "expected a file, found a folder")
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise DataFormatError(path, f"cannot read this file: {reason_and_advice(exc)}") from None
    with fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataFormatError(path, f"not valid UTF-8 ({exc.reason} at byte {exc.start})",
                                      line=lineno) from None
            if lineno == 1 and line.startswith("\ufeff"):
                line = line[1:]  # a byte-order mark some editors write
            yield lineno, line.rstrip("\r\n")


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    for lineno, line in iter_lines(path):
        if not line.strip():
            continue  # blank lines carry nothing
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataFormatError(path, f"invalid JSON ({exc.msg} at column {exc.colno}); "
                                        "expected one JSON object per line", line=lineno) from None
        except RecursionError:
            raise DataFormatError(path, "invalid JSON (nested too deeply); expected one JSON object per line",
                                  line=lineno) from None
        if not isinstance(obj, dict):
            raise DataFormatError(path, f"expected a JSON object, got {type(obj).__name__}", line=lineno)
        if "\\u" in line:  # only a JSON escape can make a lone surrogate, which no encoder or evaluator takes
            _refuse_surrogates(path, lineno, obj)
        yield lineno, obj


_SURROGATE = re.compile("[\ud800-\udfff]")


def _refuse_surrogates(path: Path, lineno: int, obj: dict) -> None:
    for key, value in obj.items():
        for text, what in ((key, "a key"), (value, "its value")):
            if isinstance(text, str) and _SURROGATE.search(text):
                raise DataFormatError(path, f"{what} holds a lone surrogate ({ascii(text)[:60]}: an escape such as "
                                            "\\udfff that is not a character); expected text", line=lineno,
                                      field=ascii(key)[1:-1])


def _string_field(path: Path, lineno: int, obj: dict, key: str, *, required: bool, non_empty: bool = False) -> str:
    if key not in obj or obj[key] is None:
        if required:
            raise DataFormatError(path, "missing; expected a string", line=lineno, field=key)
        return ""
    value = obj[key]
    if not isinstance(value, str):
        raise DataFormatError(path, f"expected a string, got {type(value).__name__} {value!r:.40}",
                              line=lineno, field=key)
    if non_empty and not value.strip():
        raise DataFormatError(path, "expected a non-empty string", line=lineno, field=key)
    return value


def _unique_id(path: Path, lineno: int, obj: dict, first_line: dict[str, int], kind: str) -> str:
    ident = _string_field(path, lineno, obj, "_id", required=True, non_empty=True)
    if re.search(r"\s", ident):  # a TREC run or qrels file (which a run writes) would split it in two
        raise DataFormatError(path, f"{kind} id {ident[:60]!r} contains whitespace; expected an id without spaces, "
                                    "tabs or line breaks (TREC run and qrels files separate fields by whitespace)",
                              line=lineno, field="_id")
    if ident in first_line:
        raise DataFormatError(path, f"duplicate {kind} id {ident!r} (first on line {first_line[ident]})",
                              line=lineno, field="_id")
    first_line[ident] = lineno
    return ident


def _load_corpus(path: Path) -> Corpus:
    corpus = Corpus()
    first_line: dict[str, int] = {}
    for lineno, obj in iter_jsonl(path):
        doc_id = _unique_id(path, lineno, obj, first_line, "document")
        title = _string_field(path, lineno, obj, "title", required=False)
        text = _string_field(path, lineno, obj, "text", required=True)
        corpus.add(doc_id, title, text)
    if not len(corpus):
        raise DataFormatError(path, "no documents (expected one JSON object per line)")
    if not any(text.strip() for text in corpus.texts) and not any(title.strip() for title in corpus.titles):
        raise DataFormatError(path, f"all {len(corpus):,} documents are empty (no title, no text): nothing can be "
                                    "retrieved; expected documents with text")
    return corpus


def _load_queries(path: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for lineno, obj in iter_jsonl(path):
        qid = _unique_id(path, lineno, obj, first_line, "query")
        queries[qid] = _string_field(path, lineno, obj, "text", required=True, non_empty=True)
    if not queries:
        raise DataFormatError(path, "no queries (expected one JSON object per line)")
    return queries


def _load_qrels(path: Path, queries: dict[str, str], doc_ids: set[str]) -> tuple[Qrels, int]:
    """Parse `query-id<TAB>corpus-id<TAB>score` rows; the header line is optional."""
    qrels: Qrels = {}
    seen_at: dict[tuple[str, str], int] = {}
    missing_docs: set[str] = set()
    unknown_queries: dict[str, int] = {}  # query id -> its first line
    unknown_query_rows = 0
    first = True
    for lineno, line in iter_lines(path):
        if not line.strip():
            continue
        cols = line.split("\t")
        is_first, first = first, False
        if is_first and [c.strip().lower() for c in cols] == QRELS_HEADER:
            continue
        if len(cols) != 3:
            hint = " (this looks like TREC qrels 'qid iter docid rel': convert to BEIR's 3 columns)" \
                if len(line.split()) == 4 else ""
            raise DataFormatError(path, f"expected 3 tab-separated columns query-id, corpus-id, score; "
                                        f"got {len(cols)}{hint}", line=lineno)
        qid, doc_id, score = (c.strip() for c in cols)
        if is_first and not _is_int(score):
            raise DataFormatError(path, f"expected the header 'query-id\\tcorpus-id\\tscore' or a judgment row, "
                                        f"got {line!r:.60}", line=lineno)
        if not qid or not doc_id:
            raise DataFormatError(path, "empty query-id or corpus-id", line=lineno)
        if not _is_int(score) or abs(int(score)) > MAX_GRADE:
            raise DataFormatError(path, f"expected an integer grade from -{MAX_GRADE} to {MAX_GRADE}, got "
                                        f"{score[:40]!r}", line=lineno, field="score")
        if qid not in queries:  # counted to the end of the file, so that the error says how many
            unknown_queries.setdefault(qid, lineno)
            unknown_query_rows += 1
            continue
        grade = int(score)
        previous = qrels.get(qid, {}).get(doc_id)
        if previous is not None and previous != grade:
            raise DataFormatError(path, f"conflicting grades for ({qid!r}, {doc_id!r}): {previous} on line "
                                        f"{seen_at[qid, doc_id]}, {grade} here", line=lineno, field="score")
        seen_at[qid, doc_id] = lineno
        if doc_id not in doc_ids:
            missing_docs.add(doc_id)
        qrels.setdefault(qid, {})[doc_id] = grade
    if unknown_queries:
        qid, lineno = next(iter(unknown_queries.items()))
        raise DataFormatError(path, f"query id {qid!r} is not in queries.jsonl ({unknown_query_rows:,} judgment "
                                    f"rows of this file name {len(unknown_queries):,} query ids it lacks); expected "
                                    "the qrels of these queries", line=lineno, field="query-id")
    if not qrels:
        raise DataFormatError(path, "no judgments (expected rows query-id<TAB>corpus-id<TAB>score)")
    return qrels, len(missing_docs)


def _is_int(text: str) -> bool:
    """ASCII digits with an optional sign (int() would also take '1_0' and non-ASCII digits)."""
    return re.fullmatch(r"[+-]?[0-9]+", text) is not None

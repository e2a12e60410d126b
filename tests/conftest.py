"""Shared fixtures. Real data and models live outside the repository: tests that need them read
LLARA_BENCH_SHARED_DATA / LLARA_BENCH_SHARED_MODELS and skip cleanly when they are absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _shared(var: str) -> Path:
    value = os.environ.get(var)
    if not value or not Path(value).is_dir():
        pytest.skip(f"{var} is not set to a folder (real shared assets absent)")
    return Path(value)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return _shared("LLARA_BENCH_SHARED_DATA")


@pytest.fixture(scope="session")
def shared_models() -> Path:
    return _shared("LLARA_BENCH_SHARED_MODELS")


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache_and_models_file(tmp_path_factory):
    """Built models (tiny-llama) go to a per-session cache, and the user's own models file is not read."""
    mp = pytest.MonkeyPatch()
    if "LLARA_BENCH_CACHE" not in os.environ:
        mp.setenv("LLARA_BENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
    mp.setenv("LLARA_BENCH_MODELS_FILE", str(tmp_path_factory.mktemp("config") / "encoders.yaml"))
    yield
    mp.undo()


def cache_with_session_models(folder: Path) -> Path:
    """An empty LLARA_BENCH_CACHE whose models/ is the session's: a test that needs a cold embedding cache
    still finds tiny-llama built, and what it builds first is there for the rest of the session."""
    from llara_bench.models.cache import cache_root

    shared = cache_root() / "models"
    shared.mkdir(parents=True, exist_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "models").symlink_to(shared, target_is_directory=True)
    return folder


@pytest.fixture(scope="session")
def make_cache_with_session_models():
    return cache_with_session_models


@pytest.fixture(scope="session")
def smoke_run_dir(tmp_path_factory) -> Path:
    """`llara-bench run --suite smoke` through the CLI, as a user runs it: results and the report."""
    from typer.testing import CliRunner

    from llara_bench.harness.cli import app

    out = tmp_path_factory.mktemp("smoke-runs")
    result = CliRunner().invoke(app, ["run", "--suite", "smoke", "-o", str(out)], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    (run_dir,) = out.iterdir()
    return run_dir


class SentenceEmbeddingMemo:
    """The sentence-transformers forward pass, remembered row by row: a row's sentence embedding is looked up by
    the model's weights and configuration and the row's token ids, and only the rows never seen are computed.

    SciFact's 5,183 documents are the suite's costliest MiniLM work, and three sides encode them: the harness,
    BEIR's `SentenceBERT` and `mteb.evaluate` (through the adapter). Each still formats, tokenizes, pools,
    normalises, searches and scores on its own, so a side that joined a title or truncated differently would
    send other token ids, miss, and be computed (and caught) as before; identical ids share one computation."""

    def __init__(self) -> None:
        import weakref

        self.rows: dict[tuple, object] = {}
        self.hits = self.misses = 0
        self._digests: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def _digest(self, model) -> str:
        import hashlib

        import torch

        if model not in self._digests:
            h = hashlib.sha256(repr(model).encode())  # modules and their settings: max length, pooling, ...
            for name, tensor in model.state_dict().items():
                h.update(name.encode())
                h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
            self._digests[model] = h.hexdigest()
        return self._digests[model]

    def wrap(self, forward):
        import functools

        import torch

        @functools.wraps(forward)  # __wrapped__: the model's own forward pass
        def memo_forward(model, features, **kwargs):
            tensors = {k: v for k, v in features.items() if isinstance(v, torch.Tensor)}  # besides e.g. modality
            if kwargs or model.training or set(tensors) - {"input_ids", "attention_mask", "token_type_ids"}:
                return forward(model, features, **kwargs)
            digest, mask = self._digest(model), tensors["attention_mask"].bool()
            names = sorted(set(tensors) - {"attention_mask"})  # input_ids, token_type_ids: the row's real tokens
            keys = [(digest, *(tuple(tensors[k][i][mask[i]].tolist()) for k in names)) for i in range(len(mask))]
            missing = [i for i, key in enumerate(keys) if key not in self.rows]
            if missing:
                part = {k: v[missing] if k in tensors else v for k, v in features.items()}
                computed = forward(model, part)["sentence_embedding"].detach()
                self.rows.update((keys[i], row) for i, row in zip(missing, computed))
            self.misses += len(missing)
            self.hits += len(keys) - len(missing)
            return dict(features, sentence_embedding=torch.stack([self.rows[key] for key in keys]))

        return memo_forward


@pytest.fixture(scope="session")
def _sentence_embedding_memo() -> SentenceEmbeddingMemo:
    return SentenceEmbeddingMemo()


@pytest.fixture
def shared_sentence_embeddings(_sentence_embedding_memo, monkeypatch) -> SentenceEmbeddingMemo:
    """For this test, sentence-transformers' forward pass goes through the session's memo (see above)."""
    from sentence_transformers import SentenceTransformer

    monkeypatch.setattr(SentenceTransformer, "forward", _sentence_embedding_memo.wrap(SentenceTransformer.forward))
    return _sentence_embedding_memo

# Searches an embedding store in a fresh process, so that its peak RSS (VmHWM: this process image's
# peak; ru_maxrss would carry over the parent's across exec) is the search's alone.
_SEARCH_CHILD = """
import json, sys, time
import numpy as np
from llara_bench.harness.embedding_store import EmbeddingStore, StoreLayout
from llara_bench.harness.search import index_blocks, search_index, search_store
folder, layout, budget, mode, n_queries, k = sys.argv[1], json.loads(sys.argv[2]), *map(int, sys.argv[3:4]), \\
    sys.argv[4], *map(int, sys.argv[5:7])
store = EmbeddingStore(folder, StoreLayout(**layout))
queries = np.random.default_rng(1).standard_normal((n_queries, layout["dim"])).astype(np.float32)
ids = [str(i) for i in range(layout["n_rows"])]
start = time.perf_counter()
if mode == "shard-and-merge":
    hits = search_store(queries, store, ids, k, budget)
else:  # the runner's in-memory path: a flat index filled shard by shard
    hits = search_index(index_blocks(store.blocks(layout["rows_per_shard"]), layout["dim"], layout["n_rows"],
                                     use_gpu=False),
                        queries, ids, k)
seconds = time.perf_counter() - start
peak = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"seconds": seconds, "peak_rss": peak, "ids": hits.doc_ids, "scores": hits.scores.tolist()}))
"""


@pytest.fixture(scope="session")
def search_in_child():
    """search(store, budget_bytes, mode, n_queries=200, k=100) -> {seconds, peak_rss, ids, scores}, run in a
    fresh Python process (mode: "shard-and-merge" or "in-memory")."""
    import json
    import subprocess
    import sys

    def search(store, budget: int, mode: str, n_queries: int = 200, k: int = 100) -> dict:
        out = subprocess.run([sys.executable, "-c", _SEARCH_CHILD, str(store.folder),
                              json.dumps(store.layout.__dict__), str(budget), mode, str(n_queries), str(k)],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-3000:]
        return json.loads(out.stdout)

    return search


def synthetic_store(folder: Path, n_rows: int, dim: int, rows_per_shard: int, seed: int = 0):
    """An embedding store of standard-normal float32 vectors, written shard by shard."""
    import numpy as np

    from llara_bench.harness.embedding_store import EmbeddingStore, StoreLayout

    layout = StoreLayout({"corpus": f"synthetic-{n_rows}x{dim}-{seed}"}, n_rows, dim, "float32", rows_per_shard)
    store = EmbeddingStore(folder, layout)
    rng = np.random.default_rng(seed)
    for shard in store.missing():
        store.write_shard(shard, rng.standard_normal((len(layout.shard_rows(shard)), dim), dtype=np.float32))
    return store


@pytest.fixture(scope="session")
def make_synthetic_store():
    return synthetic_store

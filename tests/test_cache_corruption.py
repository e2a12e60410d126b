"""The embedding cache never serves a damaged shard: each kind of damage (flipped bytes, swapped shards, NaN
written in, an altered query shard, a truncated or empty shard, a missing record, a cache written before
shards had checksums) is found on reuse, said in one warning line, and encoded again, so the rerun's TREC
run and scores are a clean run's. NaN from an encoder stops the run naming the model and document; a changed
--shard-rows reuses the cache as it is, in one line; SIGINT and SIGTERM mid-encode say what was kept, exit
130 and 143, and leave no temporary file behind.

A hashed bag-of-words encoder stands in for a model: deterministic, instant, and good enough to rank the
embedded smoke collection (235 documents, 40 queries) in a way any damaged vector would change.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from llara_bench.harness import failures
from llara_bench.harness.runner import CacheOptions, RunConfig, run_suite
from llara_bench.harness.suites import load_suite
from llara_bench.models import REGISTRY, EncodeOutput, EncodingContract, ModelEntry, ModelMeta
from llara_bench.models.errors import NonFiniteEmbeddings

DIM = 64
SHARD_ROWS = 50  # 235 documents: shards of 50, 50, 50, 50, 35; 40 queries: one shard


class HashingEncoder:
    """Each word adds one to a hashed coordinate; vectors are normalised. ``LLARA_TEST_SECONDS_PER_CALL`` slows
    it down (read from the environment, so that the cache key stays the same) for the interruption tests."""

    def __init__(self, meta: ModelMeta, nan_text: str | None = None):
        self.meta, self.nan_text = meta, nan_text

    def encode(self, texts, role, *, titles=None, progress=None) -> EncodeOutput:
        time.sleep(float(os.environ.get("LLARA_TEST_SECONDS_PER_CALL", "0")))
        vectors = np.zeros((len(texts), DIM), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                vectors[i, zlib.crc32(word.encode()) % DIM] += 1
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
        vectors[[t == self.nan_text for t in texts]] = np.nan
        if progress:
            progress(len(texts))
        return EncodeOutput(vectors, n_tokens=sum(len(t.split()) for t in texts))


def _entry(name: str = "hashing", **kwargs) -> ModelEntry:
    meta = ModelMeta(name=name, kind="dense", description="hashed bag of words (tests)", source="tests:hashing",
                     similarity="cosine", dimension=DIM, contract=EncodingContract())
    return ModelEntry(name, HashingEncoder, meta, kwargs, origin="tests")


@pytest.fixture
def hashing(tmp_path, monkeypatch):
    """The hashing encoder registered as ``hashing``, with a cache of its own."""
    monkeypatch.setenv("LLARA_BENCH_CACHE", str(tmp_path / "cache"))
    with REGISTRY.scoped([_entry()]):
        yield tmp_path / "cache"


def _run(tmp_path: Path, name: str, shard_rows: int = SHARD_ROWS) -> tuple[dict, bytes]:
    """(the result, its TREC run file's bytes) of the smoke collection with the hashing encoder."""
    import gzip

    config = RunConfig(suite=load_suite("smoke"), output=tmp_path / "runs", models=["hashing"], name=name,
                       cache=CacheOptions(shard_rows=shard_rows))
    (result,) = run_suite(config).results
    return result, gzip.decompress((tmp_path / "runs" / name / result["run_file"]).read_bytes())


def _folders(cache: Path) -> dict[str, Path]:
    """The corpus ("passage") and query cache folders, by role."""
    import json

    return {json.loads((m).read_text())["key"]["role"]: m.parent for m in cache.glob("embeddings/*/manifest.json")}


def _flip(folder: Path) -> None:
    with open(folder / "shard-00003.npy", "r+b") as fh:
        fh.seek(500)
        data = bytearray(fh.read(4000))
        fh.seek(500)
        fh.write(bytes(b ^ 0xFF for b in data))


def _swap(folder: Path, suffixes=(".npy",)) -> None:
    for suffix in suffixes:
        a, b = folder / f"shard-00001{suffix}", folder / f"shard-00002{suffix}"
        a.rename(folder / "swap")
        b.rename(a)
        (folder / "swap").rename(b)


def _nan(folder: Path) -> None:
    vectors = np.load(folder / "shard-00002.npy")
    vectors[7, 3] = np.nan
    np.save(folder / "shard-00002.npy", vectors)


def _truncate(folder: Path) -> None:
    path = folder / "shard-00003.npy"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _old_cache(folder: Path) -> None:
    import json

    for record in folder.glob("shard-*.json"):  # what an older llara-bench wrote beside each shard: timing only
        notes = json.loads(record.read_text())
        record.write_text(json.dumps({k: notes[k] for k in ("seconds", "items", "tokens", "padded_tokens", "flops")}))


CHANGED = "failed its check (its checksum does not match: the file was changed or swapped)"
CORRUPTIONS = {
    "flipped bytes": (_flip, f"shard-00003.npy {CHANGED}"),
    "swapped shards": (_swap, f"shard-00001.npy {CHANGED}, and 1 more shard: encoding them again"),
    "swapped shards and records": (lambda f: _swap(f, (".npy", ".json")), "its record describes another shard"),
    "NaN written in": (_nan, f"shard-00002.npy {CHANGED}"),
    "truncated": (_truncate, "shard-00003.npy failed its check (it has"),
    "zero-length": (lambda f: (f / "shard-00003.npy").write_bytes(b""), "shard-00003.npy failed its check (it is "
                                                                         "empty)"),
    "zero-length shard and record": (lambda f: [(f / n).write_bytes(b"") for n in ("shard-00003.npy",
                                                                                     "shard-00003.json")],
                                     "(its record shard-00003.json is unreadable)"),
    "missing record": (lambda f: (f / "shard-00003.json").unlink(), "its record shard-00003.json is missing"),
    "old cache without checksums": (_old_cache, "were written without checksums (by an older llara-bench): "
                                                "encoding them again"),
}


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_a_damaged_corpus_shard_is_encoded_again_with_one_warning(kind, tmp_path, hashing, caplog):
    damage, said = CORRUPTIONS[kind]
    clean, clean_trec = _run(tmp_path, "clean")
    damage(_folders(hashing)["passage"])
    with caplog.at_level(logging.WARNING, logger="llara_bench"):
        rerun, rerun_trec = _run(tmp_path, "rerun")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and said in warnings[0] and "\n" not in warnings[0], warnings
    assert rerun["embeddings"]["encoded_items"] > 0  # the damaged shards were encoded again...
    assert rerun_trec == clean_trec and rerun["per_query"] == clean["per_query"]  # ...and nothing damaged was used
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="llara_bench"):
        again, _ = _run(tmp_path, "again")  # now whole again: reused, silently
    assert again["embeddings"]["encoded_items"] == 0 and not caplog.records


def test_an_altered_query_shard_is_encoded_again(tmp_path, hashing, caplog):
    clean, clean_trec = _run(tmp_path, "clean")
    folder = _folders(hashing)["query"]
    vectors = np.load(folder / "shard-00000.npy")
    np.save(folder / "shard-00000.npy", vectors[::-1].copy())  # every query gets another's vector
    with caplog.at_level(logging.WARNING, logger="llara_bench"):
        rerun, rerun_trec = _run(tmp_path, "rerun")
    assert [r.getMessage() for r in caplog.records if "failed its check" in r.getMessage()]
    assert not rerun["embeddings"]["queries_reused"]
    assert rerun_trec == clean_trec and rerun["metrics"] == clean["metrics"]


def test_nan_from_the_encoder_stops_the_run_naming_model_and_document(tmp_path, monkeypatch):
    from llara_bench.harness.datasets import load_dataset

    monkeypatch.setenv("LLARA_BENCH_CACHE", str(tmp_path / "cache"))
    corpus = load_dataset("embedded:smoke", None).corpus
    with REGISTRY.scoped([_entry(nan_text=corpus.texts[123])]):
        with pytest.raises(NonFiniteEmbeddings, match=rf"hashing · smoke: .*NaN or infinite.*document "
                                                      rf"'{corpus.ids[123]}'"):
            _run(tmp_path, "nan")
    folder = _folders(tmp_path / "cache")["passage"]
    assert sorted(p.name for p in folder.glob("shard-*.npy")) == ["shard-00000.npy", "shard-00001.npy"]
    assert not (tmp_path / "runs" / "nan" / "results").exists()  # no result from the bad vectors
    assert not failures._kept  # an error is not an interruption: no "kept for a rerun" left behind for one


def test_nan_from_the_encoder_is_one_line_and_status_2_on_the_command_line(tmp_path, monkeypatch, capsys):
    from llara_bench.harness import cli

    monkeypatch.setenv("LLARA_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(sys, "argv", ["llara-bench", "run", "-m", "hashing", "--no-report", "-o",
                                      str(tmp_path / "runs"), "--shard-rows", "50"])
    from llara_bench.harness.datasets import load_dataset

    text = load_dataset("embedded:smoke", None).corpus.texts[0]
    with REGISTRY.scoped([_entry(nan_text=text)]), pytest.raises(SystemExit) as exit_:
        cli.main()
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "NaN or infinite" in lines[0] and "'d001'" in lines[0], err
    assert "Traceback" not in err


def test_nan_from_the_encoder_stops_an_mteb_evaluation_too():
    from llara_bench.models.mteb_adapter import MtebEncoder

    model = MtebEncoder(HashingEncoder(_entry().meta, nan_text="stock markets fell"))
    batch = {"id": ["d1", "d2"], "text": ["lava flows", "stock markets fell"], "body": ["lava flows",
                                                                                     "stock markets fell"]}
    with pytest.raises(NonFiniteEmbeddings, match=r"hashing: .*1 of 2 texts, the first for document 'd2'"):
        model.encode([batch], prompt_type="document")
    assert model.encode([{"text": ["lava flows"]}], prompt_type="query").shape == (1, DIM)


def test_a_changed_shard_size_reuses_the_cache_and_says_so_in_one_short_line(tmp_path, hashing, caplog):
    clean, clean_trec = _run(tmp_path, "clean", shard_rows=50)
    with caplog.at_level(logging.WARNING, logger="llara_bench"):
        rerun, rerun_trec = _run(tmp_path, "rerun", shard_rows=20)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings  # of the corpus (the queries' shards follow it, unsaid)
    assert not rerun["embeddings"]["model_loaded"]
    assert all("embeddings in " in w and "are in shards of 50 rows, not 20: reusing them as they are" in w and len(w) < 400 for w in warnings), warnings
    assert (rerun["embeddings"]["encoded_items"], rerun["embeddings"]["reused_items"]) == (0, 235)
    assert rerun_trec == clean_trec


def test_a_cache_folder_of_another_layout_is_encoded_again(tmp_path, hashing, caplog):
    import json

    clean, clean_trec = _run(tmp_path, "clean")
    manifest = _folders(hashing)["passage"] / "manifest.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "version": 0, "dim": 3}))
    with caplog.at_level(logging.WARNING, logger="llara_bench"):
        rerun, rerun_trec = _run(tmp_path, "rerun")
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "held corpus embeddings of another layout: encoding them again" in warning and len(warning) < 400
    assert rerun["embeddings"]["encoded_items"] == 235 and rerun_trec == clean_trec


# -- interruptions ------------------------------------------------------------------------------------------

_CHILD = """
import sys
sys.path.insert(0, {tests!r})
import test_cache_corruption as t
from llara_bench.models import REGISTRY
REGISTRY.add_entry(t._entry(), replace_existing=True)
from llara_bench.harness.cli import main
sys.argv = ["llara-bench", *sys.argv[1:]]
main()
"""


def _interrupt(tmp_path: Path, signum: int, *flags: str) -> tuple[subprocess.CompletedProcess, int]:
    """Run the hashing encoder (slowed down) in shards of 10 rows, send ``signum`` once a few shards are written;
    (the finished process, the shards on disk when it ended). The child's TMPDIR is tmp_path/tmp."""
    cache, tmp = tmp_path / "cache", tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "LLARA_BENCH_CACHE": str(cache), "TMPDIR": str(tmp), "LLARA_TEST_SECONDS_PER_CALL": "0.15",
           "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-c", _CHILD.format(tests=str(Path(__file__).parent)), "run", "-m",
                             "hashing", "--shard-rows", "10", "-o", str(tmp_path / "runs"), "--no-report", *flags],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def shards() -> list[Path]:
        return [*cache.glob("embeddings/*/shard-*.npy"), *tmp.glob("*/passage/shard-*.npy")]

    deadline = time.monotonic() + 120
    while len(shards()) < 3:
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it could be interrupted"
        time.sleep(0.01)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), len(shards())


def _leftovers(tmp_path: Path) -> list[str]:
    """Temporary files and folders: anything in the child's TMPDIR, hidden files (atomic writes' temporaries)
    anywhere."""
    return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")
                  if p.parent == tmp_path / "tmp" or p.name.startswith("."))


@pytest.mark.parametrize("signum,status,said", [(signal.SIGINT, 130, "interrupted."),
                                                (signal.SIGTERM, 143, "terminated (SIGTERM).")])
def test_an_interrupted_encode_says_what_was_kept_and_resumes(tmp_path, signum, status, said, monkeypatch):
    ended, finished = _interrupt(tmp_path, signum)
    assert ended.returncode == status, ended.stderr
    (folder,) = (tmp_path / "cache" / "embeddings").glob("*/shard-00000.npy")
    line = (f"error: {said} Kept for a rerun: {finished} of 24 finished corpus shards of hashing · smoke in "
            f"{folder.parent}. Rerun the same command to resume.")
    assert line in " ".join(ended.stderr.split()), ended.stderr
    assert "Traceback" not in ended.stderr
    assert _leftovers(tmp_path) == []
    assert not list((tmp_path / "runs").rglob("run.json"))  # no run folder that looks finished
    with REGISTRY.scoped([_entry()]):
        monkeypatch.setenv("LLARA_BENCH_CACHE", str(tmp_path / "cache"))
        resumed, trec = _run(tmp_path, "resumed", shard_rows=10)
        monkeypatch.setenv("LLARA_BENCH_CACHE", str(tmp_path / "reference-cache"))
        reference, reference_trec = _run(tmp_path, "reference", shard_rows=10)
    assert resumed["embeddings"]["reused_items"] == 10 * finished
    assert trec == reference_trec


def test_sigterm_removes_the_scratch_folder_of_an_uncached_run(tmp_path):
    ended, _ = _interrupt(tmp_path, signal.SIGTERM, "--no-embedding-cache")
    assert ended.returncode == 143, ended.stderr
    assert "terminated (SIGTERM). Nothing was kept" in ended.stderr
    assert _leftovers(tmp_path) == [] and not list((tmp_path / "tmp").iterdir())

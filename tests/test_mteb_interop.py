"""MTEB interop: a registry encoder run by ``mteb.evaluate`` on a local BEIR folder (harness.mteb_tasks)
gives the harness's nDCG@10, side by side on the same files."""

from __future__ import annotations

import gzip
import json
import time
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np
import pytest

from llara_bench.models import REGISTRY
from llara_bench.models.base import EncodeOutput, EncodingContract, ModelMeta, Progress, Role
from llara_bench.models.mteb_adapter import MtebEncoder


@pytest.fixture(scope="module")
def mteb(tmp_path_factory):
    """mteb, imported with MTEB_CACHE on a scratch folder: its import creates the default cache folder."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MTEB_CACHE", str(tmp_path_factory.mktemp("mteb-default-cache")))
        return pytest.importorskip("mteb")


def evaluate_with_mteb(mteb, model: MtebEncoder, task, cache: Path) -> dict[str, float]:
    """The scores of the task's one split, from mteb.evaluate with results written under `cache`."""
    result = mteb.evaluate(model, task, cache=mteb.ResultCache(cache), co2_tracker=False, show_progress_bar=False,
                           overwrite_strategy="always")
    assert not result.exceptions
    (split_scores,) = result.task_results[0].scores[task.metadata.eval_splits[0]]
    return split_scores


class HashingEncoder:
    """A test double: hashed bag of words, L2-normalised; records each call."""

    meta = ModelMeta(name="hashing", kind="dense", description="test double", source="tests", similarity="cosine",
                     dimension=64, max_length=128, license="apache-2.0", contract=EncodingContract())

    def __init__(self) -> None:
        self.calls: list[tuple[Role, list[str], list[str] | None]] = []

    def encode(self, texts: Sequence[str], role: Role, *, titles: Sequence[str] | None = None,
               progress: Progress | None = None) -> EncodeOutput:
        self.calls.append((role, list(texts), None if titles is None else list(titles)))
        contract = self.meta.contract
        vectors = np.zeros((len(texts), 64))  # float64: the adapter must hand MTEB float32
        for i, text in enumerate(texts):
            for word in contract.format(role, text, titles[i] if titles else "").lower().split():
                vectors[i, zlib.crc32(word.encode()) % 64] += 1.0
        return EncodeOutput(vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9))


@pytest.fixture
def tiny_folder(tmp_path) -> Path:
    folder = tmp_path / "tiny"
    (folder / "qrels").mkdir(parents=True)
    docs = [("d1", "Volcanoes", "lava flows downhill"), ("d2", "", "stock markets fell sharply"),
            ("d3", "Glaciers", "ice sheets retreat as climate warms")]
    queries = [("q1", "where does lava flow"), ("q2", "why are glaciers retreating"), ("q3", "unjudged query")]
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n"
                                                 for i, t, x in docs))
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": i, "text": x}) + "\n" for i, x in queries))
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t2\nq2\td2\t-1\n")
    return folder


def test_prompt_types_map_to_roles_and_titles_pass_apart(mteb, tiny_folder):
    """MTEB joins title and body into `text` itself; the adapter passes body and title apart, so that
    only the encoder's contract joins them."""
    from mteb._create_dataloaders import create_dataloader
    from mteb.types import PromptType

    from llara_bench.harness.mteb_tasks import local_retrieval_task

    task = local_retrieval_task(tiny_folder)
    task.load_data()
    data = task.dataset["default"]["test"]
    fake = HashingEncoder()
    model = MtebEncoder(fake)
    context = {"task_metadata": task.metadata, "hf_split": "test", "hf_subset": "default"}

    corpus = create_dataloader(data["corpus"], task_metadata=task.metadata, prompt_type=PromptType.document,
                               batch_size=2)
    assert next(iter(corpus))["text"][0] == "Volcanoes lava flows downhill"  # MTEB's own joining
    vectors = model.encode(corpus, prompt_type=PromptType.document, **context)
    assert fake.calls[-1] == ("passage", ["lava flows downhill", "stock markets fell sharply",
                                          "ice sheets retreat as climate warms"], ["Volcanoes", "", "Glaciers"])
    assert vectors.dtype == np.float32 and vectors.shape == (3, 64)

    queries = create_dataloader(data["queries"], task_metadata=task.metadata, prompt_type=PromptType.query)
    model.encode(queries, prompt_type=PromptType.query, **context)
    assert fake.calls[-1] == ("query", ["where does lava flow", "why are glaciers retreating"], None)

    model.encode([{"text": ["a sentence"]}], prompt_type=None, **context)
    assert fake.calls[-1] == ("query", ["a sentence"], None)
    MtebEncoder(fake, unspecified_role="passage").encode([{"text": ["a sentence"]}], **context)
    assert fake.calls[-1] == ("passage", ["a sentence"], None)


def test_model_meta_from_the_registry_meta(mteb):
    from mteb.models.model_meta import ModelMeta as MtebModelMeta

    meta = MtebEncoder(HashingEncoder()).mteb_model_meta
    assert isinstance(meta, MtebModelMeta)
    assert (meta.name, meta.embed_dim, meta.max_tokens, meta.license) == ("llara-bench/hashing", 64, 128, "apache-2.0")
    assert meta.similarity_fn_name == "cosine" and meta.use_instructions is False


def test_mteb_evaluate_on_a_local_folder_writes_results_and_matches_the_harness(mteb, tiny_folder, tmp_path):
    """End to end through mteb.evaluate, offline: the task reads the harness's qrels (negative grades as 0,
    unjudged queries left out), the result file records the data fingerprint, and nDCG@10 equals the
    harness's metrics over the harness's own exact search of the same vectors."""
    from llara_bench.harness.datasets import load_dataset
    from llara_bench.harness.metrics import evaluate, relevance_for_metrics
    from llara_bench.harness.mteb_tasks import local_retrieval_task
    from llara_bench.harness.search import exact_search

    task = local_retrieval_task(tiny_folder)
    scores = evaluate_with_mteb(mteb, MtebEncoder(HashingEncoder()), task, tmp_path / "mteb")
    written = json.loads((tmp_path / "mteb" / "results" / "llara-bench__hashing" / "no_revision_available"
                          / "local-tiny.json").read_text())
    dataset = load_dataset(f"folder:{tiny_folder}")
    assert written["dataset_revision"] == dataset.fingerprint("test")

    split, encoder = dataset.split("test"), HashingEncoder()
    docs = encoder.encode(dataset.corpus.texts, "passage", titles=dataset.corpus.titles).vectors
    queries = encoder.encode(list(split.queries.values()), "query").vectors
    run = exact_search(queries, docs, dataset.corpus.ids, 10, use_gpu=False).to_run(list(split.queries), k=10)
    harness, _ = evaluate(relevance_for_metrics(split.qrels), run, ["nDCG@10"])
    assert scores["ndcg_at_10"] == scores["main_score"] == pytest.approx(harness["nDCG@10"], abs=1e-5)


@pytest.mark.shared_data
@pytest.mark.slow
def test_minilm_ndcg_matches_mteb_evaluate_on_scifact(mteb, shared_data, tmp_path, record_property,
                                                      shared_sentence_embeddings):
    """Each side loads, encodes and searches on its own; both retrieve to MTEB's depth (max k_values). The
    harness's SciFact embeddings come from the session's embedding cache when another test made them, and
    MiniLM's forward pass is shared row by row (tests/conftest.py SentenceEmbeddingMemo)."""
    from llara_bench.harness.mteb_tasks import local_retrieval_task
    from llara_bench.harness.runner import RunConfig, run_suite
    from llara_bench.harness.suites import parse_suite

    folder = shared_data / "scifact"
    task = local_retrieval_task(folder)
    depth = max(task.k_values)
    suite = parse_suite(f"name: mteb-interop\nmodels: [minilm]\ndatasets: ['folder:{folder}']\n"
                        f"top_k: {depth}\nmeasures: [nDCG@10]\n", "<test_mteb_interop>")

    start = time.perf_counter()
    harness = run_suite(RunConfig(suite=suite, output=tmp_path / "runs", save_run_files=False)).results[0]
    harness_seconds = time.perf_counter() - start
    start = time.perf_counter()
    scores = evaluate_with_mteb(mteb, MtebEncoder(REGISTRY.get("minilm").load()), task, tmp_path / "mteb")
    mteb_seconds = time.perf_counter() - start

    ours, theirs = harness["metrics"]["nDCG@10"], scores["ndcg_at_10"]
    assert harness["search"]["top_k"] == depth
    record_property("scifact_ndcg10", {"harness": ours, "mteb": theirs})
    print(f"\nscifact (depth {depth}): harness nDCG@10 {ours:.5f} in {harness_seconds:.0f} s, "
          f"mteb.evaluate {theirs:.5f} in {mteb_seconds:.0f} s, difference {abs(ours - theirs):.5f} "
          f"(MiniLM rows shared {shared_sentence_embeddings.hits}, computed {shared_sentence_embeddings.misses})")
    assert ours == pytest.approx(theirs, abs=0.002)


def test_llara_bench_mteb_on_a_local_folder_matches_the_harness_own_run(mteb, smoke_run_dir, tmp_path, monkeypatch):
    """`llara-bench mteb --folder` (what `tox -e mteb` runs): MTEB encodes and searches, the harness scores
    MTEB's rankings into a schema-valid result, and nDCG@10 equals MTEB's own score and the harness's own run
    of the same encoder on the same collection."""
    import jsonschema
    from importlib import resources

    from typer.testing import CliRunner

    from llara_bench.harness import results
    from llara_bench.harness.cli import app

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with resources.as_file(resources.files("llara_bench.harness") / "data" / "smoke") as folder:
        out = CliRunner().invoke(app, ["mteb", "--folder", str(folder), "-m", "minilm", "-o", str(tmp_path),
                                       "--no-report"], env={"COLUMNS": "160"})
    assert out.exit_code == 0, out.output
    (run_dir,) = tmp_path.iterdir()
    result = results.load_result(run_dir / "results" / "minilm" / "local-smoke.json")
    jsonschema.validate(result, results.schema())
    own = results.load_result(smoke_run_dir / "results" / "minilm" / "smoke.json")
    # one writer for run and mteb: the same fields (less the dense cache's, plus MTEB's scores), a TREC run file
    assert set(own) - set(result) == {"embeddings"} and set(result) - set(own) == {"mteb"}
    assert set(result["search"]) == set(own["search"]) and (run_dir / result["run_file"]).is_file()
    assert results.read_run(run_dir / "run.json").results == ["results/minilm/local-smoke.json"]
    assert result["dataset"]["fingerprint"] == own["dataset"]["fingerprint"]  # the same data, as MTEB loaded it
    assert result["metrics"]["nDCG@10"] == pytest.approx(result["mteb"]["ndcg_at_10"], abs=1e-5)
    assert result["metrics"]["nDCG@10"] == pytest.approx(own["metrics"]["nDCG@10"], abs=1e-4)
    assert result["per_query"]["nDCG@10"] == pytest.approx(own["per_query"]["nDCG@10"], abs=1e-4)


def test_llara_bench_mteb_refuses_lexical_models_and_no_task(mteb, tmp_path):
    from typer.testing import CliRunner

    from llara_bench.harness.cli import app

    assert "name an MTEB task" in CliRunner().invoke(app, ["mteb", "-o", str(tmp_path)]).output
    out = CliRunner().invoke(app, ["mteb", "--folder", str(tmp_path), "-m", "bm25", "-o", str(tmp_path)])
    assert out.exit_code == 2


def test_mteb_tasks_by_name_and_benchmark_are_retrieval_tasks(mteb):
    from llara_bench.harness.errors import ConfigError
    from llara_bench.harness.mteb_run import load_tasks

    names = [t.metadata.name for t in load_tasks(["SciFact"], [], ["BEIR"])]
    assert names[0] == "SciFact" and names.count("SciFact") == 1  # metadata only: no data is fetched
    assert {"NFCorpus", "ArguAna", "MSMARCO"} <= set(names)
    with pytest.raises(ConfigError, match="not found"):
        load_tasks(["NoSuchTask"], [])
    with pytest.raises(ConfigError, match="is a STS task"):
        load_tasks(["STSBenchmark"], [])


# -- the MTEB self-hit case: queries that are themselves corpus documents (ArguAna, Quora) -------------------

ARGUMENTS = {"a1": "cats are wonderful pets because they purr", "a2": "solar power is cheap and clean energy",
             "a3": "homework should be banned in schools"}
COUNTERS = {"b1": "cats scratch furniture so they are not wonderful pets",
            "b2": "solar power fails at night so clean energy needs storage",
            "b3": "schools need homework so pupils practise", "c1": "stock markets fell sharply"}


def self_hit_folder(parent: Path, name: str) -> Path:
    """A BEIR folder where each query is also a document under the same id (as in ArguAna), judged against
    its counter-argument: a self-hit ranks first and is never relevant."""
    folder = parent / name
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "title": "", "text": t}) + "\n"
                                                 for i, t in {**ARGUMENTS, **COUNTERS}.items()))
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": i, "text": t}) + "\n"
                                                  for i, t in ARGUMENTS.items()))
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"a{n}\tb{n}\t1\n" for n in (1, 2, 3)))
    return folder


@pytest.fixture
def hashing_model():
    from llara_bench.models import ModelEntry

    with REGISTRY.scoped([ModelEntry("hashing", lambda meta: HashingEncoder(), HashingEncoder.meta, origin="tests")]):
        yield "hashing"


def _kept_self_hits_ndcg(folder: Path) -> float:
    """The harness's nDCG@10 for the hashing encoder with self-hits kept: what the bug reported."""
    from llara_bench.harness.datasets import load_dataset
    from llara_bench.harness.metrics import evaluate, relevance_for_metrics
    from llara_bench.harness.search import exact_search

    dataset, encoder = load_dataset(f"folder:{folder}"), HashingEncoder()
    split = dataset.split("test")
    docs = encoder.encode(dataset.corpus.texts, "passage", titles=dataset.corpus.titles).vectors
    queries = encoder.encode(list(split.queries.values()), "query").vectors
    run = exact_search(queries, docs, dataset.corpus.ids, 10, use_gpu=False).to_run(list(split.queries), k=10)
    return evaluate(relevance_for_metrics(split.qrels), run, ["nDCG@10"])[0]["nDCG@10"]


def test_mteb_self_hits_are_dropped_where_the_task_ignores_identical_ids(mteb, hashing_model, tmp_path):
    """The MTEB self-hit case: a task with ``ignore_identical_ids`` (MTEB's ArguAna and Quora; here a local
    task given it): MTEB's predictions file still holds the self-hits, its scoring drops them, and so must the
    harness's rescoring, or its nDCG@10 is the lower number of the self-hits kept."""
    from llara_bench.harness import results
    from llara_bench.harness.mteb_run import run_mteb
    from llara_bench.harness.mteb_tasks import local_retrieval_task

    folder = self_hit_folder(tmp_path, "toy")
    task = local_retrieval_task(folder, drop_self_hits=True)
    (result,) = run_mteb([task], [hashing_model], tmp_path / "runs").results
    kept = _kept_self_hits_ndcg(folder)
    assert result["mteb"]["main_score"] > kept + 0.1  # the case tells the two apart
    assert result["metrics"]["nDCG@10"] == pytest.approx(result["mteb"]["main_score"], abs=1e-5)
    assert result["dataset"]["conventions"]["drop_self_hits"] is True
    (run_dir,) = (tmp_path / "runs").iterdir()
    trec = [line.split() for line in gzip.decompress((run_dir / result["run_file"]).read_bytes()).decode().split("\n")
            if line]
    assert trec and not [row for row in trec if row[0] == row[2]]  # no query retrieves itself
    assert results.load_result(run_dir / "results" / "hashing" / "local-toy.json")["metrics"] == result["metrics"]


@pytest.mark.parametrize("name", ["arguana", "quora"])
def test_mteb_local_folder_gets_the_suite_conventions(mteb, hashing_model, tmp_path, name):
    """`llara-bench mteb --folder .../arguana` runs under the BEIR suites' conventions for that name: self-hits
    dropped on MTEB's side and the harness's alike, and recorded so; another name keeps them on both sides."""
    from typer.testing import CliRunner

    from llara_bench.harness import results
    from llara_bench.harness.cli import app

    def run(folder: Path) -> dict:
        out = CliRunner().invoke(app, ["mteb", "--folder", str(folder), "-m", hashing_model, "-o",
                                       str(tmp_path / "runs" / folder.name), "--no-report"], env={"COLUMNS": "160"})
        assert out.exit_code == 0, out.output
        (path,) = (tmp_path / "runs" / folder.name).glob("*/results/hashing/*.json")
        return results.load_result(path)

    conventional, other = (run(self_hit_folder(tmp_path / n, n)) for n in (name, "debates"))
    assert conventional["dataset"]["conventions"]["drop_self_hits"] is True
    assert other["dataset"]["conventions"]["drop_self_hits"] is False
    for result in (conventional, other):  # each side scores the same lists
        assert result["metrics"]["nDCG@10"] == pytest.approx(result["mteb"]["main_score"], abs=1e-5)
    assert other["metrics"]["nDCG@10"] == pytest.approx(_kept_self_hits_ndcg(tmp_path / "debates" / "debates"))
    assert conventional["metrics"]["nDCG@10"] > other["metrics"]["nDCG@10"] + 0.1


def test_mteb_named_tasks_say_which_drop_self_hits(mteb):
    """The installed mteb declares ``ignore_identical_ids`` on its ArguAna and Quora task classes (metadata only,
    nothing fetched): that is what the harness reads for a task run by name."""
    from llara_bench.harness.mteb_run import _drops_self_hits, load_tasks

    drops = {t.metadata.name: _drops_self_hits(t) for t in load_tasks(["ArguAna", "QuoraRetrieval", "SciFact"], [])}
    assert drops == {"ArguAna": True, "QuoraRetrieval": True, "SciFact": False}

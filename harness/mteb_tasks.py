"""MTEB retrieval tasks over local BEIR-layout folders, read by the harness's own loader.

    task = local_retrieval_task("/data/scifact")
    mteb.evaluate(MtebEncoder(encoder), task, cache=mteb.ResultCache("results"))

The task sees exactly what the harness sees: the corpus, the judged queries of the split and the
qrels as the harness's metrics grade them (`relevance_for_metrics`: the dataset's relevance map, then
negative grades as 0); the harness's ``drop_self_hits`` is MTEB's ``ignore_identical_ids``. Nothing is
fetched from the Hugging Face hub. Needs the ``mteb`` extra (``pip install llara-bench[mteb]``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping, Sequence

from llara_bench.harness.datasets import Dataset, load_dataset
from llara_bench.harness.metrics import relevance_for_metrics

try:
    from mteb.abstasks import AbsTaskRetrieval
    from mteb.abstasks.task_metadata import TaskMetadata
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("harness.mteb_tasks needs mteb: pip install 'llara-bench[mteb]'") from exc

__all__ = ["LocalRetrievalTask", "local_retrieval_task"]


class LocalRetrievalTask(AbsTaskRetrieval):
    """An MTEB retrieval task over a harness `Dataset` (one split, subset "default").

    MTEB reads `metadata` from the class (``unload_data`` drops an instance's own), so each task is
    an instance of a subclass made by `local_retrieval_task` that sets it.
    """

    def __init__(self, dataset: Dataset, split: str = "test", *, relevance_map: Mapping[int, int] | None = None,
                 drop_self_hits: bool = False, **kwargs: Any):
        self.source = dataset
        self.split_name = split
        self.relevance_map = relevance_map
        self.ignore_identical_ids = drop_self_hits
        super().__init__(**kwargs)

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        """Build MTEB's corpus, queries and relevant docs from the harness dataset (in memory)."""
        if self.data_loaded:
            return
        from datasets import Dataset as HFDataset
        from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData

        split = self.source.split(self.split_name)
        corpus = self.source.corpus
        self.dataset = {"default": {self.split_name: RetrievalSplitData(
            corpus=HFDataset.from_dict({"id": corpus.ids, "title": corpus.titles, "text": corpus.texts}),
            queries=HFDataset.from_dict({"id": list(split.queries), "text": list(split.queries.values())}),
            relevant_docs=relevance_for_metrics(split.qrels, self.relevance_map),
            top_ranked=None)}}
        self.data_loaded = True


def local_retrieval_task(folder: str | Path, name: str | None = None, split: str = "test",
                         main_score: str = "ndcg_at_10", *, languages: Sequence[str] = ("eng-Latn",),
                         relevance_map: Mapping[int, int] | None = None,
                         drop_self_hits: bool = False) -> LocalRetrievalTask:
    """An MTEB retrieval task over the BEIR folder `folder`, loaded with ``load_dataset("folder:...")``.

    `name` defaults to ``local-<folder name>``; the task's dataset revision is the harness's
    fingerprint of the split, so MTEB's result files identify the data exactly. `languages` are
    BCP-47 ``lang-Script`` codes (MTEB requires them); `relevance_map` and `drop_self_hits` are the
    harness's suite conventions of the same names.
    """
    dataset = load_dataset(f"folder:{folder}")
    dataset.split(split)  # an unknown split fails here, naming the available ones
    name = name or f"local-{dataset.name}"
    metadata = TaskMetadata(
        name=name,
        description=f"BEIR-layout folder {folder} ({split} split), loaded by llara-bench",
        dataset={"path": str(folder), "revision": dataset.fingerprint(split)},
        type="Retrieval", category="t2t", modalities=["text"], eval_splits=[split],
        eval_langs=list(languages), main_score=main_score)
    task_class = type(re.sub(r"\W", "_", name), (LocalRetrievalTask,), {"metadata": metadata, "__module__": __name__})
    return task_class(dataset, split, relevance_map=relevance_map, drop_self_hits=drop_self_hits)

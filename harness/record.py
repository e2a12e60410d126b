"""The result record (one model on one dataset) and the run record (``run.json``), typed.

Their JSON forms are described by ``harness/schema/result.schema.json`` and ``run.schema.json``;
`harness.results` validates against them when a record is written and when a file is read, so
``from_dict`` may trust its input's types. Keys a record does not name (added by a later version, or
by hand) are kept in ``other_fields`` and written back unchanged.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

SCHEMA_VERSION = 1


class _Record:
    """``to_dict``/``from_dict`` for the records below: nested records by name, unknown keys kept."""

    _NESTED: ClassVar[dict[str, type[_Record]]] = {}
    _OMIT_IF_NONE: ClassVar[frozenset[str]] = frozenset()  # keys the schema types as non-null: absent when None
    other_fields: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        # shallow on purpose: per-query scores are large and are not copied
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.name == "other_fields" or (value is None and f.name in self._OMIT_IF_NONE):
                continue
            out[f.name] = value.to_dict() if isinstance(value, _Record) else value
        return out | self.other_fields

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        names = {f.name for f in fields(cls)} - {"other_fields"}  # type: ignore[arg-type]
        known = {k: cls._NESTED[k].from_dict(v) if k in cls._NESTED and v is not None else v
                 for k, v in data.items() if k in names}
        return cls(**known, other_fields={k: v for k, v in data.items() if k not in names})


@dataclass
class SuiteInfo(_Record):
    name: str
    path: str
    other_fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelInfo(_Record):
    """The encoder's metadata as run (the registry's ModelMeta, with the contract as loaded) and its entry's
    origin and keyword arguments."""

    name: str
    kind: str  # dense | lexical
    source: str
    similarity: str
    trained: bool
    contract: dict[str, Any] | None
    origin: str
    description: str = ""
    revision: str | None = None
    dimension: int | None = None
    max_length: int | None = None
    n_parameters: int | None = None
    reference: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # what loading resolved (ModelMeta.extra)
    kwargs: dict[str, Any] = field(default_factory=dict)
    other_fields: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, meta, entry) -> ModelInfo:
        """From a loaded encoder's ``meta`` (models.ModelMeta) and its registry ``entry`` (models.ModelEntry)."""
        return cls.from_dict(meta.to_dict() | {"origin": entry.origin, "kwargs": entry.kwargs})


@dataclass
class Conventions(_Record):
    drop_self_hits: bool = False
    relevance_map: dict[str, int] | None = None  # judged grade (as a string: a JSON key) -> grade scored
    titles: str | None = None  # the title source joined onto untitled documents
    other_fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class DatasetInfo(_Record):
    _NESTED = {"conventions": Conventions}
    _OMIT_IF_NONE = frozenset({"load_seconds"})

    name: str
    spec: str
    source: str
    split: str
    fingerprint: str
    n_docs: int
    n_queries: int
    n_judgments: int
    conventions: Conventions
    n_unjudged_queries_skipped: int = 0
    notes: list[str] = field(default_factory=list)
    load_seconds: float | None = None
    other_fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class SearchInfo(_Record):
    backend: str
    top_k: int
    exact: bool  # false when float16 storage rounded the vectors
    qps: float | None = None  # of the batched search
    latency_ms: dict[str, float] | None = None  # one query searched alone: queries, p50, p90, p99, mean
    other_fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class ResultRecord(_Record):
    """One model on one dataset: ``<run dir>/results/<model>/<dataset>.json``."""

    _NESTED = {"suite": SuiteInfo, "model": ModelInfo, "dataset": DatasetInfo, "search": SearchInfo}
    _OMIT_IF_NONE = frozenset({"run_file", "qrels_file", "embeddings", "mteb", "examples"})

    suite: SuiteInfo
    model: ModelInfo
    dataset: DatasetInfo
    search: SearchInfo
    main_metric: str
    metrics: dict[str, float]  # measure -> mean over the queries in the qrels
    per_query: dict[str, dict[str, float]]  # measure -> query id -> value
    timings: dict[str, dict[str, Any]]  # phase -> seconds, items, tokens, peak memory (timing.PhaseTimer)
    provenance: dict[str, Any]  # python, command, hardware, libraries, git, config
    examples: dict[str, Any] | None = None  # query texts and top documents, for the report's per-query view
    embeddings: dict[str, Any] | None = None  # dense encoders: the cache entry and the search plan
    mteb: dict[str, Any] | None = None  # llara-bench mteb: MTEB's own scores
    run_id: str = ""  # the run directory's name: set when written (results.write_result)
    run_file: str | None = None  # the TREC run file, relative to the run directory: set when written
    qrels_file: str | None = None  # the qrels as scored (TREC format), relative to the run directory: idem
    created_at: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    schema_version: int = SCHEMA_VERSION
    other_fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunRecord(_Record):
    """A run directory's ``run.json``: what was run and the result files it wrote."""

    results: list[str]  # result files, relative to the run directory
    suite: str | None = None  # the suite's name (hand-made run.json files may omit it)
    baseline: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    plan: list[dict[str, Any]] = field(default_factory=list)  # the memory plan made before the run
    groups: list[dict[str, Any]] = field(default_factory=list)  # mean scores of dataset groups
    gates: list[dict[str, Any]] = field(default_factory=list)  # the suite's expected scores, judged
    compare: list[list[str]] = field(default_factory=list)  # the suite's pairs the report shows first (A, B)
    run_id: str = ""  # the run directory's name: set when written (results.write_run)
    schema_version: int = SCHEMA_VERSION
    other_fields: dict[str, Any] = field(default_factory=dict)

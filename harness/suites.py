"""Suites as YAML: which models, which datasets, which measures, and per-dataset conventions.

A dataset is one line (a spec string such as ``beir:scifact``) or a mapping with overrides::

    titles: hf:Tevatron/msmarco-passage-corpus   # optional: titles joined onto untitled docs
    datasets:
      - beir:scifact
      - {spec: beir:arguana, drop_self_hits: true}
      - discover: beir-folders          # every BEIR folder under --data-root
      - {discover: beir-folders, match: "msmarco*"}   # ... whose name matches a glob
    conventions:                         # applied by dataset name, also to discovered ones
      cranfield: {relevance_map: {1: 4, 2: 3, 3: 2, 4: 1, -1: 0}}

Errors name the suite file, the line and the field.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from llara_bench.harness.datasets import discover_beir_folders
from llara_bench.harness.errors import ConfigError, UnknownNameError
from llara_bench.harness.gates import DEFAULT_TOLERANCE, Expectation
from llara_bench.harness.metrics import DEFAULT_MEASURES, parse_measures
from llara_bench.harness.yamlfile import FieldReader, Mapping, load_yaml


SUITE_KEYS = {"name", "description", "models", "baseline", "datasets", "measures", "main_metric", "split", "top_k",
              "conventions", "expected", "titles"}
EXPECTED_KEYS = {"model", "dataset", "metric", "score", "tolerance", "source"}
ENTRY_KEYS = {"spec", "name", "split", "top_k", "drop_self_hits", "relevance_map", "group", "titles"}
CONVENTION_KEYS = ENTRY_KEYS - {"spec", "name", "group"}


@dataclass(frozen=True)
class DatasetEntry:
    spec: str
    name: str
    split: str
    top_k: int
    drop_self_hits: bool = False
    relevance_map: dict[int, int] | None = None
    group: str | None = None  # datasets of one group are also reported as their mean (BEIR's CQADupStack)
    titles: str | None = None  # a title source joined onto untitled docs (harness.datasets.titles)


@dataclass
class Suite:
    name: str
    description: str
    path: str
    models: list[str]
    measures: list[str]
    main_metric: str
    split: str
    top_k: int
    datasets: list[DatasetEntry] = field(default_factory=list)
    discover: str | None = None  # "beir-folders": every BEIR folder under the data root
    discover_match: list[str] = field(default_factory=list)  # globs of folder names (any; none: every folder)
    conventions: dict[str, dict[str, Any]] = field(default_factory=dict)
    baseline: str | None = None  # the model the report compares the others with (default: the first)
    expected: list[Expectation] = field(default_factory=list)  # expected-score gates (harness.gates)
    titles: str | None = None  # the datasets' default title source (MS MARCO passage: RocketQA's titles)

    def resolve_datasets(self, data_root: Path | None) -> list[DatasetEntry]:
        entries = list(self.datasets)
        if self.discover:
            if data_root is None:
                raise ConfigError(f"suite {self.name!r} runs every BEIR folder under the data root: pass "
                                  "--data-root DIR (or set LLARA_BENCH_DATA_ROOT)")
            globs = self.discover_match or ["*"]
            names = [n for n in discover_beir_folders(data_root) if any(fnmatch.fnmatch(n, g) for g in globs)]
            if not names:
                named = "" if globs == ["*"] else f" named {' or '.join(globs)}"
                raise ConfigError(f"suite {self.name!r}: no BEIR folders{named} (corpus.jsonl, queries.jsonl, "
                                  f"qrels/) under {data_root}")
            entries += [_entry(f"beir:{n}", {}, self, self.path) for n in names]
        return entries

    def entry(self, spec: str, where: str) -> DatasetEntry:
        """An entry for a spec given outside the suite file (``-d folder:PATH``): the suite's defaults and
        conventions apply."""
        return _entry(spec, {}, self, where)


def builtin_suites() -> list[str]:
    return sorted(p.name[:-5] for p in (resources.files("llara_bench.harness") / "suites").iterdir() if p.name.endswith(".yaml"))


def load_suite(name_or_path: str) -> Suite:
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"} or path.is_file():
        if not path.is_file():
            raise ConfigError(f"suite file {path} not found")
        return parse_suite(path.read_text(encoding="utf-8"), str(path))
    if name_or_path not in builtin_suites():
        raise UnknownNameError("suite", name_or_path, builtin_suites())
    resource = resources.files("llara_bench.harness") / "suites" / f"{name_or_path}.yaml"
    return parse_suite(resource.read_text(encoding="utf-8"), f"<built-in suite>/{name_or_path}.yaml")


def parse_suite(text: str, path: str) -> Suite:
    doc = load_yaml(text, path)
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{path}: expected a mapping with keys {', '.join(sorted(SUITE_KEYS))}")
    err = FieldReader(path)
    err.unknown_keys(doc, SUITE_KEYS)
    name = err.string(doc, "name", required=True)
    split = err.string(doc, "split", default="test")
    top_k = err.positive_int(doc, "top_k", default=100)
    models = err.string_list(doc, "models", required=True)
    measures = err.string_list(doc, "measures", default=list(DEFAULT_MEASURES))
    try:
        measures = [str(m) for m in parse_measures(measures)]
    except ConfigError as exc:
        raise ConfigError(f"{err.where(doc, 'measures')}: {exc}") from None
    main_metric = err.string(doc, "main_metric", default=measures[0])
    if main_metric not in measures:
        raise ConfigError(f"{err.where(doc, 'main_metric')}: {main_metric!r} is not among the measures {measures}")
    baseline = err.string(doc, "baseline", default=None)
    if baseline is not None and baseline not in models:
        raise ConfigError(f"{err.where(doc, 'baseline')}: {baseline!r} is not among the models {models}")
    conventions = {}
    raw_conventions = doc.get("conventions") or {}
    if not isinstance(raw_conventions, dict):
        raise ConfigError(f"{err.where(doc, 'conventions')}: expected a mapping of dataset name to conventions")
    for ds_name, conv in raw_conventions.items():
        if not isinstance(conv, Mapping):
            raise ConfigError(f"{err.where(raw_conventions, ds_name)}: expected a mapping of conventions")
        err.unknown_keys(conv, CONVENTION_KEYS)
        conventions[str(ds_name)] = _entry_fields(err, conv)
    suite = Suite(name=name, description=err.string(doc, "description", default=""), path=path, models=models,
                  measures=measures, main_metric=main_metric, split=split, top_k=top_k, conventions=conventions,
                  baseline=baseline, titles=_titles(err, doc))
    raw_datasets = doc.get("datasets")
    if not isinstance(raw_datasets, list) or not raw_datasets:
        raise ConfigError(f"{err.where(doc, 'datasets')}: expected a non-empty list of dataset specs")
    for item, line in zip(raw_datasets, raw_datasets.lines):
        where = f"{path}:{line}"
        if isinstance(item, str):
            suite.datasets.append(_entry(item, {}, suite, where))
        elif isinstance(item, Mapping) and "discover" in item:
            if item["discover"] != "beir-folders" or set(item) - {"discover", "match"}:
                raise ConfigError(f"{err.where(item, 'discover')}: expected 'discover: beir-folders' alone, or with "
                                  "'match: GLOB'")
            if suite.discover and not suite.discover_match:
                continue  # every folder is already discovered
            suite.discover = "beir-folders"
            glob = err.string(item, "match", default=None)
            suite.discover_match = suite.discover_match + [glob] if glob else []
        elif isinstance(item, Mapping):
            err.unknown_keys(item, ENTRY_KEYS)
            if "spec" not in item:
                raise ConfigError(f"{where}: missing field 'spec' (expected e.g. spec: beir:scifact)")
            spec = err.string(item, "spec", required=True)
            fields = _entry_fields(err, item)
            if "group" in item:
                fields["group"] = err.string(item, "group")
            suite.datasets.append(_entry(spec, fields, suite, where, name=item.get("name")))
        else:
            raise ConfigError(f"{where}: each dataset must be a spec string (e.g. beir:scifact) or a mapping "
                              f"with 'spec'; got {item!r}")
    suite.expected = _expectations(err, doc, suite)
    return suite


def _expectations(err: FieldReader, doc: Mapping, suite: Suite) -> list[Expectation]:
    raw = doc.get("expected")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError(f"{err.where(doc, 'expected')}: expected a list of {{model, dataset, metric, score, "
                          "tolerance, source}} mappings")
    out = []
    for item, line in zip(raw, raw.lines):
        if not isinstance(item, Mapping):
            raise ConfigError(f"{suite.path}:{line}: expected a mapping with model, dataset, score (and metric, "
                              f"tolerance, source); got {item!r}")
        err.unknown_keys(item, EXPECTED_KEYS)
        metric = err.string(item, "metric", default=suite.main_metric)
        try:
            metric = str(parse_measures([metric])[0])
        except ConfigError as exc:
            raise ConfigError(f"{err.where(item, 'metric')}: {exc}") from None
        if metric not in suite.measures:
            raise ConfigError(f"{err.where(item, 'metric')}: {metric!r} is not among the suite's measures "
                              f"{suite.measures}")
        out.append(Expectation(
            model=err.string(item, "model", required=True), dataset=err.string(item, "dataset", required=True),
            metric=metric, score=err.number(item, "score"),
            tolerance=err.number(item, "tolerance", default=DEFAULT_TOLERANCE, minimum=0.0),
            source=err.string(item, "source", default=None), where=f"{suite.path}:{line}"))
    return out


def _name_of(spec: str) -> str:
    return spec.partition(":")[2].rstrip("/").split("/")[-1] if spec.startswith(("beir:", "folder:")) \
        else spec.partition(":")[2]


def _entry(spec: str, fields: dict[str, Any], suite: Suite, where: str, name: str | None = None) -> DatasetEntry:
    """An entry: the suite's defaults, then the conventions of its folder name, then its own fields."""
    if ":" not in spec:
        raise ConfigError(f"{where}: dataset spec {spec!r}: expected SOURCE:NAME (e.g. beir:scifact)")
    fields = {"split": suite.split, "top_k": suite.top_k, "titles": suite.titles, **suite.conventions.get(_name_of(spec), {}), **fields}
    return DatasetEntry(spec=spec, name=name or _name_of(spec), **fields)


def _entry_fields(err: FieldReader, m: Mapping) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "split" in m:
        out["split"] = err.string(m, "split")
    if "top_k" in m:
        out["top_k"] = err.positive_int(m, "top_k", default=100)
    if "drop_self_hits" in m:
        if not isinstance(m["drop_self_hits"], bool):
            raise ConfigError(f"{err.where(m, 'drop_self_hits')}: expected true or false")
        out["drop_self_hits"] = m["drop_self_hits"]
    if "relevance_map" in m:
        rmap = m["relevance_map"]
        if not isinstance(rmap, dict) or not all(isinstance(k, int) and isinstance(v, int)
                                                 for k, v in rmap.items()):
            raise ConfigError(f"{err.where(m, 'relevance_map')}: expected a mapping of integer grade to "
                              "integer grade")
        out["relevance_map"] = dict(rmap)
    if "titles" in m:
        out["titles"] = _titles(err, m)
    return out


def _titles(err: FieldReader, m: Mapping) -> str | None:
    """A title source, or None for 'none' (which turns off a suite's default)."""
    value = err.string(m, "titles", default=None)
    return None if value in (None, "none") else value

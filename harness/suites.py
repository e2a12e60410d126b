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

Expected scores (``harness.gates``): ``expected:`` lists collections by name, whose scores are kept
once in ``harness/suites/expected/<collection>.yaml`` (those of the suite's measures are checked), and/or
the suite's own, each a mapping with optional conditions::

    expected:
      - scifact                          # harness/suites/expected/scifact.yaml
      - {model: minilm, dataset: scifact, metric: nDCG@10, score: 0.6451, tolerance: 0.002, top_k: 1000}

A collection must be a dataset the suite runs, and a suite's own expectation must name one of its models
and datasets: a gate that can never fire is an error when the suite is loaded.

Errors name the suite file, the line and the field.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from llara_bench.harness.datasets import discover_beir_folders
from llara_bench.harness.datasets.model import MAX_GRADE
from llara_bench.harness.errors import ConfigError, UnknownNameError
from llara_bench.harness.gates import CONDITIONS, DEFAULT_TOLERANCE, Expectation
from llara_bench.harness.metrics import DEFAULT_MEASURES, canonical_measures
from llara_bench.harness.yamlfile import FieldReader, Mapping, load_yaml, read_text, shown


SUITE_KEYS = {"name", "description", "models", "baseline", "datasets", "measures", "main_metric", "split", "top_k",
              "conventions", "expected", "titles", "compare"}
EXPECTED_KEYS = {"model", "dataset", "metric", "score", "tolerance", "source", *CONDITIONS}
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
    where: str = field(default="", compare=False)  # where it was given: FILE:LINE, --dataset SPEC, a discovery


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
    compare: list[tuple[str, str]] = field(default_factory=list)  # pairs the report shows first (A against B)

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
            entries += [_entry(f"beir:{n}", {}, self, f"{self.path} (discover: beir-folders found {data_root / n})")
                        for n in names]
        check_distinct_names(entries)
        return entries

    def expectations_without_dataset(self, entries: list[DatasetEntry]) -> list[Expectation]:
        """The expected scores whose dataset is none of ``entries`` (the suite's datasets, resolved): a
        collection a discovered data root lacks. They can never be checked in a run of this suite."""
        names = {e.name for e in entries} | {e.group for e in entries if e.group}
        return [e for e in self.expected if e.dataset not in names]

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
        return parse_suite(read_text(path, "suite file"), str(path))
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
    measures = _measures(err, doc, "measures", measures)  # any case, as --measures: ndcg@10 is nDCG@10
    main_metric = _measures(err, doc, "main_metric", [err.string(doc, "main_metric", default=measures[0])])[0]
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
        if not isinstance(ds_name, str):
            raise ConfigError(f"{err.where(raw_conventions, ds_name)}: expected a dataset name (a string), got "
                              f"{shown(ds_name)}")
        if not isinstance(conv, Mapping):
            raise ConfigError(f"{err.where(raw_conventions, ds_name)}: expected a mapping of conventions")
        err.unknown_keys(conv, CONVENTION_KEYS)
        conventions[str(ds_name)] = _entry_fields(err, conv)
    suite = Suite(name=name, description=err.string(doc, "description", default=""), path=path, models=models,
                  measures=measures, main_metric=main_metric, split=split, top_k=top_k, conventions=conventions,
                  baseline=baseline, titles=_titles(err, doc), compare=_pairs(err, doc, models))
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
            suite.datasets.append(_entry(spec, fields, suite, where, name=err.string(item, "name", default=None)))
        else:
            raise ConfigError(f"{where}: each dataset must be a spec string (e.g. beir:scifact) or a mapping "
                              f"with 'spec'; got {shown(item)}")
    check_distinct_names(suite.datasets)
    suite.expected = _expectations(err, doc, suite)
    return suite


def expected_collections() -> list[str]:
    return sorted(p.name[:-5] for p in _expected_dir().iterdir() if p.name.endswith(".yaml"))


def load_expected(collection: str) -> list[Expectation]:
    """A collection's expected scores (harness/suites/expected/<collection>.yaml), for every measure."""
    if collection not in expected_collections():
        raise UnknownNameError("expected-score collection", collection, expected_collections())
    path = f"<built-in expected scores>/{collection}.yaml"
    doc = load_yaml((_expected_dir() / f"{collection}.yaml").read_text(encoding="utf-8"), path)
    err = FieldReader(path)
    raw = doc.get("expected") if isinstance(doc, Mapping) else None
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{path}: expected a mapping with a non-empty list 'expected'")
    err.unknown_keys(doc, {"expected"})
    return [_expectation(err, item, f"{path}:{line}", dataset=collection) for item, line in zip(raw, raw.lines)]


def _expected_dir():
    return resources.files("llara_bench.harness") / "suites" / "expected"


def _expectations(err: FieldReader, doc: Mapping, suite: Suite) -> list[Expectation]:
    """The scores of the collections the suite names (for its measures), then its own."""
    raw = doc.get("expected")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError(f"{err.where(doc, 'expected')}: expected a list of collection names and {{model, "
                          "dataset, metric, score, tolerance, source} mappings")
    out = []
    for item, line in zip(raw, raw.lines):
        where = f"{suite.path}:{line}"
        if isinstance(item, str):
            try:
                collection = load_expected(item)
            except UnknownNameError as exc:
                raise ConfigError(f"{where}: {exc}") from None
            _check_runs_dataset(suite, item, where)
            out += [e for e in collection if e.metric in suite.measures]
            continue
        e = _expectation(err, item, where, default_metric=suite.main_metric)
        if e.metric not in suite.measures:
            raise ConfigError(f"{err.where(item, 'metric')}: {e.metric!r} is not among the suite's measures "
                              f"{suite.measures}")
        if e.model not in suite.models:
            raise ConfigError(f"{err.where(item, 'model')}: {e.model!r} is not among the suite's models "
                              f"{suite.models}, so this gate would never fire; add it to models")
        _check_runs_dataset(suite, e.dataset, err.where(item, "dataset"))
        out.append(e)
    return out


def _expectation(err: FieldReader, item: Any, where: str, *, dataset: str | None = None,
                 default_metric: str | None = None) -> Expectation:
    """One expected score; ``dataset`` is the collection's when read from a collection file."""
    if not isinstance(item, Mapping):
        raise ConfigError(f"{where}: expected a mapping with model, dataset, score (and metric, tolerance, "
                          f"source, {', '.join(CONDITIONS)}); got {shown(item)}")
    err.unknown_keys(item, EXPECTED_KEYS - {"dataset"} if dataset else EXPECTED_KEYS)
    metric = err.string(item, "metric", required=default_metric is None, default=default_metric)
    try:
        metric = canonical_measures([metric])[0]
    except (ConfigError, UnknownNameError) as exc:
        raise ConfigError(f"{err.where(item, 'metric')}: {exc}") from None
    conditions: dict[str, Any] = {}
    for key in (k for k in CONDITIONS if k in item):
        conditions[key] = err.positive_int(item, key, default=0) if key == "top_k" \
            else _titles(err, item) if key == "titles" else err.string(item, key)
    return Expectation(
        model=err.string(item, "model", required=True), dataset=dataset or err.string(item, "dataset", required=True),
        metric=metric, score=err.number(item, "score"),
        tolerance=err.number(item, "tolerance", default=DEFAULT_TOLERANCE, minimum=0.0),
        source=err.string(item, "source", default=None), where=where, conditions=conditions)


def _check_runs_dataset(suite: Suite, name: str, where: str) -> None:
    """An expected score on a dataset the suite never runs would silently never fire."""
    names = [e.name for e in suite.datasets] + sorted({e.group for e in suite.datasets if e.group})
    if name in names or (suite.discover and any(fnmatch.fnmatch(name, g) for g in suite.discover_match or ["*"])):
        return
    import difflib

    close = difflib.get_close_matches(name, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    found = f" or BEIR folders named {' or '.join(suite.discover_match)}" if suite.discover else ""
    raise ConfigError(f"{where}: dataset {name!r} is not among the suite's datasets {names}{found}, so this "
                      f"gate would never fire{hint}")


def _measures(err: FieldReader, doc: Mapping, key: str, names: list[str]) -> list[str]:
    """ir_measures' spelling of measures named in any case; an unknown one named with its line and a
    did-you-mean."""
    try:
        return canonical_measures(names)
    except (ConfigError, UnknownNameError) as exc:
        raise ConfigError(f"{err.where(doc, key)}: {exc}") from None


def _pairs(err: FieldReader, doc: Mapping, models: list[str]) -> list[tuple[str, str]]:
    """``compare: [[A, B], ...]``: the comparisons that matter, each A against B, both models of the suite."""
    raw = doc.get("compare") or []
    if not isinstance(raw, list):
        raise ConfigError(f"{err.where(doc, 'compare')}: expected a list of model pairs, e.g. "
                          "[[tiny-llara, tiny-llama]]")
    pairs = []
    for item in raw:
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(m, str) for m in item)
                and item[0] != item[1]):
            raise ConfigError(f"{err.where(doc, 'compare')}: expected pairs of two different model names, e.g. "
                              f"[tiny-llara, tiny-llama]; got {shown(item)}")
        for name in item:
            if name not in models:
                raise UnknownNameError(f"model in {err.where(doc, 'compare')} (one of the suite's models)", name,
                                       models)
        pairs.append((item[0], item[1]))
    return pairs


def check_distinct_names(entries: list[DatasetEntry]) -> None:
    """Two datasets whose names are the same, or the same once made file-safe (``A`` and ``A/``), would write
    one result file and one report row: refused, naming both entries."""
    from llara_bench.harness.results import same_file_name, slug

    clash = same_file_name([e.name for e in entries])
    if clash:
        other, e = (entries[i] for i in clash)
        same = "the same name" if other.name == e.name else f"names that make the same file name ({slug(e.name)!r})"
        raise ConfigError(f"datasets {other.name!r} ({other.spec}, {other.where or 'given'}) and {e.name!r} "
                          f"({e.spec}, {e.where or 'given'}) have {same}, so their results would overwrite each "
                          "other; give one another name ({spec: ..., name: ...} in the suite file)")


def _name_of(spec: str) -> str:
    return spec.partition(":")[2].rstrip("/").split("/")[-1] if spec.startswith(("beir:", "folder:")) \
        else spec.partition(":")[2]


def _entry(spec: str, fields: dict[str, Any], suite: Suite, where: str, name: str | None = None) -> DatasetEntry:
    """An entry: the suite's defaults, then the conventions of its folder name, then its own fields."""
    if ":" not in spec:
        raise ConfigError(f"{where}: dataset spec {spec!r}: expected SOURCE:NAME (e.g. beir:scifact)")
    fields = {"split": suite.split, "top_k": suite.top_k, "titles": suite.titles, **suite.conventions.get(_name_of(spec), {}), **fields}
    return DatasetEntry(spec=spec, name=name or _name_of(spec), where=where, **fields)


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
        if not isinstance(rmap, dict) or not all(type(k) is int and type(v) is int and abs(v) <= MAX_GRADE
                                                 for k, v in rmap.items()):
            raise ConfigError(f"{err.where(m, 'relevance_map')}: expected a mapping of integer grade to integer "
                              f"grade (from -{MAX_GRADE} to {MAX_GRADE})")
        out["relevance_map"] = dict(rmap)
    if "titles" in m:
        out["titles"] = _titles(err, m)
    return out


def _titles(err: FieldReader, m: Mapping) -> str | None:
    """A title source, or None for 'none' (which turns off a suite's default)."""
    value = err.string(m, "titles", default=None)
    return None if value in (None, "none") else value

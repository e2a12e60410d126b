"""Suites as YAML: which models, which datasets, which measures, and per-dataset conventions.

A dataset is one line (a spec string such as ``beir:scifact``) or a mapping with overrides::

    datasets:
      - beir:scifact
      - {spec: beir:arguana, drop_self_hits: true}
      - discover: beir-folders          # every BEIR folder under --data-root
    conventions:                         # applied by dataset name, also to discovered ones
      cranfield: {relevance_map: {1: 4, 2: 3, 3: 2, 4: 1, -1: 0}}

Errors name the suite file, the line and the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from harness.datasets import discover_beir_folders
from harness.errors import ConfigError, UnknownNameError
from harness.metrics import DEFAULT_MEASURES, parse_measures


class _LineLoader(yaml.SafeLoader):
    """Records the line of every mapping key, so errors can point at the offending line."""


class _Mapping(dict):
    line: int = 0
    lines: dict[str, int]


class _List(list):
    lines: list[int]  # the line of each item


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _Mapping:
    mapping = _Mapping(loader.construct_mapping(node, deep=True))
    mapping.line = node.start_mark.line + 1
    mapping.lines = {}
    for key, _ in node.value:
        if isinstance(key, yaml.ScalarNode):
            if key.value in mapping.lines:  # PyYAML would silently keep the last one
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key.value!r} (first on line {mapping.lines[key.value]})",
                    key.start_mark)
            mapping.lines[key.value] = key.start_mark.line + 1
    return mapping


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> _List:
    items = _List(loader.construct_sequence(node, deep=True))
    items.lines = [item.start_mark.line + 1 for item in node.value]
    return items


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)

SUITE_KEYS = {"name", "description", "models", "datasets", "measures", "main_metric", "split", "top_k",
              "conventions"}
ENTRY_KEYS = {"spec", "name", "split", "top_k", "drop_self_hits", "relevance_map"}
CONVENTION_KEYS = ENTRY_KEYS - {"spec", "name"}


@dataclass(frozen=True)
class DatasetEntry:
    spec: str
    name: str
    split: str
    top_k: int
    drop_self_hits: bool = False
    relevance_map: dict[int, int] | None = None


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
    conventions: dict[str, dict[str, Any]] = field(default_factory=dict)

    def resolve_datasets(self, data_root: Path | None) -> list[DatasetEntry]:
        entries = list(self.datasets)
        if self.discover:
            if data_root is None:
                raise ConfigError(f"suite {self.name!r} runs every BEIR folder under the data root: pass "
                                  "--data-root DIR (or set LLARA_BENCH_DATA_ROOT)")
            names = discover_beir_folders(data_root)
            if not names:
                raise ConfigError(f"suite {self.name!r}: no BEIR folders (corpus.jsonl, queries.jsonl, qrels/) "
                                  f"under {data_root}")
            entries += [_entry(f"beir:{n}", {}, self, self.path) for n in names]
        return entries


def builtin_suites() -> list[str]:
    return sorted(p.name[:-5] for p in (resources.files("harness") / "suites").iterdir() if p.name.endswith(".yaml"))


def load_suite(name_or_path: str) -> Suite:
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"} or path.is_file():
        if not path.is_file():
            raise ConfigError(f"suite file {path} not found")
        return parse_suite(path.read_text(encoding="utf-8"), str(path))
    if name_or_path not in builtin_suites():
        raise UnknownNameError("suite", name_or_path, builtin_suites())
    resource = resources.files("harness") / "suites" / f"{name_or_path}.yaml"
    return parse_suite(resource.read_text(encoding="utf-8"), f"<built-in suite>/{name_or_path}.yaml")


def parse_suite(text: str, path: str) -> Suite:
    try:
        doc = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else path
        raise ConfigError(f"{where}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(doc, _Mapping):
        raise ConfigError(f"{path}: expected a mapping with keys {', '.join(sorted(SUITE_KEYS))}")
    err = _Errors(path)
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
    conventions = {}
    raw_conventions = doc.get("conventions") or {}
    if not isinstance(raw_conventions, dict):
        raise ConfigError(f"{err.where(doc, 'conventions')}: expected a mapping of dataset name to conventions")
    for ds_name, conv in raw_conventions.items():
        if not isinstance(conv, _Mapping):
            raise ConfigError(f"{err.where(raw_conventions, ds_name)}: expected a mapping of conventions")
        err.unknown_keys(conv, CONVENTION_KEYS)
        conventions[str(ds_name)] = err.entry_fields(conv)
    suite = Suite(name=name, description=err.string(doc, "description", default=""), path=path, models=models,
                  measures=measures, main_metric=main_metric, split=split, top_k=top_k, conventions=conventions)
    raw_datasets = doc.get("datasets")
    if not isinstance(raw_datasets, list) or not raw_datasets:
        raise ConfigError(f"{err.where(doc, 'datasets')}: expected a non-empty list of dataset specs")
    for item, line in zip(raw_datasets, raw_datasets.lines):
        where = f"{path}:{line}"
        if isinstance(item, str):
            suite.datasets.append(_entry(item, {}, suite, where))
        elif isinstance(item, _Mapping) and "discover" in item:
            if item["discover"] != "beir-folders" or len(item) != 1:
                raise ConfigError(f"{err.where(item, 'discover')}: expected 'discover: beir-folders' alone")
            suite.discover = "beir-folders"
        elif isinstance(item, _Mapping):
            err.unknown_keys(item, ENTRY_KEYS)
            if "spec" not in item:
                raise ConfigError(f"{where}: missing field 'spec' (expected e.g. spec: beir:scifact)")
            spec = err.string(item, "spec", required=True)
            suite.datasets.append(_entry(spec, err.entry_fields(item), suite, where, name=item.get("name")))
        else:
            raise ConfigError(f"{where}: each dataset must be a spec string (e.g. beir:scifact) or a mapping "
                              f"with 'spec'; got {item!r}")
    return suite


def _name_of(spec: str) -> str:
    return spec.partition(":")[2].rstrip("/").split("/")[-1] if spec.startswith(("beir:", "folder:")) \
        else spec.partition(":")[2]


def _entry(spec: str, fields: dict[str, Any], suite: Suite, where: str, name: str | None = None) -> DatasetEntry:
    """An entry: the suite's defaults, then the conventions of its folder name, then its own fields."""
    if ":" not in spec:
        raise ConfigError(f"{where}: dataset spec {spec!r}: expected SOURCE:NAME (e.g. beir:scifact)")
    fields = {"split": suite.split, "top_k": suite.top_k, **suite.conventions.get(_name_of(spec), {}), **fields}
    return DatasetEntry(spec=spec, name=name or _name_of(spec), **fields)


class _Errors:
    """Field readers that raise ConfigError naming file, line and field."""

    def __init__(self, path: str):
        self.path = path

    def where(self, mapping: Any, key: str) -> str:
        line = getattr(mapping, "lines", {}).get(key) or getattr(mapping, "line", None)
        return f"{self.path}:{line} (field {key!r})" if line else f"{self.path} (field {key!r})"

    def unknown_keys(self, mapping: _Mapping, allowed: set[str]) -> None:
        for key in mapping:
            if key not in allowed:
                import difflib

                close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ConfigError(f"{self.where(mapping, key)}: unknown field; expected one of "
                                  f"{', '.join(sorted(allowed))}{hint}")

    def string(self, m: _Mapping, key: str, *, required: bool = False, default: str = "") -> str:
        if key not in m:
            if required:
                raise ConfigError(f"{self.path}: missing field {key!r}")
            return default
        if not isinstance(m[key], str) or not m[key].strip():
            raise ConfigError(f"{self.where(m, key)}: expected a non-empty string, got {m[key]!r}")
        return m[key]

    def positive_int(self, m: _Mapping, key: str, *, default: int) -> int:
        value = m.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{self.where(m, key)}: expected a positive integer, got {value!r}")
        return value

    def string_list(self, m: _Mapping, key: str, *, required: bool = False, default: list[str] | None = None
                    ) -> list[str]:
        if key not in m:
            if required:
                raise ConfigError(f"{self.path}: missing field {key!r}")
            return list(default or [])
        value = m[key]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"{self.where(m, key)}: expected a non-empty list of strings, got {value!r}")
        return value

    def entry_fields(self, m: _Mapping) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if "split" in m:
            out["split"] = self.string(m, "split")
        if "top_k" in m:
            out["top_k"] = self.positive_int(m, "top_k", default=100)
        if "drop_self_hits" in m:
            if not isinstance(m["drop_self_hits"], bool):
                raise ConfigError(f"{self.where(m, 'drop_self_hits')}: expected true or false")
            out["drop_self_hits"] = m["drop_self_hits"]
        if "relevance_map" in m:
            rmap = m["relevance_map"]
            if not isinstance(rmap, dict) or not all(isinstance(k, int) and isinstance(v, int)
                                                     for k, v in rmap.items()):
                raise ConfigError(f"{self.where(m, 'relevance_map')}: expected a mapping of integer grade to "
                                  "integer grade")
            out["relevance_map"] = dict(rmap)
        return out

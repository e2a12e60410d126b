"""YAML config files whose errors point at the file, the line and the field."""

from __future__ import annotations

from typing import Any

import yaml

from llara_bench.harness.errors import ConfigError


class LineLoader(yaml.SafeLoader):
    """Records the line of every mapping key, so errors can point at the offending line."""


class Mapping(dict):
    line: int = 0
    lines: dict[str, int]


class List(list):
    lines: list[int]  # the line of each item


def _construct_mapping(loader: LineLoader, node: yaml.MappingNode) -> Mapping:
    mapping = Mapping(loader.construct_mapping(node, deep=True))
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


def _construct_sequence(loader: LineLoader, node: yaml.SequenceNode) -> List:
    items = List(loader.construct_sequence(node, deep=True))
    items.lines = [item.start_mark.line + 1 for item in node.value]
    return items


LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_yaml(text: str, path: str) -> Any:
    """Parse YAML, rejecting duplicate keys; mappings and lists remember the lines of their items."""
    try:
        return yaml.load(text, Loader=LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else path
        raise ConfigError(f"{where}: invalid YAML ({getattr(exc, 'problem', exc)})") from None


class FieldReader:
    """Field readers that raise ConfigError naming file, line and field."""

    def __init__(self, path: str):
        self.path = path

    def where(self, mapping: Any, key: str) -> str:
        line = getattr(mapping, "lines", {}).get(key) or getattr(mapping, "line", None)
        return f"{self.path}:{line} (field {key!r})" if line else f"{self.path} (field {key!r})"

    def unknown_keys(self, mapping: Mapping, allowed: set[str]) -> None:
        for key in mapping:
            if key not in allowed:
                import difflib

                close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ConfigError(f"{self.where(mapping, key)}: unknown field; expected one of "
                                  f"{', '.join(sorted(allowed))}{hint}")

    def string(self, m: Mapping, key: str, *, required: bool = False, default: str | None = "") -> str | None:
        if key not in m:
            if required:
                raise ConfigError(f"{self.path}: missing field {key!r}")
            return default
        if not isinstance(m[key], str) or not m[key].strip():
            raise ConfigError(f"{self.where(m, key)}: expected a non-empty string, got {m[key]!r}")
        return m[key]

    def positive_int(self, m: Mapping, key: str, *, default: int) -> int:
        value = m.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{self.where(m, key)}: expected a positive integer, got {value!r}")
        return value

    def number(self, m: Mapping, key: str, *, default: float | None = None, minimum: float = float("-inf")
               ) -> float:
        if key not in m and default is None:
            raise ConfigError(f"{self.where(m, key)}: missing field {key!r} (a number)")
        value = m.get(key, default)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < minimum:
            raise ConfigError(f"{self.where(m, key)}: expected a number >= {minimum}, got {value!r}")
        return float(value)

    def string_list(self, m: Mapping, key: str, *, required: bool = False, default: list[str] | None = None
                    ) -> list[str]:
        if key not in m:
            if required:
                raise ConfigError(f"{self.path}: missing field {key!r}")
            return list(default or [])
        value = m[key]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"{self.where(m, key)}: expected a non-empty list of strings, got {value!r}")
        return value

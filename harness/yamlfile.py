"""YAML config files whose errors point at the file, the line and the field.

A config file is small: what it may expand to through anchors and aliases is bounded (`MAX_VALUES`), so
that a few hundred bytes of nested aliases (a "billion laughs") are refused at once instead of growing
into gigabytes, and values quoted in error messages are cut short (`shown`)."""

from __future__ import annotations

import math
import re
import reprlib
from pathlib import Path
from typing import Any

import yaml

from llara_bench.harness.errors import ConfigError

MAX_VALUES = 100_000  # scalars, lists and mappings a config file may hold once its aliases are expanded
_SURROGATE = re.compile("[\ud800-\udfff]")  # only an escape (\udfff) can put one in decoded text


class LineLoader(yaml.SafeLoader):
    """Records the line of every mapping key, so errors can point at the offending line; refuses a document
    that expands to more than `MAX_VALUES` values, or that holds a lone surrogate (not text)."""

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        _expanded_size(node, {})
        return self.construct_document(node)


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values ``node`` stands for once every alias is expanded; each distinct node is visited once
    (an alias is the same node object), so the bomb is measured without being built."""
    if id(node) in sizes:
        return sizes[id(node)]
    if isinstance(node, yaml.ScalarNode):
        if _SURROGATE.search(node.value):
            raise yaml.constructor.ConstructorError(
                None, None, f"{shown(node.value)} holds a lone surrogate (an escape such as \\udfff that is not a "
                "character); expected text", node.start_mark)
        size = 1
    else:
        children = [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else node.value
        size = 1 + sum(_expanded_size(child, sizes) for child in children)
    if size > MAX_VALUES:
        raise yaml.constructor.ConstructorError(
            None, None, f"this value expands to more than {MAX_VALUES:,} values through nested anchors and "
            "aliases; expected a config file (write the values out, or use fewer aliases)", node.start_mark)
    sizes[id(node)] = size
    return size


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
    except RecursionError:
        raise ConfigError(f"{path}: invalid YAML (lists or mappings nested too deeply); expected a config "
                          "file") from None


def read_text(path: Path, what: str) -> str:
    """The text of a config file (``what``: "suite file", "models file"); a file that cannot be read, or is
    not UTF-8 text, is a ConfigError naming it."""
    from llara_bench.harness.failures import describe_os_error

    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a text file ({exc.reason} at byte {exc.start}); expected a UTF-8 YAML "
                          f"{what}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} {describe_os_error(exc)}") from None


class _Repr(reprlib.Repr):
    """reprlib's bounded repr, for this module's list and dict subclasses too."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel, self.maxlist, self.maxdict, self.maxstring, self.maxother = 3, 5, 4, 60, 60

    def repr_List(self, x: list, level: int) -> str:  # noqa: N802 - reprlib dispatches on the type's name
        return self.repr_list(x, level)

    def repr_Mapping(self, x: dict, level: int) -> str:  # noqa: N802
        return self.repr_dict(x, level)


_repr = _Repr()


def shown(value: Any, limit: int = 120) -> str:
    """A value's repr for an error message: bounded, however large or deeply nested the value is."""
    text = _repr.repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


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
            raise ConfigError(f"{self.where(m, key)}: expected a non-empty string, got {shown(m[key])}")
        return m[key]

    def positive_int(self, m: Mapping, key: str, *, default: int) -> int:
        value = m.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{self.where(m, key)}: expected a positive integer, got {shown(value)}")
        return value

    def number(self, m: Mapping, key: str, *, default: float | None = None, minimum: float = float("-inf")
               ) -> float:
        if key not in m and default is None:
            raise ConfigError(f"{self.where(m, key)}: missing field {key!r} (a number)")
        value = m.get(key, default)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or \
                value < minimum:
            expected = "a number" if minimum == float("-inf") else f"a number >= {minimum:g}"
            raise ConfigError(f"{self.where(m, key)}: expected {expected}, got {shown(value)}")
        return float(value)

    def string_list(self, m: Mapping, key: str, *, required: bool = False, default: list[str] | None = None
                    ) -> list[str]:
        if key not in m:
            if required:
                raise ConfigError(f"{self.path}: missing field {key!r}")
            return list(default or [])
        value = m[key]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"{self.where(m, key)}: expected a non-empty list of strings, got {shown(value)}")
        return value

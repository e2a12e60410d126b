"""Encoders declared in a YAML file, so any local checkpoint (an adapted model, a converted one) becomes a
registry variant with one line::

    encoders:
      my-llara: {model: runs/adapt/final, contract: llara}
      stories-eos:
        model: /data/stories260K-hf      # a local folder or a Hub id
        contract: repllama               # llara | repllama, or a mapping: {base: llara, dtype: float32, ...}
        dtype: float32
        passage_max_length: 256

Relative paths are relative to the file. Files come from ``--models-file`` and, when it exists, the user's
file (``$LLARA_BENCH_MODELS_FILE``, default ``~/.config/llara-bench/encoders.yaml``), which
``llara-bench register`` writes.
"""

from __future__ import annotations

import os
import types
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from llara_bench.harness.errors import ConfigError, UnknownNameError
from llara_bench.harness.results import write_atomic
from llara_bench.harness.yamlfile import FieldReader, Mapping, load_yaml
from llara_bench.models import REGISTRY, EncodingContract, ModelEntry, Registry
from llara_bench.models.catalog import decoder_entry
from llara_bench.models.contracts import CONTRACTS, contract_named
from llara_bench.models.loading import DTYPES

ENTRY_KEYS = {"model", "contract", "description", "tokenizer", "adapter", "revision", "adapter_revision", "dtype",
              "query_max_length", "passage_max_length", "allow_pickle", "trust_remote_code", "trained", "gguf_file"}
CONTRACT_KEYS = {f.name for f in dataclass_fields(EncodingContract)}
CONTRACT_TYPES = get_type_hints(EncodingContract)


def _is_a(value: Any, hint: Any) -> bool:
    """Whether a YAML value fits an EncodingContract field's type hint."""
    origin = get_origin(hint)
    if origin is Literal:
        return value in get_args(hint)
    if origin in (Union, types.UnionType):
        return any(_is_a(value, arg) for arg in get_args(hint))
    if origin is tuple:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if hint is type(None):
        return value is None
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    origin = get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(map(repr, get_args(hint)))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in get_args(hint))
    if origin is tuple:
        return "a list of strings"
    return {bool: "true or false", int: "an integer", str: "a string", type(None): "null"}.get(hint, str(hint))


def user_models_file() -> Path:
    if os.environ.get("LLARA_BENCH_MODELS_FILE"):
        return Path(os.environ["LLARA_BENCH_MODELS_FILE"])
    return Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "llara-bench" / "encoders.yaml"


def _local(value: str, base: Path) -> str:
    """A path relative to the file, if it names one; Hub ids (owner/name) stay as they are."""
    if value.startswith(("/", "~")):
        return str(Path(value).expanduser())
    candidate = base / value
    return str(candidate.resolve()) if value.startswith(".") or candidate.exists() else value


def _contract(err: FieldReader, spec: Mapping, raw: Any, overrides: dict[str, Any]) -> EncodingContract:
    if isinstance(raw, str):
        base, fields = raw, {}
    elif isinstance(raw, Mapping):
        err.unknown_keys(raw, CONTRACT_KEYS | {"base"})
        base, fields = raw.get("base", ""), {k: v for k, v in raw.items() if k != "base"}
        if not base:
            raise ConfigError(f"{err.where(raw, 'base')}: a contract mapping needs 'base' "
                              f"({' or '.join(sorted(CONTRACTS))})")
        for key, value in fields.items():
            if not _is_a(value, CONTRACT_TYPES[key]):
                raise ConfigError(f"{err.where(raw, key)}: expected {_describe(CONTRACT_TYPES[key])}, got {value!r}")
        if "special_tokens" in fields:
            fields["special_tokens"] = tuple(fields["special_tokens"])
        both = sorted(set(fields) & set(overrides))
        if both:
            raise ConfigError(f"{err.where(spec, both[0])}: {both[0]!r} is set both here and in the contract mapping; "
                              "keep one")
    else:
        raise ConfigError(f"{err.where(spec, 'contract')}: expected a contract name ({', '.join(sorted(CONTRACTS))}) "
                          "or a mapping with 'base' and contract fields")
    try:
        return contract_named(base, **fields, **overrides)
    except (UnknownNameError, ValueError, TypeError) as exc:
        raise ConfigError(f"{err.where(spec, 'contract')}: {exc}") from None


def parse_models_file(text: str, path: Path) -> list[ModelEntry]:
    err = FieldReader(str(path))
    doc = load_yaml(text, str(path))
    if doc is None:
        return []
    if not isinstance(doc, Mapping) or set(doc) != {"encoders"} or not isinstance(doc["encoders"], Mapping):
        raise ConfigError(f"{path}: expected a mapping 'encoders:' of name to encoder "
                          "(e.g. my-llara: {model: ./ckpt, contract: llara})")
    entries = []
    for name, spec in doc["encoders"].items():
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{err.where(doc['encoders'], name)}: expected a mapping with 'model' and 'contract'")
        err.unknown_keys(spec, ENTRY_KEYS)
        for key in ("model", "contract"):
            if key not in spec:
                raise ConfigError(f"{err.where(doc['encoders'], name)}: encoder {name!r} is missing field {key!r}")
        model = _local(err.string(spec, "model"), path.parent)
        overrides = {k: spec[k] for k in ("dtype", "query_max_length", "passage_max_length") if k in spec}
        if "dtype" in spec and spec["dtype"] not in DTYPES:
            raise ConfigError(f"{err.where(spec, 'dtype')}: expected one of {', '.join(sorted(DTYPES))}, "
                              f"got {spec['dtype']!r}")
        for key in ("query_max_length", "passage_max_length"):
            if key in spec:
                err.positive_int(spec, key, default=1)
        contract = _contract(err, spec, spec["contract"], overrides)
        extra: dict[str, Any] = {}
        for key in ("tokenizer", "adapter"):
            if key in spec:
                extra[key] = _local(err.string(spec, key), path.parent)
        for key in ("revision", "adapter_revision", "gguf_file"):  # gguf_file: a .gguf in the `model` folder
            if key in spec:
                extra[key] = err.string(spec, key)
        for key in ("allow_pickle", "trust_remote_code", "trained"):
            if key in spec:
                if not isinstance(spec[key], bool):
                    raise ConfigError(f"{err.where(spec, key)}: expected true or false")
                extra[key] = spec[key]
        contract_name = spec["contract"] if isinstance(spec["contract"], str) else spec["contract"]["base"]
        description = err.string(spec, "description", default=f"{model} under the {contract_name} contract")
        entries.append(decoder_entry(str(name), model, contract, description=description,
                                     origin=f"models-file:{path}", **extra))
    return entries


def load_models_files(paths: list[Path] | None = None, registry: Registry = REGISTRY) -> list[Path]:
    """Register the encoders of the given files and of the user's file (if it exists); returns the files read.

    Reloading a file replaces its own entries; a name taken by another origin is an error."""
    files = [p for p in [user_models_file()] if p.is_file()] + [Path(p) for p in paths or []]
    for path in files:
        if not path.is_file():
            raise ConfigError(f"models file {path} not found")
        path = path.resolve()  # one origin per file, however it was named
        for entry in parse_models_file(path.read_text(encoding="utf-8"), path):
            existing = registry.get(entry.name) if entry.name in registry else None
            registry.add_entry(entry, replace_existing=existing is not None and existing.origin == entry.origin)
    return files


def register_encoder(name: str, model: str, contract: str, path: Path | None = None, **fields: Any) -> Path:
    """Add (or replace) one encoder in a models file, written atomically; validated before writing."""
    path = path or user_models_file()
    doc = None
    if path.is_file():
        existing = path.read_text(encoding="utf-8")
        parse_models_file(existing, path)
        doc = yaml.safe_load(existing)
    doc = doc or {"encoders": {}}
    if name in REGISTRY and not REGISTRY.get(name).origin.startswith("models-file:"):
        raise ConfigError(f"encoder name {name!r} is already registered by {REGISTRY.get(name).name!r} "
                          f"({REGISTRY.get(name).origin}); choose another name")

    def here(value: str) -> str:  # a folder given relative to the current directory is written absolute
        local = Path(value).expanduser()
        return str(local.resolve()) if local.exists() else value

    spec = {"model": here(model), "contract": contract,
            **{k: here(v) if k in ("tokenizer", "adapter") else v for k, v in fields.items() if v is not None}}
    doc.setdefault("encoders", {})[name] = spec
    text = yaml.safe_dump(doc, sort_keys=False)
    parse_models_file(text, path)  # the same checks as on loading
    write_atomic(path, text.encode())
    return path

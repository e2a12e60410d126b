"""Encoders declared in a YAML file, so any local checkpoint (an adapted model, a converted one) becomes a
registry variant with one line::

    encoders:
      my-llara: {model: runs/adapt/final, contract: llara}
      stories-eos:
        model: /data/stories260K-hf      # a local folder or a Hub id
        contract: repllama               # llara | repllama | mean | cls, or a mapping: {base: llara, dtype: float32, ...}
        dtype: float32
        passage_max_length: 256
      e5: {model: /data/e5-base-v2, contract: mean, query_prefix: "query: ", passage_prefix: "passage: "}

``llara`` and ``repllama`` run a causal LM (models/decoder.py); ``mean`` and ``cls`` run a
sentence-transformers folder (models/sentence_transformer.py).

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
from llara_bench.harness.results import check_writable, write_atomic
from llara_bench.harness.yamlfile import FieldReader, Mapping, load_yaml, read_text, shown
from llara_bench.models import REGISTRY, EncodingContract, ModelEntry, Registry
from llara_bench.models.contracts import CONTRACTS, ENCODER_ONLY, contract_named
from llara_bench.models.fit import FitError, check_fit
from llara_bench.models.loading import DTYPES
from llara_bench.models.registry import decoder_entry, sentence_transformer_entry

DECODER_KEYS = {"tokenizer", "adapter", "revision", "adapter_revision", "allow_pickle", "trust_remote_code",
                "gguf_file"}
OVERRIDE_KEYS = ("dtype", "query_max_length", "passage_max_length", "query_prefix", "passage_prefix")  # contract fields
ENTRY_KEYS = {"model", "contract", "description", "trained", *DECODER_KEYS, *OVERRIDE_KEYS}
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
        if not base or not isinstance(base, str):
            raise ConfigError(f"{err.where(raw, 'base')}: a contract mapping needs 'base', a contract name "
                              f"({' or '.join(sorted(CONTRACTS))}); got {shown(base)}")
        for key, value in fields.items():
            if not _is_a(value, CONTRACT_TYPES[key]):
                raise ConfigError(f"{err.where(raw, key)}: expected {_describe(CONTRACT_TYPES[key])}, got "
                                  f"{shown(value)}")
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


def parse_models_file(text: str, path: Path, err: FieldReader | None = None) -> list[ModelEntry]:
    """The entries of a models file; errors point where ``err`` says (by default: the file, line and field)."""
    err = err or FieldReader(str(path))
    doc = load_yaml(text, str(path))
    if doc is None:
        return []
    if not isinstance(doc, Mapping) or set(doc) != {"encoders"} or not isinstance(doc["encoders"], Mapping):
        raise ConfigError(f"{path}: expected a mapping 'encoders:' of name to encoder "
                          "(e.g. my-llara: {model: ./ckpt, contract: llara})")
    entries = []
    for name, spec in doc["encoders"].items():
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{err.where(doc['encoders'], name)}: expected an encoder name (a string), got "
                              f"{shown(name)}")
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{err.where(doc['encoders'], name)}: expected a mapping with 'model' and 'contract'")
        err.unknown_keys(spec, ENTRY_KEYS)
        for key in ("model", "contract"):
            if key not in spec:
                raise ConfigError(f"{err.where(doc['encoders'], name)}: encoder {name!r} is missing field {key!r}")
        model = _local(err.string(spec, "model"), path.parent)
        overrides = {k: spec[k] for k in OVERRIDE_KEYS if k in spec}
        if "dtype" in spec and (not isinstance(spec["dtype"], str) or spec["dtype"] not in DTYPES):
            raise ConfigError(f"{err.where(spec, 'dtype')}: expected one of {', '.join(sorted(DTYPES))}, "
                              f"got {shown(spec['dtype'])}")
        for key in ("query_max_length", "passage_max_length"):
            if key in spec:
                err.positive_int(spec, key, default=1)
        for key in ("query_prefix", "passage_prefix"):
            if key in spec and not isinstance(spec[key], str):
                raise ConfigError(f"{err.where(spec, key)}: expected a string, got {shown(spec[key])}")
        contract = _contract(err, spec, spec["contract"], overrides)
        contract_name = spec["contract"] if isinstance(spec["contract"], str) else spec["contract"]["base"]
        encoder_only = contract_name in ENCODER_ONLY
        if encoder_only and DECODER_KEYS & set(spec):
            key = sorted(DECODER_KEYS & set(spec))[0]
            raise ConfigError(f"{err.where(spec, key)}: applies to decoder contracts (llara, repllama) only, not to "
                              f"{contract_name!r}")
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
        description = err.string(spec, "description", default=f"{model} under the {contract_name} contract")
        make = sentence_transformer_entry if encoder_only else decoder_entry
        entries.append(make(str(name), model, contract, description=description, origin=f"models-file:{path}",
                            **extra))
    return entries


def load_models_files(paths: list[Path] | None = None, registry: Registry = REGISTRY) -> list[Path]:
    """Register the encoders of the given files and of the user's file (if it exists); returns the files read.

    Reloading a file replaces its own entries; a name taken by another origin is an error."""
    files = [p for p in [user_models_file()] if p.is_file()] + [Path(p) for p in paths or []]
    for path in files:
        if not path.is_file():
            raise ConfigError(f"models file {path} " + ("is a folder; give a YAML file" if path.is_dir() else
                                                        "not found"))
        path = path.resolve()  # one origin per file, however it was named
        for entry in parse_models_file(read_text(path, "models file"), path):
            existing = registry.get(entry.name) if entry.name in registry else None
            registry.add_entry(entry, replace_existing=existing is not None and existing.origin == entry.origin)
    return files


def flag(key: str) -> str:
    """The `llara-bench register` argument or flag that sets an entry's field."""
    return "MODEL" if key == "model" else f"--{key.replace('_', '-')}"


class FlagReader(FieldReader):
    """Errors about an entry made from `llara-bench register`'s arguments name the flag, not a YAML line."""

    def where(self, mapping: Any, key: str) -> str:
        return flag(key)


def register_encoder(name: str, model: str, contract: str, path: Path | None = None, *, check: bool = True,
                     **fields: Any) -> Path:
    """Add (or replace) one encoder in a models file, written atomically, after checking (unless ``check`` is
    false) that the model loads under the contract (`models.fit`: config and tokenizer, no weights).

    Errors name the `register` command's argument or flag (MODEL, --contract, --dtype, ...)."""
    path = path or user_models_file()
    if path.is_dir():
        raise ConfigError(f"models file {path} (--models-file) is a folder; give a YAML file")
    check_writable(path.parent, "the models file's folder", "--models-file")  # before the model is checked
    doc = None
    if path.is_file():
        existing = read_text(path, "models file")
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
    [entry] = parse_models_file(yaml.safe_dump({"encoders": {name: spec}}), path, FlagReader(str(path)))
    if check:
        try:
            check_fit(entry)
        except FitError as exc:
            part = exc.part if exc.part in spec else "model"  # no --tokenizer: the model folder's own
            raise ConfigError(f"{flag(part)} {spec[part]}: {exc}") from None
        except ConfigError as exc:
            if Path(spec["model"]).exists():
                raise
            # a Hub id that cannot be read now (offline, gated)
            raise ConfigError(f"{exc}; or register it unchecked with --no-check") from None
    doc.setdefault("encoders", {})[name] = spec
    text = yaml.safe_dump(doc, sort_keys=False)
    parse_models_file(text, path)  # the same checks as on loading
    write_atomic(path, text.encode())
    return path

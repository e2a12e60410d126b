"""The encoder registry: named entries with lazy "module:attr" targets.

Ways in:
- ``@register("name", meta=...)`` on a factory (class or function) in any imported module;
- ``REGISTRY.add("name", "package.module:Factory", meta=...)``: lazy, nothing imported until loaded;
- the ``llara_bench.encoders`` entry-point group: an out-of-tree package points an entry point at a
  ``ModelEntry``, a list of them, or a function that takes the registry and adds its own;
- a local path: a sentence-transformers folder is usable by its path, no entry needed.

Unknown names get did-you-mean suggestions. Modelled on lm-evaluation-harness's registry.
"""

from __future__ import annotations

import importlib
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable, Iterator

from llara_bench.models.errors import ConfigError, UnknownNameError
from llara_bench.models.base import EncodingContract, ModelMeta

ENTRY_POINT_GROUP = "llara_bench.encoders"
Target = str | Callable[..., Any]


def resolve_target(target: Target) -> Callable[..., Any]:
    if callable(target):
        return target
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"target {target!r}: expected 'package.module:attribute'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"target {target!r}: cannot import {module_name!r} ({exc})") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"target {target!r}: module {module_name!r} has no attribute {attr!r}") from None
    return obj


@dataclass(frozen=True)
class ModelEntry:
    name: str
    target: Target
    meta: ModelMeta
    kwargs: dict[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    origin: str = "builtin"

    def load(self, **overrides: Any) -> Any:
        """Build the encoder: ``target(meta=..., **kwargs, **overrides)``."""
        factory = resolve_target(self.target)
        return factory(meta=self.meta, **{**self.kwargs, **overrides})

    def weights(self) -> str | None:
        """The causal LM this entry loads (a folder, Hub id or .gguf file), for training from it: its ``model``
        argument, else what its factory declares with a ``weights()`` function (SmolLM2: the installed GGUF
        file); None when neither says."""
        model = self.kwargs.get("model")
        if isinstance(model, str):
            return model
        declared = getattr(resolve_target(self.target), "weights", None)
        return str(declared()) if callable(declared) else None


class Registry:
    def __init__(self, entry_point_group: str | None = ENTRY_POINT_GROUP):
        self._entries: dict[str, ModelEntry] = {}
        self._aliases: dict[str, str] = {}
        self._group = entry_point_group
        self._entry_points_loaded = entry_point_group is None

    # -- adding ---------------------------------------------------------------------------
    def add(self, name: str, target: Target, *, meta: ModelMeta, aliases: tuple[str, ...] = (),
            origin: str = "builtin", replace_existing: bool = False, **kwargs: Any) -> ModelEntry:
        if meta.name != name:
            meta = replace(meta, name=name)
        entry = ModelEntry(name, target, meta, kwargs, tuple(aliases), origin)
        self.add_entry(entry, replace_existing=replace_existing)
        return entry

    def add_entry(self, entry: ModelEntry, *, replace_existing: bool = False) -> None:
        if not replace_existing:
            for key in (entry.name, *entry.aliases):
                owner = self._aliases.get(key, key)
                if owner in self._entries:
                    raise ConfigError(f"encoder name {key!r} is already registered by {owner!r} "
                                      f"({self._entries[owner].origin}); choose another name")
        self._entries[entry.name] = entry
        for alias in entry.aliases:
            self._aliases[alias] = entry.name

    @contextmanager
    def scoped(self, entries: list[ModelEntry]) -> Iterator[None]:
        """The entries registered for the duration of a ``with`` block only (replacing any of the same name);
        afterwards the registry holds exactly what it held before."""
        self._load_entry_points()
        saved = dict(self._entries), dict(self._aliases)
        for entry in entries:
            self.add_entry(entry, replace_existing=True)
        try:
            yield
        finally:
            self._entries, self._aliases = saved

    def register(self, name: str, *, meta: ModelMeta, aliases: tuple[str, ...] = (), **kwargs: Any
                 ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator form of `add` for a factory defined in code."""

        def decorate(factory: Callable[..., Any]) -> Callable[..., Any]:
            origin = f"{getattr(factory, '__module__', '?')}:{getattr(factory, '__qualname__', '?')}"
            self.add(name, factory, meta=meta, aliases=aliases, origin=origin, **kwargs)
            return factory

        return decorate

    # -- looking up -----------------------------------------------------------------------
    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=self._group):
            try:
                obj = ep.load()
            except Exception as exc:  # a broken plug-in must not hide the built-in encoders
                raise ConfigError(f"entry point {ep.name!r} ({ep.value}) in group {self._group!r} failed to "
                                  f"load: {exc}") from exc
            origin = f"entry-point:{ep.dist.name if ep.dist else ep.value}"
            if isinstance(obj, ModelEntry):
                self.add_entry(replace(obj, origin=origin))
            elif isinstance(obj, (list, tuple)) and all(isinstance(o, ModelEntry) for o in obj):
                for o in obj:
                    self.add_entry(replace(o, origin=origin))
            elif callable(obj):
                obj(self)
            else:
                raise ConfigError(f"entry point {ep.name!r} ({ep.value}): expected a ModelEntry, a list of them, "
                                  f"or a function taking the registry; got {type(obj).__name__}")

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._entries)

    def __iter__(self) -> Iterator[ModelEntry]:
        return iter(self._entries[n] for n in self.names())

    def __contains__(self, name: str) -> bool:
        self._load_entry_points()
        return name in self._entries or name in self._aliases

    def get(self, name: str) -> ModelEntry:
        """The entry for a registered name or alias, or for a local model folder given by path."""
        self._load_entry_points()
        key = self._aliases.get(name, name)
        if key in self._entries:
            return self._entries[key]
        path = Path(name).expanduser()
        if path.exists():
            return entry_for_path(path)
        raise UnknownNameError("encoder", name, sorted([*self._entries, *self._aliases]))


# -- entries for a model under a named contract (the catalog, models files and adapted folders) ----------

DECODER_TARGET = "llara_bench.models.decoder:DecoderEncoder"
SENTENCE_TRANSFORMER_TARGET = "llara_bench.models.sentence_transformer:SentenceTransformerEncoder"
META_FIELDS = ("dimension", "max_length", "n_parameters", "license", "reference", "trained", "revision")


def decoder_meta(name: str, source: str, contract: EncodingContract, *, description: str, **fields: Any) -> ModelMeta:
    return ModelMeta(name=name, kind="dense", description=description, source=source, contract=contract,
                     similarity="cosine" if contract.normalize else "dot", **fields)


def checkpoint_meta(model: str) -> dict[str, int]:
    """The dimension and position limit of a local transformers folder, from its config.json; nothing for a Hub
    id, or a config that cannot be read (loading the model reports that)."""
    import json

    try:
        config = json.loads((Path(model).expanduser() / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    found = {"dimension": config.get("hidden_size"), "max_length": config.get("max_position_embeddings")}
    return {k: v for k, v in found.items() if isinstance(v, int) and not isinstance(v, bool)}


def decoder_entry(name: str, model: str, contract: EncodingContract, *, description: str, origin: str = "builtin",
                  **fields: Any) -> ModelEntry:
    """An entry for a causal LM (Hub id or local folder) under an encoding contract.

    ``fields`` holds ModelMeta fields (`META_FIELDS`; a local folder's dimension and position limit are read
    from its config.json) and DecoderEncoder arguments (tokenizer, adapter, adapter_revision, dtype,
    allow_pickle, trust_remote_code, ...); ``revision`` is both.
    """
    fields = {**checkpoint_meta(model), **fields}
    meta = decoder_meta(name, model + (f" + {fields['adapter']}" if fields.get("adapter") else ""), contract,
                        description=description, **{k: fields[k] for k in META_FIELDS if k in fields})
    kwargs = {"model": model, **{k: v for k, v in fields.items() if k not in META_FIELDS or k == "revision"}}
    return ModelEntry(name, DECODER_TARGET, meta, kwargs, origin=origin)


def sentence_transformer_entry(name: str, model: str, contract: EncodingContract, *, description: str,
                               origin: str = "builtin", **fields: Any) -> ModelEntry:
    """An entry for an encoder-only model (a sentence-transformers folder or Hub id) under an encoder-only
    contract; dimension and lengths are read from the folder's config files when it is local."""
    from llara_bench.models.sentence_transformer import sentence_transformer_meta

    found = sentence_transformer_meta(model, description=description)
    lengths = {f"{role}_max_length": found.max_length for role in ("query", "passage")
               if contract.max_length(role) is None}  # type: ignore[arg-type]
    meta = replace(found, name=name, contract=replace(contract, **lengths),
                   similarity="cosine" if contract.normalize else "dot",
                   **{k: fields[k] for k in META_FIELDS if k in fields})
    return ModelEntry(name, SENTENCE_TRANSFORMER_TARGET, meta, {"model_path": model}, origin=origin)


def entry_for_path(path: Path) -> ModelEntry:
    """An entry for a local model folder, recognised by what it contains."""
    from llara_bench.models.sentence_transformer import sentence_transformer_meta

    if not path.is_dir():
        raise ConfigError(f"model path {path}: expected a model folder")
    if (path / "modules.json").is_file() or (path / "config_sentence_transformers.json").is_file():
        meta = sentence_transformer_meta(str(path), description=f"sentence-transformers model at {path}")
        return ModelEntry(str(path), SENTENCE_TRANSFORMER_TARGET, meta, {"model_path": str(path)}, origin="path")
    if (path / ADAPTED_MANIFEST).is_file():
        return adapted_entry(path)
    if (path / "config.json").is_file():
        raise ConfigError(f"model path {path}: a transformers checkpoint needs an encoding contract; register it "
                          f"first: llara-bench register NAME {path} --contract llara|repllama")
    raise ConfigError(f"model path {path}: not a recognised model folder (expected a sentence-transformers folder "
                      "with modules.json)")


ADAPTED_MANIFEST = "llara-bench.json"  # written by adaptation.stages


def adapted_entry(path: Path, name: str | None = None) -> ModelEntry:
    """An entry (named ``name``, by default the path) for a folder written by ``llara-bench adapt`` or
    ``finetune``: its manifest names the encoding contract it was trained for."""
    import json

    manifest_path = path / ADAPTED_MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text())
        fields = manifest["encoding_contract"]
        contract = EncodingContract(**{**fields, "special_tokens": tuple(fields["special_tokens"])})
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{manifest_path}: expected the manifest llara-bench adapt/finetune writes, with an "
                          f"'encoding_contract' ({exc})") from None
    stage = manifest.get("stage", "adapted")
    return decoder_entry(name or str(path), str(path), contract, origin="path", trained=True,
                         description=f"{stage} by llara-bench from {manifest.get('base')} "
                                     f"(pretext mode {manifest.get('mode', 'released')})")


REGISTRY = Registry()
register = REGISTRY.register

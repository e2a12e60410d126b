"""The registry: decorator and lazy registration, entry points, local paths, did-you-mean."""

from __future__ import annotations

import sys
import types
from importlib.metadata import EntryPoint

import pytest

import llara_bench.models.registry as registry_module
from llara_bench.harness.errors import ConfigError, UnknownNameError
from llara_bench.models import REGISTRY, ModelEntry, ModelMeta, Registry

META = ModelMeta(name="x", kind="dense", description="test", source="test", similarity="cosine", dimension=2)


class Factory:
    def __init__(self, meta, scale=1.0, **kwargs):
        self.meta, self.scale, self.kwargs = meta, scale, kwargs


def test_builtins_are_registered_with_metadata():
    assert {"minilm", "bm25"} <= set(REGISTRY.names())
    assert REGISTRY.get("all-MiniLM-L6-v2") is REGISTRY.get("minilm")
    meta = REGISTRY.get("minilm").meta
    assert (meta.dimension, meta.kind, meta.contract.normalize) == (384, "dense", True)


def test_decorator_registration_and_kwargs():
    reg = Registry(entry_point_group=None)

    @reg.register("scaled", meta=META, scale=2.0)
    class Scaled(Factory):
        pass

    enc = reg.get("scaled").load(extra=1)
    assert isinstance(enc, Scaled) and enc.scale == 2.0 and enc.kwargs == {"extra": 1}
    assert enc.meta.name == "scaled"  # the entry's name wins over the meta's placeholder


def test_lazy_target_is_imported_only_on_load():
    reg = Registry(entry_point_group=None)
    reg.add("lazy", "llara_test_lazy_module:Factory", meta=META)
    assert "llara_test_lazy_module" not in sys.modules
    module = types.ModuleType("llara_test_lazy_module")
    module.Factory = Factory
    sys.modules["llara_test_lazy_module"] = module
    try:
        assert isinstance(reg.get("lazy").load(), Factory)
    finally:
        del sys.modules["llara_test_lazy_module"]


@pytest.mark.parametrize("target,message", [("no_colon", "expected 'package.module:attribute'"),
                                            ("no_such_module_xyz:F", "cannot import"),
                                            ("json:NoSuchThing", "has no attribute")])
def test_bad_targets_fail_clearly(target, message):
    reg = Registry(entry_point_group=None)
    reg.add("bad", target, meta=META)
    with pytest.raises(ConfigError, match=message):
        reg.get("bad").load()


def test_duplicate_names_and_aliases_are_refused():
    reg = Registry(entry_point_group=None)
    reg.add("a", Factory, meta=META, aliases=("alias-a",))
    with pytest.raises(ConfigError, match="already registered"):
        reg.add("a", Factory, meta=META)
    with pytest.raises(ConfigError, match="already registered by 'a'"):
        reg.add("b", Factory, meta=META, aliases=("alias-a",))


def test_unknown_name_suggests_close_matches():
    with pytest.raises(UnknownNameError) as exc:
        REGISTRY.get("minilmm")
    assert "Did you mean 'minilm'" in str(exc.value)


def test_entry_point_group_adds_out_of_tree_encoders(monkeypatch):
    module = types.ModuleType("llara_test_plugin")
    module.ENTRY = ModelEntry("plugin-enc", Factory, META)
    module.add_more = lambda reg: reg.add("plugin-fn", Factory, meta=META)
    monkeypatch.setitem(sys.modules, "llara_test_plugin", module)
    eps = [EntryPoint("one", "llara_test_plugin:ENTRY", "llara_bench.encoders"),
           EntryPoint("two", "llara_test_plugin:add_more", "llara_bench.encoders")]
    monkeypatch.setattr(registry_module, "entry_points", lambda group: eps if group == "llara_bench.encoders" else [])
    reg = Registry()
    assert {"plugin-enc", "plugin-fn"} <= set(reg.names())
    assert reg.get("plugin-enc").origin.startswith("entry-point:")


def test_broken_entry_point_names_itself(monkeypatch):
    eps = [EntryPoint("broken", "no_such_plugin_module:X", "llara_bench.encoders")]
    monkeypatch.setattr(registry_module, "entry_points", lambda group: eps)
    with pytest.raises(ConfigError, match="entry point 'broken'"):
        Registry().names()


def test_local_sentence_transformers_folder_by_path():
    from llara_bench.models.sentence_transformer import minilm_path

    entry = REGISTRY.get(minilm_path())
    assert entry.origin == "path" and entry.meta.dimension == 384 and entry.meta.max_length == 256


def test_path_that_is_not_a_model_folder(tmp_path):
    with pytest.raises(ConfigError, match="not a recognised model folder"):
        REGISTRY.get(str(tmp_path))

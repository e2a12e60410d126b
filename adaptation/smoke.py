"""`tiny-llara`: the embedded `tiny-llama` adapted with LLaRA (EBAE + EBAR, the released code's mode) on the
embedded smoke corpus, so that the first report a user sees sets the baseline beside its LLaRA variant.

Its weights ship with the package (``adaptation/data/tiny-llara``, 2 MB), built by this module with
`adaptation.stages.adapt`: ``python -m llara_bench.adaptation.smoke`` rebuilds them from tiny-llama (600
seeded steps; 52 s on 2 idle cores). They are shipped, not built at first use, so that the smoke gates give
the same verdict on every CPU (600 steps of float sums round differently from one instruction set to another:
a first-use build scored 0.1495 nDCG@10 on one machine against 0.1611 on another) and the first run is fast.
The folder's BUILD.json records the recipe it was built from (`recipe()`); a test fails when the recipe
changes and the weights are not rebuilt. It is registered through the ``llara_bench.encoders`` entry point
(pyproject.toml), as any plug-in variant would be: `models` does not depend on `adaptation`.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from llara_bench.adaptation.train import TrainSettings
from llara_bench.models.base import ModelMeta
from llara_bench.models.contracts import LLARA
from llara_bench.models.errors import ConfigError
from llara_bench.models.registry import ModelEntry, Registry, decoder_meta

BUILD_VERSION = 1
# The bag-of-words losses alone (next-token weight 0): on 235 short passages the next-token loss only
# memorises them (0.136 nDCG@10 with weight 0.1, 0.025 with the released weight 1 and 300 steps, against
# 0.161 without it; the untrained tiny-llama scores 0.029).
SETTINGS = TrainSettings(steps=600, batch_size=16, lr=2e-3, warmup_ratio=0.1, seed=0, log_every=50,
                         monitor_every=0)
ADAPT: dict[str, Any] = dict(mode="released", chunk_words=24, short_docs="halve", max_text_tokens=64,
                             next_token_weight=0.0)


PACKAGED = Path(__file__).resolve().parent / "data" / "tiny-llara"


def recipe() -> dict[str, Any]:
    """What the shipped weights are built from: tiny-llama's recipe (config, seed, vocabulary, corpus) and the
    adaptation's settings; the library versions that built them are recorded beside it, not part of it."""
    from llara_bench.models import tiny_llama

    corpus = hashlib.sha256("\n".join(text for _, text in tiny_llama.corpus_docs()).encode()).hexdigest()
    return {"version": BUILD_VERSION, "base": {"version": tiny_llama.BUILD_VERSION, "seed": tiny_llama.SEED,
                                               "vocab": tiny_llama.VOCAB_SIZE, "config": tiny_llama.CONFIG,
                                               "corpus": corpus},
            "settings": asdict(SETTINGS), "adapt": ADAPT}


def tiny_llara_path() -> Path:
    """The shipped folder."""
    if not (PACKAGED / "model.safetensors").is_file():
        raise ConfigError(f"tiny-llara's weights are missing from {PACKAGED}; reinstall llara-bench, or rebuild "
                          "them with: python -m llara_bench.adaptation.smoke")
    return PACKAGED


def build(folder: Path) -> None:
    """Adapt tiny-llama into the (empty) ``folder`` and record how; a failed build leaves no checkpoint behind."""
    import shutil

    from llara_bench.adaptation.stages import adapt, workdir_for
    from llara_bench.harness.provenance import library_versions
    from llara_bench.models.tiny_llama import build_key, corpus_docs, tiny_llama_path

    try:
        adapt(str(tiny_llama_path()), corpus_docs(), folder, SETTINGS, corpus={"spec": "embedded:smoke"}, **ADAPT)
    finally:
        shutil.rmtree(workdir_for(folder), ignore_errors=True)
    libraries = library_versions()
    (folder / "BUILD.json").write_text(json.dumps({
        "built_by": "python -m llara_bench.adaptation.smoke", "recipe": recipe(), "tiny_llama_key": build_key(),
        "libraries": {k: libraries.get(k) for k in ("torch", "transformers", "tokenizers", "accelerate")}},
        indent=1) + "\n")


def main(argv: list[str]) -> int:
    """Rebuild the shipped weights in place (into a scratch folder first, then swapped in whole)."""
    from llara_bench.models.files import move_into_place, scratch_beside
    from llara_bench.models.tiny_llama import build_key

    if argv:
        print("usage: python -m llara_bench.adaptation.smoke  (rebuilds adaptation/data/tiny-llara)", file=sys.stderr)
        return 2

    PACKAGED.parent.mkdir(parents=True, exist_ok=True)
    with scratch_beside(PACKAGED) as scratch:
        build(scratch)
        (scratch / "generation_config.json").unlink(missing_ok=True)  # not needed to encode
        manifest_file = scratch / "llara-bench.json"  # its base was a folder of this machine's cache
        manifest = json.loads(manifest_file.read_text())
        manifest["base"] = manifest["tokenizer"] = f"tiny-llama (build {build_key()})"
        manifest_file.write_text(json.dumps(manifest, indent=1) + "\n")
        move_into_place(scratch, PACKAGED, existing="replace")
    print(f"rebuilt {PACKAGED}")
    return 0


def tiny_llara_encoder(meta: ModelMeta, **kwargs: Any):
    from llara_bench.models.decoder import DecoderEncoder

    return DecoderEncoder(meta, str(tiny_llara_path()), **kwargs)


def register(registry: Registry) -> None:
    """The ``llara_bench.encoders`` entry point: adds `tiny-llara`."""
    registry.add_entry(ModelEntry("tiny-llara", "llara_bench.adaptation.smoke:tiny_llara_encoder", decoder_meta(
        "tiny-llara", "shipped with llara-bench (adaptation/data/tiny-llara; python -m llara_bench.adaptation.smoke)",
        replace(LLARA, dtype="float32"), trained=True,
        dimension=64, max_length=1024,
        description=f"tiny-llama adapted with LLaRA (EBAE + EBAR bag-of-words losses, 8 tokens per head, "
                    f"{SETTINGS.steps} steps) on the smoke corpus; weights shipped with the package"),
        origin="entry-point:llara-bench (adaptation.smoke)"))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

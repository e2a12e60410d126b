"""GGUF checkpoints (llama.cpp's one-file format, often quantised) as encoders and adaptation bases.

transformers reads a GGUF file itself (``from_pretrained(folder, gguf_file=...)``, with the `gguf` package)
and dequantises every tensor to float32, which takes a while (~20 s for SmolLM2-135M on 2 cores). The
result is saved once as a plain transformers folder (safetensors + tokenizer) under the cache, keyed by
the file's sha256, so every later load is a normal fast load; ``gguf.json`` in that folder records the
source file, its hash and its quantisation, and travels into provenance.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

from llara_bench.models.cache import cache_root, cached_build
from llara_bench.models.errors import ConfigError

log = logging.getLogger(__name__)

MANIFEST = "gguf.json"
INSTALL_HINT = "pip install 'llara-bench[smollm2]' (the gguf package)"


def gguf_path(entry: str, model: str, gguf_file: str | None = None) -> Path | None:
    """The GGUF file that ``model`` (or the folder ``model`` plus ``gguf_file``) names; None for anything
    else (a model folder, a Hub id)."""
    path = Path(model).expanduser()
    if gguf_file is not None:
        path = path / gguf_file
    elif path.suffix.lower() != ".gguf":
        return None
    if not path.is_file():
        raise ConfigError(f"encoder {entry!r}: GGUF file {path} not found; expected a .gguf file (or a folder "
                          "holding the file named by gguf_file)")
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def quantisation(path: Path) -> dict[str, Any]:
    """The file's declared quantisation (general.file_type, e.g. MOSTLY_Q4_1) and its tensors' types."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    field = reader.fields.get("general.file_type")
    file_type = gguf.LlamaFileType(int(field.contents())).name if field is not None else None
    return {"file_type": file_type,
            "tensor_types": dict(Counter(t.tensor_type.name for t in reader.tensors).most_common())}


def dequantised_folder(entry: str, path: Path) -> Path:
    """The cached plain transformers folder of the GGUF file ``path``, dequantised first if absent."""
    sha256 = file_sha256(path)
    folder = cache_root() / "gguf" / f"{path.stem}-{sha256[:16]}"
    if not folder.is_dir():
        log.info("%s: dequantising %s to float32, once (cached in %s)", entry, path.name, folder)
    return cached_build(folder, lambda out: dequantise(entry, path, sha256, out))


def dequantise(entry: str, path: Path, sha256: str, out: Path) -> None:
    """Load ``path`` through transformers' GGUF reader (float32) and save model + tokenizer into ``out``."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llara_bench.models.loading import save_safetensors

    try:
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        gguf_model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
        details = quantisation(path)
    except ImportError as exc:
        raise ConfigError(f"encoder {entry!r}: reading GGUF file {path} needs the gguf package: {INSTALL_HINT} "
                          f"({exc})") from exc
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ConfigError(f"encoder {entry!r}: transformers cannot load GGUF file {path}: {exc}") from exc
    # The loaded model is marked gguf-quantised and save_pretrained refuses it; a plain model of the same
    # class and config, given its (already float32) weights, is an ordinary checkpoint.
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = type(gguf_model)(config)
    model.load_state_dict(gguf_model.state_dict())
    save_safetensors(model, out)
    tokenizer.save_pretrained(out)
    n_parameters = sum(p.numel() for p in model.parameters())
    (out / MANIFEST).write_text(json.dumps({
        "gguf_file": str(path.resolve()), "gguf_sha256": sha256, "gguf_quantisation": details["file_type"],
        "gguf_tensor_types": details["tensor_types"], "dequantised_dtype": "float32", "n_parameters": n_parameters,
        "transformers": transformers.__version__}, indent=2))


def provenance(folder: Path) -> dict[str, Any]:
    """What ``gguf.json`` says of a dequantised folder's source ({} for any other folder)."""
    path = folder / MANIFEST
    if not path.is_file():
        return {}
    return {k: v for k, v in json.loads(path.read_text()).items() if k.startswith("gguf_")}

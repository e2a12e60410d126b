"""Result files: one JSON per (model, dataset) in a run directory, written atomically.

Layout of a run directory::

    <run dir>/run.json                       the suite, the config, and the list of result files
    <run dir>/results/<model>/<dataset>.json one result (schema: harness/schema/result.schema.json)
    <run dir>/results/<model>/<dataset>.trec.gz  the ranked lists in TREC run format
"""

from __future__ import annotations

import gzip
import json
import os
import re
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from llara_bench.harness.errors import DataFormatError

SCHEMA_VERSION = 1
_UMASK = os.umask(0o022)  # read the process umask (the only way is to set it) and put it back
os.umask(_UMASK)


def schema() -> dict:
    return json.loads((resources.files("llara_bench.harness") / "schema" / "result.schema.json").read_text())


def slug(name: str) -> str:
    """A file-name-safe form of a model or dataset name (paths and ids contain '/')."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "unnamed"


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, then rename: never a half-written file."""
    from llara_bench.models.files import write_atomic as write  # the one helper, shared with models/adaptation

    write(path, data)


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def write_trec_run(path: Path, run: dict[str, dict[str, float]], tag: str) -> None:
    lines = []
    for qid, docs in run.items():
        for rank, (doc_id, score) in enumerate(sorted(docs.items(), key=lambda kv: -kv[1]), start=1):
            lines.append(f"{qid} Q0 {doc_id} {rank} {score:.6f} {tag}\n")
    # level 1: five times faster than 6 on a run file, and 10% larger
    write_atomic(path, gzip.compress("".join(lines).encode("utf-8"), compresslevel=1, mtime=0))


def result_paths(run_dir: Path, model: str, dataset: str) -> tuple[Path, Path]:
    base = run_dir / "results" / slug(model) / slug(dataset)
    return base.with_suffix(".json"), base.with_suffix(".trec.gz")


def load_result(path: Path) -> dict:
    try:
        result = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataFormatError(path, f"cannot read result file ({exc})") from None
    version = result.get("schema_version") if isinstance(result, dict) else None
    if version != SCHEMA_VERSION:
        raise DataFormatError(path, f"expected a result with schema_version {SCHEMA_VERSION}, got {version!r}",
                              field="schema_version")
    return result

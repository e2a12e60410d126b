"""Result files: one JSON per (model, dataset) in a run directory, written atomically.

Layout of a run directory::

    <run dir>/run.json                       the suite, the config, and the list of result files
                                             (schema: harness/schema/run.schema.json)
    <run dir>/results/<model>/<dataset>.json one result (schema: harness/schema/result.schema.json)
    <run dir>/results/<model>/<dataset>.trec.gz  the ranked lists in TREC run format
    <run dir>/qrels/<dataset>.qrels          the qrels as scored (grades mapped, negatives at 0), TREC
                                             format: `llara-bench evaluate` recomputes any measure later

Every run folder is named by `new_run_dir`, every result and run record is written by `write_result` and
`write_run` (`llara-bench run` and `llara-bench mteb` alike), and each is validated against its schema
when written and when read (`read_result`, `read_run`): a malformed file is refused with its path and field.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import re
import tempfile
import uuid
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from llara_bench.harness.errors import DataFormatError
from llara_bench.harness.record import SCHEMA_VERSION, ResultRecord, RunRecord

__all__ = ["ResultRecord", "RunRecord", "SCHEMA_VERSION", "check_run_writable", "check_writable", "load_result",
           "new_run_dir", "qrels_file", "read_result", "read_run", "result_paths", "same_file_name", "schema",
           "slug", "write_atomic", "write_json", "write_result", "write_run"]


def schema(name: str = "result") -> dict:
    """The JSON schema of a result file (``result``) or of a run.json (``run``)."""
    return json.loads((resources.files("llara_bench.harness") / "schema" / f"{name}.schema.json").read_text())


@lru_cache(maxsize=None)
def _validator(name: str) -> jsonschema.protocols.Validator:
    spec = schema(name)
    base = jsonschema.validators.validator_for(spec)
    return jsonschema.validators.extend(base, {"additionalProperties": _scalar_maps_first(base)})(spec)


_SCALAR_TYPES = {"number": (int, float), "string": (str,)}  # type() is exact: a bool is not a number
_PLAIN_KEYWORDS = {"type", "required", "properties", "additionalProperties", "description"}


def _scalar_maps_first(base):
    """jsonschema's additionalProperties, after one quick pass over maps of plain values (per-query scores,
    query texts and top documents hold thousands): when each value plainly matches, nothing is left to check;
    otherwise jsonschema's own check runs and reports the error."""
    check = base.VALIDATORS["additionalProperties"]

    def additional_properties(validator, additional, instance, schema):
        if (isinstance(instance, dict) and "properties" not in schema and "patternProperties" not in schema
                and all(_plainly_valid(additional, v) for v in instance.values())):
            return
        yield from check(validator, additional, instance, schema)

    return additional_properties


def _plainly_valid(spec: Any, value: Any) -> bool:
    """True when ``value`` matches ``spec`` made of types (number, string, object), required, properties and
    additionalProperties only; False when it does not, or when ``spec`` says more (then jsonschema decides)."""
    if not isinstance(spec, dict) or not spec.keys() <= _PLAIN_KEYWORDS:
        return False
    kind = spec.get("type")
    if kind in _SCALAR_TYPES:
        return spec.keys() <= {"type", "description"} and type(value) in _SCALAR_TYPES[kind]
    if kind != "object" or type(value) is not dict or not all(k in value for k in spec.get("required", ())):
        return False
    properties = spec.get("properties", {})
    rest = spec.get("additionalProperties", True)
    return all(_plainly_valid(properties[k], v) if k in properties else rest is True or _plainly_valid(rest, v)
               for k, v in value.items())


def slug(name: str) -> str:
    """A file-name-safe form of a model or dataset name (paths and ids contain '/')."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "unnamed"


def same_file_name(names: list[str]) -> tuple[int, int] | None:
    """The positions of the first two names that make the same file name (`slug`: ``A`` and ``A/``), if any:
    the results of those models or datasets would overwrite each other."""
    first: dict[str, int] = {}
    for i, name in enumerate(names):
        j = first.setdefault(slug(name), i)
        if j != i:
            return j, i
    return None


def check_writable(folder: Path, what: str, flag: str) -> None:
    """Make sure files can be written under ``folder`` (``what``: "the output folder", given by ``flag``) by
    creating and removing a probe file there, before any model is loaded: a run that could not save its
    results fails in its first second, not after hours of encoding. Folders made for the probe are removed."""
    from llara_bench.harness.errors import ConfigError
    from llara_bench.harness.failures import reason_and_advice

    folder = Path(folder)
    made = [p for p in [folder, *folder.parents] if not p.exists() and not p.is_symlink()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".llara-bench-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = "it is a file; give a folder" if folder.is_file() else reason_and_advice(exc)
        raise ConfigError(f"{what} {folder} ({flag}) is not a writable folder: {reason}") from None
    finally:
        for path in made:  # deepest first; only the empty folders this probe made
            try:
                path.rmdir()
            except OSError:
                break


def check_run_writable(output: Path, uses_cache: bool) -> None:
    """A run's ``--output`` and, when it will write there (a dense model's embeddings or built weights), the
    cache: both checked by `check_writable` before any model is loaded."""
    check_writable(output, "the output folder", "--output")
    if uses_cache:
        from llara_bench.models.cache import cache_root

        check_writable(cache_root(), "the cache folder", "LLARA_BENCH_CACHE")


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


def qrels_file(run_dir: Path, dataset: str) -> Path:
    """Where a run saves the qrels it scored ``dataset`` with."""
    return run_dir / "qrels" / f"{slug(dataset)}.qrels"


def new_run_dir(output: Path, name: str) -> Path:
    """A new run folder's path under ``output``: the suite's name, the local time and a random tail."""
    return Path(output) / f"{slug(name)}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def write_result(run_dir: Path, record: ResultRecord, ranked: dict[str, dict[str, float]] | None,
                 qrels: dict[str, dict[str, int]] | None = None) -> str:
    """Write ``record`` (validated) to results/<model>/<dataset>.json and, unless ``ranked`` is None, the
    ranked lists beside it as a TREC run and ``qrels`` (the grades as scored) as qrels/<dataset>.qrels; sets
    the record's ``run_id``, ``run_file`` and ``qrels_file`` to match. Returns the JSON file's path relative
    to ``run_dir`` (for run.json's list)."""
    json_path, trec_path = result_paths(run_dir, record.model.name, record.dataset.name)
    qrels_path = qrels_file(run_dir, record.dataset.name)
    record.run_id = run_dir.name
    record.run_file = None if ranked is None else str(trec_path.relative_to(run_dir))
    record.qrels_file = None if ranked is None or qrels is None else str(qrels_path.relative_to(run_dir))
    data = record.to_dict()
    _validate(data, "result", json_path)  # before anything is written
    if ranked is not None:
        write_trec_run(trec_path, ranked, tag=slug(record.model.name))
        if qrels is not None:
            from llara_bench.harness.trec import format_qrels

            text = format_qrels(qrels)  # every model of the run scores a dataset with the same qrels: one file
            if not qrels_path.is_file() or qrels_path.read_bytes() != text:
                write_atomic(qrels_path, text)
    write_json(json_path, data)
    return str(json_path.relative_to(run_dir))


def write_run(run_dir: Path, record: RunRecord) -> None:
    """Write ``record`` (validated) to run_dir/run.json; sets its ``run_id`` to the folder's name."""
    record.run_id = run_dir.name
    data = record.to_dict()
    _validate(data, "run", run_dir / "run.json")
    write_json(run_dir / "run.json", data)


def read_result(path: Path) -> ResultRecord:
    """A result file as a typed record; a file that does not match result.schema.json is refused."""
    return ResultRecord.from_dict(_read(path, "result"))


def load_result(path: Path) -> dict:
    """A result file (validated, as `read_result`) in its dict form, for readers that index by key."""
    return read_result(path).to_dict()


def read_run(path: Path) -> RunRecord:
    """A run.json as a typed record; a file that does not match run.schema.json is refused."""
    return RunRecord.from_dict(_read(path, "run"))


def _read(path: Path, kind: str) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataFormatError(path, f"cannot read {kind} file ({exc})") from None
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version != SCHEMA_VERSION:
        raise DataFormatError(path, f"expected a {kind} with schema_version {SCHEMA_VERSION}, got {version!r}",
                              field="schema_version")
    _validate(data, kind, path)
    # the scores: JSON has no NaN or Infinity, but Python's json reads and writes them
    where = next(filter(None, (_non_finite(data.get(k), (k,)) for k in ("metrics", "per_query"))), None)
    if where is not None:
        raise DataFormatError(path, "expected a finite number, got NaN or Infinity (a score that was never "
                              "computed: run it again)", field=".".join(where))
    return data


def _non_finite(value: Any, where: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """The path of the first NaN or infinite number in ``value``, if any."""
    if isinstance(value, float):
        return where if value != value or value in (float("inf"), float("-inf")) else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(item, (float, dict, list)):
            found = _non_finite(item, (*where, str(key)))
            if found is not None:
                return found
    return None


def _validate(data: dict, kind: str, path: Path) -> None:
    """Raise a DataFormatError naming ``path`` and the (dotted) field of the most relevant schema violation."""
    error = jsonschema.exceptions.best_match(_validator(kind).iter_errors(data))
    if error is None:
        return
    where = [str(p) for p in error.absolute_path]
    if error.validator == "required":  # name the first missing field, not its parent
        where.append(next(n for n in error.validator_value if n not in error.instance))
        what = "missing"
    elif error.validator == "type":
        what = f"expected {_or(error.validator_value)}, got {type(error.instance).__name__} {_short(error.instance)}"
    else:
        what = error.message if len(error.message) <= 200 else error.message[:200] + "…"
    raise DataFormatError(path, f"{what} (see harness/schema/{kind}.schema.json; write it again with "
                          "llara-bench, or mend the field)", field=".".join(where) or None)


def _or(types: str | list[str]) -> str:
    return types if isinstance(types, str) else " or ".join(types)


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, (dict, list)) else \
        f"with {len(value)} item{'s' if len(value) != 1 else ''}"
    return text if len(text) <= 60 else text[:60] + "…"

"""The typed result and run records: one writer, validated against their schemas on write and on read."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from llara_bench.harness import results
from llara_bench.harness.cli import app
from llara_bench.harness.errors import DataFormatError
from llara_bench.harness.record import DatasetInfo, ResultRecord, RunRecord, SearchInfo


def _results(run_dir):
    return sorted((run_dir / "results").glob("*/*.json"))


def _rewrite(path, change) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def test_a_run_writes_records_that_read_back_unchanged(smoke_run_dir, tmp_path):
    run = results.read_run(smoke_run_dir / "run.json")
    assert run.run_id == smoke_run_dir.name and run.suite == "smoke" and run.baseline == "bm25"
    assert [smoke_run_dir / f for f in run.results] == [smoke_run_dir / "results" / m / "smoke.json"
                                                        for m in ("minilm", "bm25", "tiny-llama", "tiny-llara")]
    for path in _results(smoke_run_dir):
        on_disk = json.loads(path.read_text(encoding="utf-8"))
        record = results.read_result(path)
        assert isinstance(record.dataset, DatasetInfo) and isinstance(record.search, SearchInfo)
        assert record.dataset.n_queries == 40 and record.run_id == smoke_run_dir.name
        assert record.to_dict() == on_disk  # nothing lost, nothing added
        # record -> file -> record, through the one writer, into another run folder
        other = tmp_path / "copy"
        rel = results.write_result(other, record, None)
        again = results.read_result(other / rel)
        assert again.run_id == "copy" and again.run_file is None and again.qrels_file is None  # no ranked lists
        assert again.to_dict() == {k: v for k, v in on_disk.items() if k not in ("run_file", "qrels_file")} | \
            {"run_id": "copy"}


def test_unknown_fields_are_kept_and_missing_optional_ones_filled(smoke_run_dir, tmp_path):
    path = tmp_path / "minilm.json"
    shutil.copy(smoke_run_dir / "results/minilm/smoke.json", path)

    def older_and_newer(d):
        del d["examples"], d["dataset"]["notes"], d["dataset"]["conventions"]["titles"], d["model"]["extra"]
        d["dataset"]["rerank"] = {"by": "a later version"}
        d["future"] = [1, 2]

    _rewrite(path, older_and_newer)
    record = results.read_result(path)
    assert record.examples is None and record.dataset.notes == [] and record.dataset.conventions.titles is None
    assert record.model.extra == {}
    assert record.other_fields == {"future": [1, 2]}
    assert record.dataset.other_fields == {"rerank": {"by": "a later version"}}
    written = record.to_dict()
    assert written["future"] == [1, 2] and written["dataset"]["rerank"] == {"by": "a later version"}
    assert "examples" not in written  # an absent optional object stays absent (null would not validate)


@pytest.mark.parametrize(("field", "change", "message"), [
    ("dataset.n_queries", lambda d: d["dataset"].update(n_queries="40"), "expected integer, got str \"40\""),
    ("timings.search.seconds", lambda d: d["timings"]["search"].update(seconds=None), "expected number, got NoneType"),
    ("per_query.AP", lambda d: d["per_query"].update(AP=[0.5]), "expected object, got list with 1 item"),
    ("model", lambda d: d.pop("model"), "missing"),
    ("search.top_k", lambda d: d["search"].update(top_k=0), "0 is less than the minimum of 1"),
])
def test_a_wrong_typed_field_is_refused_on_read_naming_file_and_field(smoke_run_dir, tmp_path, field, change, message):
    path = tmp_path / "bm25.json"
    shutil.copy(smoke_run_dir / "results/bm25/smoke.json", path)
    _rewrite(path, change)
    with pytest.raises(DataFormatError) as caught:
        results.read_result(path)
    assert caught.value.field == field and caught.value.path == str(path)
    assert str(caught.value).startswith(f"{path} (field {field!r}): {message}")


def test_report_command_refuses_a_malformed_result_in_one_line(smoke_run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(smoke_run_dir, run)
    _rewrite(run / "results/minilm/smoke.json", lambda d: d["timings"]["encode_corpus"].update(peak_rss_bytes="1 GB"))
    out = CliRunner().invoke(app, ["report", str(run), "-o", str(tmp_path / "r.html")], env={"COLUMNS": "500"})
    assert out.exit_code == 2, out.output
    assert "Traceback" not in out.output and len(out.output.strip().splitlines()) == 1
    assert "results/minilm/smoke.json (field 'timings.encode_corpus.peak_rss_bytes'): expected integer" in out.output
    assert not list(tmp_path.glob("r.*"))


def test_run_json_is_validated_too(smoke_run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(smoke_run_dir, run)
    _rewrite(run / "run.json", lambda d: d["gates"][0].pop("status"))
    with pytest.raises(DataFormatError, match=r"run.json \(field 'gates.0.status'\): missing"):
        results.read_run(run / "run.json")
    _rewrite(run / "run.json", lambda d: d.update(results="results/bm25/smoke.json"))
    with pytest.raises(DataFormatError, match=r"run.json \(field 'results'\): expected array, got str"):
        results.read_run(run / "run.json")
    # a hand-made run.json with only the list of results still reads
    (run / "run.json").write_text(json.dumps({"schema_version": 1, "run_id": "run", "results": []}))
    assert results.read_run(run / "run.json") == RunRecord(results=[], run_id="run")


def test_an_invalid_record_is_refused_before_anything_is_written(smoke_run_dir, tmp_path):
    record = results.read_result(smoke_run_dir / "results/bm25/smoke.json")
    record.metrics["nDCG@10"] = "high"
    with pytest.raises(DataFormatError, match=r"bm25/smoke.json \(field 'metrics.nDCG@10'\): expected number"):
        results.write_result(tmp_path / "run", record, {"q1": {"d1": 1.0}})
    assert not (tmp_path / "run").exists()
    with pytest.raises(DataFormatError, match=r"run.json \(field 'suite'\): expected string or null"):
        results.write_run(tmp_path / "run", RunRecord(results=[], suite=3))  # type: ignore[arg-type]
    assert not (tmp_path / "run").exists()


def test_run_folders_are_named_in_one_place(tmp_path):
    first, second = results.new_run_dir(tmp_path, "beir local/v2"), results.new_run_dir(tmp_path, "beir local/v2")
    assert first.parent == tmp_path and first.name.startswith("beir_local_v2-") and first != second
    assert not first.exists()


def test_the_record_classes_require_what_the_schema_requires():
    """A field the schema requires has no default in the record, and the reverse: from_dict of a valid file
    cannot fail on a missing argument, and a record built without one cannot be written."""
    from dataclasses import MISSING, fields

    schema = results.schema()
    pairs = [(ResultRecord, schema), (DatasetInfo, schema["properties"]["dataset"]),
             (SearchInfo, schema["properties"]["search"]), (RunRecord, results.schema("run"))]
    for cls, part in pairs:
        without_default = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
        assert without_default <= set(part["required"]), cls

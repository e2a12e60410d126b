"""models/offline.py: one reading of the offline switches, with Hugging Face's true values; --plan-only and offline mode
download no dataset (ir_datasets, BEIR) and open no network socket."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llara_bench.models.offline import hub_offline, offline

SWITCHES = ("LLARA_BENCH_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


@pytest.fixture
def online(monkeypatch):
    for name in SWITCHES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize("switch", SWITCHES)
@pytest.mark.parametrize("value, on", [("1", True), ("true", True), ("YES", True), ("On", True),
                                       ("0", False), ("false", False), ("no", False), ("", False)])
def test_every_switch_reads_the_same_true_values(online, switch, value, on):
    assert not offline() and not hub_offline()
    online.setenv(switch, value)
    assert offline() is on
    assert hub_offline() is (on and switch in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


CASES = [{}, {"HF_HUB_OFFLINE": "1"}, {"HF_HUB_OFFLINE": "on"}, {"HF_HUB_OFFLINE": "2"},
         {"TRANSFORMERS_OFFLINE": "yes"}, {"HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "1"},
         {"HF_HUB_OFFLINE": "", "TRANSFORMERS_OFFLINE": "TRUE"}]
AGREE = """
import importlib, json, os, sys
import huggingface_hub.constants as constants
from llara_bench.models.offline import hub_offline
answers = []
for case in json.loads(sys.argv[1]):
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.pop(name, None)
    os.environ.update(case)
    importlib.reload(constants)  # huggingface_hub reads the variables when it is imported
    answers.append([hub_offline(), constants.is_offline_mode()])
print(json.dumps(answers))
"""


def test_hub_offline_agrees_with_huggingface_hub():
    """In a fresh process, since huggingface_hub reads the variables at import."""
    out = subprocess.run([sys.executable, "-c", AGREE, json.dumps(CASES)], capture_output=True, text=True, check=True)
    answers = json.loads(out.stdout)
    assert [ours for ours, _ in answers] == [False, True, True, False, True, False, True]
    assert [ours for ours, _ in answers] == [theirs for _, theirs in answers]


# -- --plan-only and offline mode download nothing: ir_datasets and BEIR ---------------------------------------


@pytest.fixture
def no_network(monkeypatch):
    """Every attempt to reach the network (name lookup or connect) is recorded and fails; the test asserts
    that none was made."""
    import socket

    attempts: list[str] = []

    def blocked(what: str):
        def refuse(*args, **kwargs):
            attempts.append(f"{what}{args[1:] if what.startswith('socket.') else args}")
            raise OSError(f"network blocked by the test: {what}")
        return refuse

    for name in ("connect", "connect_ex"):
        monkeypatch.setattr(socket.socket, name, blocked(f"socket.{name}"))
    monkeypatch.setattr(socket, "create_connection", blocked("create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", blocked("getaddrinfo"))
    return attempts


@pytest.fixture
def empty_irds_home(online, tmp_path):
    """ir_datasets' cache on an empty folder, online (no offline switch set)."""
    home = tmp_path / "ir_datasets"
    home.mkdir()
    online.setenv("IR_DATASETS_HOME", str(home))
    return home


def _files(folder: Path) -> list[Path]:
    """The files under `folder`, less ir_datasets' version stamps (it writes one on opening a dataset)."""
    return [p for p in folder.rglob("*") if p.is_file() and p.name != "irds_version.txt"]


def _cli(argv: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    """The console script in this process (so that the socket guard sees it): status, stdout, stderr."""
    from llara_bench.harness.cli import main

    monkeypatch.setattr(sys, "argv", ["llara-bench", *argv])
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as done:
        main()
    out, err = capsys.readouterr()
    return done.value.code or 0, out, err


@pytest.mark.parametrize("suite, names", [("msmarco", ["msmarco-dev-small"]), ("trec-dl", ["dl19", "dl20"])])
def test_plan_only_downloads_nothing_and_plans_from_published_sizes(suite, names, empty_irds_home, no_network,
                                                                    tmp_path, monkeypatch, capsys):
    """The MS MARCO collection (1 GB) is not fetched for a plan: ir_datasets' published counts size it, and the
    plan says the data is not downloaded. Nor are the suites' Hugging Face titles (they change no size)."""
    status, out, err = _cli(["run", "--suite", suite, "--plan-only", "-o", str(tmp_path / "runs")], monkeypatch,
                            capsys)
    assert (status, no_network) == (0, []), err
    assert "8,841,823 × 384" in out and "12.65 GiB" in out  # MiniLM's vectors for the whole collection
    assert f"{', '.join(names)}: not downloaded (--plan-only downloads nothing)" in out
    assert not _files(empty_irds_home) and not (tmp_path / "runs").exists()


def test_plan_only_does_not_download_a_beir_dataset(online, no_network, tmp_path, monkeypatch, capsys):
    """Online, a BEIR dataset absent from the data root would be fetched by a run; a plan leaves its size unknown."""
    monkeypatch.setenv("LLARA_BENCH_CACHE", str(tmp_path / "cache"))
    (tmp_path / "root").mkdir()
    status, out, err = _cli(["run", "--suite", "beir", "-d", "nq", "-m", "minilm", "--plan-only", "--data-root",
                             str(tmp_path / "root"), "-o", str(tmp_path / "runs")], monkeypatch, capsys)
    assert (status, no_network) == (0, []), err
    assert "? × 384" in out and "planned when downloaded" in out and "size unknown" in out
    assert not _files(tmp_path / "cache")


@pytest.mark.parametrize("switch", ["LLARA_BENCH_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_an_irds_download_is_refused_in_one_line(switch, empty_irds_home, no_network, tmp_path, monkeypatch,
                                                         capsys):
    monkeypatch.setenv(switch, "1")
    status, out, err = _cli(["run", "--suite", "msmarco", "-m", "bm25", "-o", str(tmp_path / "runs")], monkeypatch,
                            capsys)
    assert (status, no_network) == (2, [])
    (line,) = err.splitlines()
    assert line.startswith(f"error: irds:msmarco-passage/dev/small is not in ir_datasets' cache {empty_irds_home}")
    assert "downloads are off" in line and "set IR_DATASETS_HOME to the folder that holds its files" in line
    assert not _files(empty_irds_home) and not (tmp_path / "runs").exists()


def test_offline_an_irds_dataset_in_its_cache_still_loads(online, no_network, tmp_path):
    """What is here is read: a dataset built from local files (ir_datasets' own local-file support)."""
    import ir_datasets

    from llara_bench.harness.datasets import load_dataset

    online.setenv("LLARA_BENCH_OFFLINE", "1")
    (tmp_path / "docs.tsv").write_text("d1\talpha\nd2\tbeta\n")
    (tmp_path / "queries.tsv").write_text("q1\talpha?\n")
    (tmp_path / "qrels.trec").write_text("q1 0 d1 1\n")
    dataset_id = f"llara-test/offline-{tmp_path.name}"
    ir_datasets.registry.register(dataset_id, ir_datasets.create_dataset(
        docs_tsv=str(tmp_path / "docs.tsv"), queries_tsv=str(tmp_path / "queries.tsv"),
        qrels_trec=str(tmp_path / "qrels.trec")))
    dataset = load_dataset(f"irds:{dataset_id}")
    assert dataset.corpus.ids == ["d1", "d2"] and no_network == []


def test_offline_hugging_face_titles_are_read_from_the_cache_or_refused(online, no_network, tmp_path, monkeypatch,
                                                                        capsys):
    """The msmarco suites join titles from a Hugging Face dataset: LLARA_BENCH_OFFLINE keeps that off the Hub too
    (datasets reads only HF_HUB_OFFLINE, and at import)."""
    monkeypatch.setenv("LLARA_BENCH_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    status, out, err = _cli(["run", "--suite", "smoke", "-m", "bm25", "--titles", "hf:llara-test/no-such-titles",
                             "-o", str(tmp_path / "runs")], monkeypatch, capsys)
    assert (status, no_network) == (2, [])
    (line,) = err.splitlines()
    assert line.startswith("error: titles hf:llara-test/no-such-titles are not in the Hugging Face datasets cache "
                           "and downloads are off")
    assert not (tmp_path / "runs").exists()

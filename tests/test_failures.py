"""How a command ends on an error: one line, a non-zero status, the traceback only under --debug."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys

import pytest

from llara_bench.harness import failures
from llara_bench.harness.errors import DataFormatError


def _guarded(exc: BaseException, **env) -> tuple[int, list[str]]:
    lines: list[str] = []

    def command():
        raise exc

    return failures.guarded(command, lines.append), lines


@pytest.mark.parametrize("exc, status, line", [
    (DataFormatError("corpus.jsonl", "expected a JSON object", line=3), 2, "corpus.jsonl:3: expected a JSON object"),
    (PermissionError(errno.EACCES, "Permission denied", "/data/q.tsv"), 2,
     "/data/q.tsv: permission denied; check its permissions or choose another path"),
    (NotADirectoryError(errno.ENOTDIR, "Not a directory", "/etc/passwd/x"), 2,
     "/etc/passwd/x: not a directory; a part of this path is a file, not a folder; choose a folder"),
    (KeyError("boom"), 1, "internal error: KeyError: 'boom' (rerun with --debug or LLARA_BENCH_DEBUG=1 for the "
                          "traceback, and please report it)"),
    (KeyboardInterrupt(), 130, "interrupted. Nothing was kept; rerun the command to start again."),
    (failures.Terminated(), 143, "terminated (SIGTERM). Nothing was kept; rerun the command to start again."),
])
def test_each_kind_of_failure_is_one_line_and_a_status(exc, status, line, monkeypatch):
    monkeypatch.delenv("LLARA_BENCH_DEBUG", raising=False)
    assert _guarded(exc) == (status, [line])


def test_an_interruption_says_what_was_kept(monkeypatch):
    monkeypatch.delenv("LLARA_BENCH_DEBUG", raising=False)

    def command():
        failures.note_kept("encode", "2 of 5 shards of minilm on scifact in /c")
        raise KeyboardInterrupt

    lines: list[str] = []
    assert failures.guarded(command, lines.append) == 130
    assert lines == ["interrupted. Kept for a rerun: 2 of 5 shards of minilm on scifact in /c. Rerun the same "
                     "command to resume."]
    assert failures._kept == {}  # nothing carried into the next command


def test_a_long_message_of_a_bug_is_bounded(monkeypatch):
    monkeypatch.delenv("LLARA_BENCH_DEBUG", raising=False)
    status, [line] = _guarded(ValueError("x" * 10_000))
    assert status == 1 and len(line) < 450


def test_debug_lets_the_exception_through(monkeypatch):
    monkeypatch.setenv("LLARA_BENCH_DEBUG", "1")
    with pytest.raises(KeyError):
        _guarded(KeyError("boom"))


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llara_bench.harness.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "LLARA_BENCH_DEBUG": "", **(env or {})}, timeout=120)


def test_the_console_script_prints_one_line_and_debug_the_traceback(tmp_path):
    bad = tmp_path / "suite.yaml"
    bad.write_text("name: x\nmodels: [bm25]\ndatasets: [embedded:smoke]\nbogus: 1\n")
    done = _cli("run", "--suite", str(bad), "-o", str(tmp_path / "runs"))
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {bad}:4 (field 'bogus'): unknown field; expected one of baseline, ")
    assert not (tmp_path / "runs").exists()
    debug = _cli("--debug", "run", "--suite", str(bad))
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "ConfigError" in debug.stderr


def test_usage_errors_keep_clicks_message(tmp_path):
    done = _cli("run", "--no-such-option")
    assert done.returncode == 2 and "No such option: --no-such-option" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_unwinds_and_exits_143(tmp_path):
    script = ("import sys, time\n"
              "from llara_bench.harness import failures\n"
              f"marker = {str(tmp_path / 'cleaned')!r}\n"
              "def command():\n"
              "    try:\n"
              "        print('ready', flush=True); time.sleep(60)\n"
              "    finally:\n"
              "        open(marker, 'w').close()\n"
              "sys.exit(failures.guarded(command, lambda line: print(line, file=sys.stderr)))\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "LLARA_BENCH_DEBUG": ""})
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143
    assert err.strip() == "terminated (SIGTERM). Nothing was kept; rerun the command to start again."
    assert (tmp_path / "cleaned").exists()  # the finally clause ran

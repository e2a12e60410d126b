"""Long steps can be followed wherever the output goes: off a terminal, progress becomes periodic log lines
(step, losses, rate, ETA); libraries' bars and harmless warnings are silenced unless --verbose."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from rich.console import Console

from llara_bench.harness.progress import LogLines, clock
from llara_bench.models.tiny_llama import tiny_llama_path


def _adapt(tmp_path, *flags: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "LLARA_BENCH_LOG_EVERY": "0"}  # a line for every logged step
    return subprocess.run(
        [sys.executable, "-m", "llara_bench.harness.cli", *flags, "adapt", str(tiny_llama_path()), "-o",
         str(tmp_path / "adapted"), "--data", "embedded:smoke", "--steps", "6", "--batch-size", "2",
         "--chunk-words", "32", "--log-every", "2", "--save-every", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=600)


def test_adapt_to_a_pipe_prints_periodic_progress_lines_without_library_noise(tmp_path):
    done = _adapt(tmp_path)
    assert done.returncode == 0, done.stderr
    lines = re.findall(r"^adapt: (\d)/6 \(\d+%\), [\d.]+ steps/s, (ETA \d+:\d\d|in \d+:\d\d)  loss [\d.]+",
                       done.stderr, re.MULTILINE)
    assert [int(step) for step, _ in lines] == [2, 4, 6]
    assert lines[0][1].startswith("ETA") and lines[-1][1].startswith("in")
    for noise in ("Loading weights", "Writing model shards", "Removed shared tensor", "\r"):
        assert noise not in done.stderr + done.stdout


def test_verbose_brings_library_output_back_and_quiet_prints_no_progress(tmp_path):
    verbose = _adapt(tmp_path / "v", "--verbose")
    assert verbose.returncode == 0 and "Removed shared tensor" in verbose.stderr + verbose.stdout
    quiet = _adapt(tmp_path / "q", "--quiet")
    assert quiet.returncode == 0 and "adapt:" not in quiet.stderr


def test_log_lines_are_rate_limited_and_the_last_is_always_printed():
    console = Console(record=True, width=200)
    lines = LogLines(console, "encode", 1000, "docs", every=3600, brief=0)
    for done in range(100, 1001, 100):
        lines.update(done)
    text = console.export_text().splitlines()
    assert len(text) == 1 and text[0].startswith("encode: 1,000/1,000 (100%)") and " in 0:0" in text[0]
    assert clock(3725) == "1:02:05" and clock(65) == "1:05"


def test_a_brief_step_prints_nothing_off_a_terminal():
    console = Console(record=True, width=200)
    lines = LogLines(console, "encode", 10, "docs", every=0, brief=3600)
    lines.update(10)
    assert console.export_text() == ""

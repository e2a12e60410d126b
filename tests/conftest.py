"""Shared fixtures. Real data and models live outside the repository: tests that need them read
LLARA_BENCH_SHARED_DATA / LLARA_BENCH_SHARED_MODELS and skip cleanly when they are absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _shared(var: str) -> Path:
    value = os.environ.get(var)
    if not value or not Path(value).is_dir():
        pytest.skip(f"{var} is not set to a folder (real shared assets absent)")
    return Path(value)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return _shared("LLARA_BENCH_SHARED_DATA")


@pytest.fixture(scope="session")
def shared_models() -> Path:
    return _shared("LLARA_BENCH_SHARED_MODELS")


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache_and_models_file(tmp_path_factory):
    """Built models (tiny-llama) go to a per-session cache, and the user's own models file is not read."""
    mp = pytest.MonkeyPatch()
    if "LLARA_BENCH_CACHE" not in os.environ:
        mp.setenv("LLARA_BENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
    mp.setenv("LLARA_BENCH_MODELS_FILE", str(tmp_path_factory.mktemp("config") / "encoders.yaml"))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def smoke_run_dir(tmp_path_factory) -> Path:
    """`llara-bench run --suite smoke` through the CLI, as a user runs it: results and the report."""
    from typer.testing import CliRunner

    from harness.cli import app

    out = tmp_path_factory.mktemp("smoke-runs")
    result = CliRunner().invoke(app, ["run", "--suite", "smoke", "-o", str(out)], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    (run_dir,) = out.iterdir()
    return run_dir

"""The installed distribution claims one top-level name, llara_bench, so a user's own `models.py` or
`reports/` folder cannot shadow (or be shadowed by) the harness."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_wheel_installs_one_top_level_name(tmp_path):
    # built from a copy: setuptools builds in the source tree, whose build/ could hold files since deleted
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".tox", "build", "dist", "runs", "artefacts",
                                                                 "*.egg-info", "__pycache__", ".benchmarks"))
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                          "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("llara_bench-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        top_level = zf.read(next(n for n in names if n.endswith(".dist-info/top_level.txt"))).decode().split()
        entry_points = zf.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    roots = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert roots == {"llara_bench"} and top_level == ["llara_bench"]
    for package in ("harness", "models", "adaptation", "reports"):
        assert f"llara_bench/{package}/__init__.py" in names
    # package data travels under the namespace too
    for data in ("llara_bench/harness/data/smoke/corpus.jsonl", "llara_bench/harness/suites/smoke.yaml",
                 "llara_bench/harness/suites/expected/smoke.yaml",
                 "llara_bench/harness/schema/result.schema.json", "llara_bench/reports/templates/report.html.j2"):
        assert data in names
    assert "llara-bench = llara_bench.harness.cli:main" in entry_points
    assert "tiny-llara = llara_bench.adaptation.smoke:register" in entry_points


def test_the_cli_ignores_a_users_models_py_and_reports_folder(tmp_path):
    """Python puts the working directory first on sys.path for `-m` and `-c`: the user's files are there."""
    (tmp_path / "models.py").write_text("raise SystemExit('the user models.py was imported')\n")
    (tmp_path / "harness.py").write_text("raise SystemExit('the user harness.py was imported')\n")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "__init__.py").write_text("raise SystemExit('the user reports/ was imported')\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-m", "llara_bench.harness.cli", "models", "--json"], cwd=tmp_path,
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert '"name": "minilm"' in out.stdout
    # and the report module, which the CLI imports late, resolves inside the namespace
    out = subprocess.run([sys.executable, "-c", "import llara_bench.reports as r; print(r.__file__)"], cwd=tmp_path,
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0 and str(tmp_path) not in out.stdout, out.stdout + out.stderr

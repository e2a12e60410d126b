"""The GPU check's summary: each check adds rows; at the end of the session they are printed as one table and,
when LLARA_BENCH_GPU_REPORT names a file (tox -e gpu: runs/gpu-check.md), written there as Markdown."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROWS: list[dict] = []
COLUMNS = ("check", "setting", "figure", "target", "verdict")


@pytest.fixture
def summary():
    """``add(check, setting, figure, target="", ok=None)``: one row of the summary table."""

    def add(check: str, setting: str, figure: str, target: str = "", ok: bool | None = None) -> None:
        ROWS.append({"check": check, "setting": setting, "figure": figure, "target": target,
                     "verdict": "" if ok is None else "OK" if ok else "FAIL"})

    return add


def _markdown() -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row[c] for c in COLUMNS) + " |" for row in ROWS]
    return "\n".join(lines) + "\n"


def pytest_terminal_summary(terminalreporter, config):
    if not ROWS:
        return
    import torch

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA device: CPU-side parts only"
    terminalreporter.section(f"GPU check ({device})")
    for line in _markdown().splitlines():
        terminalreporter.write_line(line)
    target = os.environ.get("LLARA_BENCH_GPU_REPORT")
    if target:
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# GPU check: {device}\n\n" + _markdown())
        terminalreporter.write_line(f"written to {path}")

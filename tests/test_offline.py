"""models/offline.py: one reading of the offline switches, with Hugging Face's true values."""

from __future__ import annotations

import json
import subprocess
import sys

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

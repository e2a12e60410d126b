"""Expected-score gates: Pyserini's regression checks (2CR), as data, each with its conditions.

Expected scores are kept once per collection, in ``harness/suites/expected/<collection>.yaml``, and a
suite names the collections whose scores it checks (``expected: [scifact, ...]``); a suite may also list
its own (see ``harness.suites``). Each expectation carries the conditions it was measured under, any of
``split``, ``top_k``, ``dtype`` (the encoder's contract dtype as run), ``titles`` (the title source joined
onto the documents; ``none`` for none) and ``contract`` (``contract_digest`` of the encoding contract)::

    - {model: minilm, metric: nDCG@10, score: 0.6451, tolerance: 0.002, source: "llara-bench reference run",
       split: test, top_k: 1000, titles: none, dtype: float32, contract: 5c1d02e4b8a1}

After a run each is judged (as Pyserini's ``run_regression`` does): OK when the score equals the
expected one at four decimals, OKish when it is within the tolerance, FAIL otherwise. A run under other
conditions than a declared one (``--top-k 10`` against a top-1000 reference) is "not comparable", with
the condition that differs; a condition not declared is not checked. An expectation whose model and
dataset were not run is "not run". Neither is a failure: ``llara-bench run --check`` exits non-zero only
when one is FAIL.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["OK", "OKish", "FAIL", "not comparable", "not run"]
DEFAULT_TOLERANCE = 0.001
CONDITIONS = ("split", "top_k", "dtype", "titles", "contract")
MIXED = "mixed"  # a group's condition where its member datasets ran under different ones


@dataclass(frozen=True)
class Expectation:
    model: str
    dataset: str
    metric: str
    score: float
    tolerance: float = DEFAULT_TOLERANCE
    source: str | None = None  # where the number comes from (a paper, a leaderboard, a reference run)
    where: str = ""  # the file and line it was read from
    conditions: dict[str, Any] = field(default_factory=dict)  # the declared ones (CONDITIONS); absent: any


@dataclass(frozen=True)
class Verdict:
    expectation: Expectation
    got: float | None
    status: Status
    reason: str = ""  # for "not comparable": which conditions differ, e.g. "top_k 10 ≠ 100"

    @property
    def delta(self) -> float | None:
        return None if self.got is None or self.status == "not comparable" else self.got - self.expectation.score

    def to_dict(self) -> dict[str, Any]:
        """As written to run.json's ``gates``."""
        return asdict(self.expectation) | {"got": self.got, "status": self.status, "reason": self.reason}


def contract_digest(contract: dict | None) -> str | None:
    """A short sha256 of an encoding contract as recorded in a result (``result["model"]["contract"]``),
    used both when a reference is written and when a run is judged. ``dtype`` is left out (it is its own
    condition), and so are fields at their default value, so that a contract field added later with a
    default does not change the digest of every recorded contract."""
    if contract is None:
        return None
    from llara_bench.models.base import EncodingContract  # the defaults, as a result records them

    defaults = json.loads(json.dumps(EncodingContract().to_dict()))
    declared = {k: v for k, v in json.loads(json.dumps(contract)).items()
                if k != "dtype" and (k not in defaults or v != defaults[k])}
    return hashlib.sha256(json.dumps(declared, sort_keys=True).encode("utf-8")).hexdigest()[:12]


def run_conditions(result: dict) -> dict[str, Any]:
    """The conditions a result was measured under, read from its record (None where it does not say)."""
    contract = (result.get("model") or {}).get("contract")
    dataset = result.get("dataset") or {}
    return {"split": dataset.get("split"), "top_k": (result.get("search") or {}).get("top_k"),
            "dtype": (contract or {}).get("dtype"), "titles": (dataset.get("conventions") or {}).get("titles"),
            "contract": contract_digest(contract)}


def differences(declared: dict[str, Any], ran: dict[str, Any]) -> str:
    """The declared conditions a run did not meet, as "top_k 10 ≠ 100; dtype bfloat16 ≠ float32"."""
    shown = lambda v: "none" if v is None else str(v)  # noqa: E731
    return "; ".join(f"{k} {shown(ran.get(k))} ≠ {shown(v)}" for k, v in declared.items() if ran.get(k) != v)


def judge(expectation: Expectation, got: float | None, conditions: dict[str, Any] | None = None) -> Verdict:
    """A score against its expectation; ``conditions`` are the run's (``run_conditions``)."""
    if got is None:
        return Verdict(expectation, None, "not run")
    reason = differences(expectation.conditions, conditions or {})
    if reason:
        return Verdict(expectation, got, "not comparable", reason)
    if round(got, 4) == round(expectation.score, 4):
        return Verdict(expectation, got, "OK")
    if abs(got - expectation.score) <= expectation.tolerance + 1e-12:
        return Verdict(expectation, got, "OKish")
    return Verdict(expectation, got, "FAIL")


def check(expectations: list[Expectation], results: list[dict]) -> list[Verdict]:
    """Each expectation against the result of its model and dataset (the newest, if several). A group's
    mean (``runner.group_means``, with ``members``) ran under its members' conditions."""
    by_pair = {(r["model"]["name"], r["dataset"]["name"]): r for r in results}
    verdicts = []
    for e in expectations:
        result = by_pair.get((e.model, e.dataset), {})
        if "members" in result:
            members = [run_conditions(by_pair.get((e.model, m), {})) for m in result["members"]]
            ran = {k: members[0][k] if all(c[k] == members[0][k] for c in members) else MIXED for k in CONDITIONS}
        else:
            ran = run_conditions(result)
        verdicts.append(judge(e, result.get("metrics", {}).get(e.metric), ran))
    return verdicts


def failed(verdicts: list[Verdict]) -> bool:
    return any(v.status == "FAIL" for v in verdicts)

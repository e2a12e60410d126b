"""Expected-score gates: Pyserini's regression checks, as data in a suite file.

A suite may list expected scores::

    expected:
      - {model: minilm, dataset: scifact, metric: nDCG@10, score: 0.6451, tolerance: 0.002,
         source: "llara-bench reference run"}

After a run each is judged (as Pyserini's ``run_regression`` does): OK when the score equals the
expected one at four decimals, OKish when it is within the tolerance, FAIL otherwise; an expectation
whose model and dataset were not run is "not run", which is not a failure. ``llara-bench run --check``
exits non-zero when any is FAIL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["OK", "OKish", "FAIL", "not run"]
DEFAULT_TOLERANCE = 0.001


@dataclass(frozen=True)
class Expectation:
    model: str
    dataset: str
    metric: str
    score: float
    tolerance: float = DEFAULT_TOLERANCE
    source: str | None = None  # where the number comes from (a paper, a leaderboard, a reference run)
    where: str = ""  # suite file and line


@dataclass(frozen=True)
class Verdict:
    expectation: Expectation
    got: float | None
    status: Status

    @property
    def delta(self) -> float | None:
        return None if self.got is None else self.got - self.expectation.score


def judge(expectation: Expectation, got: float | None) -> Verdict:
    if got is None:
        return Verdict(expectation, None, "not run")
    if round(got, 4) == round(expectation.score, 4):
        return Verdict(expectation, got, "OK")
    if abs(got - expectation.score) <= expectation.tolerance + 1e-12:
        return Verdict(expectation, got, "OKish")
    return Verdict(expectation, got, "FAIL")


def check(expectations: list[Expectation], results: list[dict]) -> list[Verdict]:
    """Each expectation against the result of its model and dataset (the newest, if several)."""
    scores = {(r["model"]["name"], r["dataset"]["name"]): r["metrics"] for r in results}
    return [judge(e, scores.get((e.model, e.dataset), {}).get(e.metric)) for e in expectations]


def failed(verdicts: list[Verdict]) -> bool:
    return any(v.status == "FAIL" for v in verdicts)

"""Benchmarks report ratios against a named baseline measured in the same run.

Each benchmark names its comparison group and whether it is the baseline (``extra_info``); at the end
the session prints ``group: candidate vs baseline = N.NN× faster`` for each group. A throughput measured
against a peak names it instead (``share_of_peak``, matched by the peak's ``peak_of``): the session prints
the achieved FLOP/s as a share of that peak, measured in the same run. Run them with
``tox -e bench`` (or ``pytest tests/benchmarks --benchmark-enable``); under the default
``--benchmark-disable`` each runs once on a small slice, as a check that it works.
"""

from __future__ import annotations

import pytest

from llara_bench.harness.datasets import load_dataset

SMALL_SLICE = 300  # documents, when benchmarks are disabled (plain test runs, CI)


@pytest.fixture(scope="session")
def scifact_corpus(shared_data, request):
    """SciFact's corpus as (texts, titles): all 5,183 documents when benchmarking, else a slice."""
    corpus = load_dataset(f"folder:{shared_data / 'scifact'}").corpus
    n = SMALL_SLICE if request.config._benchmarksession.disabled else None
    return corpus.texts[:n], corpus.titles[:n]


def pytest_terminal_summary(terminalreporter, config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or session.disabled:
        return
    groups: dict[str, dict[str, list]] = {}
    for bench in session.benchmarks:
        info = bench.extra_info
        if "comparison" in info:
            role = "baseline" if info.get("baseline") else "candidate"
            groups.setdefault(info["comparison"], {}).setdefault(role, []).append(bench)
    _shares_of_peak(terminalreporter, session.benchmarks)
    if not groups:
        return
    terminalreporter.section("ratios against the named baselines (same run, mean wall time)")
    for name, roles in sorted(groups.items()):
        for base in roles.get("baseline", []):
            for cand in roles.get("candidate", []):
                ratio = base.stats.mean / cand.stats.mean
                verdict = f"{ratio:.2f}x faster" if ratio >= 1 else f"{1 / ratio:.2f}x slower"
                terminalreporter.write_line(f"{name}: {cand.name} vs {base.name} (baseline) = {verdict} "
                                            f"({cand.stats.mean:.3f} s vs {base.stats.mean:.3f} s)")
                figures = {k: cand.extra_info[k] for k in ("tokens_per_second", "tflops", "mfu")
                           if cand.extra_info.get(k) is not None}
                if figures:
                    terminalreporter.write_line("    " + ", ".join(f"{k} {v:,}" for k, v in figures.items()))
                peaks = cand.extra_info.get("peak_rss_mib"), base.extra_info.get("peak_rss_mib")
                if all(peaks):
                    terminalreporter.write_line(f"    peak RSS {peaks[0]:,.0f} MiB vs {peaks[1]:,.0f} MiB "
                                                f"({peaks[1] / peaks[0]:.1f}x less)")


def _shares_of_peak(terminalreporter, benchmarks) -> None:
    peaks = {b.extra_info["peak_of"]: b for b in benchmarks if "peak_of" in b.extra_info}
    shares = [b for b in benchmarks if b.extra_info.get("share_of_peak") in peaks]
    if not shares:
        return
    terminalreporter.section("achieved FLOP/s as a share of the peak measured in the same run")
    for bench in shares:
        peak = peaks[bench.extra_info["share_of_peak"]]
        info = bench.extra_info
        before_after = " and ".join(f"{t * 1e3:,.1f}" for t in info.get("peak_before_after_tflops", []))
        terminalreporter.write_line(
            f"{info['share_of_peak']}: {bench.name} {info['tflops'] * 1e3:,.1f} GFLOP/s = {info['mfu']:.1%} of "
            f"{info.get('peak_tflops', peak.extra_info['tflops']) * 1e3:,.1f} GFLOP/s, {peak.name} "
            + (f"(measured before and after: {before_after} GFLOP/s) " if before_after else "")
            + f"({info['tokens_per_second']:,} tokens/s, padding {info['padding_fraction']:.1%})")

"""The report as data: which models and datasets, the main metric's table, the comparisons with the
baseline and between every pair of models (as ranx's ``compare``), throughput and timings, and provenance.
The HTML, Markdown, CSV and LaTeX writers only render it."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, replace

import numpy as np

from llara_bench.harness.errors import ConfigError, UnknownNameError
from llara_bench.harness.metrics import canonical_measures
from llara_bench.harness.timing import PHASES, corpus_rates
from llara_bench.reports.collect import Collected
from llara_bench.reports.stats import CORRECTIONS, DEFAULT_RESAMPLES, TESTS, Comparison, compare_pairs

# below this many paired queries a test has little power and its p-values say little (a warning, not a refusal)
MIN_QUERIES = 20


@dataclass(frozen=True)
class Options:
    baseline: str | None = None  # default: the runs' suite baseline, else the first model
    metric: str | None = None  # default: the first result's main metric
    test: str = "randomization"
    correction: str = "holm"
    alpha: float = 0.05
    confidence: float = 0.95
    n_resamples: int = DEFAULT_RESAMPLES
    seed: int = 0
    title: str | None = None

    def __post_init__(self) -> None:
        if self.test not in TESTS:
            raise ConfigError(f"--test: expected one of {', '.join(TESTS)}, got {self.test!r}")
        if self.correction not in CORRECTIONS:
            raise ConfigError(f"--correction: expected one of {', '.join(CORRECTIONS)}, got {self.correction!r}")
        if not 0 < self.alpha < 1 or not 0 < self.confidence < 1:
            raise ConfigError("--alpha and the confidence level must lie strictly between 0 and 1")
        if self.n_resamples < 1:
            raise ConfigError(f"--resamples: expected a positive number, got {self.n_resamples}")
        if self.metric is not None:  # any case, as --measures: ndcg@10 is nDCG@10 (else a did-you-mean)
            try:
                object.__setattr__(self, "metric", canonical_measures([self.metric])[0])
            except (ConfigError, UnknownNameError) as exc:
                raise ConfigError(f"--metric: {exc}") from None


@dataclass(frozen=True)
class TimingRow:
    model: str
    dataset: str
    seconds: dict[str, float]  # phase -> wall seconds
    docs_per_second: float | None  # corpus encoding (dense) or indexing (lexical)
    tokens_per_second: float | None
    padding: float | None  # share of the encoded tokens that were padding
    mfu: float | None  # corpus encoding's FLOP/s ÷ the device's peak (decoder encoders; models.compute)
    cost_per_million: float | None  # device-seconds to encode 1M corpus documents at docs_per_second
    query_ms: float | None  # query encoding and search, per query
    search_qps: float | None  # batched search
    search_p50_ms: float | None  # one query searched alone (sampled)
    search_p99_ms: float | None
    peak_rss: int
    peak_gpu: int | None


@dataclass
class Report:
    options: Options
    metric: str
    baseline: str
    models: list[str]
    datasets: list[str]
    results: dict[tuple[str, str], dict]  # (model, dataset) -> result
    comparisons: dict[tuple[str, str], Comparison]  # (model, dataset) -> against the baseline
    untestable: dict[str, str]  # dataset -> why no comparison was made there
    notes: list[str]
    sources: dict[tuple[str, str], str]
    gates: list[dict] = field(default_factory=list)  # expected scores judged by the runs (OK / OKish / FAIL)
    # every pair of models on each dataset, one family per dataset: dataset -> (A, B) -> A against B
    pairwise: dict[str, dict[tuple[str, str], Comparison]] = field(default_factory=dict)
    declared: list[tuple[str, str]] = field(default_factory=list)  # the suites' `compare:` pairs, shown first
    generated_at: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))

    @property
    def title(self) -> str:
        suites = dict.fromkeys(r["suite"]["name"] for r in self.results.values())
        return self.options.title or f"llara-bench report: {', '.join(suites)}"

    @property
    def test_description(self) -> str:
        if self.options.test == "t-test":
            return "paired t-test"
        return f"paired randomisation test, {self.options.n_resamples:,} sign flips"

    def caption(self, view: str = "baseline") -> str:
        """What a significance table's p-values are: the test, the correction and how many comparisons it
        corrected over (``view``: "baseline" for each model against the baseline, "pairs" for all pairs)."""
        found = self.comparisons if view == "baseline" else \
            {(pair, d): c for d, pairs in self.pairwise.items() for pair, c in pairs.items()}
        families = {key[1]: c.family for key, c in found.items()}
        what = f"the comparisons with {self.baseline}" if view == "baseline" else "all pairs of models"
        if len(set(families.values())) == 1:
            counted = f"{what} on each dataset ({next(iter(families.values()))} per dataset, " \
                f"{len(found)} in all)"
        else:
            counted = f"{what} on each dataset ({', '.join(f'{d}: {k}' for d, k in families.items())})"
        text = (f"Per-query {self.metric}, paired by query. p: {self.test_description}, two-sided; p adj.: "
                f"{self.options.correction.capitalize()} correction over {counted}; significant when "
                f"p adj. < {self.options.alpha}.")
        if any(c.p_at_floor for c in found.values()):
            text += (f" p < {1 / (self.options.n_resamples + 1):.2g}: no sign flip reached the observed difference "
                     "(more --resamples resolve smaller p); its p adj. is then an upper bound (≤).")
        return text

    def pairs_shown(self, dataset: str) -> list[tuple[str, str]]:
        """The pairs compared on ``dataset``: the suites' declared pairs first, then the rest in report order."""
        found = self.pairwise.get(dataset, {})
        return [p for p in self.declared if p in found] + [p for p in found if p not in self.declared]

    def pair(self, a: str, b: str, dataset: str) -> Comparison | None:
        """A against B on ``dataset`` (either order: the comparison is turned around when stored as B, A)."""
        found = self.pairwise.get(dataset, {})
        if (a, b) in found:
            return found[(a, b)]
        c = found.get((b, a))
        if c is None:
            return None
        return replace(c, mean=c.baseline_mean, baseline_mean=c.mean, delta=-c.delta, ci_low=-c.ci_high,
                       ci_high=-c.ci_low, wins=c.losses, losses=c.wins)

    def matrix(self, dataset: str) -> dict[tuple[str, str], int | None]:
        """(row, column) -> +1 the row model is significantly better than the column model on ``dataset``,
        -1 significantly worse, 0 a tie (no significant difference), None not compared (or the diagonal)."""
        out: dict[tuple[str, str], int | None] = {}
        for a in self.models:
            for b in self.models:
                c = None if a == b else self.pair(a, b, dataset)
                out[(a, b)] = None if c is None else (0 if not c.significant(self.options.alpha)
                                                      else 1 if c.delta > 0 else -1)
        return out

    def measures(self) -> list[str]:
        """Every measure any result has, in the order first seen."""
        return list(dict.fromkeys(k for r in self.results.values() for k in r["metrics"]))

    # -- the main metric ------------------------------------------------------------------------
    def value(self, model: str, dataset: str) -> float | None:
        r = self.results.get((model, dataset))
        return None if r is None else r["metrics"][self.metric]

    def mean(self, model: str) -> float | None:
        """Mean over the datasets, when the model has every one of them."""
        values = [self.value(model, d) for d in self.datasets]
        return None if any(v is None for v in values) else float(np.mean(values))

    def best(self, dataset: str | None) -> float | None:
        """The best value in a column (dataset, or None for the mean column); None with fewer than two."""
        values = [v for v in (self.mean(m) if dataset is None else self.value(m, dataset) for m in self.models)
                  if v is not None]
        return max(values) if len(values) > 1 else None

    def is_best(self, model: str, dataset: str | None) -> bool:
        best = self.best(dataset)
        value = self.mean(model) if dataset is None else self.value(model, dataset)
        return best is not None and value is not None and math.isclose(value, best, rel_tol=0, abs_tol=1e-12)

    def delta(self, model: str, dataset: str | None) -> float | None:
        if model == self.baseline:
            return None
        if dataset is None:
            mine, theirs = self.mean(model), self.mean(self.baseline)
        else:
            mine, theirs = self.value(model, dataset), self.value(self.baseline, dataset)
        return None if mine is None or theirs is None else mine - theirs

    def direction(self, model: str, dataset: str) -> int:
        """+1 significantly better than the baseline, -1 significantly worse, 0 otherwise."""
        c = self.comparisons.get((model, dataset))
        if c is None or not c.significant(self.options.alpha):
            return 0
        return 1 if c.delta > 0 else -1

    # -- cost ---------------------------------------------------------------------------------
    def docs_per_second(self, model: str, dataset: str) -> float | None:
        r = self.results.get((model, dataset))
        return None if r is None else corpus_rates(r)[0]

    def mean_docs_per_second(self, model: str) -> float | None:
        """Mean corpus docs/s over the datasets the model was run on."""
        rates = [r for d in self.datasets if (r := self.docs_per_second(model, d))]
        return sum(rates) / len(rates) if rates else None

    def cost_per_million(self, model: str, dataset: str) -> float | None:
        """Device-seconds to encode (or index) 1M corpus documents at the measured rate: wall seconds per
        document × the devices that worked at once (the torchrun ranks that encoded, else one) × 10⁶."""
        rate = self.docs_per_second(model, dataset)
        if not rate:
            return None
        devices = len((self.results[(model, dataset)].get("embeddings") or {}).get("encoded_by_rank") or [0])
        return devices * 1e6 / rate

    def mean_cost_per_million(self, model: str) -> float | None:
        costs = [c for d in self.datasets if (c := self.cost_per_million(model, d))]
        return sum(costs) / len(costs) if costs else None

    def phase_seconds(self, model: str, dataset: str) -> dict[str, float]:
        timings = self.results[(model, dataset)]["timings"]
        return {p: timings[p]["seconds"] for p in _phase_order(timings)}

    def phases(self) -> list[str]:
        """Every phase any result has, in pipeline order (load first even when the first model has none)."""
        return _phase_order(dict.fromkeys(p for _, _, r in self.pairs() for p in r["timings"]))

    def timing_rows(self) -> list[TimingRow]:
        rows = []
        for m, d, r in self.pairs():
            t = r["timings"]
            docs_per_second, tokens_per_second = corpus_rates(r)
            encoded = [t[p] for p in ("encode_corpus", "encode_queries") if p in t]
            tokens = sum(p.get("tokens") or 0 for p in encoded)
            padded = sum(p.get("padded_tokens") or 0 for p in encoded)
            query_seconds = sum(t[p]["seconds"] for p in ("encode_queries", "search") if p in t)
            n_queries = r["dataset"]["n_queries"]
            gpu = [p["peak_gpu_bytes"] for p in t.values() if p.get("peak_gpu_bytes")]
            latency = r["search"].get("latency_ms") or {}
            rows.append(TimingRow(
                model=m, dataset=d, seconds=self.phase_seconds(m, d), docs_per_second=docs_per_second,
                tokens_per_second=tokens_per_second,
                padding=(padded - tokens) / padded if padded else None,
                mfu=(t.get("encode_corpus") or {}).get("mfu"), cost_per_million=self.cost_per_million(m, d),
                query_ms=1000 * query_seconds / n_queries if n_queries else None,
                search_qps=r["search"].get("qps"), search_p50_ms=latency.get("p50"), search_p99_ms=latency.get("p99"),
                peak_rss=max(p["peak_rss_bytes"] for p in t.values()), peak_gpu=max(gpu) if gpu else None))
        return rows

    def ranked(self, dataset: str | None = None) -> list[str]:
        """The models best first: by the main metric on ``dataset``, or by the mean over the datasets (then by
        the datasets each has); models without a value last, in report order."""
        def key(model: str):
            value = self.mean(model) if dataset is None else self.value(model, dataset)
            if value is None and dataset is None:  # not run on every dataset: ranked after those that were
                values = [v for d in self.datasets if (v := self.value(model, d)) is not None]
                return (1, -(sum(values) / len(values)) if values else 0.0)
            return (0 if value is not None else 2, -(value or 0.0))

        return sorted(self.models, key=key)

    def adapted_on(self, model: str, dataset: str) -> str | None:
        """How the model was trained on this dataset's collection, e.g. "adapted on embedded:smoke", from what
        its adaptation manifests recorded (``model.extra.trained_on``: the stages and the data each used),
        matched by the dataset's spec, its source or its fingerprint; None when it was not."""
        result = self.results.get((model, dataset))
        if result is None:
            return None
        info = result["dataset"]
        ours = {info.get("spec"), info.get("source"), info.get("fingerprint")} - {None}
        for stage in (result["model"].get("extra") or {}).get("trained_on") or []:
            theirs = {stage.get("spec"), stage.get("fingerprint")} - {None}
            if ours & theirs:
                return f"{stage.get('stage', 'trained')} on {stage.get('spec') or stage.get('fingerprint')}"
        return None

    def model_meta(self, model: str) -> dict:
        return next(r["model"] for (m, _), r in self.results.items() if m == model)

    def n_parameters(self, model: str) -> int | None:
        return self.model_meta(model).get("n_parameters")

    def pairs(self):
        """(model, dataset, result) for every result, models first, in report order."""
        for m in self.models:
            for d in self.datasets:
                if (m, d) in self.results:
                    yield m, d, self.results[(m, d)]

    def runs(self) -> dict[str, dict]:
        """run id -> the provenance shared by its results (first result seen), with its models and datasets."""
        out: dict[str, dict] = {}
        for m, d, r in self.pairs():
            run = out.setdefault(r["run_id"], {"provenance": r["provenance"], "suite": r["suite"],
                                               "created_at": r["created_at"], "models": [], "datasets": []})
            for key, name in (("models", m), ("datasets", d)):
                if name not in run[key]:
                    run[key].append(name)
        return out

    def dataset_info(self, dataset: str) -> dict:
        return next(r["dataset"] for (_, d), r in self.results.items() if d == dataset)


def _phase_order(timings: dict) -> list[str]:
    return [p for p in PHASES if p in timings] + [p for p in timings if p not in PHASES]


def build(collected: Collected, options: Options = Options()) -> Report:
    results = collected.results
    models = list(dict.fromkeys(r["model"]["name"] for r in results))
    datasets = list(dict.fromkeys(r["dataset"]["name"] for r in results))
    by_key = {(r["model"]["name"], r["dataset"]["name"]): r for r in results}
    metric = options.metric or results[0]["main_metric"]
    for r in results:
        if metric not in r["metrics"] or metric not in r["per_query"]:
            key = (r["model"]["name"], r["dataset"]["name"])
            raise ConfigError(f"{collected.sources[key]}: no {metric!r} among its measures "
                              f"({', '.join(r['metrics'])}); choose one with --metric")
    baseline = options.baseline or next((b for b in collected.baselines if b in models), models[0])
    if baseline not in models:
        raise UnknownNameError("baseline model (not in these results)", baseline, models)
    report = Report(options=options, metric=metric, baseline=baseline, models=models, datasets=datasets,
                    results=by_key, comparisons={}, untestable={}, notes=list(collected.notes),
                    sources={k: str(v) for k, v in collected.sources.items()}, gates=list(collected.gates))
    failed = [g for g in report.gates if g["status"] == "FAIL"]
    if failed:
        report.notes.append(f"{len(failed)} expected score{'s' if len(failed) > 1 else ''} FAIL "
                            "(see Expected scores)")
    apart = sum(g["status"] == "not comparable" for g in report.gates)
    if apart:
        report.notes.append(f"{apart} expected score{'s' if apart > 1 else ''} not comparable: run under other "
                            "conditions than measured (see Expected scores)")
    report.declared = [(a, b) for a, b in collected.compare if a in models and b in models]
    for dataset in datasets:
        why = _compare_dataset(dataset, models, baseline, by_key, metric, options, report.comparisons)
        if why:
            report.untestable[dataset] = why
        report.pairwise[dataset] = _compare_all_pairs(dataset, models, by_key, metric, options, report.declared)
    report.notes += [f"{d} has only {n} judged quer{'y' if n == 1 else 'ies'}: below ~{MIN_QUERIES} a paired test "
                     "has little power and its p-values say little" for d in datasets
                     if (n := len(_scored_queries(d, models, by_key, metric))) < MIN_QUERIES]
    report.notes += [f"{m} has untrained (random) weights: its scores are a floor, not a model's quality"
                     for m in models if report.model_meta(m).get("trained") is False]
    dirty = [run_id for run_id, run in report.runs().items() if (run["provenance"].get("git") or {}).get("dirty")]
    if dirty:
        report.notes.append(f"made from a git checkout with uncommitted changes: run{'s' if len(dirty) > 1 else ''} "
                            f"{', '.join(dirty)}")
    return report


def _compare_dataset(dataset: str, models: list[str], baseline: str, results: dict, metric: str,
                     options: Options, out: dict) -> str | None:
    """Fill ``out`` with this dataset's comparisons against the baseline; or say why there are none."""
    if (baseline, dataset) not in results:
        return f"the baseline {baseline} was not run on it"
    others = [m for m in models if m != baseline and (m, dataset) in results]
    if not others:
        return None
    paired = _paired_scores(dataset, [baseline, *others], results, metric)
    if isinstance(paired, str):
        return paired
    base = paired[baseline]
    found = compare_pairs([(paired[m], base) for m in others], test=options.test, correction=options.correction,
                          confidence=options.confidence, n_resamples=options.n_resamples, seed=options.seed)
    out.update({(m, dataset): c for m, c in zip(others, found)})
    return None


def _compare_all_pairs(dataset: str, models: list[str], results: dict, metric: str, options: Options,
                       declared: list[tuple[str, str]]) -> dict[tuple[str, str], Comparison]:
    """Every pair of the models run on ``dataset``, corrected as one family (ranx's ``compare``); a declared
    pair keeps its declared order (A against B). Empty when the scores cannot be paired (the baseline view
    says why)."""
    ran = [m for m in models if (m, dataset) in results]
    paired = _paired_scores(dataset, ran, results, metric) if len(ran) > 1 else "fewer than two models"
    if isinstance(paired, str):
        return {}
    pairs = [(a, b) if (b, a) not in declared else (b, a) for i, a in enumerate(ran) for b in ran[i + 1:]]
    found = compare_pairs([(paired[a], paired[b]) for a, b in pairs], test=options.test,
                          correction=options.correction, confidence=options.confidence,
                          n_resamples=options.n_resamples, seed=options.seed)
    return dict(zip(pairs, found))


def _scored_queries(dataset: str, models: list[str], results: dict, metric: str) -> list[str]:
    """The queries scored on ``dataset`` (the first model's that ran it)."""
    first = next((results[(m, dataset)] for m in models if (m, dataset) in results), None)
    return sorted(first["per_query"][metric]) if first else []


def _paired_scores(dataset: str, models: list[str], results: dict, metric: str) -> dict[str, np.ndarray] | str:
    """Each model's per-query scores on ``dataset`` in one query order; or why they cannot be paired."""
    fingerprints = {results[(m, dataset)]["dataset"]["fingerprint"] for m in models}
    if len(fingerprints) > 1:
        return (f"its results come from different data (fingerprints {', '.join(sorted(fingerprints))}): "
                "per-query scores cannot be paired")
    queries = sorted(results[(models[0], dataset)]["per_query"][metric])
    for m in models[1:]:
        if set(results[(m, dataset)]["per_query"][metric]) != set(queries):
            return f"{m} was scored on other queries than {models[0]}: per-query scores cannot be paired"
    return {m: np.array([results[(m, dataset)]["per_query"][metric][q] for q in queries]) for m in models}

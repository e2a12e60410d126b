"""The `llara-bench` command line (typer + rich)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from llara_bench.harness import failures, verbosity
from llara_bench.harness.errors import ConfigError, LlaraBenchError
from llara_bench.harness.options import with_options
from llara_bench.harness.progress import Tracker
from llara_bench.harness.retrieval import CacheOptions, EncoderOptions, SearchOptions
from llara_bench.harness.timing import corpus_rates

if TYPE_CHECKING:
    from llara_bench.reports import Options

app = typer.Typer(help="llara-bench: evaluate LLM-based and classic retrieval encoders.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
# Off a terminal (tox, CI logs) rich would wrap tables at 80 columns; results tables need more.
console = Console(width=None if sys.stdout.isatty() else 140)
err_console = Console(stderr=True, soft_wrap=True)  # a note or warning stays one line in a log


_fail = failures.fail


@app.command()
@with_options(encoder=EncoderOptions, cache=CacheOptions, search=SearchOptions)
def run(
    suite: str = typer.Option("smoke", "--suite", "-s", help="Built-in suite name or a suite YAML file."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", envvar="LLARA_BENCH_DATA_ROOT",
                                             help="Folder holding BEIR-layout datasets."),
    model: Optional[list[str]] = typer.Option(None, "--model", "-m", help="Encoder (repeatable); NAME=PATH runs a "
                                              "model folder under a short name. Default: the suite's."),
    dataset: Optional[list[str]] = typer.Option(None, "--dataset", "-d", help="A dataset of the suite, by name or "
                                                "spec, or a spec to add (folder:PATH, beir:NAME, irds:ID); "
                                                "repeatable. Default: the suite's."),
    split: Optional[str] = typer.Option(None, "--split", help="Override every dataset's split (e.g. dev)."),
    measures: Optional[list[str]] = typer.Option(None, "--measures", help="Measure (repeatable), any case: "
                                                 "ndcg@10, R@100, AP. Default: the suite's."),
    baseline: Optional[str] = typer.Option(None, "--baseline", "-b", help="Model the report compares the others "
                                           "with (default: the suite's, else the first)."),
    name: Optional[str] = typer.Option(None, "--name", help="The run's name: its folder under --output "
                                       "(default: SUITE-TIME-ID)."),
    output: Path = typer.Option(Path("runs"), "--output", "-o", help="Parent folder of the run directory."),
    models_file: Optional[list[Path]] = typer.Option(None, "--models-file", help="YAML file declaring extra "
                                                     "encoders (repeatable); see `llara-bench register`."),
    top_k: Optional[int] = typer.Option(None, min=1, help="Override the suite's retrieval depth."),
    no_run_files: bool = typer.Option(False, "--no-run-files", help="Do not write TREC run files."),
    write_report: bool = typer.Option(True, "--report/--no-report", help="Write report.html (+ .md, .csv) "
                                      "into the run directory at the end."),
    plan_only: bool = typer.Option(False, "--plan-only", help="Print the memory plan and stop."),
    titles: Optional[str] = typer.Option(None, "--titles", help="Join document titles onto untitled docs from "
                                         "hf:OWNER/NAME, a doc-id<TAB>title .tsv or a .jsonl (MS MARCO passage: "
                                         "RocketQA's titles, as RepLLaMA and LLaRA were trained); 'none' turns off "
                                         "the suite's."),
    check: bool = typer.Option(False, "--check", help="Exit with status 1 when a score misses the suite's "
                               "expected value by more than its tolerance (FAIL); a gate measured under other "
                               "conditions is not comparable and does not fail."),
    *,
    encoder: EncoderOptions,
    cache: CacheOptions,
    search: SearchOptions,
) -> None:
    """Run a suite: every model on every dataset, then print the comparison table and write the report.

    Under torchrun, the ranks share the corpus encoding and rank 0 does the rest."""
    from llara_bench.harness.distributed import world
    from llara_bench.harness.runner import RunConfig, run_suite
    from llara_bench.harness.suites import load_suite

    try:
        config = RunConfig(suite=load_suite(suite), data_root=data_root, output=output, models=model or None,
                           datasets=dataset or None, models_files=models_file or [], encoder=encoder, cache=cache,
                           search=search, top_k=top_k, split=split, measures=measures or None, baseline=baseline,
                           name=name, save_run_files=not no_run_files, titles=titles)
        place = world()
        if not place.leader:  # encode this rank's shards quietly; rank 0 reports
            run_suite(config, world=place, plan_only=plan_only)
            place.close()
            return
        if plan_only:
            run_suite(config, on_plan=lambda rows: console.print(plan_table(rows)), plan_only=True, world=place)
            place.close()
            return
        with Tracker(console) as tracker:
            finished = run_suite(config, progress=tracker.counter, on_result=lambda r: console.print(_done_line(r)),
                                 world=place, on_plan=_print_plan,
                                 on_note=lambda text: err_console.print(f"[yellow]note:[/] {escape(text)}"))
        place.close()
    except LlaraBenchError as exc:
        _fail(exc)
    console.print(comparison_table(finished.results, config.suite.measures))
    if finished.groups:
        console.print(group_table(finished.groups, config.suite.measures))
    if finished.verdicts:
        console.print(gate_table(finished.verdicts))
    console.print(f"Results in [bold]{escape(str(finished.run_dir))}[/]")
    if write_report:
        from llara_bench.reports import Options

        _write_report([finished.run_dir], finished.run_dir / "report.html", Options(baseline=finished.baseline))
    if check:
        from llara_bench.harness.gates import failed

        if failed(finished.verdicts):
            err_console.print("[bold red]check failed:[/] a score is outside its expected range (FAIL above)")
            raise typer.Exit(code=1)
        if all(v.status == "not run" for v in finished.verdicts):  # a check that passes because nothing was checked
            err_console.print("[yellow]note:[/] --check checked nothing: "
                              + (f"none of the suite's {len(finished.verdicts)} expected scores is for a model and "
                                 "dataset of this run" if finished.verdicts else "the suite has no expected scores"))


@app.command()
def mteb(
    task: Optional[list[str]] = typer.Option(None, "--task", "-t", help="MTEB retrieval task name (repeatable); "
                                             "offline it is read from the Hugging Face datasets cache."),
    folder: Optional[list[Path]] = typer.Option(None, "--folder", help="A local BEIR-layout folder, run as an MTEB "
                                                "task (repeatable)."),
    benchmark: Optional[list[str]] = typer.Option(None, "--benchmark", "-b", help="The retrieval tasks of an MTEB "
                                                  "benchmark, e.g. BEIR (repeatable)."),
    model: Optional[list[str]] = typer.Option(None, "--model", "-m", help="Dense encoder (repeatable); default "
                                              "minilm."),
    output: Path = typer.Option(Path("runs"), "--output", "-o", help="Parent folder of the run directory."),
    write_report: bool = typer.Option(True, "--report/--no-report", help="Write report.html into the run directory."),
) -> None:
    """Run MTEB retrieval tasks through mteb.evaluate with registry encoders.

    The results are written as llara-bench result files (the harness's measures over MTEB's rankings, and
    MTEB's own scores)."""
    from llara_bench.harness.mteb_run import MEASURES, load_tasks, run_mteb

    if not task and not folder and not benchmark:
        _fail(ConfigError("name an MTEB task (--task), benchmark (--benchmark) or a BEIR folder (--folder)"))
    try:
        from llara_bench.harness.results import check_run_writable
        from llara_bench.models import REGISTRY

        check_run_writable(output, any(m not in REGISTRY or REGISTRY.get(m).meta.kind == "dense"  # before any model
                                       for m in model or ["minilm"]))                          # is loaded
        finished = run_mteb(load_tasks(task or [], folder or [], benchmark or []), model or ["minilm"], output,
                            on_result=lambda r: console.print(_done_line(r) + f" [dim](MTEB main score "
                                                              f"{r['mteb'].get('main_score', float('nan')):.4f})[/]"))
    except LlaraBenchError as exc:
        _fail(exc)
    console.print(comparison_table(finished.results, MEASURES))
    console.print(f"Results in [bold]{escape(str(finished.run_dir))}[/]")
    if write_report:
        from llara_bench.reports import Options

        _write_report([finished.run_dir], finished.run_dir / "report.html", Options())


def _done_line(r: dict) -> str:
    line = (f"[green]✓[/] {escape(r['model']['name'])} on {escape(r['dataset']['name'])}: "
            f"{r['main_metric']} = {r['metrics'][r['main_metric']]:.4f}")
    emb = r.get("embeddings")
    if emb and emb["reused_items"]:
        line += f" [dim](corpus embeddings: {emb['reused_items']:,} reused, {emb['encoded_items']:,} encoded)[/]"
    if emb and emb["plan"]["mode"] == "shard-and-merge":
        line += (f" [yellow](shard-and-merge search: a {emb['plan']['index_bytes'] / 2**30:.2f} GiB index, "
                 f"budget {emb['plan']['budget_bytes'] / 2**30:.2f} GiB)[/]")
    return line


def _print_plan(rows: list[dict]) -> None:
    """The memory plan, when it says something: a search that is not in memory, or an index of at least
    1 GiB or a tenth of the budget (always with --verbose; --plan-only prints it whatever it says)."""
    worth = any(r["dim"] and (r["mode"] != "in-memory" or r["index_bytes"] >= min(2**30, r["budget_bytes"] / 10))
                for r in rows)
    if rows and (worth or verbosity.level() == "verbose"):
        console.print(plan_table(rows))


def plan_table(rows: list[dict]) -> Table:
    """The memory plan of the dense pairs: vectors, index, the search mode and where it runs."""
    table = Table(title="Memory plan (dense encoders; estimated before the run)")
    for name in ("model", "dataset", "docs × dim", "embeddings", "index", "search", "budget"):
        table.add_column(name, justify="left" if name in ("model", "dataset", "search") else "right")
    unplanned: dict[str, dict[str, None]] = {}  # note -> the datasets it is about (--plan-only, not downloaded)
    for r in rows:
        names = (escape(r["model"]), escape(r["dataset"]))
        if r.get("note"):
            unplanned.setdefault(r["note"], {})[r["dataset"]] = None
        if "mode" not in r:  # no declared dimension, or a dataset of unknown size
            docs = "?" if r["n_docs"] is None else f"{r['n_docs']:,}"
            dim = f"{r['dim']:,}" if r["dim"] else "?"
            table.add_row(*names, f"{docs} × {dim}", "-", "-",
                          "planned when loaded" if r["n_docs"] is not None else "planned when downloaded", "-")
            continue
        where = (f"GPU ×{r['gpus']}, {'sharded' if r['gpu_sharded'] else 'replicated'}" if r["device"] == "gpu"
                 else "CPU")
        table.add_row(*names, f"{r['n_docs']:,} × {r['dim']:,}", _gib(r["embedding_bytes"]),
                      _gib(r["index_bytes"]) + (" fp16" if r["fp16"] else ""), f"{r['mode']} on {where}",
                      _gib(r["budget_bytes"]))
    if unplanned:
        table.caption = "; ".join(f"{escape(', '.join(names))}: {note}" for note, names in unplanned.items())
    return table


def group_table(groups: list[dict], measures: list[str]) -> Table:
    table = Table(title="Dataset groups (mean over their datasets)")
    for name in ("group", "model", *measures, "datasets"):
        table.add_column(name, justify="right" if name in measures else "left")
    for g in groups:
        count = f"{len(g['members'])}" + ("" if g["complete"] else " [yellow](incomplete)[/]")
        table.add_row(escape(g["dataset"]["name"]), escape(g["model"]["name"]),
                      *(f"{g['metrics'][m]:.4f}" for m in measures), count)
    return table


GATE_STYLES = {"OK": "green", "OKish": "yellow", "FAIL": "bold red", "not comparable": "cyan", "not run": "dim"}


def gate_table(verdicts: list) -> Table:
    """The suite's expected scores against this run's (Pyserini's OK / OKish / FAIL; "not comparable",
    with the condition that differs, when the run's conditions are not the expectation's)."""
    not_run = sum(v.status == "not run" for v in verdicts)
    table = Table(title="Expected scores", caption=f"{not_run} more not run (model or dataset not in this run)"
                  if not_run else None)
    for name in ("model", "dataset", "metric", "expected", "got", "Δ", "tolerance", "", "source"):
        table.add_column(name, justify="right" if name in ("expected", "got", "Δ", "tolerance") else "left")
    for v in (v for v in verdicts if v.status != "not run"):
        e = v.expectation
        status = f"[{GATE_STYLES[v.status]}]{v.status}[/]" + (f" ({escape(v.reason)})" if v.reason else "")
        table.add_row(escape(e.model), escape(e.dataset), e.metric, f"{e.score:.4f}",
                      "-" if v.got is None else f"{v.got:.4f}", "-" if v.delta is None else f"{v.delta:+.4f}",
                      f"{e.tolerance:.4f}", status, escape(e.source or ""))
    return table


def _gib(n: int) -> str:
    return f"{n / 2**30:,.2f} GiB" if n >= 2**30 else f"{n / 2**20:,.1f} MiB"


def _write_report(inputs: list[Path], output: Path, options: Options) -> None:
    from llara_bench.reports import write_report

    try:
        paths = write_report(inputs, output, options)
    except LlaraBenchError as exc:
        _fail(exc)
    console.print(f"Report: [bold]{escape(str(paths[0]))}[/] (also {', '.join(p.name for p in paths[1:])})")


@app.command()
def report(
    runs: Optional[list[Path]] = typer.Argument(None, help="Run directories, result JSON files or TREC run files "
                                                "(plain or .gz; scored against --qrels) to compare."),
    label: Optional[list[str]] = typer.Option(None, "--label", "-l", help="NAME=PATH: an input whose models are "
                                              "shown as MODEL (NAME), e.g. the same model before and after a "
                                              "change; a TREC run file's model is NAME (repeatable)."),
    qrels: Optional[Path] = typer.Option(None, "--qrels", help="Qrels that TREC run files are scored against (TREC "
                                         "or BEIR format; a run folder's qrels/DATASET.qrels pairs them with "
                                         "that run's results)."),
    measures: Optional[list[str]] = typer.Option(None, "--measures", help="Measures TREC run files are scored with "
                                                 "(repeatable, any case; default: the other results' measures)."),
    mteb_results: Optional[Path] = typer.Option(None, "--mteb-results", help="Also write the results as an MTEB "
                                                "results cache here (results/MODEL/REVISION/TASK.json: "
                                                "mteb.ResultCache(DIR).load_results() reads it)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="The HTML file; Markdown, CSV and LaTeX "
                                          "are written beside it. Default: RUN/report.html for one run, else "
                                          "./report.html."),
    baseline: Optional[str] = typer.Option(None, "--baseline", "-b", help="Model the others are compared with "
                                           "(default: the suite's baseline, else the first model)."),
    metric: Optional[str] = typer.Option(None, "--metric", help="Measure to compare (default: the suite's main "
                                         "metric)."),
    test: str = typer.Option("randomization", "--test", help="Paired test: randomization or t-test."),
    correction: str = typer.Option("holm", "--correction", help="Multiple-comparison correction: holm or "
                                   "bonferroni."),
    alpha: float = typer.Option(0.05, "--alpha", help="Significance level after correction."),
    resamples: int = typer.Option(10_000, "--resamples", help="Sign flips of the randomisation test."),
    title: Optional[str] = typer.Option(None, "--title", help="Report title."),
) -> None:
    """Compare runs, result files or TREC runs in one self-contained HTML report.

    Scores, significance against the baseline and between every pair of models, every query, cost; Markdown,
    CSV, LaTeX and per-query exports beside it; the summary table in the terminal."""
    from llara_bench.reports import Options, build_report, write_report
    from llara_bench.reports.collect import Input

    runs = list(runs or [])
    try:
        options = Options(baseline=baseline, metric=metric, test=test, correction=correction, alpha=alpha,
                          n_resamples=resamples, title=title)
        inputs = [Input(p) for p in runs] + [_labelled_input(text) for text in label or []]
        if not inputs:
            raise ConfigError("give the runs to compare: run folders, result files or TREC run files "
                              "(or --label NAME=PATH)")
        if output is None:
            output = runs[0] / "report.html" if len(inputs) == 1 and runs and runs[0].is_dir() else Path("report.html")
        _check_report_path(output)
        built = build_report(inputs, options, qrels=qrels, measures=measures or None)
        paths = write_report(built, output, options)
        if mteb_results is not None:
            from llara_bench.reports.exports import write_mteb_results

            paths += write_mteb_results(built, mteb_results)[:1]
    except LlaraBenchError as exc:
        _fail(exc)
    shared = [m for m in built.measures() if all(m in r["metrics"] for r in built.results.values())]
    console.print(comparison_table([r for _, _, r in built.pairs()], shared))
    for note in built.notes:
        err_console.print(f"[yellow]note:[/] {escape(note)}")
    console.print(f"Report: [bold]{escape(str(paths[0]))}[/] (also {', '.join(p.name for p in paths[1:])})")


def _labelled_input(text: str):
    """``NAME=PATH`` of --label."""
    from llara_bench.reports.collect import Input

    name, sep, path = text.partition("=")
    if not sep or not name.strip() or not path:
        raise ConfigError(f"--label {text!r}: expected NAME=PATH, e.g. --label before=runs/smoke-1")
    return Input(Path(path), name.strip())


@app.command()
def evaluate(
    run_path: Path = typer.Argument(..., metavar="RUN", help="A run folder (or one of its result files), or a "
                                    "TREC run file with --qrels."),
    measures: list[str] = typer.Option(..., "--measures", "-M", help="Measure to compute (repeatable, any case, "
                                       "ir_measures syntax: nDCG@20, R@10, P(rel=2)@5, AP)."),
    qrels: Optional[Path] = typer.Option(None, "--qrels", help="The qrels of a TREC run file (a run folder uses "
                                         "the qrels it saved)."),
    as_json: bool = typer.Option(False, "--json", help="Print the scores as JSON lines (model, dataset, metrics)."),
) -> None:
    """Recompute any ir_measures measure from a run's saved run files and qrels (or score a TREC run file)."""
    from llara_bench.harness.evaluate import external_result, reevaluate
    from llara_bench.harness.metrics import canonical_measures

    try:
        names = canonical_measures(measures)
        if run_path.is_file() and not run_path.name.endswith(".json"):
            if qrels is None:
                raise ConfigError(f"{run_path}: a TREC run file is scored against qrels: give --qrels FILE")
            found = [external_result(run_path, qrels, names)]
        else:
            found = reevaluate(run_path, names)
    except LlaraBenchError as exc:
        _fail(exc)
    if as_json:
        for r in found:
            print(json.dumps({"model": r["model"]["name"], "dataset": r["dataset"]["name"], "metrics": r["metrics"]}))
        return
    console.print(comparison_table(found, names, cost=False))


def _check_report_path(output: Path) -> None:
    """A report that could not be written fails before the runs are read and the statistics computed."""
    from llara_bench.harness.results import check_writable

    try:
        if output.is_dir():
            raise ConfigError(f"the report file {output} (--output) is a folder; give a file, e.g. "
                              f"{output / 'report.html'}")
        check_writable(output.parent, "the report's folder", "--output")
    except LlaraBenchError as exc:
        _fail(exc)


def comparison_table(results: list[dict], measures: list[str], cost: bool = True) -> Table:
    """Rows (dataset, model); the best value per dataset and measure in bold; with ``cost``, docs/s and seconds."""
    # the smoke suite's table fits 80 columns (no vertical rules); on a narrower terminal nothing is cut to an
    # ellipsis or cropped (tiny-llama and tiny-llara must stay apart): names, figures and headers fold onto
    # another line instead
    table = Table(title="llara-bench results", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for name in ("dataset", "model", *measures, *(("docs/s", "total s") if cost else ())):
        table.add_column(name, justify="left" if name in ("dataset", "model") else "right", overflow="fold")
    by_dataset: dict[str, list[dict]] = {}
    for r in results:
        by_dataset.setdefault(r["dataset"]["name"], []).append(r)
    for name, rows in by_dataset.items():
        best = {m: max(r["metrics"][m] for r in rows) for m in measures}
        for i, r in enumerate(rows):
            cells = [f"[bold]{r['metrics'][m]:.4f}[/]" if r["metrics"][m] == best[m] and len(rows) > 1
                     else f"{r['metrics'][m]:.4f}" for m in measures]
            rate = corpus_rates(r)[0]
            total = sum(p["seconds"] for p in r["timings"].values())  # top-level phases (a load with one dataset)
            table.add_row(escape(name) if i == 0 else "", escape(r["model"]["name"]), *cells,
                          *((f"{rate:,.0f}" if rate else "-", f"{total:.1f}") if cost else ()))
    return table


@app.command()
def models(as_json: bool = typer.Option(False, "--json", help="Print the metadata as JSON."),
           models_file: Optional[list[Path]] = typer.Option(None, "--models-file",
                                                            help="YAML file declaring extra encoders.")) -> None:
    """List the registered encoders with their metadata."""
    from llara_bench.harness.encoders_file import load_models_files
    from llara_bench.models import REGISTRY
    from llara_bench.models.base import ROLES

    try:
        load_models_files(models_file)
        entries = list(REGISTRY)
    except LlaraBenchError as exc:
        _fail(exc)
    if as_json:
        console.print_json(json.dumps([e.meta.to_dict() | {"aliases": list(e.aliases), "origin": e.origin}
                                       | {f"{role}_max_length": e.meta.input_length(role) for role in ROLES}
                                       for e in entries]))
        return
    table = Table(title="Registered encoders")
    for col in ("name", "kind", "dim", "tokens (query / passage)", "similarity", "source", "description"):
        table.add_column(col)
    for e in entries:
        m = e.meta
        name = e.name + (f" ({', '.join(e.aliases)})" if e.aliases else "")
        lengths = " / ".join(str(m.input_length(role) or "-") for role in ROLES)
        table.add_row(name, m.kind, str(m.dimension or "-"), lengths, m.similarity, m.source,
                      m.description + ("" if m.trained else " [UNTRAINED]"))
    console.print(table)


@app.command()
def register(
    name: str = typer.Argument(..., help="The new encoder's name."),
    model: str = typer.Argument(..., help="A local model folder or a Hub id."),
    contract: str = typer.Option(..., "--contract", "-c", help="Encoding contract: llara or repllama (causal LMs), "
                                 "mean or cls (sentence-transformers folders)."),
    query_prefix: Optional[str] = typer.Option(None, help="Text put before each query, e.g. 'query: ' (E5)."),
    passage_prefix: Optional[str] = typer.Option(None, help="Text put before each passage, e.g. 'passage: '."),
    adapter: Optional[str] = typer.Option(None, help="A LoRA adapter folder or Hub id, merged at load."),
    tokenizer: Optional[str] = typer.Option(None, help="Tokenizer folder or Hub id (default: the model's)."),
    dtype: Optional[str] = typer.Option(None, help="float32, bfloat16 or float16 (default: the contract's)."),
    description: Optional[str] = typer.Option(None, help="One line shown by `llara-bench models`."),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help="Allow pickle (.bin) weights: they can run "
                                      "arbitrary code; only for a source you trust."),
    models_file: Optional[Path] = typer.Option(None, "--models-file", help="File to write (default: "
                                               "$LLARA_BENCH_MODELS_FILE or ~/.config/llara-bench/encoders.yaml)."),
    check: bool = typer.Option(True, "--check/--no-check", help="Check first that the model's config and tokenizer "
                               "fit the contract (no weights are loaded)."),
) -> None:
    """Register a local checkpoint (or Hub model) under an encoding contract, in a models file."""
    from llara_bench.harness.encoders_file import register_encoder

    try:
        path = register_encoder(name, model, contract, models_file, check=check, adapter=adapter, tokenizer=tokenizer,
                                dtype=dtype, description=description, allow_pickle=allow_pickle or None,
                                query_prefix=query_prefix, passage_prefix=passage_prefix)
    except LlaraBenchError as exc:
        _fail(exc)
    console.print(f"Registered [bold]{escape(name)}[/] in {path}")


@app.command()
def suites() -> None:
    """List the built-in suites."""
    from llara_bench.harness.suites import builtin_suites, load_suite

    table = Table(title="Built-in suites")
    for col in ("name", "models", "datasets", "main metric", "description"):
        table.add_column(col)
    for name in builtin_suites():
        s = load_suite(name)
        ds = ", ".join(e.spec for e in s.datasets) + (" + every BEIR folder under --data-root" if s.discover else "")
        table.add_row(name, ", ".join(s.models), ds, s.main_metric, s.description)
    console.print(table)


# LLaRA adaptation (adaptation/): heavy imports happen inside the commands
from llara_bench.adaptation import cli as _adaptation_cli  # noqa: E402

app.command("adapt")(_adaptation_cli.adapt)
app.command("finetune")(_adaptation_cli.finetune)
app.command("miniature")(_adaptation_cli.miniature)
app.command("study")(_adaptation_cli.study)


@app.callback()
def _verbosity(verbose: bool = typer.Option(False, "--verbose", "-v", help="Also show libraries' progress bars "
                                            "and warnings (silenced by default)."),
               quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only results and errors."),
               debug: bool = typer.Option(False, "--debug", help="Show the Python traceback of an error (also "
                                          "LLARA_BENCH_DEBUG=1).")) -> None:
    failures.set_debug(debug)
    if verbose and quiet:
        _fail(ConfigError("--verbose and --quiet contradict each other; give one"))
    verbosity.configure(verbose=verbose, quiet=quiet)


def main() -> None:
    """The console script: every error ends as one line on stderr and a non-zero status (harness/failures.py)."""
    def command() -> object:
        try:
            return app(standalone_mode=False)
        except typer.Abort:  # click's form of Ctrl-C
            raise KeyboardInterrupt from None
        except Exception as exc:
            # usage errors: click's own message and status (typer vendors click from 0.29 on: duck-typed)
            if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
                exc.show()
                return exc.exit_code
            raise

    sys.exit(failures.guarded(command, failures.error_line))


if __name__ == "__main__":
    main()

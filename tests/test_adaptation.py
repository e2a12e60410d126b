"""LLaRA adaptation: chunk pairs and targets, the one-pass pretext model, its losses, the training loop
(resume), fine-tuning data, and the adapt → finetune → evaluate path through the CLI."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from llara_bench.adaptation.corpus import chunk_document, excluded_ids, make_pairs, target_ids
from llara_bench.adaptation.finetune import mine_groups, read_tevatron_jsonl
from llara_bench.adaptation.pretext import PAPER, RELEASED, PretextInputs, hidden_states, pretext_loss
from llara_bench.adaptation.stopwords import NLTK_ENGLISH
from llara_bench.adaptation.train import TrainSettings, train
from llara_bench.harness.cli import app
from llara_bench.harness.datasets import load_dataset
from llara_bench.harness.errors import ConfigError, DataFormatError
from llara_bench.harness.results import result_paths
from llara_bench.models import REGISTRY
from llara_bench.models.contracts import LLARA
from llara_bench.models.decoder import add_special_tokens, affix_ids, collate
from llara_bench.models.tiny_llama import tiny_llama_path

TEXTS = ["Dense retrieval encodes queries and passages as vectors.",
         "The mitochondria is the powerhouse of the cell, producing ATP through oxidative phosphorylation in "
         "its inner membrane.",
         "Short one."]


def _tiny(seed: int = 0):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tiny_llama_path()
    tok = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="sdpa")
    add_special_tokens(tok, model, LLARA.special_tokens)
    return model, tok


@pytest.fixture(scope="module")
def llama2(shared_models):
    """A randomly initialised 2-layer LLaMA with the real LLaMA-2 tokenizer (exact ids matter here)."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(shared_models / "llama2-tokenizer-hf")
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=32000, hidden_size=64, intermediate_size=128,
                                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2))
    add_special_tokens(tok, model, LLARA.special_tokens)
    return model.eval(), tok


# -- corpus preparation ---------------------------------------------------------------------------

def test_chunks_end_at_sentence_boundaries_and_pair_with_the_next_chunk_of_the_same_document():
    doc = " ".join(f"Sentence {i} has exactly six words." for i in range(10))  # 60 words
    chunks = chunk_document(doc, chunk_words=12)
    assert len(chunks) == 5 and all(c.endswith(".") and len(c.split()) == 12 for c in chunks)
    pairs, stats = make_pairs([("a", doc), ("b", "Alpha beta gamma. Delta epsilon zeta eta theta.")],
                              chunk_words=12, min_words=2)
    assert [(p.doc_id, p.text, p.next_text) for p in pairs[:4]] == [("a", chunks[i], chunks[i + 1]) for i in range(4)]
    # "b" is one chunk: halved at the sentence boundary nearest its middle, and counted
    assert (pairs[-1].doc_id, pairs[-1].text, pairs[-1].next_text) == \
        ("b", "Alpha beta gamma.", "Delta epsilon zeta eta theta.")
    assert (stats.documents, stats.pairs, stats.halved, stats.dropped_short) == (2, 5, 1, 0)


def test_documents_too_short_to_pair_are_counted_not_silently_lost():
    docs = [("tiny", "Too short."), ("one", "One sentence of nine words that cannot be split.")]
    pairs, stats = make_pairs(docs, chunk_words=50, short_docs="drop", min_words=4)
    assert pairs == [] and (stats.dropped_short, stats.examples_dropped) == (2, ["tiny", "one"])
    pairs, stats = make_pairs(docs, chunk_words=50, short_docs="halve", min_words=4)
    assert [(p.text, p.next_text) for p in pairs] == [("One sentence of nine", "words that cannot be split.")]
    assert (stats.halved, stats.dropped_short, stats.examples_dropped) == (1, 1, ["tiny"])
    with pytest.raises(ConfigError, match="short_docs 'keep'"):
        make_pairs(docs, short_docs="keep")


def test_bag_of_words_targets_drop_stop_words_punctuation_and_special_ids(llama2):
    _, tok = llama2
    assert len(NLTK_ENGLISH) == 179
    excluded = excluded_ids(tok)
    assert {0, 1, 2} <= excluded and set(tok.convert_tokens_to_ids(list(LLARA.special_tokens))) <= excluded
    ids = target_ids("The cell's <s1> powerhouse: the CELL, and the cell!", tok, excluded)
    words = tok.convert_ids_to_tokens(ids)
    assert len(ids) == len(set(ids)) and all(i > 2 and i not in excluded for i in ids)
    assert "▁The" not in words and "▁the" not in words and "▁and" not in words  # stop words, any case
    assert "▁cell" in words and "▁CE" in "".join(words) or "▁CELL" in words
    assert target_ids("the and of", tok, excluded) == []


# -- the one-pass pretext model -------------------------------------------------------------------

def _two_pass_suffix_states(model, tok, texts_ids, role):
    head, tail = affix_ids(tok, LLARA, role)
    ids, mask, positions = collate([head + t + tail for t in texts_ids], 0, "left")
    return model.model(input_ids=ids, attention_mask=mask, position_ids=positions).last_hidden_state[:, -len(tail):]


@pytest.mark.parametrize("which", ["tiny-llama", "llama2"])
def test_one_pass_suffix_states_equal_two_separate_passes(which, request):
    model, tok = request.getfixturevalue("llama2") if which == "llama2" else _tiny()
    inputs = PretextInputs(tok)
    texts = [inputs.text(t) for t in TEXTS]
    batch = inputs.batch(texts)
    with torch.no_grad():
        one = hidden_states(model.eval(), batch)
        for role, positions, n in (("passage", batch.summarize_positions, len(inputs.summarize)),
                                   ("query", batch.predict_positions, len(inputs.predict))):
            last = positions[:, -1]
            joint = torch.stack([one[r, last[r] - n + 1:last[r] + 1] for r in range(len(texts))])
            separate = _two_pass_suffix_states(model, tok, texts, role)
            assert torch.allclose(joint, separate, atol=1e-5), (role, (joint - separate).abs().max())


def test_pretext_layout_with_the_llama2_tokenizer(llama2):
    _, tok = llama2
    inputs = PretextInputs(tok)
    assert inputs.head == [1, 376] and (len(inputs.summarize), len(inputs.predict)) == (19, 18)
    text = inputs.text("Dense retrieval.")
    batch = inputs.batch([text, inputs.text("A longer text than the first one, by far.")])
    row, n = 0, 2 + len(text)
    start = batch.input_ids.shape[1] - (n + 19 + 18)
    assert batch.input_ids[row, start:start + n].tolist() == [1, 376, *text]
    positions = batch.position_ids[row, start:].tolist()
    assert positions[:n + 19] == list(range(n + 19)) and positions[n + 19:] == list(range(n, n + 18))
    blocked = batch.attention_mask[row, 0] < 0
    predict_rows, summarize_cols = slice(start + n + 19, None), slice(start + n, start + n + 19)
    assert blocked[predict_rows, summarize_cols].all() and not blocked[predict_rows, start:start + n].any()
    assert tok.convert_ids_to_tokens(batch.input_ids[row, batch.summarize_positions[row]].tolist()) == \
        list(LLARA.special_tokens[:8])
    assert tok.convert_ids_to_tokens(batch.input_ids[row, batch.predict_positions[row]].tolist()) == \
        list(LLARA.special_tokens[8:])


def test_the_ebae_loss_falls_far_below_its_start_and_the_gradient_reaches_the_embeddings():
    model, tok = _tiny()
    inputs = PretextInputs(tok)
    excluded = excluded_ids(tok)
    texts = [inputs.text(t) for t in TEXTS]
    targets = [target_ids(t, tok, excluded) for t in TEXTS]
    batch = inputs.batch(texts, targets, targets)
    loss, logs = pretext_loss(model.train(), batch)
    loss.backward()
    grad = model.get_input_embeddings().weight.grad
    special = tok.convert_tokens_to_ids(list(LLARA.special_tokens))
    assert grad[special].abs().sum(dim=1).gt(0).all()  # every <s1>..<s16> row gets a gradient
    assert grad[texts[0]].abs().sum() > 0
    # -mean log p over a target set of n ids is at least log n (p = 1/n each): the floor it can reach
    floor = sum(math.log(len(t)) for t in targets) / len(targets)
    start = logs["ebae"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    bow_only = replace(RELEASED, next_token_weight=0.0)
    for _ in range(80):
        optimizer.zero_grad()
        loss, logs = pretext_loss(model, batch, bow_only)
        loss.backward()
        optimizer.step()
    assert start - floor > 4.0 and logs["ebae"] - floor < 0.1 * (start - floor), (start, floor, logs)


def test_paper_mode_has_one_embedding_token_and_no_next_token_loss():
    model, tok = _tiny()
    inputs = PretextInputs(tok, PAPER)
    batch = inputs.batch([inputs.text(TEXTS[0])], [[300]], [[301]])
    assert batch.summarize_positions.shape == (1, 1)
    assert tok.convert_ids_to_tokens(batch.input_ids[0, batch.summarize_positions[0]].tolist()) == ["</s>"]
    _, logs = pretext_loss(model, batch, PAPER)
    assert "next_token" not in logs and PAPER.contract().pooling_k == 1
    assert "next_token" in pretext_loss(model, batch, RELEASED)[1]


# -- training loop --------------------------------------------------------------------------------

def _toy_training(workdir, settings, fail_at=None):
    model, tok = _tiny()
    inputs = PretextInputs(tok)
    excluded = excluded_ids(tok)
    texts = [inputs.text(t) for t in TEXTS * 2]
    targets = [target_ids(t, tok, excluded) for t in TEXTS * 2]

    def on_log(step, row):
        if step == fail_at:
            raise KeyboardInterrupt

    return train(model, len(texts), lambda idx: inputs.batch([texts[i] for i in idx], [targets[i] for i in idx],
                                                             [targets[i] for i in idx]),
                 pretext_loss, settings, workdir, on_log=on_log)


def test_an_interrupted_run_resumes_from_its_checkpoint_and_ends_where_an_uninterrupted_one_does(tmp_path):
    settings = TrainSettings(steps=6, batch_size=2, grad_accum=2, lr=5e-3, save_every=2, log_every=1,
                             monitor_every=0)
    whole, whole_log = _toy_training(tmp_path / "whole", settings)
    with pytest.raises(KeyboardInterrupt):
        _toy_training(tmp_path / "cut", settings, fail_at=5)
    assert json.loads((tmp_path / "cut" / "checkpoint" / "trainer_state.json").read_text())["step"] == 4
    assert (tmp_path / "cut" / "checkpoint" / "model.safetensors").is_file()
    resumed, log = _toy_training(tmp_path / "cut", settings)
    assert log.resumed_from == 4 and [r["step"] for r in log.history] == [1, 2, 3, 4, 5, 6]
    assert [r["loss"] for r in log.history] == pytest.approx([r["loss"] for r in whole_log.history], rel=1e-5)
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name
    with pytest.raises(ConfigError, match="belongs to other settings"):
        _toy_training(tmp_path / "cut", TrainSettings(steps=7, batch_size=2, save_every=2))


# -- fine-tuning data -----------------------------------------------------------------------------

def test_mined_negatives_leave_out_every_judged_positive():
    dataset = load_dataset("embedded:smoke")
    groups = mine_groups(dataset, "test", "bm25", depth=20)
    qrels = dataset.split("test").qrels
    judged_queries = [q for q in qrels if any(g > 0 for g in qrels[q].values())]
    assert len(groups) == len(judged_queries)
    texts = dict(zip(dataset.corpus.ids, dataset.corpus.texts))
    for qid, group in zip(judged_queries, groups):
        relevant = {texts[d] for d, g in qrels[qid].items() if g > 0}
        assert {t for _, t in group.positives} == relevant
        assert group.negatives and not relevant & {t for _, t in group.negatives}


def test_a_malformed_tevatron_file_names_the_line_and_field(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"query": "q", "positive_passages": [{"docid": "1", "text": "p"}],
                                "negative_passages": []}) + "\n"
                    + json.dumps({"query": "q2", "positive_passages": [{"docid": "2"}]}) + "\n")
    with pytest.raises(DataFormatError, match=r"train.jsonl:2 \(field 'positive_passages'\)"):
        read_tevatron_jsonl(path)


# -- the whole path through the CLI ---------------------------------------------------------------

def test_adapt_then_finetune_then_evaluate_through_the_cli(tmp_path):
    runner = CliRunner()
    adapted, tuned = tmp_path / "adapted", tmp_path / "tuned"
    result = runner.invoke(app, ["adapt", str(tiny_llama_path()), "-o", str(adapted), "--data", "embedded:smoke",
                                 "--steps", "4", "--batch-size", "4", "--lr", "1e-3", "--chunk-words", "32",
                                 "--log-every", "2"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((adapted / "llara-bench.json").read_text())
    assert manifest["stage"] == "adapted" and manifest["data"]["pairs"] > 0 and len(manifest["history"]) == 2
    assert manifest["data"]["spec"] == "embedded:smoke"  # what it was adapted on: a report marks results there
    assert manifest["encoding_contract"]["passage_suffix"] == LLARA.passage_suffix
    assert not (tmp_path / ".adapted.work").exists()  # the checkpoint goes once the output is whole

    dataset = load_dataset("embedded:smoke")
    qrels = dataset.split("test").qrels
    doc = dict(zip(dataset.corpus.ids, dataset.corpus.texts))
    lines = [json.dumps({"query": dataset.queries[q], "positive_passages": [{"docid": d, "title": "", "text": doc[d]}
                                                                            for d in qrels[q]],
                         "negative_passages": [{"docid": "x", "title": "", "text": doc[dataset.corpus.ids[0]]}]})
             for q in list(qrels)[:8]]
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["finetune", str(adapted), "-o", str(tuned), "--tevatron",
                                 str(tmp_path / "train.jsonl"), "--steps", "3", "--batch-size", "2",
                                 "--negatives", "1", "--lr", "1e-3", "--log-every", "1"])
    assert result.exit_code == 0, result.output
    tuned_manifest = json.loads((tuned / "llara-bench.json").read_text())
    assert tuned_manifest["stage"] == "finetuned" and tuned_manifest["adapted_from"]["stage"] == "adapted"
    assert [r["step"] for r in tuned_manifest["history"]] == [1, 2, 3]

    out = tmp_path / "runs"
    result = runner.invoke(app, ["run", "--suite", "smoke", "-m", str(adapted), "-m", str(tuned), "-o", str(out),
                                 "--no-report", "--no-embedding-cache"])
    assert result.exit_code == 0, result.output
    scores = sorted(out.glob("*/results/**/*.json"))
    assert len(scores) == 2
    for path in scores:
        record = json.loads(path.read_text())
        assert record["model"]["origin"] == "path" and record["model"]["contract"]["pooling_k"] == 8
        assert 0.0 <= record["metrics"]["nDCG@10"] <= 1.0 and record["dataset"]["n_queries"] > 0
        # the stages and their data, newest first: the fine-tune (Tevatron file, no dataset spec), the adaptation
        assert record["model"]["extra"]["trained_on"][-1] == {"stage": "adapted", "spec": "embedded:smoke",
                                                              "fingerprint": None}
    from llara_bench.reports import build_report

    report = build_report([next(out.iterdir())])
    assert {m: report.adapted_on(m, "smoke") for m in report.models} == {
        str(adapted): "adapted on embedded:smoke", str(tuned): "adapted on embedded:smoke"}

    again = runner.invoke(app, ["adapt", str(tiny_llama_path()), "-o", str(adapted), "--data", "embedded:smoke"])
    assert again.exit_code == 2 and "exists" in again.output


def test_lora_adaptation_trains_the_adapters_and_the_new_token_rows_and_saves_them_merged(tmp_path):
    from transformers import AutoModelForCausalLM

    from llara_bench.adaptation.stages import adapt
    from llara_bench.adaptation.train import LoraSettings

    base = tiny_llama_path()
    corpus = load_dataset("embedded:smoke").corpus
    docs = list(zip(corpus.ids, corpus.texts))[:40]
    settings = TrainSettings(steps=3, batch_size=4, lr=1e-2, lora=LoraSettings(r=4, alpha=8, dropout=0.0),
                             gradient_checkpointing=True, monitor_every=0)
    manifest = adapt(str(base), docs, tmp_path / "out", settings, chunk_words=32)
    before, _ = _tiny()
    after = AutoModelForCausalLM.from_pretrained(tmp_path / "out", dtype=torch.float32)
    assert not any("lora" in k for k in after.state_dict())  # merged into the base weights
    changed = lambda name: not torch.equal(before.state_dict()[name], after.state_dict()[name])  # noqa: E731
    assert changed("model.layers.0.self_attn.q_proj.weight") and changed("model.layers.3.mlp.down_proj.weight")
    rows = before.get_input_embeddings().weight.shape[0]
    new_rows = slice(rows - manifest["added_special_tokens"], rows)
    old_rows = slice(0, rows - manifest["added_special_tokens"])
    assert manifest["added_special_tokens"] == 16
    assert not torch.equal(before.get_input_embeddings().weight[new_rows], after.get_input_embeddings().weight[new_rows])
    assert torch.equal(before.get_input_embeddings().weight[old_rows], after.get_input_embeddings().weight[old_rows])


def _split_smoke(folder):
    """The smoke collection as a BEIR folder with a train split (its first 20 queries) and a test split."""
    import shutil
    from importlib import resources

    src = resources.files("llara_bench.harness") / "data" / "smoke"
    (folder / "qrels").mkdir(parents=True)
    for name in ("corpus.jsonl", "queries.jsonl"):
        shutil.copy(src / name, folder / name)
    header, *lines = (src / "qrels" / "test.tsv").read_text().splitlines()
    train_ids = sorted({line.split("\t")[0] for line in lines})[:20]
    for split, keep in (("train", lambda q: q in train_ids), ("test", lambda q: q not in train_ids)):
        (folder / "qrels" / f"{split}.tsv").write_text(
            "\n".join([header] + [line for line in lines if keep(line.split("\t")[0])]) + "\n")
    return 40 - 20


def test_the_miniature_reproduction_runs_every_stage_and_tests_llara_against_the_base(tmp_path):
    n_test = _split_smoke(tmp_path / "data")
    out = tmp_path / "mini"
    args = ["miniature", "--dataset", str(tmp_path / "data"), "--tokenizer", str(tiny_llama_path()), "-o", str(out),
            "--hidden", "32", "--layers", "1", "--pretrain-steps", "2", "--adapt-steps", "2",
            "--finetune-steps", "2", "--chunk-words", "16"]
    names = REGISTRY.names()
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert REGISTRY.names() == names  # its rows were registered for its evaluation only
    summary = json.loads((out / "reproduction.json").read_text())
    assert [r["name"] for r in summary["rows"]] == ["base", "base+ft", "llara", "llara+ft"]
    assert all(0.0 <= r["nDCG@10"] <= 1.0 and 0.0 <= r["R@100"] <= 1.0 for r in summary["rows"])
    comparison = summary["comparison"]
    assert comparison["candidate"] == "llara+ft" and comparison["baseline"] == "base+ft"
    assert comparison["queries"] == n_test and 0.0 < comparison["p_randomization"] <= 1.0
    assert comparison["wins"] + comparison["ties"] + comparison["losses"] == n_test
    assert "| llara+ft |" in (out / "reproduction.md").read_text() and (out / "report.html").is_file()

    manifests = {name: json.loads((out / name / "llara-bench.json").read_text())
                 for name in ("base", "llara", "base-ft", "llara-ft")}
    assert manifests["base"]["stage"] == "pretrained" and manifests["base"]["shape"]["hidden"] == 32
    assert manifests["llara"]["base"] == str(out / "base") and manifests["llara"]["pretext"]["k"] == 8
    assert manifests["base-ft"]["base"] == str(out / "base") and manifests["llara-ft"]["base"] == str(out / "llara")
    assert manifests["base-ft"]["settings"] == manifests["llara-ft"]["settings"]  # the same fine-tuning for both
    assert manifests["llara-ft"]["data"]["split"] == "train"
    (run_dir,) = (out / "runs").iterdir()
    evaluated = json.loads(result_paths(run_dir, "llara+ft", "data")[0].read_text())
    assert evaluated["dataset"]["n_queries"] == n_test and evaluated["model"]["contract"]["pooling_k"] == 8

    again = CliRunner().invoke(app, args, env={"COLUMNS": "200"})  # finished stages are reused
    assert again.exit_code == 0 and again.output.count("reusing") == 4, again.output
    other = CliRunner().invoke(app, args[:-1] + ["24"])
    assert other.exit_code == 2 and "other settings" in other.output


def test_shipped_tiny_llara_is_built_from_the_current_recipe():
    """The weights in adaptation/data/tiny-llara come from `python -m llara_bench.adaptation.smoke`; changing
    tiny-llama's or the adaptation's recipe without rebuilding them fails here."""
    from llara_bench.adaptation import smoke

    folder = smoke.tiny_llara_path()
    build = json.loads((folder / "BUILD.json").read_text())
    assert build["recipe"] == json.loads(json.dumps(smoke.recipe()))
    manifest = json.loads((folder / "llara-bench.json").read_text())
    assert manifest["stage"] == "adapted" and manifest["settings"]["steps"] == smoke.SETTINGS.steps
    assert manifest["data"]["spec"] == "embedded:smoke"  # adapted on the smoke corpus: its smoke score is flagged
    assert not any(str(Path.home()) in json.dumps(m) for m in (build, manifest))  # nothing of the building machine

"""LLaRA's pretext model: EBAE and EBAR in one forward pass, and their bag-of-words losses.

One sequence per chunk, left padded::

    [BOS, ▁"] + text + summarize suffix (…<s1>..<s8>) + predict suffix (…<s9>..<s16>)

with causal + padding attention, and one block more: no row of the predict suffix sees any column of the
summarize suffix. The predict suffix's position ids are renumbered to follow the text directly, so each
suffix sees exactly what it sees at inference, where a passage carries only the summarize suffix and a
query only the predict suffix (tests check the hidden states equal two separate passes).

Losses (released code, FlagEmbedding research/LLARA): for each head, the LM-head logits at its 8 special
positions, max over the 8 per vocabulary entry, log-softmax, minus the mean log-probability of the target
token set; batch mean divided by 10; the two heads averaged; plus the plain next-token loss on the text
(weight 1, ``next_token_weight``). ``PAPER`` mode is the paper's variant instead: a single embedding token
(the EOS after "The input sentence is:" / "The next sentence is:"), the bag-of-words losses alone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

from llara_bench.models.base import EncodingContract
from llara_bench.models.contracts import LLARA, LLARA_PREDICT_SUFFIX, LLARA_SUMMARIZE_SUFFIX
from llara_bench.models.decoder import affix_ids, text_ids

BOW_SCALE = 0.1  # the released code divides each head's batch-mean loss by 10


@dataclass(frozen=True)
class PretextMode:
    name: str
    summarize_suffix: str
    predict_suffix: str
    k: int  # embedding positions at the end of each suffix
    next_token_weight: float  # weight of the next-token loss on the text (0: none)
    bow_weight: float = 1.0  # weight of the EBAE + EBAR losses (0: the next-token loss alone; still logged)

    def contract(self, base: EncodingContract = LLARA) -> EncodingContract:
        """The encoding contract a model adapted in this mode is used with (queries: predict, passages:
        summarize; the k positions mean-pooled)."""
        return replace(base, query_suffix=self.predict_suffix, passage_suffix=self.summarize_suffix,
                       pooling="last_k_mean", pooling_k=self.k)


RELEASED = PretextMode("released", LLARA_SUMMARIZE_SUFFIX, LLARA_PREDICT_SUFFIX, k=8, next_token_weight=1.0)
PAPER = PretextMode("paper", '" The input sentence is: </s>', '" The next sentence is: </s>', k=1,
                    next_token_weight=0.0)
# The study's control: the released mode's inputs, batches and next-token loss, without EBAE/EBAR, so that
# "LLaRA's pretext tasks" can be told apart from "more training on this text".
NEXT_TOKEN = replace(RELEASED, name="next-token", bow_weight=0.0)
MODES = {m.name: m for m in (RELEASED, PAPER, NEXT_TOKEN)}


@dataclass
class PretextBatch:
    input_ids: object  # (B, W) long
    attention_mask: object  # (B, 1, W, W) additive float mask
    position_ids: object  # (B, W) long
    summarize_positions: object  # (B, k): columns of the summarize head's embedding tokens
    predict_positions: object  # (B, k)
    text_spans: list[tuple[int, int]]  # per row: [start, end) columns of the text tokens
    ebae_targets: list[list[int]]
    ebar_targets: list[list[int]]


class PretextInputs:
    """Token-level construction of pretext inputs for one tokenizer, mode and contract."""

    def __init__(self, tokenizer, mode: PretextMode = RELEASED, contract: EncodingContract = LLARA,
                 max_text_tokens: int = 128):
        contract = mode.contract(contract)
        self.tokenizer, self.mode, self.max_text_tokens = tokenizer, mode, max_text_tokens
        self.head, self.summarize = affix_ids(tokenizer, contract, "passage")
        head_q, self.predict = affix_ids(tokenizer, contract, "query")
        if head_q != self.head:
            raise ValueError("the query and passage prefixes must agree for a one-pass pretext input")
        pad = tokenizer.convert_tokens_to_ids(contract.pad_token) if contract.pad_token else tokenizer.pad_token_id
        self.pad_id = int(pad)
        if len(self.summarize) < mode.k or len(self.predict) < mode.k:
            raise ValueError(f"mode {mode.name}: a suffix is shorter than its {mode.k} embedding tokens")

    def text(self, text: str) -> list[int]:
        return text_ids(self.tokenizer, text)[: self.max_text_tokens]

    def batch(self, texts: Sequence[list[int]], ebae_targets: Sequence[list[int]] = (),
              ebar_targets: Sequence[list[int]] = ()) -> PretextBatch:
        import torch

        h, s, p, k = len(self.head), len(self.summarize), len(self.predict), self.mode.k
        lengths = [h + len(t) + s + p for t in texts]
        width = max(lengths)
        n = len(texts)
        ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        positions = torch.zeros((n, width), dtype=torch.long)
        allowed = torch.zeros((n, width, width), dtype=torch.bool)
        causal = torch.tril(torch.ones(width, width, dtype=torch.bool))
        summ_pos, pred_pos, spans = [], [], []
        for row, text in enumerate(texts):
            start = width - lengths[row]
            body = h + len(text)
            ids[row, start:] = torch.tensor(self.head + list(text) + self.summarize + self.predict)
            # text and summarize suffix at 0..body+s-1; the predict suffix renumbered to follow the text
            positions[row, start:start + body + s] = torch.arange(body + s)
            positions[row, start + body + s:] = torch.arange(body, body + p)
            real = torch.zeros(width, dtype=torch.bool)
            real[start:] = True
            allowed[row] = causal & real[None, :]
            allowed[row, start + body + s:, start + body:start + body + s] = False
            summ_pos.append(list(range(start + body + s - k, start + body + s)))
            pred_pos.append(list(range(width - k, width)))
            spans.append((start + h, start + body))
        allowed |= torch.eye(width, dtype=torch.bool)[None]  # padding rows see themselves: no empty softmax
        mask = torch.zeros((n, 1, width, width))
        mask.masked_fill_(~allowed[:, None], torch.finfo(mask.dtype).min)
        return PretextBatch(ids, mask, positions, torch.tensor(summ_pos), torch.tensor(pred_pos), spans,
                            list(ebae_targets), list(ebar_targets))


def hidden_states(model, batch: PretextBatch):
    """The final (normed) hidden states of the one-pass input: (B, W, dim). ``model`` is a causal LM."""
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    base = model.get_decoder() if hasattr(model, "get_decoder") else model.model
    return base(input_ids=batch.input_ids.to(device), attention_mask=batch.attention_mask.to(device, dtype),
                position_ids=batch.position_ids.to(device)).last_hidden_state


def bow_loss(logits, targets: Sequence[list[int]]):
    """(B, k, V) logits at a head's embedding positions → the mean over rows of minus the mean
    log-probability of each row's target set, after a max over the k positions. Rows without targets
    are skipped."""
    import torch

    log_probs = torch.log_softmax(logits.float().max(dim=1).values, dim=-1)
    losses = [-log_probs[row, torch.tensor(t, device=logits.device)].mean()
              for row, t in enumerate(targets) if t]
    return torch.stack(losses).mean() if losses else log_probs.sum() * 0.0


def next_token_loss(model, hidden, batch: PretextBatch):
    """Cross-entropy of each text token given everything before it (the released code's LM loss); the
    first text token is predicted from the prefix's last token."""
    import torch

    rows, cols, labels = [], [], []
    for row, (start, end) in enumerate(batch.text_spans):
        rows += [row] * (end - start)
        cols += range(start - 1, end - 1)
        labels.append(batch.input_ids[row, start:end])
    if not rows:
        return hidden.sum() * 0.0
    logits = model.get_output_embeddings()(hidden[torch.tensor(rows), torch.tensor(cols)])
    return torch.nn.functional.cross_entropy(logits.float(), torch.cat(labels).to(logits.device))


def pretext_loss(model, batch: PretextBatch, mode: PretextMode = RELEASED):
    """(total loss, {name: float}) for one batch: EBAE and EBAR bag-of-words losses (unscaled in the
    logs), their scaled mean (times the mode's bow_weight), and the next-token loss when the mode weighs it."""
    import torch

    hidden = hidden_states(model, batch)
    head = model.get_output_embeddings()
    rows = torch.arange(hidden.shape[0], device=hidden.device)[:, None]
    ebae = bow_loss(head(hidden[rows, batch.summarize_positions.to(hidden.device)]), batch.ebae_targets)
    ebar = bow_loss(head(hidden[rows, batch.predict_positions.to(hidden.device)]), batch.ebar_targets)
    total = mode.bow_weight * (ebae + ebar) / 2 * BOW_SCALE
    logs = {"ebae": float(ebae.detach()), "ebar": float(ebar.detach())}
    if mode.next_token_weight:
        lm = next_token_loss(model, hidden, batch)
        total = total + mode.next_token_weight * lm
        logs["next_token"] = float(lm.detach())
    logs["loss"] = float(total.detach())
    return total, logs


def embeddings(model, batch: PretextBatch, mode: PretextMode = RELEASED):
    """The (summarize, predict) embeddings of a batch as inference pools them: mean of the k hidden
    states, L2-normalised."""
    import torch

    hidden = hidden_states(model, batch)
    rows = torch.arange(hidden.shape[0], device=hidden.device)[:, None]
    out = []
    for positions in (batch.summarize_positions, batch.predict_positions):
        emb = hidden[rows, positions.to(hidden.device)].float().mean(dim=1)
        out.append(torch.nn.functional.normalize(emb, dim=-1))
    return tuple(out)

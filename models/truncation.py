"""Long texts cut to what a tokenizer keeps of them, before the whole text is tokenized.

A tokenizer asked for ``max_length`` tokens still tokenizes the whole text and then truncates: one 50 MB
document cost a LLaMA-2 encoder 91 s and 7.2 GB for the 512 tokens it kept. `cut_to_tokens` hands the
tokenizer a prefix instead, chosen so that the tokens kept are exactly those of the whole text:

- the prefix ends where a word ends (just before a whitespace run), so no token of the text spans the cut:
  BERT's WordPiece and byte-level BPE split words at whitespace before anything else, and SentencePiece
  models such as LLaMA's have no piece that joins the end of a word to the following space;
- the prefix must tokenize to more than ``max_tokens`` tokens and a margin (`SLACK_TOKENS`) the cut could
  touch in a tokenizer without that property; a prefix that falls short (a text of long tokens, or of
  whitespace that the tokenizer drops) is doubled until it does or the whole text is left.

The first prefix tried is ``max_tokens × CHARS_PER_TOKEN`` characters: a text at most that long is never
cut, so ordinary documents cost nothing more.
"""

from __future__ import annotations

from typing import Sequence

CHARS_PER_TOKEN = 16  # generous: English runs about 4 characters per token, code and URLs rarely above 8
SLACK_TOKENS = 8


def cut_to_tokens(tokenizer, texts: Sequence[str], max_tokens: int) -> list[str]:
    """Each text, or the prefix of it whose tokenization (``tokenizer``: a Hugging Face tokenizer, counted
    without special tokens) begins with the same ``max_tokens`` tokens as the whole text's."""
    out = list(texts)
    budget = {i: max_tokens * CHARS_PER_TOKEN for i, text in enumerate(texts)
              if len(text) > max_tokens * CHARS_PER_TOKEN}
    while budget:
        cuts = {i: _cut_at_word_end(texts[i], chars) for i, chars in budget.items()}
        enough = max_tokens + SLACK_TOKENS + 1  # counted no further (nor warned of as too long for the model)
        counts = tokenizer(list(cuts.values()), add_special_tokens=False, truncation=True,
                           max_length=enough)["input_ids"]
        longer = {}
        for (i, cut), ids in zip(cuts.items(), counts):
            if len(ids) == enough:
                out[i] = cut
            elif 2 * budget[i] < len(texts[i]):
                longer[i] = 2 * budget[i]
        budget = longer  # a text not cut by now is tokenized whole
    return out


def _cut_at_word_end(text: str, chars: int) -> str:
    """``text[:chars]``, moved back to the end of its last word within the second half (a text with no
    whitespace there is cut at ``chars``; its last tokens are then the margin's to absorb)."""
    for end in range(chars, chars // 2, -1):
        if text[end].isspace() and not text[end - 1].isspace():
            return text[:end]
    return text[:chars]

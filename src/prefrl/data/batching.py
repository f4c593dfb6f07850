"""Tokenize preference pairs once, at start-up, and pad them into batches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from prefrl.data.records import PreferencePair
from prefrl.data.templates import render_conversation
from prefrl.errors import DataError


@dataclass
class TokenizedPair:
    chosen_ids: list[int]
    rejected_ids: list[int]
    margin: float | None = None

    @property
    def num_tokens(self) -> int:
        return len(self.chosen_ids) + len(self.rejected_ids)


@dataclass
class PairBatch:
    """Chosen sequences first, then rejected ones, right-padded, so one forward scores both."""

    input_ids: torch.Tensor  # (2B, T)
    attention_mask: torch.Tensor  # (2B, T)
    margins: torch.Tensor | None  # (B,) or None when no row has a margin
    num_tokens: int

    @property
    def num_pairs(self) -> int:
        return self.input_ids.shape[0] // 2


def encode(tokenizer: Any, text: str) -> list[int]:
    # Chat templates already contain the special tokens they need.
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def tokenize_pairs(tokenizer: Any, pairs: Sequence[PreferencePair], max_length: int, source: str) -> list[TokenizedPair]:
    """Render and tokenize every pair; a row longer than `max_length` is an error naming the row."""
    tokenized = []
    for row_number, pair in enumerate(pairs, start=1):
        chosen = encode(tokenizer, render_conversation(tokenizer, pair.prompt, pair.chosen))
        rejected = encode(tokenizer, render_conversation(tokenizer, pair.prompt, pair.rejected))
        for field_name, ids in (("chosen", chosen), ("rejected", rejected)):
            if len(ids) > max_length:
                raise DataError(
                    f"{source}: row {row_number}: field {field_name!r}: prompt + response is {len(ids)} tokens, "
                    f"more than max_length={max_length} (raise max_length or drop the row)"
                )
        tokenized.append(TokenizedPair(chosen, rejected, pair.margin))
    return tokenized


def pad_sequences(sequences: Sequence[Sequence[int]], pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the longest sequence: (ids, attention_mask), both (N, T)."""
    longest = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), longest), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), longest), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
        mask[row, : len(sequence)] = 1
    return ids, mask


def collate_pairs(pairs: Sequence[TokenizedPair], pad_token_id: int) -> PairBatch:
    ids, mask = pad_sequences([p.chosen_ids for p in pairs] + [p.rejected_ids for p in pairs], pad_token_id)
    margins = None
    if any(p.margin is not None for p in pairs):
        margins = torch.tensor([p.margin or 0.0 for p in pairs], dtype=torch.float32)
    return PairBatch(ids, mask, margins, int(mask.sum()))


def tokenize_prompt_response(tokenizer: Any, prompt: Any, response: Any) -> tuple[list[int], list[int]]:
    """(prompt ids ending at the assistant turn, response ids up to and including end-of-turn).

    The whole conversation is rendered once and split where the rendered prompt ends, so the
    response keeps exactly the tokens the chat template puts after the prompt."""
    from prefrl.data.templates import render_conversation, render_prompt

    prompt_text = render_prompt(tokenizer, prompt)
    full_text = render_conversation(tokenizer, prompt, response)
    if not full_text.startswith(prompt_text):  # a template that rewrites earlier turns
        raise DataError("the chat template renders the prompt differently on its own and inside the conversation")
    return encode(tokenizer, prompt_text), encode(tokenizer, full_text[len(prompt_text) :])

"""Tokenize preference pairs once, at start-up, and pad them into batches.

Rows are rendered by prefrl.data.templates, whose one rule makes a plain-string row and the
chat-message row of the same content give the same token ids (a string prompt is one user turn, a
string response one assistant turn), so a batch does not depend on the format the data came in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from prefrl.data.records import PreferencePair
from prefrl.errors import DataError


@dataclass
class TokenizedPair:
    """A pair as token ids: the shared prompt once, and each response after it."""

    prompt_ids: list[int]
    chosen_ids: list[int]  # response tokens only
    rejected_ids: list[int]
    margin: float | None = None

    @property
    def num_tokens(self) -> int:
        """Tokens of the two full sequences (prompt + chosen, prompt + rejected)."""
        return 2 * len(self.prompt_ids) + len(self.chosen_ids) + len(self.rejected_ids)


@dataclass
class PairBatch:
    """Prompts once (left-padded), responses interleaved [chosen₀, rejected₀, chosen₁, …] (right-padded):
    the prompt's KV cache is computed once and shared by its two responses."""

    prompt_ids: torch.Tensor  # (B, P)
    prompt_mask: torch.Tensor  # (B, P)
    response_ids: torch.Tensor  # (2B, R)
    response_mask: torch.Tensor  # (2B, R)
    margins: torch.Tensor | None  # (B,) or None when no row has a margin
    num_tokens: int

    @property
    def num_pairs(self) -> int:
        return self.prompt_ids.shape[0]


def encode(tokenizer: Any, text: str) -> list[int]:
    # Chat templates already contain the special tokens they need.
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def tokenize_pairs(tokenizer: Any, pairs: Sequence[PreferencePair], max_length: int, source: str) -> list[TokenizedPair]:
    """Split every pair into prompt and response tokens; a row longer than `max_length` is an error naming the row."""
    tokenized = []
    for row_number, pair in enumerate(pairs, start=1):
        prompt, chosen = tokenize_prompt_response(tokenizer, pair.prompt, pair.chosen)
        _, rejected = tokenize_prompt_response(tokenizer, pair.prompt, pair.rejected)
        for field_name, ids in (("chosen", chosen), ("rejected", rejected)):
            if len(prompt) + len(ids) > max_length:
                raise DataError(
                    f"{source}: row {row_number}: field {field_name!r}: prompt + response is {len(prompt) + len(ids)} tokens, "
                    f"more than max_length={max_length} (raise max_length or drop the row)"
                )
            if not ids:
                raise DataError(f"{source}: row {row_number}: field {field_name!r}: the response renders to no tokens")
        tokenized.append(TokenizedPair(prompt, chosen, rejected, pair.margin))
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


def left_pad(sequences: Sequence[Sequence[int]], pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad to the longest sequence, so every row ends in the same column: (ids, mask), (N, T)."""
    ids, mask = pad_sequences([list(reversed(s)) for s in sequences], pad_token_id)
    return ids.flip(-1), mask.flip(-1)


def collate_pairs(pairs: Sequence[TokenizedPair], pad_token_id: int) -> PairBatch:
    prompt_ids, prompt_mask = left_pad([p.prompt_ids for p in pairs], pad_token_id)
    response_ids, response_mask = pad_sequences([ids for p in pairs for ids in (p.chosen_ids, p.rejected_ids)], pad_token_id)
    margins = None
    if any(p.margin is not None for p in pairs):
        margins = torch.tensor([p.margin or 0.0 for p in pairs], dtype=torch.float32)
    return PairBatch(prompt_ids, prompt_mask, response_ids, response_mask, margins, sum(p.num_tokens for p in pairs))


def tokenize_prompt_response(tokenizer: Any, prompt: Any, response: Any) -> tuple[list[int], list[int]]:
    """(prompt ids ending at the assistant turn, response ids up to and including end-of-turn).

    The whole conversation is rendered once and split where the rendered prompt ends, so the
    response keeps exactly the tokens the chat template puts after the prompt."""
    from prefrl.data.templates import render_conversation, render_prompt  # templates import this module

    prompt_text = render_prompt(tokenizer, prompt)
    full_text = render_conversation(tokenizer, prompt, response)
    if not full_text.startswith(prompt_text):  # a template that rewrites earlier turns
        raise DataError("the chat template renders the prompt differently on its own and inside the conversation")
    return encode(tokenizer, prompt_text), encode(tokenizer, full_text[len(prompt_text) :])

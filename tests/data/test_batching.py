"""Batches of standard and conversational rows of the same pairs are the same tensors."""

from __future__ import annotations

import torch

from prefrl.data.batching import collate_pairs, tokenize_pairs
from prefrl.data.records import parse_preference_row
from prefrl.data.tasks import get_task
from prefrl.models.tiny import build_tiny_tokenizer


def test_collated_batches_do_not_depend_on_the_row_format() -> None:
    tokenizer = build_tiny_tokenizer()
    batches = []
    for fmt in ("standard", "conversational"):
        rows = get_task("arithmetic").generate(5, split="train", seed=4, fmt=fmt)
        pairs = [parse_preference_row(row) for row in rows]
        batches.append(collate_pairs(tokenize_pairs(tokenizer, pairs, 2048, fmt), tokenizer.pad_token_id))
    standard, conversational = batches
    for name in ("prompt_ids", "prompt_mask", "response_ids", "response_mask"):
        assert torch.equal(getattr(standard, name), getattr(conversational, name)), name
    # a standard prompt is a user turn: the prompt ends at the assistant's header, the response
    # ends with the end-of-turn marker, exactly as for chat messages
    prompt = tokenizer.decode(standard.prompt_ids[0][standard.prompt_mask[0].bool()])
    assert prompt.startswith("<|im_start|>user\n") and prompt.endswith("<|im_start|>assistant\n")
    chosen = standard.response_ids[0][standard.response_mask[0].bool()].tolist()
    assert tokenizer.eos_token_id in chosen[-2:]

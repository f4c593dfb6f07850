"""Responses of a policy to held-out prompts, and their gold score."""

from __future__ import annotations

from typing import Any, Sequence

import torch

from prefrl.data.batching import encode
from prefrl.data.records import PromptRecord
from prefrl.data.templates import render_prompt
from prefrl.preference.base import PointwisePreferenceModel
from prefrl.rollout.generation import HFGenerationBackend, SamplingParams


def generate_responses(
    lm: torch.nn.Module, tokenizer: Any, prompts: Sequence[PromptRecord], max_new_tokens: int, batch_size: int = 16, seed: int = 0, params: SamplingParams | None = None
) -> list[str]:
    """Greedy responses (or sampled with `params`), in prompt order, batched."""
    params = params or SamplingParams(max_new_tokens=max_new_tokens, greedy=True, num_samples=1)
    backend = HFGenerationBackend(lm, eos_token_ids(tokenizer), tokenizer.pad_token_id)
    generator = torch.Generator().manual_seed(seed)
    texts: list[str] = []
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start : start + batch_size]
        ids = backend.generate([encode(tokenizer, render_prompt(tokenizer, p.prompt)) for p in chunk], params, generator)
        texts.extend(t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True))
    return texts


def eos_token_ids(tokenizer: Any) -> list[int]:
    """End-of-turn tokens: the tokenizer's EOS, and ChatML's <|im_end|> when the vocabulary has it."""
    ids = {tokenizer.eos_token_id}
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>") if "<|im_end|>" in tokenizer.get_vocab() else None
    if im_end is not None:
        ids.add(im_end)
    return sorted(i for i in ids if i is not None)


def mean_score(judge: PointwisePreferenceModel, prompts: Sequence[PromptRecord], responses: Sequence[str]) -> float:
    return float(judge.score([p.prompt for p in prompts], list(responses)).float().mean())

"""Sampling K completions per prompt: the generation-backend seam, the Hugging Face backend, and
batched greedy responses to prompt records (evaluation, anchors, a judge's own analysis).

A backend takes token ids and returns token ids; everything else (chat templates, log-probs,
rewards) happens around it, so a vLLM backend for GPUs only has to implement `generate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import torch

from prefrl.data.batching import encode, pad_sequences
from prefrl.data.records import PromptRecord
from prefrl.data.templates import render_prompt
from prefrl.models.policy import cache_keyword, new_kv_cache, position_ids_from_mask


@dataclass
class SamplingParams:
    num_samples: int = 4  # K completions per prompt
    max_new_tokens: int = 64
    temperature: float = 1.0
    top_p: float = 1.0
    greedy: bool = False  # argmax decoding (anchors, evaluation); forces num_samples = 1 semantics


class GenerationBackend(Protocol):
    def generate(self, prompt_ids: Sequence[Sequence[int]], params: SamplingParams, generator: torch.Generator) -> list[list[int]]:
        """B prompts -> B·K responses, group-contiguous (the K samples of prompt b are rows bK … bK+K−1).
        A response ends with an end-of-sequence token unless it hit max_new_tokens."""


def sample_next_token(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator) -> torch.Tensor:
    """(N, V) -> (N,) one token per row: greedy, or temperature + nucleus (top-p) sampling."""
    if params.greedy or params.temperature == 0:
        return logits.argmax(dim=-1)
    probabilities = torch.softmax(logits.float() / params.temperature, dim=-1)
    if params.top_p < 1.0:
        sorted_probs, sorted_index = probabilities.sort(dim=-1, descending=True)
        # keep the smallest prefix whose mass reaches top_p (the first token always stays)
        outside = sorted_probs.cumsum(-1) - sorted_probs > params.top_p
        sorted_probs = sorted_probs.masked_fill(outside, 0.0)
        choice = torch.multinomial(sorted_probs, 1, generator=generator)
        return sorted_index.gather(-1, choice).squeeze(-1)
    return torch.multinomial(probabilities, 1, generator=generator).squeeze(-1)


class HFGenerationBackend:
    """Batched sampling with the model's KV cache.

    Each prompt is encoded once: the prefill runs on the B prompts and its cache is repeated K times
    (Hugging Face's `generate(num_return_sequences=K)` would encode every prompt K times). Rows that
    have finished are dropped from the batch and the cache, so late decoding steps only pay for
    the sequences still running.
    """

    def __init__(self, model: torch.nn.Module, eos_token_ids: Sequence[int], pad_token_id: int, autocast_bf16: bool = False):
        self.model = model
        # Sample under bfloat16 autocast (1.2–1.5× faster on a CPU with bf16 units, docs/benchmarks.md):
        # a run that trains under bf16 autocast then samples from the same numerics it trains.
        self.autocast_bf16 = autocast_bf16
        self.eos_token_ids = torch.tensor(sorted(set(eos_token_ids)))
        self.pad_token_id = pad_token_id

    def generate(self, prompt_ids: Sequence[Sequence[int]], params: SamplingParams, generator: torch.Generator) -> list[list[int]]:
        device_type = next(self.model.parameters()).device.type
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=self.autocast_bf16):
            return self._generate(prompt_ids, params, generator)

    @torch.no_grad()
    def _generate(self, prompt_ids: Sequence[Sequence[int]], params: SamplingParams, generator: torch.Generator) -> list[list[int]]:
        model = self.model
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        samples = 1 if params.greedy else params.num_samples
        # Left padding: every prompt ends at the same column, so new tokens are appended in step.
        reversed_ids, reversed_mask = pad_sequences([list(reversed(p)) for p in prompt_ids], self.pad_token_id)
        input_ids, attention_mask = reversed_ids.flip(-1).to(device), reversed_mask.flip(-1).to(device)
        # transformers' Cache API: our own DynamicCache, filled in place by every forward.
        cache, keyword = new_kv_cache(model), cache_keyword(model)
        output = model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids_from_mask(attention_mask),
            use_cache=True,
            logits_to_keep=1,
            **{keyword: cache},
        )
        cache.batch_repeat_interleave(samples)
        logits = output.logits[:, -1].repeat_interleave(samples, dim=0)
        attention_mask = attention_mask.repeat_interleave(samples, dim=0)
        next_position = attention_mask.sum(-1, keepdim=True)  # (N, 1)

        total = len(prompt_ids) * samples
        responses: list[list[int]] = [[] for _ in range(total)]
        active = torch.arange(total, device=device)  # rows of `responses` still being decoded
        eos = self.eos_token_ids.to(device)
        for step in range(params.max_new_tokens):
            tokens = sample_next_token(logits, params, generator).to(device)
            for row, token in zip(active.tolist(), tokens.tolist()):
                responses[row].append(token)
            running = ~torch.isin(tokens, eos)
            if step == params.max_new_tokens - 1 or not running.any():
                break
            if not running.all():
                keep = running.nonzero().squeeze(-1)
                cache.batch_select_indices(keep)
                active, tokens = active[keep], tokens[keep]
                attention_mask, next_position = attention_mask[keep], next_position[keep]
            attention_mask = torch.cat([attention_mask, attention_mask.new_ones((len(active), 1))], dim=-1)
            output = model(
                input_ids=tokens.unsqueeze(-1),
                attention_mask=attention_mask,
                position_ids=next_position,
                use_cache=True,
                **{keyword: cache},
            )
            logits = output.logits[:, -1]
            next_position = next_position + 1
        model.train(was_training)
        return responses


def generate_responses(
    lm: torch.nn.Module, tokenizer: Any, prompts: Sequence[PromptRecord], max_new_tokens: int, batch_size: int = 16, seed: int = 0, params: SamplingParams | None = None,
    bf16: bool = False,
) -> list[str]:
    """Greedy responses (or sampled with `params`), in prompt order, batched; `bf16`: under bf16 autocast."""
    params = params or SamplingParams(max_new_tokens=max_new_tokens, greedy=True, num_samples=1)
    backend = HFGenerationBackend(lm, eos_token_ids(tokenizer), tokenizer.pad_token_id, autocast_bf16=bf16)
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

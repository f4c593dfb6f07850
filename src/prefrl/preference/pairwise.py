"""Pairwise generative judge (GRAM-style, Pairwise-RL paper 001).

The model reads [x, response A, response B] and its next token is the verdict "A" or "B":

    P(A | x, a, b) = softmax(logit_A, logit_B)[A]   at the answer position
    P(a ≻ b | x)   = ½ [P(A | x, a, b) + P(B | x, b, a)]      (both orders: removes position bias)

Only the two verdict rows of the output layer are applied, at one position per sequence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from prefrl.data.batching import encode, pad_sequences
from prefrl.data.records import Text
from prefrl.data.templates import PAIRWISE_VERDICTS, render_pairwise_judge
from prefrl.errors import ConfigError
from prefrl.models.heads import last_token_index
from prefrl.models.loading import load_causal_lm, load_tokenizer
from prefrl.preference.base import PreferenceModel, write_model_card

KIND = "pairwise"


def single_token_id(tokenizer: Any, word: str) -> int:
    ids = tokenizer(word, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise ConfigError(f"the verdict {word!r} is {len(ids)} tokens for this tokenizer; the judge needs single-token verdicts")
    return ids[0]


class VerdictModel(nn.Module):
    """(N, 2) logits of the two verdict tokens at each sequence's last position."""

    def __init__(self, lm: nn.Module, verdict_ids: Sequence[int]):
        super().__init__()
        self.lm = lm
        self.register_buffer("verdict_ids", torch.tensor(list(verdict_ids)), persistent=False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.lm.get_decoder()(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
        last = hidden[torch.arange(hidden.shape[0], device=hidden.device), last_token_index(attention_mask)]
        output_layer = self.lm.get_output_embeddings()
        weight = output_layer.weight[self.verdict_ids]
        logits = last.to(weight.dtype) @ weight.T
        if getattr(output_layer, "bias", None) is not None:
            logits = logits + output_layer.bias[self.verdict_ids]
        return logits.float()


class PairwiseJudge(PreferenceModel):
    kind = KIND

    def __init__(self, model: VerdictModel, tokenizer: Any, batch_size: int = 16, max_length: int = 2048):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_length = max_length

    @classmethod
    def from_base(cls, name: str, dtype: str = "float32", cache_dir: str | None = None, **kwargs: Any) -> "PairwiseJudge":
        tokenizer = load_tokenizer(name, cache_dir)
        lm = load_causal_lm(name, dtype=dtype, cache_dir=cache_dir)
        verdict_ids = [single_token_id(tokenizer, v) for v in PAIRWISE_VERDICTS]
        return cls(VerdictModel(lm, verdict_ids), tokenizer, **kwargs)

    @classmethod
    def load(cls, directory: str | Path, dtype: str = "float32", **kwargs: Any) -> "PairwiseJudge":
        return cls.from_base(str(directory), dtype=dtype, **kwargs)

    def save(self, directory: str | Path) -> None:
        self.model.lm.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        write_model_card(directory, KIND, verdicts=list(PAIRWISE_VERDICTS))

    def encode(self, prompt: Text, first: Text, second: Text) -> list[int]:
        return encode(self.tokenizer, render_pairwise_judge(self.tokenizer, prompt, first, second))[-self.max_length :]

    @torch.no_grad()
    def verdict_probs(self, sequences: list[list[int]]) -> torch.Tensor:
        """(N,) P(first verdict "A") for each encoded judge prompt, longest first in batches."""
        order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i]))
        device = next(self.model.parameters()).device
        probs = torch.empty(len(sequences))
        was_training = self.model.training
        self.model.eval()
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            ids, mask = pad_sequences([sequences[i] for i in chunk], self.tokenizer.pad_token_id)
            probs[chunk] = torch.softmax(self.model(ids.to(device), mask.to(device)), dim=-1)[:, 0].cpu()
        self.model.train(was_training)
        return probs

    def order_probs(self, prompts: Sequence[Text], responses_a: Sequence[Text], responses_b: Sequence[Text]) -> tuple[torch.Tensor, torch.Tensor]:
        """(P(A | x, a, b), P(B | x, b, a)), both (B,), from one batched pass over both orders."""
        sequences = [self.encode(p, a, b) for p, a, b in zip(prompts, responses_a, responses_b)]
        sequences += [self.encode(p, b, a) for p, a, b in zip(prompts, responses_a, responses_b)]
        prob_first = self.verdict_probs(sequences)
        count = len(prompts)
        return prob_first[:count], 1 - prob_first[count:]

    def prob(self, prompts: Sequence[Text], responses_a: Sequence[Text], responses_b: Sequence[Text]) -> torch.Tensor:
        a_first, a_second = self.order_probs(prompts, responses_a, responses_b)
        return 0.5 * (a_first + a_second)

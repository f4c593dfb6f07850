"""Pairwise generative judge (GRAM-style, Pairwise-RL paper 001).

The model reads [x, response A, response B] and its next token is the verdict "A" or "B":

    P(A | x, a, b) = softmax(logit_A, logit_B)[A]   at the answer position
    P(a ≻ b | x)   = ½ [P(A | x, a, b) + P(B | x, b, a)]      (both orders: removes position bias)

Only the two verdict rows of the output layer are applied, at one position per sequence.

**Position calibration.** An instruction-tuned model answers such a prompt with "A" far more often
than "B" before any training: SmolLM2-135M-Instruct's verdict-logit gap logit_A − logit_B is
+2.9 ± 0.8 over `constraints` pairs (P("A") ≈ 0.93 in both orders; docs/benchmarks.md, "Why the
pairwise judge answered by position"). The two-order average still ranks correctly, but every
single-order verdict is "A", and a few small steps do not undo a prior that is four standard
deviations wide. So training starts from a calibrated judge ("calibrate before use", Zhao et al.
2021): the mean gap c of the untrained judge over both orders of some training pairs — which is 0
for a judge without a position preference, since each pair contributes g(a, b) and g(b, a) — is
subtracted from every gap, logits (ℓ_A − c/2, ℓ_B + c/2). c is fixed (a buffer, saved in the
model card), so the loss trains what the verdict reads, not the offset. Measured: training removes
the constant prior within a few steps by itself, and the calibrated judge's accuracy after 40 steps
(0.68 against 0.59, 18 / 9 discordant pairs, McNemar p = 0.12) is not shown to be better; what held
the judge at chance was a learning rate too small to learn the content (pairwise-rm's default lr).
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
from prefrl.preference.base import MODEL_CARD, PreferenceModel, read_model_card, write_model_card

KIND = "pairwise"


def single_token_id(tokenizer: Any, word: str) -> int:
    ids = tokenizer(word, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise ConfigError(f"the verdict {word!r} is {len(ids)} tokens for this tokenizer; the judge needs single-token verdicts")
    return ids[0]


class VerdictModel(nn.Module):
    """(N, 2) logits of the two verdict tokens at each sequence's last position."""

    def __init__(self, lm: nn.Module, verdict_ids: Sequence[int], position_offset: float = 0.0):
        super().__init__()
        self.lm = lm
        self.register_buffer("verdict_ids", torch.tensor(list(verdict_ids)), persistent=False)
        # c: the untrained judge's mean logit_A − logit_B, taken off every verdict (module docstring)
        self.register_buffer("position_offset", torch.tensor(float(position_offset)), persistent=False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.lm.get_decoder()(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
        last = hidden[torch.arange(hidden.shape[0], device=hidden.device), last_token_index(attention_mask)]
        output_layer = self.lm.get_output_embeddings()
        weight = output_layer.weight[self.verdict_ids]
        logits = last.to(weight.dtype) @ weight.T
        if getattr(output_layer, "bias", None) is not None:
            logits = logits + output_layer.bias[self.verdict_ids]
        half = self.position_offset.float() / 2
        return logits.float() - torch.stack([half, -half])


class PairwiseJudge(PreferenceModel):
    kind = KIND

    def __init__(self, model: VerdictModel, tokenizer: Any, batch_size: int = 16, max_length: int = 2048):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_length = max_length

    @classmethod
    def from_base(cls, name: str, dtype: str = "float32", cache_dir: str | None = None, position_offset: float = 0.0, **kwargs: Any) -> "PairwiseJudge":
        tokenizer = load_tokenizer(name, cache_dir)
        lm = load_causal_lm(name, dtype=dtype, cache_dir=cache_dir)
        verdict_ids = [single_token_id(tokenizer, v) for v in PAIRWISE_VERDICTS]
        return cls(VerdictModel(lm, verdict_ids, position_offset), tokenizer, **kwargs)

    @classmethod
    def load(cls, directory: str | Path, dtype: str = "float32", **kwargs: Any) -> "PairwiseJudge":
        card = Path(directory, MODEL_CARD)
        # Judges saved before position calibration have no offset in their card: 0 is what they used.
        offset = float(read_model_card(directory).get("position_offset", 0.0)) if card.is_file() else 0.0
        return cls.from_base(str(directory), dtype=dtype, position_offset=offset, **kwargs)

    def save(self, directory: str | Path) -> None:
        self.model.lm.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        write_model_card(directory, KIND, verdicts=list(PAIRWISE_VERDICTS), position_offset=float(self.model.position_offset))

    def calibrate_position(self, pairs: Sequence[Any]) -> float:
        """Set the position offset c to the mean verdict-logit gap over both orders of `pairs`
        (objects with .prompt, .chosen, .rejected) and return it. A judge without a position
        preference has c = 0: every pair adds g(a, b) and g(b, a), which cancel."""
        if not pairs:
            raise ConfigError("calibrating the pairwise judge's position offset needs at least one pair")
        self.model.position_offset.fill_(0.0)
        sequences = [self.encode(p.prompt, p.chosen, p.rejected) for p in pairs] + [self.encode(p.prompt, p.rejected, p.chosen) for p in pairs]
        offset = float(self.verdict_gaps(sequences).mean())
        self.model.position_offset.fill_(offset)
        return offset

    def encode(self, prompt: Text, first: Text, second: Text) -> list[int]:
        return encode(self.tokenizer, render_pairwise_judge(self.tokenizer, prompt, first, second))[-self.max_length :]

    @torch.no_grad()
    def verdict_gaps(self, sequences: list[list[int]]) -> torch.Tensor:
        """(N,) logit_A − logit_B (after the position offset) of each encoded judge prompt, longest first in batches."""
        order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i]))
        device = next(self.model.parameters()).device
        gaps = torch.empty(len(sequences))
        was_training = self.model.training
        self.model.eval()
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            ids, mask = pad_sequences([sequences[i] for i in chunk], self.tokenizer.pad_token_id)
            logits = self.model(ids.to(device), mask.to(device))
            gaps[chunk] = (logits[:, 0] - logits[:, 1]).cpu()
        self.model.train(was_training)
        return gaps

    def verdict_probs(self, sequences: list[list[int]]) -> torch.Tensor:
        """(N,) P(first verdict "A") for each encoded judge prompt: the softmax over the two verdicts."""
        return torch.sigmoid(self.verdict_gaps(sequences))

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

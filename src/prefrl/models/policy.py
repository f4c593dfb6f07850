"""The policy as a module whose forward returns what RL needs: log-probs of the response tokens.

Sequences are laid out as [left-padded prompt (P) | right-padded response (R)]. The output layer
(576 × 49,152 for SmolLM2) costs as much as a large part of the model, so logits are computed only
at the R positions that predict response tokens, never over the prompt. When a prompt comes once
with its G responses (DPO's pair, a GRPO group), the forward packs them without padding and
encodes the prompt once (`prefrl.models.packing`).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from prefrl.models.packing import PackedGroups, encode_packed, pack_groups


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that skip left padding, so a padded prompt is encoded exactly like an unpadded one."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def cache_keyword(model: nn.Module) -> str:
    """The keyword a Hugging Face model's forward takes its KV cache by: `cache` in current
    transformers (5.2x deprecates `past_key_values`, to be removed in 5.40), `past_key_values` in
    earlier releases. A PEFT model is asked about the model it wraps."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def new_kv_cache(model: nn.Module) -> Any:
    """An empty `DynamicCache` for `model` (transformers' Cache API), to pass by `cache_keyword`:
    the model fills it in place, so the caller keeps the object and never reads a legacy tuple."""
    from transformers import DynamicCache

    try:
        return DynamicCache(config=model.config)
    except TypeError:  # releases whose DynamicCache takes no config
        return DynamicCache()


def token_logprobs_from_logits(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[token] without materialising the whole log-softmax: (…, V), (…) -> (…)."""
    logits = logits.float()
    return logits.gather(-1, tokens.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """(…, V) -> (…) token entropy of softmax(logits)."""
    logits = logits.float()
    log_probs = torch.log_softmax(logits, dim=-1)
    return -(log_probs.exp() * log_probs).sum(-1)


@dataclass
class PolicyOutput:
    logprobs: torch.Tensor  # (N, R) log π(response token | prefix)
    entropy: torch.Tensor | None = None  # (N, R) when requested (no graph)
    hidden_states: torch.Tensor | None = None  # (N, P + R, d) last layer, when requested
    values: torch.Tensor | None = None  # unused here; value models return their own


class PolicyModel(nn.Module):
    """Wraps a Hugging Face causal LM (or a PEFT model around one)."""

    def __init__(self, lm: nn.Module, max_row_tokens: int = 512):
        super().__init__()
        self.lm = lm
        self.max_row_tokens = max_row_tokens  # packed rows: longer rows cost quadratic attention

    @property
    def backbone(self) -> nn.Module:
        return self.lm.get_decoder()

    def forward(
        self,
        input_ids: torch.Tensor,  # (N, P + R), or (B, P) prompts when response_ids is given
        attention_mask: torch.Tensor,  # same shape as input_ids
        prompt_length: int,
        temperature: float = 1.0,
        return_entropy: bool = False,
        return_hidden: bool = False,
        response_ids: torch.Tensor | None = None,  # (G·B, R): G responses per prompt, grouped by prompt
        response_mask: torch.Tensor | None = None,
    ) -> PolicyOutput:
        if response_ids is not None:
            return self._packed_forward(input_ids, attention_mask, response_ids, response_mask, temperature, return_entropy, return_hidden)
        hidden = self.backbone(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids_from_mask(attention_mask), use_cache=False
        ).last_hidden_state
        # The token at position t is predicted by the hidden state at t − 1.
        logits = self.lm.get_output_embeddings()(hidden[:, prompt_length - 1 : -1])
        if temperature != 1.0:
            logits = logits / temperature
        output = PolicyOutput(logprobs=token_logprobs_from_logits(logits, input_ids[:, prompt_length:]))
        if return_entropy:
            with torch.no_grad():
                output.entropy = entropy_from_logits(logits.detach())
        if return_hidden:
            output.hidden_states = hidden
        return output

    def _packed_forward(
        self, prompt_ids, prompt_mask, response_ids, response_mask, temperature: float, return_entropy: bool, return_hidden: bool
    ) -> PolicyOutput:
        """The forward for prompts given once with their G responses: packed, no padding anywhere,
        logits only for real response tokens. Outputs use the padded (N, R) layout, 0 on padding."""
        packed, states = self.packed_hidden(prompt_ids, prompt_mask, response_ids, response_mask)
        response_ids = response_ids.to(states.device)
        real = packed.predicting >= 0
        flat = states.reshape(-1, states.shape[-1])
        logits = self.lm.get_output_embeddings()(flat[packed.predicting[real]])
        if temperature != 1.0:
            logits = logits / temperature
        zeros = torch.zeros(response_ids.shape, dtype=torch.float32, device=logits.device)
        output = PolicyOutput(logprobs=zeros.masked_scatter(real, token_logprobs_from_logits(logits, response_ids[real])))
        if return_entropy:
            with torch.no_grad():
                output.entropy = zeros.masked_scatter(real, entropy_from_logits(logits.detach()))
        if return_hidden:
            output.hidden_states = packed.gather(states, packed.layout)
        return output

    def packed_hidden(
        self, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, response_ids: torch.Tensor, response_mask: torch.Tensor
    ) -> tuple[PackedGroups, torch.Tensor]:
        """Last-layer states of B prompts and their G responses each, packed without padding.

        (B, P) left-padded prompts, (G·B, R) right-padded responses grouped by prompt -> the packing
        and its (rows, T, d) states; each prompt is encoded once, and only real tokens are (see
        `prefrl.models.packing`)."""
        device = next(self.lm.parameters()).device
        packed = pack_groups(prompt_ids.cpu(), prompt_mask.cpu(), response_ids.cpu(), response_mask.cpu(), max_row_tokens=self.max_row_tokens)
        hidden = encode_packed(self.lm, packed, device)
        packed.predicting, packed.layout = packed.predicting.to(device), packed.layout.to(device)
        return packed, hidden

    def hidden_states(
        self, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, response_ids: torch.Tensor, response_mask: torch.Tensor
    ) -> torch.Tensor:
        """(G·B, P + R, d) last-layer states in the padded layout [prompt | response], from the packed
        forward without the output layer (zeros on padding)."""
        packed, states = self.packed_hidden(prompt_ids, prompt_mask, response_ids, response_mask)
        return packed.gather(states, packed.layout)

"""The policy as a module whose forward returns what RL needs: log-probs of the response tokens.

Sequences are laid out as [left-padded prompt (P) | right-padded response (R)]. The output layer
(576 × 49,152 for SmolLM2) costs as much as a large part of the model, so logits are computed only
at the R positions that predict response tokens, never over the prompt.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that skip left padding, so a padded prompt is encoded exactly like an unpadded one."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


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

    def __init__(self, lm: nn.Module):
        super().__init__()
        self.lm = lm

    @property
    def backbone(self) -> nn.Module:
        return self.lm.get_decoder()

    def forward(
        self,
        input_ids: torch.Tensor,  # (N, P + R)
        attention_mask: torch.Tensor,  # (N, P + R)
        prompt_length: int,
        temperature: float = 1.0,
        return_entropy: bool = False,
        return_hidden: bool = False,
    ) -> PolicyOutput:
        hidden = self.backbone(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids_from_mask(attention_mask), use_cache=False
        ).last_hidden_state
        # The token at position t is predicted by the hidden state at t − 1.
        predicting = hidden[:, prompt_length - 1 : -1]
        logits = self.lm.get_output_embeddings()(predicting)
        if temperature != 1.0:
            logits = logits / temperature
        response_tokens = input_ids[:, prompt_length:]
        output = PolicyOutput(logprobs=token_logprobs_from_logits(logits, response_tokens))
        if return_entropy:
            with torch.no_grad():
                output.entropy = entropy_from_logits(logits.detach())
        if return_hidden:
            output.hidden_states = hidden
        return output

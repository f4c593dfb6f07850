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
            prompt_states, response_states = self.shared_prompt_hidden(input_ids, attention_mask, response_ids, response_mask)
            # The first response token is predicted from the prompt's last state, the others from
            # the response's own states.
            predicting = torch.cat([prompt_states[:, -1:], response_states[:, :-1]], dim=1)
            response_tokens = response_ids
            hidden = torch.cat([prompt_states, response_states], dim=1) if return_hidden else None
        else:
            hidden = self.backbone(
                input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids_from_mask(attention_mask), use_cache=False
            ).last_hidden_state
            # The token at position t is predicted by the hidden state at t − 1.
            predicting = hidden[:, prompt_length - 1 : -1]
            response_tokens = input_ids[:, prompt_length:]
        logits = self.lm.get_output_embeddings()(predicting)
        if temperature != 1.0:
            logits = logits / temperature
        output = PolicyOutput(logprobs=token_logprobs_from_logits(logits, response_tokens))
        if return_entropy:
            with torch.no_grad():
                output.entropy = entropy_from_logits(logits.detach())
        if return_hidden:
            output.hidden_states = hidden
        return output

    def shared_prompt_hidden(
        self, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, response_ids: torch.Tensor, response_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Last-layer states of B prompts and their G responses each, every prompt encoded once.

        (B, P) prompts, (G·B, R) responses grouped by prompt -> (G·B, P, d) prompt states (repeated
        per response), (G·B, R, d) response states. The prompt's KV cache (with its gradient) is
        repeated G times instead of encoding the prompt G times."""
        group = response_ids.shape[0] // prompt_ids.shape[0]
        prefix = self.backbone(input_ids=prompt_ids, attention_mask=prompt_mask, position_ids=position_ids_from_mask(prompt_mask), use_cache=True)
        cache = prefix.past_key_values
        cache.batch_repeat_interleave(group)
        prompt_mask = prompt_mask.repeat_interleave(group, dim=0)
        positions = prompt_mask.sum(-1, keepdim=True) + torch.arange(response_ids.shape[1], device=response_ids.device)
        hidden = self.backbone(
            input_ids=response_ids, attention_mask=torch.cat([prompt_mask, response_mask], dim=-1), position_ids=positions, past_key_values=cache, use_cache=True
        ).last_hidden_state
        return prefix.last_hidden_state.repeat_interleave(group, dim=0), hidden

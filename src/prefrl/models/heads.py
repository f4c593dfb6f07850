"""Heads on top of a transformer backbone."""

from __future__ import annotations

import torch
from torch import nn


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B,) position of the last attended token of each row; works for left or right padding."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return (attention_mask.long() * positions).argmax(dim=-1)


class ScalarRewardModel(nn.Module):
    """r(x, y) = head(h_last): a linear head on the final non-pad token's last hidden state.

    Wraps a Hugging Face `*ForSequenceClassification` model with one label, so the saved checkpoint
    is a normal classifier, but runs only the backbone plus the head on one position per row: the
    classifier's own forward would apply the head at every position and pick the last token by
    comparing ids with the pad id.
    """

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.classifier = classifier

    @property
    def backbone(self) -> nn.Module:
        return getattr(self.classifier, self.classifier.base_model_prefix)

    @property
    def head(self) -> nn.Module:
        return self.classifier.score

    def last_hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, d) last-layer hidden state at each row's last token (the reward-token embedding)."""
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        return hidden[rows, last_token_index(attention_mask)]

    def shared_prompt_last_hidden(
        self, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, response_ids: torch.Tensor, response_mask: torch.Tensor
    ) -> torch.Tensor:
        """(G·B, d) last-token states of G responses per prompt, the prompt encoded once.

        Prompts are left-padded (B, P); responses right-padded (G·B, R), grouped by prompt. The
        prompt's keys and values — with their gradient — are repeated for its G responses, which
        attend to them through the cache: the same numbers as G full sequences, with the prompt's
        share of the compute paid once instead of G times.
        """
        from prefrl.models.policy import cache_keyword, new_kv_cache, position_ids_from_mask

        group = response_ids.shape[0] // prompt_ids.shape[0]
        # transformers' Cache API: our own DynamicCache, filled in place (no deprecated keyword).
        cache, keyword = new_kv_cache(self.backbone), cache_keyword(self.backbone)
        self.backbone(input_ids=prompt_ids, attention_mask=prompt_mask, position_ids=position_ids_from_mask(prompt_mask), use_cache=True, **{keyword: cache})
        cache.batch_repeat_interleave(group)
        prompt_mask = prompt_mask.repeat_interleave(group, dim=0)
        positions = prompt_mask.sum(-1, keepdim=True) + torch.arange(response_ids.shape[1], device=response_ids.device)
        hidden = self.backbone(
            input_ids=response_ids,
            attention_mask=torch.cat([prompt_mask, response_mask], dim=-1),
            position_ids=positions,
            use_cache=True,
            **{keyword: cache},
        ).last_hidden_state
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        return hidden[rows, last_token_index(response_mask)]

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        response_ids: torch.Tensor | None = None,
        response_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Scalar rewards: (B,) for full sequences; or, given responses, (G·B,) for G responses after
        each of the B prompts in `input_ids` (see `shared_prompt_last_hidden`)."""
        if response_ids is None:
            last = self.last_hidden(input_ids, attention_mask)
        else:
            last = self.shared_prompt_last_hidden(input_ids, attention_mask, response_ids, response_mask)
        return self.head(last.to(self.head.weight.dtype)).squeeze(-1).float()


class ValueModel(nn.Module):
    """V(s_t) for every response token: a linear head on the backbone's hidden state at the position
    just before the token (the state the token is generated from).

    Sequences end with the R response columns, whatever comes before them (the prompt, or the prompt
    and an anchor response for pairwise PPO), so the value positions are the last R, shifted by one.
    """

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.config.hidden_size, 1, dtype=next(backbone.parameters()).dtype)
        nn.init.zeros_(self.head.weight)  # V ≡ 0 at the start: no random value targets in the first updates
        nn.init.zeros_(self.head.bias)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, response_length: int) -> torch.Tensor:
        """(N, R) values."""
        from prefrl.models.policy import position_ids_from_mask

        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids_from_mask(attention_mask), use_cache=False).last_hidden_state
        states = hidden[:, -response_length - 1 : -1]
        return self.head(states.to(self.head.weight.dtype)).squeeze(-1).float()

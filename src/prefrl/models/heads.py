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

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B,) scalar rewards."""
        last = self.last_hidden(input_ids, attention_mask)
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

"""R2M: a Bradley–Terry reward model that also reads the policy's hidden states (paper 002).

A frozen BT reward model gives the reward-token embedding H (last token, last layer), computed
once per sample. A sequence-to-token cross-attention from H to the policy's last-layer hidden
states h over prompt + response (padding masked) gives the policy feedback Ĥ:

    q = H W_q,  k = h W_k,  v = h W_v,   Ĥ = softmax(q kᵀ / √d, mask) v W_o
    H_fin = (1 − ω(t)) Ĥ + ω(t) H,       r = φ(H_fin),   φ initialised from the BT head

Only W_q, W_k, W_v, W_o and φ train. The policy and the reward model may have different hidden
sizes and tokenizers (h is read where the policy put it; H where the reward model did).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from prefrl.data.records import Text
from prefrl.preference.bradley_terry import BradleyTerryModel


class FeedbackHead(nn.Module):
    """The trainable part: the cross-attention projections and the reward head φ."""

    def __init__(self, reward_hidden: int, policy_hidden: int, bt_head: nn.Linear, attention_dim: int | None = None):
        super().__init__()
        dim = attention_dim or reward_hidden
        self.query = nn.Linear(reward_hidden, dim, bias=False)
        self.key = nn.Linear(policy_hidden, dim, bias=False)
        self.value = nn.Linear(policy_hidden, dim, bias=False)
        self.out = nn.Linear(dim, reward_hidden, bias=False)
        self.reward = nn.Linear(reward_hidden, 1, bias=bt_head.bias is not None)
        with torch.no_grad():  # φ starts as the BT head: with ω = 1 the reward is the frozen RM's
            self.reward.weight.copy_(bt_head.weight.float())
            if bt_head.bias is not None:
                self.reward.bias.copy_(bt_head.bias.float())
        self.scale = 1.0 / math.sqrt(dim)

    def feedback(self, reward_embedding: torch.Tensor, policy_hidden: torch.Tensor, policy_mask: torch.Tensor) -> torch.Tensor:
        """Ĥ: (B, d_rm) from H (B, d_rm), h (B, L, d_pol), mask (B, L)."""
        query = self.query(reward_embedding).unsqueeze(1)  # (B, 1, d)
        keys, values = self.key(policy_hidden), self.value(policy_hidden)  # (B, L, d)
        scores = (query @ keys.transpose(1, 2)).squeeze(1) * self.scale  # (B, L)
        scores = scores.masked_fill(policy_mask == 0, torch.finfo(scores.dtype).min)
        attention = torch.softmax(scores, dim=-1)
        return self.out((attention.unsqueeze(1) @ values).squeeze(1))

    def forward(self, reward_embedding: torch.Tensor, policy_hidden: torch.Tensor, policy_mask: torch.Tensor, omega: float) -> torch.Tensor:
        """(B,) rewards r = φ((1 − ω) Ĥ + ω H)."""
        reward_embedding = reward_embedding.float()
        if omega >= 1.0:  # all weight on H: the feedback branch contributes nothing, skip it
            return self.reward(reward_embedding).squeeze(-1)
        mixed = (1 - omega) * self.feedback(reward_embedding, policy_hidden.float(), policy_mask) + omega * reward_embedding
        return self.reward(mixed).squeeze(-1)


class R2MRewardModel(nn.Module):
    """The frozen BT reward model plus the feedback head."""

    def __init__(self, base: BradleyTerryModel, policy_hidden_size: int):
        super().__init__()
        self.base = base
        base.reward_model.requires_grad_(False)
        base.reward_model.eval()
        reward_model = base.reward_model
        self.head = FeedbackHead(reward_model.classifier.config.hidden_size, policy_hidden_size, reward_model.head)
        # The BT head in a fresh copy, like φ: a tensor mapped from the checkpoint file can sit at an
        # offset that changes the kernel's summation order, and "ω = 1 gives the frozen reward"
        # should hold to the last bit.
        self.frozen_head = nn.Linear(reward_model.head.in_features, 1, bias=reward_model.head.bias is not None)
        self.frozen_head.load_state_dict({k: v.float().clone() for k, v in reward_model.head.state_dict().items()})
        self.frozen_head.requires_grad_(False)

    @torch.no_grad()
    def reward_embeddings(self, prompts: Sequence[Text], responses: Sequence[Text]) -> torch.Tensor:
        """(B, d_rm) H: the frozen RM's last-layer state at the last token (it never changes)."""
        from prefrl.data.batching import pad_sequences

        sequences = self.base.encode(prompts, responses)
        device = next(self.base.reward_model.parameters()).device
        chunks = []
        for start in range(0, len(sequences), self.base.batch_size):
            ids, mask = pad_sequences(sequences[start : start + self.base.batch_size], self.base.tokenizer.pad_token_id)
            chunks.append(self.base.reward_model.last_hidden(ids.to(device), mask.to(device)).float().cpu())
        return torch.cat(chunks)

    @torch.no_grad()
    def frozen_rewards(self, reward_embeddings: torch.Tensor) -> torch.Tensor:
        """The BT reward r = head(H) of the frozen model."""
        return self.frozen_head(reward_embeddings.float()).squeeze(-1)

    def forward(self, reward_embeddings: torch.Tensor, policy_hidden: torch.Tensor, policy_mask: torch.Tensor, omega: float) -> torch.Tensor:
        return self.head(reward_embeddings, policy_hidden, policy_mask, omega)

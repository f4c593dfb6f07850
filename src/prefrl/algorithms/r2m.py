"""R2M inside GRPO and RLOO (`r2m=true` on those recipes; paper 002).

Per step the group loop calls these hooks:
  prepare(rollout, step)   H, the frozen RM's reward-token embedding, once per sample (it cannot
                           change), the frozen BT reward from it, and ω(t)
  score(state, rows, h, …) r = φ((1 − ω(t)) Ĥ + ω(t) H) for some rows. h comes from a policy
                           forward the step makes anyway: the update's own forward when the step
                           makes one clipped pass (each micro-batch holds whole groups, so a
                           group's rewards and advantages are computed just before its loss), else
                           the rollout's no-grad pass that computes π_old's log-probs
  update(rollout, step)    after the policy update: refresh h with the updated policy (its last
                           layer only, each prompt encoded once per group), score each group, take
                           its highest and lowest response as a BT pair, and take one step of the
                           feedback head on (1 − α)·BT + α·GRE (AdamW, lr `r2m_lr`)
Ablations (`r2m_ablation`): frozen (the head never trains), noise (Gaussian noise instead of h),
no-gre, no-bt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from prefrl.errors import ConfigError
from prefrl.objectives.r2m import grebt_loss, omega_schedule, select_group_extremes
from prefrl.preference.bradley_terry import BradleyTerryModel
from prefrl.preference.r2m import R2MRewardModel
from prefrl.rollout import Rollout
from prefrl.rollout.rollout import policy_hidden_in_chunks

ABLATIONS = ("none", "frozen", "noise", "no-gre", "no-bt")


@dataclass
class R2MState:
    """What the group loop keeps between the two hooks of one step."""

    reward_embeddings: torch.Tensor  # (N, d_rm) H, once per sample
    frozen: torch.Tensor  # (N,) the BT reward
    omega: float


class R2MFeedback:
    def __init__(self, config: Any, engine: Any, base: Any, policy_hidden_size: int):
        """`base` is the recipe's proxy reward model, which must be Bradley–Terry."""
        if not isinstance(base, BradleyTerryModel):
            raise ConfigError(f"r2m=true extends a Bradley–Terry reward model; reward_model={config.reward_model!r} is {getattr(base, 'kind', base)}")
        self.config = config
        self.engine = engine
        self.model = R2MRewardModel(base, policy_hidden_size)
        self.optimizer = torch.optim.AdamW(self.model.head.parameters(), lr=config.r2m_lr)
        # Saved and restored with every checkpoint, like the policy's optimizer.
        engine.accelerator.register_for_checkpointing(self.model.head)
        engine.accelerator.register_for_checkpointing(self.optimizer)
        self.generator = torch.Generator().manual_seed(config.seed + 17)

    def policy_feedback(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.config.r2m_ablation == "noise":
            return torch.randn(hidden.shape, generator=self.generator).to(hidden.device)
        return hidden

    def prepare(self, rollout: Rollout, step: int) -> R2MState:
        """H and the frozen BT reward of every row, and ω(t) for this step."""
        omega = omega_schedule(step, self.config.max_steps, self.config.r2m_omega_floor)
        embeddings = self.model.reward_embeddings(rollout.row_prompts, rollout.responses)
        return R2MState(embeddings, self.model.frozen_rewards(embeddings), omega)

    @torch.no_grad()
    def score(self, state: R2MState, rows: torch.Tensor, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """R2M rewards of the given rows from the policy's hidden states h (len(rows), L, d) over
        prompt + response and their attention mask (len(rows), L). h is read, never differentiated."""
        device = next(self.model.head.parameters()).device
        feedback = self.policy_feedback(hidden.detach().float().to(device))
        # Called inside the update's forward, which may run under bf16 autocast: the reward is fp32.
        with torch.autocast(device.type, enabled=False):
            return self.model(state.reward_embeddings[rows].to(device), feedback, attention_mask.to(device), state.omega).float().cpu()

    def rewards(self, rollout: Rollout, step: int) -> tuple[torch.Tensor, R2MState]:
        """R2M rewards of every row, h from the rollout's own forward (collect it with return_hidden)."""
        state = self.prepare(rollout, step)
        return self.score(state, torch.arange(rollout.num_rows), rollout.hidden_states, rollout.attention_mask), state

    def update(self, rollout: Rollout, state: R2MState, policy: torch.nn.Module) -> dict[str, float]:
        """One feedback-head step on the GREBT loss with h refreshed by the updated policy."""
        config = self.config
        if config.r2m_ablation == "frozen":
            return {}
        hidden = policy_hidden_in_chunks(
            policy, rollout.input_ids, rollout.attention_mask, rollout.prompt_length, rollout.group_size, config.forward_chunk_size,
            bf16=config.r2m_refresh_bf16 or config.bf16,  # a bf16 run refreshes in bf16, as its other forwards run
        )
        rewards = self.model(state.reward_embeddings, self.policy_feedback(hidden), rollout.attention_mask, state.omega)
        high, low = select_group_extremes(rewards.detach(), rollout.group_size)
        loss, stats = grebt_loss(
            rewards[high], rewards[low], rewards, rollout.group_size, config.r2m_alpha,
            use_bt=config.r2m_ablation != "no-bt", use_gre=config.r2m_ablation != "no-gre",
        )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.engine.accelerator.num_processes > 1:  # the head is not DDP-wrapped: average by hand
            for parameter in self.model.head.parameters():
                if parameter.grad is not None:
                    parameter.grad = self.engine.accelerator.reduce(parameter.grad, reduction="mean")
        self.optimizer.step()
        return {k: float(v) for k, v in stats.items()} | {"loss": float(loss.detach())}

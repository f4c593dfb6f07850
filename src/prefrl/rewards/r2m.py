"""R2M as a reward source (paper 002): a Bradley–Terry reward model that also reads the policy's
last-layer hidden states h and learns a feedback head after every policy step.

The group loop calls the protocol's hooks (rewards/base.py), as for any source:
  join_run(run)             the feedback head and its AdamW join the run's checkpoint
  begin_step(rows, step)    H, the frozen RM's reward-token embedding, once per sample (it cannot
                            change), the frozen BT reward from it, and ω(t)
  score(rows)               r = φ((1 − ω(t)) Ĥ + ω(t) H), h from the rollout's no-grad pass (the one
                            that computes π_old's log-probs; the loop asks it for hidden states)
  score_in_update(rows, h)  the same for some rows, h from the update's own forward, when the step
                            makes one clipped pass (each micro-batch holds whole groups, so a group's
                            rewards and advantages are computed just before its loss)
  after_update(rollout, π)  refresh h with the updated policy (its last layer only, each prompt
                            encoded once per group), score each group, take its highest and lowest
                            response as a BT pair, and take one step of the feedback head on
                            (1 − α)·BT + α·GRE (AdamW, lr `r2m_lr`)
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
from prefrl.rewards.base import RewardRows, RewardSource, RunContext
from prefrl.rollout.rollout import policy_hidden_in_chunks

ABLATIONS = ("none", "frozen", "noise", "no-gre", "no-bt")


@dataclass
class R2MSettings:
    """The r2m_* keys of the group recipes, and the run settings R2M's forwards follow."""

    alpha: float = 0.3
    omega_floor: float = 0.6
    lr: float = 1e-6
    refresh_bf16: bool = False
    ablation: str = "none"
    bf16: bool = False
    forward_chunk_size: int = 16


@dataclass
class R2MState:
    """What one step keeps between its hooks."""

    reward_embeddings: torch.Tensor  # (N, d_rm) H, once per sample
    frozen: torch.Tensor  # (N,) the BT reward
    omega: float
    rewards: torch.Tensor  # (N,) the R2M rewards given so far this step (NaN until scored)


class R2MReward(RewardSource):
    reads_policy_hidden = True

    def __init__(self, base: RewardSource, settings: R2MSettings):
        """`base` is the proxy reward source, which must be a Bradley–Terry preference model."""
        model = getattr(base, "model", None)
        if not isinstance(model, BradleyTerryModel):
            raise ConfigError(f"r2m=true extends a Bradley–Terry reward model; reward={base.name!r} is {getattr(model, 'kind', type(base).__name__)}")
        if settings.ablation not in ABLATIONS:
            raise ConfigError(f"config key 'r2m_ablation' must be one of {', '.join(ABLATIONS)}, got {settings.ablation!r}")
        self.base, self.settings, self.name = model, settings, f"r2m({base.name})"
        self.model: R2MRewardModel | None = None
        self.run: RunContext | None = None
        self.state: R2MState | None = None

    def join_run(self, run: RunContext) -> None:
        self.run = run
        self.model = R2MRewardModel(self.base, run.policy_hidden_size)
        self.optimizer = torch.optim.AdamW(self.model.head.parameters(), lr=self.settings.lr)
        # Saved and restored with every checkpoint, like the policy's optimizer.
        run.register_for_checkpointing(self.model.head)
        run.register_for_checkpointing(self.optimizer)
        self.generator = torch.Generator().manual_seed(run.seed + 17)

    def policy_feedback(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.settings.ablation == "noise":
            return torch.randn(hidden.shape, generator=self.generator).to(hidden.device)
        return hidden

    def begin_step(self, rows: RewardRows, step: int) -> None:
        """H and the frozen BT reward of every row, and ω(t) for this step."""
        assert self.model is not None and self.run is not None, "R2MReward.join_run comes first"
        omega = omega_schedule(step, self.run.max_steps, self.settings.omega_floor)
        embeddings = self.model.reward_embeddings(rows.prompts, rows.responses)
        self.state = R2MState(embeddings, self.model.frozen_rewards(embeddings), omega, torch.full((len(rows),), float("nan")))

    @torch.no_grad()
    def score_in_update(self, rows: torch.Tensor, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """R2M rewards of the given rows from the policy's hidden states h (len(rows), L, d) over
        prompt + response and their attention mask (len(rows), L). h is read, never differentiated."""
        assert self.model is not None and self.state is not None, "begin_step comes first"
        device = next(self.model.head.parameters()).device
        feedback = self.policy_feedback(hidden.detach().float().to(device))
        # Called inside the update's forward, which may run under bf16 autocast: the reward is fp32.
        with torch.autocast(device.type, enabled=False):
            rewards = self.model(self.state.reward_embeddings[rows].to(device), feedback, attention_mask.to(device), self.state.omega).float().cpu()
        self.state.rewards[rows] = rewards
        return rewards

    def score(self, rows: RewardRows) -> torch.Tensor:
        """R2M rewards of every row, h from the rollout's own forward (RewardRows.hidden_states)."""
        if rows.hidden_states is None or rows.attention_mask is None:
            raise ConfigError(f"{self.name} reads the policy's hidden states: collect the rollout with return_hidden=True")
        return self.score_in_update(torch.arange(len(rows)), rows.hidden_states, rows.attention_mask)

    def after_update(self, rollout: Any, policy: torch.nn.Module) -> dict[str, float]:
        """One feedback-head step on the GREBT loss with h refreshed by the updated policy."""
        assert self.model is not None and self.state is not None and self.run is not None
        state, settings = self.state, self.settings
        watched = {"omega": state.omega, "r2m_reward": float(state.rewards.mean()), "frozen_reward": float(state.frozen.mean())}
        if settings.ablation == "frozen":
            return watched
        hidden = policy_hidden_in_chunks(
            policy, rollout.input_ids, rollout.attention_mask, rollout.prompt_length, rollout.group_size, settings.forward_chunk_size,
            bf16=settings.refresh_bf16 or settings.bf16,  # a bf16 run refreshes in bf16, as its other forwards run
        )
        rewards = self.model(state.reward_embeddings, self.policy_feedback(hidden), rollout.attention_mask, state.omega)
        high, low = select_group_extremes(rewards.detach(), rollout.group_size)
        loss, stats = grebt_loss(
            rewards[high], rewards[low], rewards, rollout.group_size, settings.alpha,
            use_bt=settings.ablation != "no-bt", use_gre=settings.ablation != "no-gre",
        )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.run.num_processes > 1:  # the head is not DDP-wrapped: average by hand
            for parameter in self.model.head.parameters():
                if parameter.grad is not None:
                    parameter.grad = self.run.reduce_mean(parameter.grad)
        self.optimizer.step()
        return {k: float(v) for k, v in stats.items()} | {"loss": float(loss.detach())} | watched


def r2m_reward(base: RewardSource | None, settings: R2MSettings) -> R2MReward:
    if base is None:
        raise ConfigError("r2m=true needs reward=RUN_DIR: a Bradley–Terry reward model to extend")
    return R2MReward(base, settings)


__all__ = ["R2MReward", "R2MSettings", "R2MState", "r2m_reward"]

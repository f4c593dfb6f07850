"""GRPO and RLOO — `prefrl train grpo`, `prefrl train rloo`.

One loop for both; what differs is the advantage function and where the KL goes:

    GRPO  A_i = (r_i − mean_group r) / (std_group r + ε)     KL (k3) added to the loss, weight β
    RLOO  A_i = r_i − mean of the other K − 1 rewards          KL (k1, summed over tokens) subtracted from r

and the policy loss is PPO's clipped surrogate on every response token,

    L = aggregate_t max(−A ρ_t, −A clip(ρ_t, 1 − ε, 1 + ε_high)) [+ β · aggregate_t KL_t],   ρ_t = π(y_t)/π_old(y_t).

Stages per step: 1 sample K responses per prompt → 2 score them (proxy reward, and the gold judge
when the task has one) → 3 advantages → 4 `ppo_epochs` clipped updates → 5 log / checkpoint.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import torch

from prefrl.config import ConfigSection, option
from prefrl.engine.engine import Engine
from prefrl.algorithms.policy_setup import (
    OnlinePolicyConfig,
    PolicySetup,
    PromptStream,
    end_policy_step,
    finish_policy_run,
    start_policy_run,
    make_backend,
    micro_batch_groups,
    sample_step,
    gold_rewards,
    loss_weight,
    setup_policy,
    step_generator,
    timed,
)
from prefrl.errors import ConfigError
from prefrl.eval.policy import group_pair_agreement
from prefrl.objectives.policy import aggregate, grpo_advantages, kl_penalty, length_debiased_rewards, masked_mean, ppo_clipped_policy_loss, rloo_advantages
from prefrl.rewards import RewardRows, RewardSource, RewardSourceSection, RunContext
from prefrl.rewards.r2m import ABLATIONS, R2MSettings, r2m_reward
from prefrl.rollout import Rollout, trim

AdvantageFn = Callable[[torch.Tensor, int], torch.Tensor]


@dataclass
class GroupPolicyConfig(OnlinePolicyConfig):
    """The keys the group loop reads (GRPO, RLOO, GRPO-pair): K samples per prompt, clipped updates,
    and where the KL goes."""

    kl_in_reward: bool = option(False, "Subtract β·Σ_t KL_t from the reward (RLOO-style) instead of adding β·KL to the loss.")
    length_debias: bool = option(
        False,
        "Remove from each step's rewards the part linear in response length within a prompt's group (one slope per batch, "
        "objectives.policy.length_debiased_rewards), so that a learned reward model's length bias cannot be collected by "
        "growing or shrinking every answer. Logged as train/reward_length_slope.",
    )

    def validate(self) -> None:
        super().validate()
        if self.num_generations < 2:
            raise ConfigError("group advantages need num_generations ≥ 2")

    def advantage_fn(self, engine: Engine | None = None) -> AdvantageFn:
        """The recipe's advantage function of (this process's rewards, K). Abstract: GroupScalingSection
        (GRPO, GRPO-pair) and RLOOConfig provide it."""
        raise NotImplementedError(f"{type(self).__name__} names no advantage function (inherit GroupScalingSection or define advantage_fn)")

    def reward_source(self, proxy: RewardSource | None) -> RewardSource | None:
        """The source the loop learns from: the `reward=` source itself (GRPO's R2M wraps it)."""
        return proxy

    def advantages_need_whole_batch(self) -> bool:
        """Whether a row's advantage needs rewards beyond its own group (GRPO's scale_rewards=batch)."""
        return False


@dataclass
class GroupScalingSection(ConfigSection):
    """GRPO's group-relative advantage: (r − mean_group r) / std."""

    scale_rewards: str = option("group", "Divide group-centred rewards by the group std (group), the batch std (batch), or not (none, Dr. GRPO).")

    def validate(self) -> None:
        super().validate()
        if self.scale_rewards not in ("group", "batch", "none"):
            raise ConfigError(f"config key 'scale_rewards' must be group, batch or none, got {self.scale_rewards!r}")

    def advantages_need_whole_batch(self) -> bool:
        return self.scale_rewards == "batch"

    def advantage_fn(self, engine: Engine | None = None) -> AdvantageFn:
        """With scale_rewards=batch and several processes the std is that of every process's rewards
        (gathered), as on one process."""
        scale = self.scale_rewards
        if scale == "batch" and engine is not None and engine.accelerator.num_processes > 1:
            accelerator = engine.accelerator

            def batch_scaled(rewards: torch.Tensor, k: int) -> torch.Tensor:
                everyone = accelerator.gather(rewards.float().to(accelerator.device)).to(rewards.device)
                return grpo_advantages(rewards, k, scale="batch", batch_rewards=everyone)

            return batch_scaled
        return lambda rewards, k: grpo_advantages(rewards, k, scale=scale)


@dataclass
class R2MSection(ConfigSection):
    """R2M (paper 002): the reward model reads the policy's hidden states and follows its updates."""

    r2m: bool = option(False, "R2M: the reward model reads the policy's hidden states and is updated after every policy step (needs reward=RUN_DIR of a Bradley–Terry model).")
    r2m_alpha: float = option(0.3, "α of the R2M loss (1 − α)·BT + α·GRE.")
    r2m_omega_floor: float = option(0.6, "Ω: floor of ω(t) = max(½cos(πt/T) + ½, Ω), the weight of the frozen embedding.")
    r2m_lr: float = option(1e-6, "Learning rate of the R2M feedback head.")
    r2m_refresh_bf16: bool = option(
        False, "Refresh h after the update under bfloat16 autocast in an fp32 run: ~1.8× faster on hardware with bf16 units (h only feeds the head's step; the rewards read h from the fp32 forward)."
    )
    r2m_ablation: str = option("none", "none, frozen (head never trains), noise (Gaussian noise instead of h), no-gre, no-bt.")

    def validate(self) -> None:
        super().validate()
        if self.r2m and len(self.reward_specs()) != 1:  # type: ignore[attr-defined]  (RewardSourceSection's)
            raise ConfigError("r2m=true needs reward=RUN_DIR: one Bradley–Terry reward model to extend")
        if self.r2m_ablation not in ABLATIONS:
            raise ConfigError(f"config key 'r2m_ablation' must be one of {', '.join(ABLATIONS)}, got {self.r2m_ablation!r}")

    def reward_source(self, proxy: RewardSource | None) -> RewardSource | None:
        """The source the loop learns from: the proxy, or with r2m=true R2M around it."""
        if not self.r2m:
            return proxy
        settings = R2MSettings(self.r2m_alpha, self.r2m_omega_floor, self.r2m_lr, self.r2m_refresh_bf16, self.r2m_ablation, self.bf16, self.forward_chunk_size)  # type: ignore[attr-defined]
        return r2m_reward(proxy, settings)


@dataclass
class GRPOConfig(R2MSection, GroupScalingSection, RewardSourceSection, GroupPolicyConfig):
    """GRPO: group-relative advantages, PPO-clip per token, k3 KL in the loss. Defaults tuned for
    SmolLM2-135M-Instruct on `constraints`, 2 CPU cores: 20 steps × 8 prompts × 8 samples, lr 4e-5, ≤ 64
    tokens, β = 0, bf16 where the CPU has it; measured significant on held-out gold (docs/benchmarks.md,
    "Learning with the shipped defaults")."""

    output_dir: str = option("runs/grpo", "Run directory.")


@dataclass
class RLOOConfig(R2MSection, RewardSourceSection, GroupPolicyConfig):
    """RLOO: leave-one-out baseline, PPO-clip per token, k1 KL subtracted from the reward. Defaults tuned for
    SmolLM2-135M-Instruct on `constraints`, 2 CPU cores: 20 steps × 8 prompts × 8 samples, lr 4e-5, ≤ 64
    tokens, β = 0, bf16 where the CPU has it; measured significant on held-out gold (docs/benchmarks.md,
    "Learning with the shipped defaults")."""

    output_dir: str = option("runs/rloo", "Run directory.")
    kl_estimator: str = option("k1", "KL estimator: k1, k2 or k3.")
    kl_in_reward: bool = option(True, "Subtract β·Σ_t KL_t from the reward instead of adding β·KL to the loss.")

    def advantage_fn(self, engine: Engine | None = None) -> AdvantageFn:
        return rloo_advantages


def group_policy_loss(
    model: torch.nn.Module, batch: Rollout, config: GroupPolicyConfig, advantages_from_hidden: Callable[[Rollout, torch.Tensor], torch.Tensor] | None = None
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Clipped surrogate on the response tokens, plus β·KL when the KL lives in the loss.

    The micro-batch holds whole groups, so each prompt is encoded once for its K responses. With
    `advantages_from_hidden` the batch has no advantages yet: they come from the rewards of a
    reward model that reads this forward's last-layer states (R2M), read without gradient."""
    k, prompt = batch.group_size, batch.prompt_length
    output = model(
        batch.input_ids[::k, :prompt], batch.attention_mask[::k, :prompt], prompt, temperature=config.temperature, return_entropy=True,
        response_ids=batch.input_ids[:, prompt:], response_mask=batch.attention_mask[:, prompt:], return_hidden=advantages_from_hidden is not None,
    )
    mask = batch.response_mask
    advantages = batch.sequence_advantages if advantages_from_hidden is None else advantages_from_hidden(batch, output.hidden_states.detach())
    # One clipped pass per rollout: π_old is the policy of this very forward (ρ = 1, as TRL does).
    old_logprobs = batch.logprobs if batch.logprobs is not None else output.logprobs.detach()
    loss, stats = ppo_clipped_policy_loss(
        output.logprobs,
        old_logprobs,
        advantages.to(output.logprobs.device),
        mask,
        clip_eps=config.clip_eps,
        clip_eps_high=config.clip_eps_high or None,
        aggregation=config.loss_aggregation,
        max_length=config.max_new_tokens,
    )
    stats = {"policy_loss": loss.detach(), **stats, "entropy": masked_mean(output.entropy, mask)}
    if batch.ref_logprobs is not None:
        per_token_kl = kl_penalty(output.logprobs, batch.ref_logprobs, config.kl_estimator)
        stats["kl_to_reference"] = (per_token_kl.detach() * mask).sum(-1).mean()
        if not config.kl_in_reward:
            kl = aggregate(per_token_kl, mask, config.loss_aggregation, config.max_new_tokens)
            loss = loss + config.kl_coef * kl
            stats["kl"] = kl.detach()
    return loss, stats


def train_group_policy(
    config: GroupPolicyConfig, recipe: str = "grpo", advantage_fn: AdvantageFn | None = None, setup: PolicySetup | None = None, model_kind: str = "policy"
) -> dict[str, Any]:
    """The group loop. `setup` lets a variant bring its own prompts and reward (GRPO-pair does)."""
    engine = Engine(config, recipe=recipe)
    advantage_fn = advantage_fn or config.advantage_fn(engine)  # GRPO's scaled group-relative or RLOO's leave-one-out

    # 1. Prompts, policy, reference and reward sources; every row validated before any sampling.
    setup = setup or setup_policy(config, with_reference=config.loads_reference())
    source = config.reward_source(setup.reward)
    if source is None:
        raise ConfigError(f"{recipe} needs a reward: set reward=...")
    engine.start_run()
    # A source that learns (R2M's feedback head and its optimizer) joins the checkpoint before `prepare` resumes.
    accelerator = engine.accelerator
    source.join_run(RunContext(
        setup.lm.config.hidden_size, config.max_steps, config.seed, accelerator.register_for_checkpointing,
        accelerator.num_processes, lambda tensor: accelerator.reduce(tensor, reduction="mean"),
    ))
    engine.prepare(setup.policy, updates_per_step=config.ppo_epochs)
    stream = PromptStream(setup.train_prompts, config, engine)
    backend = make_backend(setup.lm, setup.tokenizer, bf16=config.bf16)
    result = start_policy_run(engine, setup, config)
    # π_old's log-probs need their own pass only if the policy moves before they are used (several
    # epochs) or the KL goes into the reward before the update.
    needs_old_logprobs = config.ppo_epochs > 1 or (config.kl_in_reward and config.kl_coef > 0)
    # A source that reads the policy's hidden states reads them from the update's own forward when
    # there is no such pass: micro-batches hold whole groups and a group's advantages need only its
    # own rewards (not so when scaling by the batch's std). Else from the rollout's pass.
    score_in_update = source.reads_policy_hidden and not needs_old_logprobs and not config.advantages_need_whole_batch()
    if config.length_debias and score_in_update:
        raise ConfigError(
            f"length_debias=true needs the whole step's rewards before the update, but {source.name} scores each micro-batch from the update's own forward; "
            "set ppo_epochs=2 (or kl_coef>0 with kl_in_reward=true) so that it scores the rollout, or drop length_debias"
        )

    with engine.progress(recipe) as bar:
        while engine.step < config.max_steps:
            timings: dict[str, float] = {}
            started = time.perf_counter()
            generator = step_generator(config, engine.step, engine.accelerator.process_index)

            # 2. Sample K responses per prompt; old and reference log-probs in the same no-grad pass.
            with timed(timings, "generation"):
                rollout = sample_step(
                    engine, setup, config, stream, backend, generator, return_hidden=source.reads_policy_hidden and not score_in_update, old_logprobs=needs_old_logprobs
                )
            # 3. Rewards: the source drives learning; the gold judge is only watched.
            with timed(timings, "reward"):
                rows = RewardRows.from_rollout(rollout)
                source.begin_step(rows, engine.step)
                rewards = torch.full((rollout.num_rows,), float("nan")) if score_in_update else source.score(rows).float()  # in-update: filled group by group in stage 4
                gold = gold_rewards(setup, rollout)
            kl_per_row = None
            if rollout.ref_logprobs is not None and rollout.logprobs is not None:
                kl_per_row = (kl_penalty(rollout.logprobs, rollout.ref_logprobs, config.kl_estimator) * rollout.response_mask).sum(-1)
            loss_fn = lambda m, b: group_policy_loss(m, b, config)  # noqa: E731
            if score_in_update:
                rollout.row_index = torch.arange(rollout.num_rows)

                def advantages_in_update(batch: Rollout, hidden: torch.Tensor) -> torch.Tensor:
                    batch_rows = batch.row_index
                    rewards[batch_rows] = source.score_in_update(batch_rows, hidden, batch.attention_mask)
                    return advantage_fn(rewards[batch_rows], config.num_generations)

                loss_fn = lambda m, b: group_policy_loss(m, b, config, advantages_in_update)  # noqa: E731
            else:
                shaped = rewards
                if config.length_debias:
                    shaped, length_slope = length_debiased_rewards(rewards, rollout.response_lengths, config.num_generations)
                if config.kl_in_reward and kl_per_row is not None:
                    shaped = shaped - config.kl_coef * kl_per_row
                with torch.no_grad():
                    rollout.sequence_advantages = advantage_fn(shaped, config.num_generations)

            # 4. Clipped updates over the rollout, `gradient_accumulation_steps` micro-batches each;
            #    then a source that learns follows the policy it just moved.
            with timed(timings, "training"):
                for _ in range(config.ppo_epochs):
                    pieces = micro_batch_groups(rollout.num_rows, rollout.group_size, config.gradient_accumulation_steps, generator)
                    stats = engine.optimizer_step([trim(rollout.rows(rows)) for rows in pieces], loss_fn, loss_weight(config))
            with timed(timings, "reward_update"):
                source_stats = source.after_update(rollout, setup.policy)
            engine.end_step()

            # 5. Metrics, evaluation, checkpoint.
            generated = float(rollout.response_mask.sum())
            metrics = {f"policy/{k}": v for k, v in stats.items()}
            metrics.update({f"rm/{k}": v for k, v in source_stats.items()})
            if gold is not None and not setup.proxy_is_gold:
                # The proxy's accuracy on this step's own samples (pairs the gold judge separates): a
                # proxy the policy is over-optimising loses it while its reward still climbs.
                agreeing, separated = group_pair_agreement(rewards, gold, config.num_generations)
                metrics.update({"rm/gold_pairs": separated, "rm/gold_pairs_agreeing": agreeing})
            metrics.update(engine.mean_over_processes({
                "train/reward": float(rewards.mean()),
                "train/reward_std": float(rewards.std()) if rewards.numel() > 1 else 0.0,
                "policy/response_length": float(rollout.response_lengths.float().mean()),
                **({"train/gold_reward": float(gold.mean())} if gold is not None else {}),
                **({"train/reward_length_slope": float(length_slope)} if config.length_debias else {}),
                **({"policy/kl_to_reference": float(kl_per_row.mean())} if kl_per_row is not None else {}),
            }))
            elapsed = time.perf_counter() - started
            metrics.update({f"perf/{k}_s": v for k, v in timings.items()})
            metrics.update({"perf/step_s": elapsed, "perf/generation_tokens_per_s": generated / max(timings["generation"], 1e-9)})
            end_policy_step(engine, setup, config, metrics, bar, ("train/reward", "train/gold_reward", "policy/kl"))

    return finish_policy_run(engine, setup, config, result, kind=model_kind)


def train_grpo(config: GRPOConfig) -> dict[str, Any]:
    return train_group_policy(config, recipe="grpo")


def train_rloo(config: RLOOConfig) -> dict[str, Any]:
    return train_group_policy(config, recipe="rloo")

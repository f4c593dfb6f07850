"""Bradley–Terry reward model — `prefrl train reward`.

    ℓ(θ) = E_(x, y⁺, y⁻) [ −log σ(r_θ(x, y⁺) − r_θ(x, y⁻) − m) ] + c · E[(r⁺ + r⁻)²]

Stages: 1 load and validate data → 2 build the reward model → 3 train → 4 save → 5 evaluate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prefrl.config import TrainConfig, option
from prefrl.data.batching import PairBatch, collate_pairs, tokenize_pairs
from prefrl.data.loaders import load_preference_pairs
from prefrl.preference.base import data_format
from prefrl.engine.engine import Engine
from prefrl.engine.supervised import finish_preference_model_run, train_supervised
from prefrl.models.heads import ScalarRewardModel
from prefrl.objectives import bradley_terry_loss
from prefrl.preference.bradley_terry import BradleyTerryModel


@dataclass
class RewardConfig(TrainConfig):
    """Bradley–Terry reward model on preference pairs."""

    output_dir: str = option("runs/reward", "Run directory: resolved config, metrics.jsonl, checkpoints and the final model.")
    lr: float = option(2e-5, "Peak learning rate (AdamW).")
    center_rewards_coefficient: float = option(0.0, "c in c·(r⁺ + r⁻)²: keeps rewards centred on zero (0 disables).")
    use_margin: bool = option(True, "Subtract the dataset's `margin` column inside the sigmoid when rows have one.")
    eval_batch_size: int = option(16, "Sequences per forward pass when scoring for evaluation.")
    data_seed: int = option(0, "Seed of the built-in task generator (kept apart from `seed` so every run sees the same test split).")


def bradley_terry_step(model: ScalarRewardModel, batch: PairBatch, config: RewardConfig) -> tuple[Any, dict]:
    """One forward: each prompt once, then its chosen and rejected responses on its KV cache."""
    rewards = model(batch.prompt_ids, batch.prompt_mask, batch.response_ids, batch.response_mask).view(-1, 2)
    return bradley_terry_loss(
        rewards[:, 0],
        rewards[:, 1],
        margins=batch.margins if config.use_margin else None,
        center_rewards_coefficient=config.center_rewards_coefficient,
    )


def train_reward(config: RewardConfig) -> dict[str, Any]:
    engine = Engine(config, recipe="reward")

    # 1. Data: every row validated and tokenized before the first step.
    train_pairs = load_preference_pairs(config.data, config.train_split, config.data_seed, config.num_train)
    eval_pairs = load_preference_pairs(config.data, config.eval_split, config.data_seed, config.num_eval) if config.num_eval else []

    # 2. Model: the pretrained backbone with a fresh scalar head (seeded by `seed`).
    preference_model = BradleyTerryModel.from_base(
        config.model, dtype=config.dtype, cache_dir=config.cache_dir or None, batch_size=config.eval_batch_size, max_length=config.max_length
    )
    tokenizer = preference_model.tokenizer
    preference_model.trained_format = data_format(train_pairs)  # saved in the model card; evaluation on the other format warns
    examples = tokenize_pairs(tokenizer, train_pairs, config.max_length, source=f"{config.data} ({config.train_split})")
    engine.start_run()
    engine.print(f"[reward] {len(examples)} training pairs, {len(eval_pairs)} evaluation pairs")

    # 3. Train.
    model = engine.prepare(preference_model.reward_model)
    train_supervised(
        engine,
        examples,
        collate=lambda rows: collate_pairs(rows, tokenizer.pad_token_id),
        loss_fn=lambda m, batch: bradley_terry_step(m, batch, config),
        count_tokens=lambda batch: batch.num_tokens,
        progress_keys=("train/loss", "train/accuracy"),
    )

    # 4. Save the final model where `prefrl eval` and the RL recipes look for it: <run>/model;
    # 5. evaluate it on the held-out split.
    preference_model.reward_model = engine.unwrap(model)
    return finish_preference_model_run(engine, preference_model, eval_pairs)
